//! The password migration hook a host calls for identities imported with
//! `use_password_migration_hook` (Kratos's `selfservice.methods.password.config.migrate_hook`):
//! its URL (`IDENTA_PASSWORD_MIGRATION_HOOK_URL`, or `password_migration_hook.url` in the
//! JSON file) and the `Authorization` header value it is called with
//! (`IDENTA_PASSWORD_MIGRATION_HOOK_AUTHORIZATION`, never printed), made into an
//! [`HttpPasswordMigration`] on the engine.

use std::time::Duration;

use identa::IdentaBuilder;
use identa::credential::password::migration::{HttpPasswordMigration, printable_url};
use serde_json::Value;

use crate::BoxError;

/// Where the hook is, and how it is called. Default: no hook (an identity awaiting
/// migration is then refused with `password_migration_hook_not_configured`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MigrationHook {
    /// The URL POSTed `{"identifier", "password"}`; `https://` outside this machine (it
    /// receives passwords in the clear).
    pub url: Option<String>,
    /// The `Authorization` header value sent with every call (e.g. `Bearer …`).
    pub authorization: Option<String>,
    /// How long a call may take. Default 5 s.
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for MigrationHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationHook")
            .field("url", &self.url.as_deref().map(printable_url))
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MigrationHook {
    /// Takes `key` (lower case, without `IDENTA_`) if it is one of the hook's; false
    /// otherwise.
    ///
    /// # Errors
    ///
    /// A value that cannot be read, naming the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, BoxError> {
        match key {
            "password_migration_hook_url" => {
                self.url = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "password_migration_hook_authorization" => {
                self.authorization = Some(value.to_owned()).filter(|v| !v.is_empty());
            }
            "password_migration_hook_timeout_ms" => {
                let ms: u64 = value.parse().map_err(|e| {
                    format!("password_migration_hook_timeout_ms: `{value}` is not a number of milliseconds ({e})")
                })?;
                self.timeout = Some(Duration::from_millis(ms));
            }
            // The JSON file's object: {"url": …, "authorization": …, "timeout_ms": …}.
            "password_migration_hook" => {
                let object: serde_json::Map<String, Value> = serde_json::from_str(value)
                    .map_err(|_| {
                        "password_migration_hook: use an object such as {\"url\": \"https://old.example/migrate\"}"
                    })?;
                for (field, v) in object {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if !self.set(&format!("password_migration_hook_{field}"), &text)? {
                        return Err(format!(
                            "password_migration_hook.{field} is not a setting: use url, authorization or timeout_ms"
                        )
                        .into());
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `builder` with the hook, when a URL is configured.
    ///
    /// # Errors
    ///
    /// A URL that is not `http(s)://`, or `http://` to another machine (the hook gets
    /// passwords: they must not cross a network in the clear).
    pub fn apply(&self, builder: IdentaBuilder) -> Result<IdentaBuilder, BoxError> {
        let Some(url) = &self.url else {
            return Ok(builder);
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            format!("IDENTA_PASSWORD_MIGRATION_HOOK_URL is not a URL ({e}); give one such as https://old.example/migrate")
        })?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(format!(
                    "IDENTA_PASSWORD_MIGRATION_HOOK_URL `{}`: the hook receives passwords, so use https:// (plain http:// only to this machine)",
                    printable_url(url)
                )
                .into());
            }
        }
        let mut hook = HttpPasswordMigration::with_timeout(
            url.clone(),
            self.timeout.unwrap_or(Duration::from_secs(5)),
        )?;
        if let Some(value) = &self.authorization {
            hook = hook.authorization(value.clone());
        }
        Ok(builder.password_migration(hook))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use identa::credential::password::Password;
    use identa::identity::{
        AddressVia, CredentialType, ImportedAddress, NewIdentity, StoredPassword,
        VerificationStatus,
    };
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use crate::HostConfig;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_hook_comes_from_the_environment_or_the_file_and_its_authorization_is_never_shown() {
        let config = HostConfig::from_sources(vars(&[
            (
                "IDENTA_PASSWORD_MIGRATION_HOOK_URL",
                "https://old.example/migrate",
            ),
            (
                "IDENTA_PASSWORD_MIGRATION_HOOK_AUTHORIZATION",
                "Bearer hook-secret-value",
            ),
        ]))
        .unwrap();
        let hook = &config.password_migration_hook;
        assert_eq!(hook.url.as_deref(), Some("https://old.example/migrate"));
        assert_eq!(
            hook.authorization.as_deref(),
            Some("Bearer hook-secret-value")
        );
        assert!(!format!("{config:?}").contains("hook-secret-value"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("identa.json");
        std::fs::write(
            &file,
            r#"{"password_migration_hook": {"url": "https://old.example/from-file", "timeout_ms": 1500}}"#,
        )
        .unwrap();
        let config =
            HostConfig::from_sources(vars(&[("IDENTA_CONFIG", file.to_str().unwrap())])).unwrap();
        let hook = &config.password_migration_hook;
        assert_eq!(hook.url.as_deref(), Some("https://old.example/from-file"));
        assert_eq!(hook.timeout, Some(std::time::Duration::from_millis(1500)));

        std::fs::write(
            &file,
            r#"{"password_migration_hook": {"uri": "https://x"}}"#,
        )
        .unwrap();
        let err = HostConfig::from_sources(vars(&[("IDENTA_CONFIG", file.to_str().unwrap())]))
            .unwrap_err();
        assert!(
            err.to_string().contains("password_migration_hook.uri"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn plain_http_to_another_machine_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HostConfig {
            database_url: "sqlite::memory:".into(),
            secrets_file: Some(dir.path().join("secrets.json")),
            ..HostConfig::default()
        };
        config.password_migration_hook.url = Some("http://old.example/migrate".into());
        let Err(err) = config.build().await else {
            panic!("a hook over plain http to another machine was accepted");
        };
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[tokio::test]
    async fn a_credential_in_the_hook_url_is_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HostConfig {
            database_url: "sqlite::memory:".into(),
            secrets_file: Some(dir.path().join("secrets.json")),
            ..HostConfig::default()
        };
        config.password_migration_hook.url =
            Some("http://u:secret@old.example/migrate?token=secret".into());
        let hook = format!("{:?}", config.password_migration_hook);
        assert!(hook.contains("http://old.example/migrate"), "{hook}");
        assert!(!hook.contains("secret"), "{hook}");
        let Err(err) = config.build().await else {
            panic!("a hook over plain http to another machine was accepted");
        };
        let shown = err.to_string();
        assert!(shown.contains("http://old.example/migrate"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    /// A local hook answering Kratos's protocol for one (identifier, password), recording
    /// each request.
    async fn old_system(
        identifier: &'static str,
        password: &'static str,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/migrate", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let text = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    let complete = text.split_once("\r\n\r\n").is_some_and(|(_, body)| {
                        serde_json::from_str::<serde_json::Value>(body).is_ok()
                    });
                    if n == 0 || complete {
                        break text;
                    }
                };
                log.lock().unwrap().push(text.clone());
                let body: serde_json::Value = text
                    .split_once("\r\n\r\n")
                    .and_then(|(_, b)| serde_json::from_str(b).ok())
                    .unwrap_or_default();
                let matched = body == json!({ "identifier": identifier, "password": password });
                let answer = if matched {
                    r#"{"status":"password_match"}"#
                } else {
                    r#"{"status":"no"}"#
                };
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(res.as_bytes()).await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn a_host_with_a_hook_url_migrates_an_imported_password() {
        let (url, seen) = old_system("ada@example.com", "Grüße aus Köln 2024").await;
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig::from_sources(vars(&[
            ("IDENTA_DATABASE_URL", "sqlite::memory:"),
            (
                "IDENTA_SECRETS_FILE",
                dir.path().join("s.json").to_str().unwrap(),
            ),
            ("IDENTA_PASSWORD_MIGRATION_HOOK_URL", &url),
            (
                "IDENTA_PASSWORD_MIGRATION_HOOK_AUTHORIZATION",
                "Bearer hook-secret-value",
            ),
        ]))
        .unwrap();
        let host = crate::Host::build(&config).await.unwrap();
        let ada = host
            .identa
            .import_identity_awaiting_migration(NewIdentity {
                traits: json!({ "email": "ada@example.com" }),
                // Verified in the old system: this host signs in only verified addresses.
                verifiable_addresses: vec![ImportedAddress {
                    value: "ada@example.com".into(),
                    via: AddressVia::Email,
                    status: VerificationStatus::Completed,
                    verified_at: None,
                }],
                ..NewIdentity::default()
            })
            .await
            .unwrap();
        let wrong = host
            .identa
            .login(
                "ada@example.com",
                &Password::new("Grüße aus Köln 2023"),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(wrong.kind(), identa::ErrorKind::InvalidCredentials);
        host.identa
            .login(
                "ada@example.com",
                &Password::new("Grüße aus Köln 2024"),
                None,
            )
            .await
            .unwrap();
        let stored = host.identa.identity(ada.id).await.unwrap();
        let stored = stored.credential(CredentialType::Password).unwrap();
        assert!(
            matches!(stored.stored_password(), Some(StoredPassword::Hashed(h)) if h.starts_with("$argon2id$"))
        );
        host.identa
            .login(
                "ada@example.com",
                &Password::new("Grüße aus Köln 2024"),
                None,
            )
            .await
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "asked twice, then never again");
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains("authorization: bearer hook-secret-value"),
            "{}",
            seen[0]
        );
    }
}
