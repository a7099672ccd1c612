//! What an import brings besides the identity and its password: Kratos's
//! `credentials.totp`, `credentials.lookup_secret` and `credentials.oidc`, as data. The
//! engine checks them and turns them into credentials as identa stores them (the TOTP
//! secret sealed, backup codes as MACs), so nothing here is stored as it came.

use std::fmt;

use chrono::{DateTime, Utc};

/// The credentials an imported identity brings besides a password (none by default).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ImportedCredentials {
    /// A TOTP authenticator, as Kratos stores it: an `otpauth://totp/…` URL.
    pub totp: Option<ImportedTotp>,
    /// Backup codes (Kratos's lookup secrets), used or not; empty for none.
    pub backup_codes: Vec<ImportedBackupCode>,
    /// Accounts at OpenID Connect providers the identity signs in with; empty for none.
    pub oidc: Vec<ImportedOidcAccount>,
}

impl ImportedCredentials {
    /// Whether the import brings none of them.
    pub fn is_empty(&self) -> bool {
        self.totp.is_none() && self.backup_codes.is_empty() && self.oidc.is_empty()
    }
}

impl fmt::Debug for ImportedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedCredentials")
            .field("totp", &self.totp.as_ref().map(|_| "<redacted>"))
            .field("backup_codes", &self.backup_codes.len())
            .field("oidc", &self.oidc)
            .finish()
    }
}

/// A TOTP authenticator's `otpauth://totp/…` URL (Kratos's `totp_url`). It carries the
/// secret: its `Debug` hides it, and identa stores only the secret, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedTotp(String);

impl ImportedTotp {
    /// Wraps an `otpauth://totp/…` URL (checked when the identity is imported).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ImportedTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ImportedTotp(<redacted>)")
    }
}

/// A backup code as Kratos stores it: the code, and when it was used (`None`: unused). Its
/// `Debug` hides the code; identa stores only its MAC.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedBackupCode {
    /// The code (8 characters of `a-z0-9`, Kratos's and identa's format).
    pub code: String,
    /// When it was used; a used code is kept as used and never accepted.
    pub used_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for ImportedBackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedBackupCode")
            .field("code", &"<redacted>")
            .field("used_at", &self.used_at)
            .finish()
    }
}

/// An account at an OpenID Connect provider: the provider's id (as configured in identa)
/// and the account's subject (`sub`). Stored as Kratos does, under the identifier
/// `<provider>:<subject>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedOidcAccount {
    /// The provider's id, as the host configures it (`google`, `github`, …).
    pub provider: String,
    /// The subject the provider knows the user by.
    pub subject: String,
}
