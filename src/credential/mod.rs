//! Credentials: what proves an identity is who it claims. One module per method.

pub mod breached;
pub mod code;
pub mod lookup;
#[cfg(feature = "oidc")]
pub mod oidc;
pub mod password;
pub mod totp;
pub mod webauthn;

use uuid::Uuid;

use password::{PasswordError, PolicyViolation};

/// What went wrong with a credential: hashing, the password policy, a WebAuthn ceremony
/// that could not start, a secret that could not be sealed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Hashing failed, or a stored hash is in a format identa cannot verify.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The password breaks the policy.
    #[error("{0}")]
    Policy(PolicyViolation),
    /// A WebAuthn ceremony could not be started (webauthn-rs refused its options).
    #[error("WebAuthn: {0}")]
    Webauthn(String),
    /// A secret (a TOTP seed, backup codes waiting for confirmation) could not be sealed or
    /// opened with the configured cipher secrets.
    #[error(
        "the {0} cannot be sealed or opened with the configured cipher secrets; keep the old secret in the list when rotating"
    )]
    Sealing(&'static str),
    /// The password migration hook gave no verdict, or none is configured.
    #[error(transparent)]
    Migration(#[from] password::migration::MigrationError),
}

impl From<webauthn_rs::prelude::WebauthnError> for CredentialError {
    fn from(err: webauthn_rs::prelude::WebauthnError) -> Self {
        Self::Webauthn(err.to_string())
    }
}

/// The id under which a spent one-time factor (a TOTP step, a backup code) is recorded, so
/// that a second use — even a racing one — is refused: a digest of what was spent, which
/// reveals neither the code nor the step.
pub(crate) fn spent_marker(domain: &[u8], identity_id: Uuid, what: &[u8]) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(domain)
        .chain_update(identity_id.as_bytes())
        .chain_update(what)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_markers_name_one_factor_use_of_one_identity() {
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let step = 59_u64.to_be_bytes();
        let marker = spent_marker(b"identa/totp/step/", ada, &step);
        assert_eq!(marker, spent_marker(b"identa/totp/step/", ada, &step));
        assert_ne!(
            marker,
            spent_marker(b"identa/totp/step/", ada, &60_u64.to_be_bytes())
        );
        assert_ne!(marker, spent_marker(b"identa/totp/step/", bob, &step));
        assert_ne!(marker, spent_marker(b"identa/lookup_secret/", ada, &step));
    }
}
