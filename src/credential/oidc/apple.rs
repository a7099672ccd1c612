//! Sign in with Apple's client secret: not a fixed string but an ES256 JWT the developer
//! signs with the private key Apple issued (a P-256 key in a PKCS#8 PEM file), naming the
//! team (`iss`), the Services ID (`sub`, the client id), Apple (`aud`) and a short life
//! (`iat`, `exp`), with the key's id in the header (`kid`). One is minted for each token
//! request, by identa's clock, valid for five minutes (as Kratos's `provider_apple.go`;
//! Apple accepts at most six months).
//!
//! The signature is the `p256` crate's ECDSA (RustCrypto; the `openidconnect` crate builds
//! it already); the key is parsed by its PKCS#8 decoder. What is written here is only the
//! compact serialization around it: two base64url JSON objects and the fixed-size `r||s`
//! signature that JWS prescribes for ES256 (RFC 7518, section 3.4).

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;

/// The audience of every client secret: Apple, whatever its endpoints' URLs.
pub(crate) const AUDIENCE: &str = "https://appleid.apple.com";

/// How long a minted client secret is valid (Kratos: five minutes).
const LIFETIME: chrono::Duration = chrono::Duration::minutes(5);

/// The key a Sign in with Apple client signs its client secrets with (Kratos's
/// `apple_team_id`, `apple_private_key_id` and `apple_private_key`). Its `Debug` hides
/// the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct AppleKey {
    team_id: String,
    key_id: String,
    /// The private key, decoded once when the key is made; what was wrong with the PEM
    /// text if it is not a P-256 key in PKCS#8 PEM (refused when the providers are
    /// checked, before identa is built).
    private_key: Result<SigningKey, String>,
}

impl fmt::Debug for AppleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleKey")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl AppleKey {
    /// The key of the developer account's team `team_id` (the Team ID, ten characters),
    /// with its Key ID `key_id` and the private key, the PKCS#8 PEM text of the `.p8` file
    /// Apple lets you download once (`-----BEGIN PRIVATE KEY-----`).
    pub fn new(
        team_id: impl Into<String>,
        key_id: impl Into<String>,
        private_key_pem: impl Into<String>,
    ) -> Self {
        Self {
            team_id: team_id.into(),
            key_id: key_id.into(),
            private_key: decode(&private_key_pem.into()),
        }
    }

    /// The team id (the client secret's `iss`).
    pub fn team_id(&self) -> &str {
        &self.team_id
    }

    /// The key id (the client secret's `kid`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks what can be checked before Apple is asked: a team id, a key id, and a
    /// private key that is a P-256 key in PKCS#8 PEM.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.team_id.trim().is_empty() {
            return Err("the Apple team id (apple_team_id) is empty".into());
        }
        if self.key_id.trim().is_empty() {
            return Err("the Apple key id (apple_private_key_id) is empty".into());
        }
        self.signing_key().map(drop)
    }

    fn signing_key(&self) -> Result<&SigningKey, String> {
        self.private_key.as_ref().map_err(Clone::clone)
    }

    /// A client secret for the Services ID `client_id`, issued at `now`.
    pub(crate) fn client_secret(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let key = self.signing_key()?;
        let header = json!({ "alg": "ES256", "kid": self.key_id });
        let claims = json!({
            "iss": self.team_id,
            "iat": now.timestamp(),
            "exp": (now + LIFETIME).timestamp(),
            "aud": AUDIENCE,
            "sub": client_id,
        });
        let input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let signature: Signature = key.sign(input.as_bytes());
        Ok(format!(
            "{input}.{}",
            Base64UrlUnpadded::encode_string(&signature.to_bytes())
        ))
    }
}

/// The private key of a `.p8` file's PEM text, or what is wrong with it.
fn decode(pem: &str) -> Result<SigningKey, String> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        format!(
            "the Apple private key (apple_private_key) is not a P-256 private key in PKCS#8 PEM ({e}); give the whole .p8 file Apple issued, `-----BEGIN PRIVATE KEY-----` to `-----END PRIVATE KEY-----`"
        )
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    /// A P-256 key made for these tests only.
    pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOSE0x4jW8Bo9jJep
jFomTQ89Q0ae3AsLrFohuRvZ1XChRANCAATZEZ5iJgmZBRnyXOvw+MLkfkxcooAe
9eWQnHdo4AxwLVeDHxikWwmsd6VkHIHxCj5e5tCotR4hcig3YC+3rW35
-----END PRIVATE KEY-----
";

    fn part(b64: &str) -> serde_json::Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(b64).unwrap()).unwrap()
    }

    #[test]
    fn the_client_secret_is_an_es256_jwt_apple_can_check() {
        let key = AppleKey::new("TEAM123456", "KEY1234567", TEST_KEY);
        assert_eq!(key.check(), Ok(()));
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let jwt = key.client_secret("com.example.web", now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            part(parts[0]),
            json!({ "alg": "ES256", "kid": "KEY1234567" })
        );
        assert_eq!(
            part(parts[1]),
            json!({ "iss": "TEAM123456", "sub": "com.example.web",
                    "aud": "https://appleid.apple.com",
                    "iat": 1_800_000_000, "exp": 1_800_000_300 })
        );
        let signature = Base64UrlUnpadded::decode_vec(parts[2]).unwrap();
        assert_eq!(signature.len(), 64, "JWS's r||s, not DER");
        let public = VerifyingKey::from(key.signing_key().unwrap());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(
                signed.as_bytes(),
                &Signature::from_slice(&signature).unwrap(),
            )
            .unwrap();
        assert!(
            !format!("{key:?}").contains("MIGHAgEA"),
            "the key is not shown"
        );
    }

    #[test]
    fn a_wrong_key_is_refused_saying_what_to_give() {
        for pem in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            let err = AppleKey::new("T", "K", pem).check().unwrap_err();
            assert!(err.contains("apple_private_key"), "{err}");
            assert!(err.contains("PKCS#8 PEM"), "{err}");
        }
        let err = AppleKey::new("", "K", TEST_KEY).check().unwrap_err();
        assert!(err.contains("apple_team_id"), "{err}");
        let err = AppleKey::new("T", " ", TEST_KEY).check().unwrap_err();
        assert!(err.contains("apple_private_key_id"), "{err}");
    }
}
