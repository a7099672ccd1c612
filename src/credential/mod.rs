//! Credentials: what proves an identity is who it claims. One module per method.

pub mod code;
pub mod lookup;
pub mod password;
pub mod totp;
pub mod webauthn;

use uuid::Uuid;

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
