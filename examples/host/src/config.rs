//! The host's configuration: defaults that make a first run just work, a JSON file
//! (`IDENTA_CONFIG`), and environment variables, which win over the file.
//!
//! | variable | default |
//! |---|---|
//! | `IDENTA_DATABASE_URL` | `sqlite://identa.db?mode=rwc` (a file in the working directory); a `postgres://` URL switches the engine |
//! | `IDENTA_PUBLIC_ADDR` / `IDENTA_ADMIN_ADDR` | `127.0.0.1:4433` / `127.0.0.1:4434` |
//! | `IDENTA_PUBLIC_URL` | `http://<public addr>` |
//! | `IDENTA_UI_URL` | `<public url>/ui` |
//! | `IDENTA_SMTP_URL`, `IDENTA_SMTP_FROM` | none: the logging mailer |
//! | `IDENTA_SECRETS_COOKIE`, `IDENTA_SECRETS_CIPHER` | generated and printed with a warning (comma-separated lists; first signs/encrypts) |
//! | `IDENTA_SCHEMA` | the built-in schema: `email` (identifier, verification, recovery) and `name` |
//! | `IDENTA_ALLOWED_RETURN_URLS` | none (comma-separated) |
//! | `IDENTA_CONFIG` | none: a JSON file with the same keys in lower case without the prefix |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use identa::config::PasswordConfig;
use identa::courier::{LoggingMailer, Mailer};
use identa::http::HttpConfig;
use identa::secret::{Secret, Secrets};
use identa::{Config, Identa, SchemaRegistry, SeaOrmStore};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the host needs to start.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The store URL.
    pub database_url: String,
    /// Where the public API listens.
    pub public_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The public API's URL as browsers see it.
    pub public_url: Option<String>,
    /// The UI's base URL.
    pub ui_url: Option<String>,
    /// An SMTP URL (`smtps://…`, `smtp://…`); none means the logging mailer.
    pub smtp_url: Option<String>,
    /// The sender of emails.
    pub smtp_from: String,
    /// Cookie secrets (none: generated).
    pub cookie_secrets: Vec<String>,
    /// Cipher secrets (none: generated).
    pub cipher_secrets: Vec<String>,
    /// An identity schema file (none: the built-in schema).
    pub schema: Option<PathBuf>,
    /// Allowed `return_to` URLs.
    pub allowed_return_urls: Vec<String>,
    /// Password hashing.
    pub password: PasswordConfig,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://identa.db?mode=rwc".into(),
            public_addr: SocketAddr::from(([127, 0, 0, 1], 4433)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 4434)),
            public_url: None,
            ui_url: None,
            smtp_url: None,
            smtp_from: "identa <no-reply@localhost>".into(),
            cookie_secrets: Vec::new(),
            cipher_secrets: Vec::new(),
            schema: None,
            allowed_return_urls: Vec::new(),
            password: PasswordConfig::default(),
        }
    }
}

/// The schema a first run uses.
pub fn default_schema() -> Value {
    json!({
        "$id": "https://identa.invalid/default.schema.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Person",
        "type": "object",
        "properties": {
            "traits": {
                "type": "object",
                "properties": {
                    "email": {
                        "type": "string",
                        "format": "email",
                        "title": "E-Mail",
                        "maxLength": 320,
                        "ory.sh/kratos": {
                            "credentials": { "password": { "identifier": true } },
                            "verification": { "via": "email" },
                            "recovery": { "via": "email" }
                        }
                    },
                    "name": { "type": "string", "title": "Name", "maxLength": 256 }
                },
                "required": ["email"],
                "additionalProperties": false
            }
        }
    })
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl HostConfig {
    /// Defaults, then the file named by `IDENTA_CONFIG`, then the environment.
    pub fn from_env() -> Result<Self, BoxError> {
        let mut config = Self::default();
        let mut values: Vec<(String, String)> = Vec::new();
        if let Ok(path) = std::env::var("IDENTA_CONFIG") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("IDENTA_CONFIG={path}: {e}"))?;
            let file: serde_json::Map<String, Value> = serde_json::from_str(&text)
                .map_err(|e| format!("IDENTA_CONFIG={path} is not a JSON object: {e}"))?;
            for (key, value) in file {
                let text = match value {
                    Value::String(s) => s,
                    Value::Array(items) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                values.push((key.to_ascii_lowercase(), text));
            }
        }
        for (key, value) in std::env::vars() {
            if let Some(name) = key.strip_prefix("IDENTA_") {
                values.push((name.to_ascii_lowercase(), value));
            }
        }
        for (key, value) in values {
            config.set(&key, &value)?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), BoxError> {
        let addr = |v: &str| -> Result<SocketAddr, BoxError> {
            v.parse()
                .map_err(|e| format!("{key}: `{v}` is not host:port ({e})").into())
        };
        match key {
            "database_url" => self.database_url = value.to_owned(),
            "public_addr" => self.public_addr = addr(value)?,
            "admin_addr" => self.admin_addr = addr(value)?,
            "public_url" => self.public_url = Some(value.to_owned()),
            "ui_url" => self.ui_url = Some(value.to_owned()),
            "smtp_url" => self.smtp_url = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "smtp_from" => self.smtp_from = value.to_owned(),
            "secrets_cookie" => self.cookie_secrets = list(value),
            "secrets_cipher" => self.cipher_secrets = list(value),
            "schema" => self.schema = Some(PathBuf::from(value)),
            "allowed_return_urls" => self.allowed_return_urls = list(value),
            // Other IDENTA_* variables (test settings, …) are not ours.
            _ => {}
        }
        Ok(())
    }

    fn secrets(list: &[String], what: &str) -> Result<Vec<Secret>, BoxError> {
        if list.is_empty() {
            let secret = Secret::random();
            tracing::warn!(
                "IDENTA_SECRETS_{} is not set: using a random {what} secret for this run only \
                 (sessions' CSRF tokens, codes and queued mail will not survive a restart); \
                 set it in production",
                what.to_ascii_uppercase()
            );
            return Ok(vec![secret]);
        }
        list.iter()
            .map(|s| {
                Secret::new(s.as_bytes().to_vec()).map_err(|e| {
                    format!("IDENTA_SECRETS_{}: {e}", what.to_ascii_uppercase()).into()
                })
            })
            .collect()
    }

    /// The engine, the HTTP settings and the mailer this configuration describes.
    pub async fn build(&self) -> Result<(Identa, HttpConfig, Arc<dyn Mailer>), BoxError> {
        let mut schemas = SchemaRegistry::new();
        match &self.schema {
            Some(path) => schemas.add_file("default", path)?,
            None => schemas.add("default", default_schema())?,
        }
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.public_addr));
        let mut config = Config {
            password: self.password.clone(),
            ..Config::default()
        };
        config.flows.public_url = public_url.clone();
        config.flows.allowed_return_urls = self.allowed_return_urls.clone();
        config.secrets = Secrets {
            cookie: Self::secrets(&self.cookie_secrets, "cookie")?,
            cipher: Self::secrets(&self.cipher_secrets, "cipher")?,
        };
        let ui_url = self
            .ui_url
            .clone()
            .unwrap_or_else(|| format!("{}/ui", public_url.trim_end_matches('/')));
        config.flows.allowed_return_urls.push(ui_url.clone());
        let store = SeaOrmStore::connect(&self.database_url).await?;
        let identa = Identa::builder()
            .store(store)
            .schemas(schemas)
            .config(config)
            .build()?;
        let http = HttpConfig {
            default_return_url: format!("{}/dashboard", ui_url.trim_end_matches('/')),
            ui_url,
            ..HttpConfig::default()
        };
        let mailer: Arc<dyn Mailer> = match &self.smtp_url {
            Some(url) => Arc::new(identa::courier::smtp::SmtpMailer::from_url(
                url,
                &self.smtp_from,
            )?),
            None => Arc::new(LoggingMailer::new()),
        };
        Ok((identa, http, mailer))
    }
}
