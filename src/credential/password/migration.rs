//! The password migration hook (Kratos's `use_password_migration_hook`): an identity
//! imported without a hash proves its first password sign-in through the system it
//! leaves. The host provides a [`PasswordMigration`]; with feature `migration-hook`,
//! [`HttpPasswordMigration`] calls a URL as Kratos's `migrate_hook` does.
//!
//! ```text
//! imported, AwaitingMigration ──sign-in──▶ hook: Match ──▶ Hashed(argon2id), session
//!                                 │               (one commit; the hook is never
//!                                 │                asked again for this identity)
//!                                 ├─────▶ hook: NoMatch ──▶ 4000006, as a wrong password
//!                                 └─────▶ hook down ──▶ password_migration_unavailable,
//!                                                       nothing changes
//! ```

use std::fmt;

use async_trait::async_trait;
use uuid::Uuid;

use super::Password;

/// What the old system answered about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is the user's: the sign-in succeeds and identa stores its own hash.
    Match,
    /// It is not: the sign-in is refused as a wrong password is (4000006).
    NoMatch,
}

/// Why a migration check gave no verdict. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The hook could not be reached, timed out, or answered something it should not (a
    /// status other than 200 or 403): nothing changed; the user may try again later.
    #[error(
        "the password migration hook could not be reached or answered improperly ({0}); nothing changed: check the hook, then sign in again"
    )]
    Unavailable(String),
    /// An identity awaits migration, but no hook is set: the engine has no
    /// [`IdentaBuilder::password_migration`](crate::IdentaBuilder::password_migration).
    #[error(
        "this identity's password awaits migration, but no password migration hook is configured: set IdentaBuilder::password_migration (hosts: IDENTA_PASSWORD_MIGRATION_HOOK_URL)"
    )]
    NotConfigured,
}

/// The host's check of a password against the system it leaves.
///
/// identa calls it only for an identity whose password credential awaits migration
/// ([`crate::identity::StoredPassword::AwaitingMigration`]), after the sign-in was
/// admitted by throttling, at most once per successful migration: on
/// [`Verdict::Match`] the password is hashed with argon2id and stored in the same commit
/// as the session, and the hook is never asked about that identity again.
///
/// Implementations MUST NOT log the password, SHOULD answer within a few seconds (the
/// sign-in waits), and SHOULD return [`MigrationError::Unavailable`] rather than
/// [`Verdict::NoMatch`] when they could not ask (a wrong answer counts against
/// throttling, an unavailable one does not).
#[async_trait]
pub trait PasswordMigration: Send + Sync {
    /// Whether `password`, typed with `identifier`, is the password of `identity_id` in
    /// the old system.
    async fn verify(
        &self,
        identity_id: Uuid,
        identifier: &str,
        password: &Password,
    ) -> Result<Verdict, MigrationError>;
}

impl fmt::Debug for dyn PasswordMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordMigration")
    }
}

#[cfg(feature = "migration-hook")]
pub use http::{HttpPasswordMigration, printable_url};

#[cfg(feature = "migration-hook")]
mod http {
    use std::time::Duration;

    use async_trait::async_trait;
    use uuid::Uuid;

    use super::{MigrationError, PasswordMigration, Verdict};
    use crate::credential::password::Password;

    /// The most of an answer read (Kratos reads 1 KiB).
    const MAX_ANSWER_BYTES: usize = 1024;

    /// Kratos's password migration web hook: `POST {"identifier", "password"}` as JSON to a
    /// URL. A 200 answer whose JSON `status` is `password_match` is a match; a 200 with
    /// anything else, or a 403, is no match; any other status, a redirect (never
    /// followed: the password goes nowhere else), a timeout (default 5 s) or a failed
    /// connection is [`MigrationError::Unavailable`]. Kratos answers the same way (its
    /// 502 for the last group).
    ///
    /// The hook receives passwords in the clear: use an `https://` URL and an
    /// authorization header ([`authorization`](Self::authorization)).
    pub struct HttpPasswordMigration {
        client: reqwest::Client,
        url: String,
        authorization: Option<String>,
    }

    impl std::fmt::Debug for HttpPasswordMigration {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HttpPasswordMigration")
                .field("url", &printable_url(&self.url))
                .field(
                    "authorization",
                    &self.authorization.as_ref().map(|_| "<redacted>"),
                )
                .finish_non_exhaustive()
        }
    }

    /// `url` as it may be printed: scheme, host, port and path only. A user name and
    /// password, a query (`?token=…`) or a fragment can carry a credential, so they are
    /// left out; text that is not a URL is not shown at all.
    #[must_use]
    pub fn printable_url(url: &str) -> String {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return "<not a URL>".to_owned();
        };
        let host = parsed.host_str().unwrap_or_default();
        match parsed.port() {
            Some(port) => format!("{}://{host}:{port}{}", parsed.scheme(), parsed.path()),
            None => format!("{}://{host}{}", parsed.scheme(), parsed.path()),
        }
    }

    impl HttpPasswordMigration {
        /// A hook at `url`, answering within 5 seconds.
        ///
        /// # Errors
        ///
        /// [`MigrationError::Unavailable`] if no HTTP client can be built (no TLS roots).
        pub fn new(url: impl Into<String>) -> Result<Self, MigrationError> {
            Self::with_timeout(url, Duration::from_secs(5))
        }

        /// A hook at `url`, answering within `timeout`.
        ///
        /// # Errors
        ///
        /// As for [`new`](Self::new).
        pub fn with_timeout(
            url: impl Into<String>,
            timeout: Duration,
        ) -> Result<Self, MigrationError> {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("identa/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| MigrationError::Unavailable(e.to_string()))?;
            Ok(Self {
                client,
                url: url.into(),
                authorization: None,
            })
        }

        /// Sends `value` as the `Authorization` header of every call (e.g.
        /// `Bearer …`). Never printed.
        #[must_use]
        pub fn authorization(mut self, value: impl Into<String>) -> Self {
            self.authorization = Some(value.into());
            self
        }
    }

    #[async_trait]
    impl PasswordMigration for HttpPasswordMigration {
        async fn verify(
            &self,
            _identity_id: Uuid,
            identifier: &str,
            password: &Password,
        ) -> Result<Verdict, MigrationError> {
            let body = serde_json::json!({
                "identifier": identifier,
                "password": password.expose(),
            });
            let mut req = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(value) = &self.authorization {
                req = req.header("authorization", value);
            }
            let mut res = req
                .send()
                .await
                .map_err(|e| MigrationError::Unavailable(e.without_url().to_string()))?;
            match res.status().as_u16() {
                200 => {}
                403 => return Ok(Verdict::NoMatch),
                other => {
                    return Err(MigrationError::Unavailable(format!(
                        "the hook answered status {other}"
                    )));
                }
            }
            let mut answer = Vec::new();
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| MigrationError::Unavailable(e.without_url().to_string()))?
            {
                answer.extend_from_slice(&chunk);
                if answer.len() > MAX_ANSWER_BYTES {
                    return Ok(Verdict::NoMatch);
                }
            }
            let status = serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned));
            Ok(match status.as_deref() {
                Some("password_match") => Verdict::Match,
                _ => Verdict::NoMatch,
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{HttpPasswordMigration, printable_url};

        #[test]
        fn a_credential_in_the_hook_url_is_never_printed() {
            let url = "https://u:secret@old.example:8443/migrate?token=secret#secret";
            assert_eq!(printable_url(url), "https://old.example:8443/migrate");
            let hook = HttpPasswordMigration::new(url).unwrap();
            let shown = format!("{hook:?}");
            assert!(!shown.contains("secret"), "{shown}");
            assert!(
                shown.contains("https://old.example:8443/migrate"),
                "{shown}"
            );
            assert_eq!(printable_url("secret"), "<not a URL>");
        }
    }
}
