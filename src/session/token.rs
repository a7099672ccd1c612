//! Session tokens: 256 bits from `rand`'s cryptographically secure generator (seeded by
//! the OS) followed by a 128-bit tag (HMAC-SHA256 of those bits under a key derived from
//! the cookie secrets, truncated), handed to the caller once and stored
//! only as their SHA-256 digest, so a copy of the database signs nobody in.
//!
//! The tag lets the engine refuse a malformed or forged token before any cache or store
//! work ([`SessionToken::check`]): only a token the server minted, under a cookie secret
//! still configured, costs a lookup. Tokens minted before tags (32 bytes, no tag) are
//! told apart by their length; the engine looks them up only until the last session that
//! existed at the upgrade expires (docs/security.md, "Session tokens").
//!
//! Lookup is by digest through a unique index. No constant-time comparison is needed
//! there: an attacker who can time the index cannot choose digests of their liking.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

use crate::secret::{Keyring, SESSION_TAG_LEN};

/// Prefix that makes identa tokens recognisable to secret scanners.
const PREFIX: &str = "identa_st_";
/// The longest string that could be a token; anything longer is refused unhashed.
pub(crate) const MAX_TOKEN_LEN: usize = 128;
/// The random part of a token, in bytes.
const RANDOM_LEN: usize = 32;
/// A tagged token's bytes: the random part, then its tag.
const TAGGED_LEN: usize = RANDOM_LEN + SESSION_TAG_LEN;

/// What [`SessionToken::check`] makes of a token a client presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    /// Tagged under a configured cookie secret: worth a lookup.
    Tagged,
    /// The shape tokens had before tags: worth a lookup only while sessions from before
    /// the upgrade can still be alive.
    Untagged,
    /// Malformed, or a tag no configured secret made: refused without a lookup.
    Forged,
}

/// A session token in the clear: give it to the client, never store or log it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh random token, tagged under the current cookie secret:
    /// `identa_st_` + base64url(32 random bytes ‖ 16-byte tag), 74 characters.
    pub(crate) fn generate(keyring: &Keyring) -> Self {
        let random: [u8; RANDOM_LEN] = rand::random();
        let mut bytes = Vec::with_capacity(TAGGED_LEN);
        bytes.extend_from_slice(&random);
        bytes.extend_from_slice(&keyring.session_tag(&random));
        Self(format!(
            "{PREFIX}{}",
            Base64UrlUnpadded::encode_string(&bytes)
        ))
    }

    /// A token in the shape identa minted before tags (`identa_st_` + base64url(32
    /// random bytes)): for tests of the upgrade path and of stores (feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    pub fn untagged() -> Self {
        let bytes: [u8; RANDOM_LEN] = rand::random();
        Self(format!(
            "{PREFIX}{}",
            Base64UrlUnpadded::encode_string(&bytes)
        ))
    }

    /// Wraps a token a client presented (unchecked: the engine checks its tag, then
    /// looks it up).
    pub fn from_client(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether this token could be one the server minted, judged without storage: its
    /// shape, and its tag under every configured cookie secret.
    pub(crate) fn check(&self, keyring: &Keyring) -> TokenCheck {
        if self.0.len() > MAX_TOKEN_LEN {
            return TokenCheck::Forged;
        }
        let Some(body) = self.0.strip_prefix(PREFIX) else {
            return TokenCheck::Forged;
        };
        let mut buf = [0u8; TAGGED_LEN];
        match Base64UrlUnpadded::decode(body, &mut buf) {
            Ok(bytes) if bytes.len() == TAGGED_LEN => {
                let verified = bytes
                    .split_first_chunk::<RANDOM_LEN>()
                    .is_some_and(|(random, tag)| keyring.verify_session_tag(random, tag));
                if verified {
                    TokenCheck::Tagged
                } else {
                    TokenCheck::Forged
                }
            }
            Ok(bytes) if bytes.len() == RANDOM_LEN => TokenCheck::Untagged,
            _ => TokenCheck::Forged,
        }
    }

    /// The token text, to send to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest stored at rest.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
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

    use crate::secret::{Secret, Secrets};

    fn ring(cookie: Vec<Secret>) -> Keyring {
        let secrets = Secrets {
            cookie,
            cipher: vec![Secret::random()],
        };
        Keyring::new(&secrets).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn tokens_are_unique_long_and_hash_stably() {
        let keyring = ring(vec![Secret::random()]);
        let a = SessionToken::generate(&keyring);
        let b = SessionToken::generate(&keyring);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), PREFIX.len() + 64);
        assert!(a.expose().len() <= MAX_TOKEN_LEN);
        assert_eq!(a.hash(), SessionToken::from_client(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(format!("{a:?}"), "SessionToken(***)");
        assert!(!format!("{:?}", a.hash()).contains(a.expose()));
    }

    #[test]
    fn tags_verify_across_rotation_and_forgeries_do_not() {
        let (old, new) = (Secret::random(), Secret::random());
        let before = ring(vec![old.clone()]);
        let token = SessionToken::generate(&before);
        let rotated = ring(vec![new.clone(), old]);
        assert_eq!(token.check(&before), TokenCheck::Tagged);
        assert_eq!(token.check(&rotated), TokenCheck::Tagged);
        assert_eq!(token.check(&ring(vec![new])), TokenCheck::Forged);
        assert_eq!(
            SessionToken::untagged().check(&before),
            TokenCheck::Untagged
        );
        let mut flipped = token.expose().to_owned().into_bytes();
        // The last character holds only tag bits (64 characters, no padding bits).
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = SessionToken::from_client(String::from_utf8_lossy(&flipped));
        for forged in [
            flipped,
            SessionToken::from_client(""),
            SessionToken::from_client("identa_st_"),
            SessionToken::from_client(&token.expose()[PREFIX.len()..]),
            SessionToken::from_client(format!("{}A", token.expose())),
            SessionToken::from_client(format!("{} ", token.expose())),
            SessionToken::from_client("x".repeat(4096)),
        ] {
            assert_eq!(forged.check(&before), TokenCheck::Forged, "{:?}", forged.0);
        }
    }
}
