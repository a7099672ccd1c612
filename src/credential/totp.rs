//! TOTP (RFC 6238) as a second factor, with totp-rs: 160-bit secrets, 6 digits, 30-second
//! steps, one step of clock skew either way. A code is accepted once: each acceptance
//! records its step, and a code of that step or an earlier one is refused (replay).
//!
//! Secrets are never stored in the clear: the credential keeps the secret sealed with the
//! cipher secret (XChaCha20-Poly1305, bound to the identity), and a settings flow keeps a
//! pending secret sealed the same way, bound to the flow, until the user confirms it.

use std::fmt;

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Totp};
use uuid::Uuid;

use crate::secret::Keyring;

/// Digits per code.
const DIGITS: u8 = 6;
/// Seconds per step.
const STEP: u64 = 30;
/// Steps of clock skew accepted either way.
const SKEW: u16 = 1;

/// A TOTP secret (20 bytes). Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; 20]);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Why a TOTP secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TOTP: {0}")]
pub struct TotpError(String);

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// A secret from raw bytes (tests, imports).
    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    fn totp(&self, issuer: &str, account: &str) -> Result<Totp, TotpError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(SKEW)
            .with_step_duration(STEP)
            .with_secret(self.0.to_vec())
            .with_issuer(Some(issuer.to_owned()))
            .with_account_name(account.to_owned())
            .build()
            .map_err(|e| TotpError(e.to_string()))
    }

    /// The secret in base32, as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        totp_rs::Secret::from(self.0).to_base32()
    }

    /// The `otpauth://totp/…` URI authenticator apps scan.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        self.totp(issuer, account)?
            .to_url()
            .map_err(|e| TotpError(e.to_string()))
    }

    /// The QR code of the URI, as a PNG data URI (Kratos's `totp_qr` image).
    pub fn qr_data_uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        let png = self
            .totp(issuer, account)?
            .to_qr_base64()
            .map_err(|e| TotpError(e.to_string()))?;
        Ok(format!("data:image/png;base64,{png}"))
    }

    /// The code for `unix_time` (tests and the RFC vectors).
    pub fn code_at(&self, unix_time: u64) -> Result<String, TotpError> {
        Ok(self
            .totp("identa", "check")?
            .generate(unix_time)
            .to_string())
    }

    /// The step `code` matches at `unix_time` (±1 step), if it is later than `after`.
    pub fn accept(&self, code: &str, unix_time: u64, after: Option<u64>) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp("identa", "check").ok()?;
        let step = totp.check(&code, unix_time)?;
        match after {
            Some(last) if step <= last => None,
            _ => Some(step),
        }
    }

    /// The secret of an `otpauth://totp/…` URL (Kratos's `credentials.totp.config.totp_url`),
    /// if its authenticator works as identa's: SHA-1, 6 digits, 30-second steps (what
    /// Kratos's TOTP makes, and the URL's defaults), a 160-bit secret.
    ///
    /// # Errors
    ///
    /// A [`TotpError`] naming what is wrong or different: a malformed URL, or the
    /// algorithm, digits, period or secret length identa does not verify.
    pub fn from_otpauth_url(url: &str) -> Result<Self, TotpError> {
        let totp = Totp::from_url_unchecked(url)
            .map_err(|e| TotpError(format!("not an otpauth://totp/ URL identa can read: {e}")))?;
        let differs = |what: &str, got: String, want: &str| {
            TotpError(format!(
                "the URL's {what} is {got}; identa's TOTP verifies {want} only: have the user enrol the authenticator again after the import"
            ))
        };
        if totp.algorithm() != Algorithm::SHA1 {
            return Err(differs(
                "algorithm",
                format!("{:?}", totp.algorithm()),
                "SHA1",
            ));
        }
        if totp.digits() != DIGITS {
            return Err(differs("digits", totp.digits().to_string(), "6 digits"));
        }
        if totp.step() != STEP {
            return Err(differs(
                "period",
                totp.step().to_string(),
                "30-second periods",
            ));
        }
        let secret: [u8; 20] = totp.secret().as_bytes().try_into().map_err(|_| {
            differs(
                "secret",
                format!("{} bytes long", totp.secret().as_bytes().len()),
                "160-bit (20-byte) secrets",
            )
        })?;
        Ok(Self(secret))
    }

    /// Seals the secret for storage, bound to `context`.
    pub(crate) fn seal(&self, keyring: &Keyring, context: &[u8]) -> Option<String> {
        keyring
            .seal(context, &self.0)
            .ok()
            .map(|sealed| Base64::encode_string(&sealed))
    }

    /// Opens what [`seal`](Self::seal) made.
    pub(crate) fn open(keyring: &Keyring, context: &[u8], sealed: &str) -> Option<Self> {
        let bytes = Base64::decode_vec(sealed).ok()?;
        let plain = keyring.open(context, &bytes).ok()?;
        let secret: [u8; 20] = plain.as_slice().try_into().ok()?;
        Some(Self(secret))
    }
}

/// What a TOTP credential's secret is bound to.
pub(crate) fn credential_context(identity_id: Uuid) -> Vec<u8> {
    let mut ctx = b"identa/totp/identity/".to_vec();
    ctx.extend_from_slice(identity_id.as_bytes());
    ctx
}

/// What a pending (not yet confirmed) secret in a settings flow is bound to.
pub(crate) fn pending_context(flow_id: Uuid) -> Vec<u8> {
    let mut ctx = b"identa/totp/flow/".to_vec();
    ctx.extend_from_slice(flow_id.as_bytes());
    ctx
}

/// A TOTP credential's config: the sealed secret and the last accepted step.
pub(crate) fn credential_config(sealed: &str, last_step: Option<u64>) -> Value {
    json!({ "sealed_secret": sealed, "last_step": last_step })
}

/// The sealed secret and last step of a credential config.
pub(crate) fn read_config(config: &Value) -> Option<(String, Option<u64>)> {
    let sealed = config.get("sealed_secret")?.as_str()?.to_owned();
    Some((sealed, config.get("last_step").and_then(Value::as_u64)))
}

/// The spent-code id of a TOTP step of an identity (see [`super::spent_marker`]).
pub(crate) fn spent_id(identity_id: Uuid, step: u64) -> Uuid {
    super::spent_marker(b"identa/totp/step/", identity_id, &step.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;

    /// RFC 6238 appendix B, SHA-1: secret "12345678901234567890", 8 digits there; the last
    /// 6 digits are what a 6-digit TOTP of the same secret shows.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let secret = TotpSecret::from_bytes(*b"12345678901234567890");
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.code_at(time).unwrap(), &eight[2..], "T = {time}");
        }
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn otpauth_urls_import_with_identas_parameters_only() {
        // As Kratos's TOTP makes them (pquerna/otp: SHA1, 6 digits, 30 s, 20 bytes).
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let kratos = format!(
            "otpauth://totp/Kratos:ada@example.com?algorithm=SHA1&digits=6&issuer=Kratos&period=30&secret={secret}"
        );
        let imported = TotpSecret::from_otpauth_url(&kratos).unwrap();
        assert_eq!(imported, TotpSecret::from_bytes(*b"12345678901234567890"));
        // The defaults are identa's too.
        let bare = format!("otpauth://totp/ada?secret={secret}");
        assert_eq!(TotpSecret::from_otpauth_url(&bare).unwrap(), imported);
        for (url, named) in [
            (
                format!("otpauth://totp/ada?algorithm=SHA256&secret={secret}"),
                "algorithm is SHA256",
            ),
            (
                format!("otpauth://totp/ada?digits=8&secret={secret}"),
                "digits is 8",
            ),
            (
                format!("otpauth://totp/ada?period=60&secret={secret}"),
                "period is 60",
            ),
            (
                "otpauth://totp/ada?secret=GEZDGNBVGY3TQOJQ".to_owned(),
                "10 bytes long",
            ),
            (
                "https://example.com/?secret=GEZDGNBV".to_owned(),
                "not an otpauth://totp/ URL",
            ),
            (
                "otpauth://totp/ada".to_owned(),
                "not an otpauth://totp/ URL",
            ),
        ] {
            let err = TotpSecret::from_otpauth_url(&url).unwrap_err().to_string();
            assert!(err.contains(named), "{url}: {err}");
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[test]
    fn skew_and_replay() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_015;
        let code = secret.code_at(now).unwrap();
        let step = secret.accept(&code, now, None).unwrap();
        assert_eq!(step, now / 30);
        assert_eq!(
            secret.accept(&code, now, Some(step)),
            None,
            "a code works once"
        );
        let previous = secret.code_at(now - 30).unwrap();
        assert!(
            secret.accept(&previous, now, None).is_some(),
            "one step behind is fine"
        );
        let old = secret.code_at(now - 90).unwrap();
        assert_eq!(
            secret.accept(&old, now, None),
            None,
            "three steps behind is not"
        );
        assert_eq!(secret.accept("12345", now, None), None);
        assert_eq!(secret.accept("abcdef", now, None), None);
    }

    #[test]
    fn secrets_are_sealed_and_bound() {
        let keyring = Keyring::new(&Secrets::default()).unwrap();
        let secret = TotpSecret::generate();
        let id = Uuid::new_v4();
        let sealed = secret.seal(&keyring, &credential_context(id)).unwrap();
        assert!(!sealed.contains(&secret.base32()));
        assert_eq!(
            TotpSecret::open(&keyring, &credential_context(id), &sealed),
            Some(secret.clone())
        );
        assert_eq!(
            TotpSecret::open(&keyring, &credential_context(Uuid::new_v4()), &sealed),
            None
        );
        assert!(!format!("{secret:?}").contains(&secret.base32()));
        let uri = secret.otpauth_uri("identa", "ada@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/identa:ada%40example.com?secret="),
            "{uri}"
        );
        assert!(
            secret
                .qr_data_uri("identa", "ada@example.com")
                .unwrap()
                .starts_with("data:image/png;base64,")
        );
    }
}
