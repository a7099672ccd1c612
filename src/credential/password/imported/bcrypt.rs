//! bcrypt hashes (`$2a$`, `$2b$`, `$2y$`, `$2x$` modular crypt), Kratos's default hasher:
//! cost at most 15, and passwords of at most 72 bytes — a longer one is refused, never
//! truncated to its first 72 bytes as bcrypt itself would.

use super::{at_most, unsupported};
use crate::credential::password::PasswordError;

/// The highest bcrypt cost accepted (Kratos's bound on compare and import).
const MAX_COST: u64 = 15;
/// bcrypt keys on at most this many bytes of password.
const MAX_PASSWORD_BYTES: usize = 72;

/// Work per round of bcrypt's 2^cost ([`super::Work`] units): a round (two key
/// expansions) measures about 50 µs, a hundred argon2 blocks; counted as 64.
const WORK_PER_ROUND: u64 = 64;

/// A bcrypt string of a valid shape and cost.
pub(in crate::credential::password) struct BcryptHash {
    stored: String,
    cost: u64,
}

impl BcryptHash {
    /// Checks a bcrypt string's shape and cost (4..=15) without verifying anything.
    pub(super) fn parse(stored: &str) -> Result<Self, PasswordError> {
        let parts: Vec<&str> = stored.split('$').collect();
        let [_, variant, cost, rest] = parts.as_slice() else {
            return Err(unsupported(
                "not a bcrypt string ($2b$<cost>$<53 characters>)",
            ));
        };
        if !matches!(*variant, "2a" | "2b" | "2y" | "2x") {
            return Err(unsupported(format!(
                "bcrypt variant `{variant}` is not supported"
            )));
        }
        let cost: u64 = cost
            .parse()
            .map_err(|_| unsupported("the bcrypt cost is not a number"))?;
        at_most("bcrypt", "cost", cost, MAX_COST)?;
        if cost < 4 {
            return Err(unsupported(format!("bcrypt cost {cost} is below 4")));
        }
        let valid = rest.len() == 53
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
        if !valid {
            return Err(unsupported(
                "the bcrypt salt and hash must be 53 characters of ./A-Za-z0-9",
            ));
        }
        Ok(Self {
            stored: stored.to_owned(),
            cost,
        })
    }

    /// Its cost (log2 of its rounds).
    pub(super) fn cost(&self) -> u64 {
        self.cost
    }

    /// A bcrypt hash of random bytes at `cost` (`$2b$`): verifying any password against
    /// it takes what verifying against a stored hash of that cost takes, and never matches.
    pub(super) fn dummy(cost: u64) -> Result<Self, PasswordError> {
        let cost32 = u32::try_from(cost).unwrap_or(u32::MAX);
        let password: [u8; 32] = rand::random();
        let salt: [u8; 16] = rand::random();
        let stored = bcrypt::hash_with_salt(password, cost32, salt)
            .map_err(|e| PasswordError::Hashing(format!("bcrypt: {e}")))?
            .to_string();
        Self::parse(&stored)
    }

    /// The hash as stored.
    pub(super) fn as_str(&self) -> &str {
        &self.stored
    }

    /// The estimated work of a verification: 2^cost rounds.
    pub(super) fn work(&self) -> u64 {
        WORK_PER_ROUND << self.cost
    }

    /// Whether `password` matches. Over 72 bytes never matches: bcrypt would look at the
    /// first 72 only, so a longer password is refused rather than truncated (as Kratos
    /// refuses it). Exactly 72 bytes is bcrypt's whole key and verifies.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        // A longer password is still run through bcrypt (its first 72 bytes), so that the
        // refusal takes a verification's time: an instant answer would tell a timer that
        // the account exists and holds a bcrypt hash.
        let keyed = password.get(..MAX_PASSWORD_BYTES).unwrap_or(password);
        // `bcrypt::verify` (not `non_truncating_verify`, which counts the terminating NUL
        // and so refuses exactly 72 bytes) compares in constant time.
        let matched = bcrypt::verify(keyed, &self.stored).unwrap_or(false);
        matched && password.len() <= MAX_PASSWORD_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventy_two_bytes_verify_and_more_are_refused_not_truncated() {
        let exactly: Vec<u8> = "é".repeat(36).into_bytes();
        assert_eq!(exactly.len(), 72);
        let hash = bcrypt::hash(&exactly, 4).unwrap();
        let parsed = BcryptHash::parse(&hash).unwrap();
        assert!(parsed.verify(&exactly));
        let mut one_short = exactly.clone();
        one_short.pop();
        assert!(!parsed.verify(&one_short));

        // bcrypt itself keys on the first 72 bytes: this hash is also that of `longer`...
        let mut longer = exactly.clone();
        longer.extend_from_slice(b"and more");
        assert!(bcrypt::verify(&longer, &hash).unwrap());
        // ...and identa refuses it.
        assert!(!parsed.verify(&longer));
        let of_longer = BcryptHash::parse(&bcrypt::hash(&longer, 4).unwrap()).unwrap();
        assert!(!of_longer.verify(&longer));
    }

    #[test]
    fn cost_is_bounded() {
        let at = |cost: &str| {
            format!(
                "${}$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
                cost
            )
        };
        assert!(BcryptHash::parse(&at("2a$15")).is_ok());
        assert!(matches!(
            BcryptHash::parse(&at("2a$16")),
            Err(PasswordError::CostOutOfBounds {
                algorithm: "bcrypt",
                parameter: "cost",
                value: 16,
                max: 15
            })
        ));
        assert!(matches!(
            BcryptHash::parse(&at("2a$03")),
            Err(PasswordError::UnsupportedHash { .. })
        ));
    }
}
