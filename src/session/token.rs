//! Session tokens: 256 bits from `rand`'s cryptographically secure generator (seeded by
//! the OS), handed to the caller once and stored
//! only as their SHA-256 digest, so a copy of the database signs nobody in.
//!
//! Lookup is by digest through a unique index. No constant-time comparison is needed
//! there: an attacker who can time the index cannot choose digests of their liking.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// Prefix that makes identa tokens recognisable to secret scanners.
const PREFIX: &str = "identa_st_";
/// The longest string that could be a token; anything longer is refused unhashed.
pub(crate) const MAX_TOKEN_LEN: usize = 128;

/// A session token in the clear: give it to the client, never store or log it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(format!(
            "{PREFIX}{}",
            Base64UrlUnpadded::encode_string(&bytes)
        ))
    }

    /// Wraps a token a client presented (unchecked: lookup decides).
    pub fn from_client(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text, to send to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest stored at rest.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// Whether the text is too long to be a token (refused before any work).
    pub(crate) fn is_oversized(&self) -> bool {
        self.0.len() > MAX_TOKEN_LEN
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// The SHA-256 digest of a session token, as kept in the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a digest read from storage.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_long_and_hash_stably() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), PREFIX.len() + 43);
        assert_eq!(a.hash(), SessionToken::from_client(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "SessionToken(***)");
        assert!(!format!("{:?}", a.hash()).contains(a.expose()));
    }
}
