//! The engine's secrets and the keys derived from them: MACs that bind tokens to their
//! context (CSRF tokens, logout tokens, one-time codes) and the cipher that seals data at
//! rest (outbox messages). Each purpose gets its own key (HKDF-SHA256), so one secret
//! never signs two kinds of thing. Several secrets may be configured so they can rotate:
//! the first signs and encrypts, every one verifies and decrypts.

use std::fmt;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// A secret from the configuration. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from configured bytes (at least [`MIN_SECRET_BYTES`]).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// A fresh random secret: for tests and first runs. Flows, codes and sealed messages
    /// made with it cannot be read by another process or after a restart.
    pub fn random() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::fill(&mut bytes[..]);
        Self(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Shorter than [`MIN_SECRET_BYTES`].
    #[error(
        "a secret must be at least {MIN_SECRET_BYTES} bytes, got {len}; generate one with `openssl rand -base64 32`"
    )]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// No secret configured for a purpose that needs one.
    #[error("no {0} secret configured")]
    Missing(&'static str),
}

/// The configured secrets. The default is one random secret of each kind, which only
/// suits a single process that may forget its flows on restart; production sets both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// Sign CSRF tokens, logout tokens and one-time codes. First signs, all verify.
    pub cookie: Vec<Secret>,
    /// Encrypt data at rest (outbox messages). First encrypts, all decrypt.
    pub cipher: Vec<Secret>,
}

impl Default for Secrets {
    fn default() -> Self {
        Self {
            cookie: vec![Secret::random()],
            cipher: vec![Secret::random()],
        }
    }
}

/// What a MAC is for; part of the key derivation, so tags never cross purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacPurpose {
    Csrf,
    Logout,
    Code,
    FakeWebauthnCredential,
    Throttle,
    #[cfg(feature = "oidc")]
    OidcState,
    SessionTokenTag,
}

impl MacPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Csrf => b"identa/v1/csrf",
            Self::Logout => b"identa/v1/logout",
            Self::Code => b"identa/v1/one-time-code",
            Self::FakeWebauthnCredential => b"identa/v1/webauthn-fake-credential",
            Self::Throttle => b"identa/v1/throttle-key",
            #[cfg(feature = "oidc")]
            Self::OidcState => b"identa/v1/oidc-state",
            Self::SessionTokenTag => b"identa/v1/session-token-tag",
        }
    }
}

/// A 32-byte MAC tag.
pub(crate) type Tag = [u8; 32];

/// How many bytes of HMAC-SHA256 a session token's tag keeps (128 bits).
pub(crate) const SESSION_TAG_LEN: usize = 16;

/// Keys derived from [`Secrets`], ready to use.
pub(crate) struct Keyring {
    cookie: Vec<Secret>,
    ciphers: Vec<XChaCha20Poly1305>,
    /// One keyed HMAC per cookie secret for session-token tags, derived once: checking a
    /// presented token is on the path of every request, forged ones included.
    session_tags: Vec<Hmac<Sha256>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

fn derive(secret: &Secret, label: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(b"identa"), &secret.0).expand(label, &mut okm);
    okm
}

/// The part of a sealed value that says which format it is in.
const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

impl Keyring {
    pub(crate) fn new(secrets: &Secrets) -> Result<Self, SecretError> {
        if secrets.cookie.is_empty() {
            return Err(SecretError::Missing("cookie"));
        }
        if secrets.cipher.is_empty() {
            return Err(SecretError::Missing("cipher"));
        }
        let ciphers = secrets
            .cipher
            .iter()
            .map(|s| XChaCha20Poly1305::new(&derive(s, b"identa/v1/seal").into()))
            .collect();
        let session_tags = secrets
            .cookie
            .iter()
            .map(|s| {
                let key = derive(s, MacPurpose::SessionTokenTag.label());
                <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable_hmac())
            })
            .collect();
        Ok(Self {
            cookie: secrets.cookie.clone(),
            ciphers,
            session_tags,
        })
    }

    /// The tag of a session token's random part under the current (first) cookie secret:
    /// HMAC-SHA256 truncated to [`SESSION_TAG_LEN`] bytes.
    pub(crate) fn session_tag(&self, random: &[u8]) -> [u8; SESSION_TAG_LEN] {
        let mut tag = [0u8; SESSION_TAG_LEN];
        if let Some(key) = self.session_tags.first() {
            let mut mac = key.clone();
            mac.update(random);
            let full = mac.finalize().into_bytes();
            for (t, f) in tag.iter_mut().zip(full.iter()) {
                *t = *f;
            }
        }
        tag
    }

    /// Whether `tag` is a session token tag of `random` under any configured cookie secret,
    /// compared in constant time (every key is tried, whichever matches).
    pub(crate) fn verify_session_tag(&self, random: &[u8], tag: &[u8]) -> bool {
        let mut ok = false;
        for key in &self.session_tags {
            let mut mac = key.clone();
            mac.update(random);
            ok |= mac.verify_truncated_left(tag).is_ok();
        }
        ok && tag.len() == SESSION_TAG_LEN
    }

    fn mac_with(secret: &Secret, purpose: MacPurpose, parts: &[&[u8]]) -> Tag {
        let key = derive(secret, purpose.label());
        // HMAC accepts keys of any length.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap_or_else(|_| unreachable_hmac());
        for part in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The tag of `parts` under the current (first) cookie secret.
    pub(crate) fn mac(&self, purpose: MacPurpose, parts: &[&[u8]]) -> Tag {
        match self.cookie.first() {
            Some(secret) => Self::mac_with(secret, purpose, parts),
            None => [0u8; 32],
        }
    }

    /// Whether `tag` is the tag of `parts` under any configured cookie secret, compared
    /// in constant time.
    pub(crate) fn verify(&self, purpose: MacPurpose, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for secret in &self.cookie {
            ok |= Self::mac_with(secret, purpose, parts).ct_eq(tag);
        }
        ok.into()
    }

    /// Encrypts `plaintext` bound to `context` (which must be given again to open it).
    pub(crate) fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let cipher = self.ciphers.first().ok_or(SealError)?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let body = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| SealError)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) made, with any configured cipher secret.
    pub(crate) fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (version, rest) = sealed.split_first().ok_or(SealError)?;
        if *version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(SealError);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError)?;
        let nonce = XNonce::from(nonce);
        self.ciphers
            .iter()
            .find_map(|c| {
                c.decrypt(
                    &nonce,
                    Payload {
                        msg: body,
                        aad: context,
                    },
                )
                .ok()
            })
            .ok_or(SealError)
    }
}

/// Lower-case hex, for storing tags as text.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower- or upper-case hex, or `None` if it is not hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cold]
fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC-SHA256 takes keys of every length; this branch cannot run. Fall back to a
    // fixed-key MAC rather than panicking in library code.
    match <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    }
}

/// Sealed data could not be opened: it was made with a secret no longer configured, or it
/// was altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "sealed data could not be decrypted: it was encrypted with a cipher secret that is no longer configured, or altered"
)]
pub struct SealError;

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(cookie: Vec<Secret>, cipher: Vec<Secret>) -> Keyring {
        match Keyring::new(&Secrets { cookie, cipher }) {
            Ok(k) => k,
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn macs_verify_across_rotation_and_not_across_purposes() {
        let (old, new) = (Secret::random(), Secret::random());
        let before = ring(vec![old.clone()], vec![Secret::random()]);
        let tag = before.mac(MacPurpose::Csrf, &[b"cookie", b"flow"]);
        let after = ring(vec![new, old], vec![Secret::random()]);
        assert!(after.verify(MacPurpose::Csrf, &[b"cookie", b"flow"], &tag));
        assert!(!after.verify(MacPurpose::Logout, &[b"cookie", b"flow"], &tag));
        assert!(!after.verify(MacPurpose::Csrf, &[b"cookief", b"low"], &tag));
        let dropped = ring(vec![Secret::random()], vec![Secret::random()]);
        assert!(!dropped.verify(MacPurpose::Csrf, &[b"cookie", b"flow"], &tag));
    }

    #[test]
    fn sealed_data_opens_with_rotated_keys_and_not_when_altered() {
        let (old, new) = (Secret::random(), Secret::random());
        let before = ring(vec![Secret::random()], vec![old.clone()]);
        let sealed = before.seal(b"ctx", b"hello").unwrap_or_default();
        let after = ring(vec![Secret::random()], vec![new, old]);
        assert_eq!(after.open(b"ctx", &sealed), Ok(b"hello".to_vec()));
        assert_eq!(after.open(b"other", &sealed), Err(SealError));
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(after.open(b"ctx", &altered), Err(SealError));
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            Secret::new(vec![0u8; 16]),
            Err(SecretError::TooShort { len: 16 })
        ));
    }
}
