//! One-time codes (recovery, verification): short numeric codes sent by email. Only a
//! MAC of the code, bound to its flow, is stored; checking a submission recomputes it and
//! compares in constant time. A code is useless without its flow, expires quickly, and
//! each flow allows a bounded number of tries (enforced by the flows).

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::secret::{Keyring, MacPurpose, hex, unhex};

/// A code as sent to the user. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeCode(String);

impl OneTimeCode {
    /// A fresh uniformly random code of `digits` decimal digits (clamped to 4..=12).
    pub fn generate(digits: u8) -> Self {
        let digits = digits.clamp(4, 12);
        let mut rng = rand::rng();
        let code: String = (0..digits)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        Self(code)
    }

    /// A code the user typed (surrounding whitespace dropped).
    pub fn from_user(code: &str) -> Self {
        Self(code.trim().to_owned())
    }

    /// The code, to put in a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(<redacted>)")
    }
}

/// What is stored for a pending code: its MAC (hex), when it expires, and what it proves.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingCode {
    tag: String,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) target: CodeTarget,
}

impl fmt::Debug for PendingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCode")
            .field("expires_at", &self.expires_at)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Whom a code was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum CodeTarget {
    /// An address of an identity.
    Identity {
        /// The identity.
        identity_id: Uuid,
        /// The (normalised) address the code went to.
        address: String,
    },
    /// An address no identity has: the flow pretends a code was sent; no code matches.
    Nobody,
}

impl PendingCode {
    /// Records `code` for `flow_id`.
    pub(crate) fn new(
        keyring: &Keyring,
        flow_id: Uuid,
        code: &OneTimeCode,
        expires_at: DateTime<Utc>,
        target: CodeTarget,
    ) -> Self {
        let tag = keyring.mac(MacPurpose::Code, &[flow_id.as_bytes(), code.0.as_bytes()]);
        Self {
            tag: hex(&tag),
            expires_at,
            target,
        }
    }

    /// Whether `code` is this flow's code (constant time; expiry is the caller's check).
    pub(crate) fn matches(&self, keyring: &Keyring, flow_id: Uuid, code: &OneTimeCode) -> bool {
        let Some(tag) = unhex(&self.tag) else {
            return false;
        };
        let real = keyring.verify(
            MacPurpose::Code,
            &[flow_id.as_bytes(), code.0.as_bytes()],
            &tag,
        );
        real && matches!(self.target, CodeTarget::Identity { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;

    #[test]
    fn codes_are_digits_of_the_asked_length_and_vary() {
        let a = OneTimeCode::generate(6);
        assert_eq!(a.expose().len(), 6);
        assert!(a.expose().bytes().all(|b| b.is_ascii_digit()));
        let distinct: std::collections::HashSet<String> = (0..50)
            .map(|_| OneTimeCode::generate(6).expose().to_owned())
            .collect();
        assert!(distinct.len() > 40);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn a_code_matches_only_its_flow_and_never_for_nobody() {
        let keyring = Keyring::new(&Secrets::default()).unwrap();
        let (flow, other) = (Uuid::new_v4(), Uuid::new_v4());
        let code = OneTimeCode::generate(6);
        let target = CodeTarget::Identity {
            identity_id: Uuid::new_v4(),
            address: "a@example.com".into(),
        };
        let pending = PendingCode::new(&keyring, flow, &code, DateTime::<Utc>::UNIX_EPOCH, target);
        assert!(pending.matches(
            &keyring,
            flow,
            &OneTimeCode::from_user(&format!(" {} ", code.expose()))
        ));
        assert!(!pending.matches(&keyring, other, &code));
        assert!(!pending.matches(&keyring, flow, &OneTimeCode::from_user("000000x")));
        assert!(!format!("{pending:?}").contains(&pending.tag));
        let decoy = PendingCode::new(
            &keyring,
            flow,
            &code,
            DateTime::<Utc>::UNIX_EPOCH,
            CodeTarget::Nobody,
        );
        assert!(!decoy.matches(&keyring, flow, &code));
    }
}
