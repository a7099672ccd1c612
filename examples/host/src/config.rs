//! The host's configuration: defaults that make a first run just work, a JSON file
//! (`IDENTA_CONFIG`), and environment variables, which win over the file.
//!
//! | variable | default |
//! |---|---|
//! | `IDENTA_DATABASE_URL` | `sqlite://identa.db?mode=rwc` (a file in the working directory); a `postgres://` URL switches the engine |
//! | `IDENTA_SQLITE_SYNCHRONOUS` | `full`: every commit synced to disk; `normal` is faster but may lose the last commits on a power failure or OS crash (not on an app crash) |
//! | `IDENTA_PUBLIC_ADDR` / `IDENTA_ADMIN_ADDR` | `127.0.0.1:4433` / `127.0.0.1:4434` |
//! | `IDENTA_ADMIN_TOKEN` | none: the admin API answers this machine only, and the host refuses to start with a non-loopback `IDENTA_ADMIN_ADDR`; else the bearer tokens it accepts (comma-separated for rotation, each at least 32 bytes; never printed) |
//! | `IDENTA_PUBLIC_URL` | `http://localhost:<port>` on a loopback address (WebAuthn needs a domain), else `http://<public addr>` |
//! | `IDENTA_UI_URL` | `<public url>/ui` |
//! | `IDENTA_SMTP_URL`, `IDENTA_SMTP_FROM` | none: the logging mailer |
//! | `IDENTA_SECRETS_COOKIE`, `IDENTA_SECRETS_CIPHER` | development secrets generated into `IDENTA_SECRETS_FILE` (`identa-secrets.json`, mode 0600) with a warning; never printed (comma-separated lists; first signs/encrypts). Set both or neither; a secrets file others may read is refused |
//! | `IDENTA_SCHEMA` | the built-in schema: `email` (identifier, verification, recovery) and `name` |
//! | `IDENTA_ALLOWED_RETURN_URLS` | none (comma-separated) |
//! | `IDENTA_WEBAUTHN_RP_ID` | the public URL's domain; `localhost` when it is an IP address (security keys and passkeys need a domain) |
//! | `IDENTA_WEBAUTHN_ORIGINS` | the origins of the public and UI URLs, with `127.0.0.1` read as `localhost` (comma-separated) |
//! | `IDENTA_REGISTRATION_ENUMERATION_SAFE` | `true`: a sign-up with a taken email address is answered as a new one, creates nothing and mails the owner; password registration then signs no one in (the user verifies the address, then signs in: until then sign-in is refused as a wrong password is), while a provider sign-up signs in when the provider vouches for every address and verification stays on. `false`: refused with 4000007, and registration signs the new user in |
//! | `IDENTA_LIMITS` | `on`: throttling with identa's default limits; `off` turns it off (load tests, conformance runs from one address) and is warned about at start-up |
//! | `IDENTA_LIMITS_<NAME>` | identa's default for that limit; `<max>/<window>`, e.g. `IDENTA_LIMITS_LOGIN_ATTEMPTS_PER_IP=100/1m` (names: the fields of `identa::throttle::Limits`) |
//! | `IDENTA_TRUSTED_PROXIES` | none: the client address is the TCP peer's. Else the reverse proxies (IP addresses and CIDR ranges, comma-separated) whose `X-Forwarded-For` the public API believes |
//! | `IDENTA_OIDC_PROVIDERS` | none: no sign-in with OpenID Connect. Else a JSON array of Kratos-shaped providers (`oidc_providers` in the file; see [`HostProvider`]): `id`, `provider` (`generic`, `google`, `microsoft`, `github`, `apple`), `client_id`, the client secret as `client_secret`, `client_secret_file` (a file's first line) or `client_secret_env` (an environment variable's name; never printed), `issuer_url` (generic; GitHub Enterprise Server), `github_api_url`, `microsoft_tenant`, `apple_team_id`, `apple_private_key_id`, `apple_private_key` (never printed), `additional_id_token_audiences`, `scope`, `label`, `claims_source` |
//! | `IDENTA_CONFIG` | none: a JSON file with the same keys in lower case without the prefix |
//! | `IDENTA_PASSWORD_MIGRATION_HOOK_URL` | none: identities imported with `use_password_migration_hook` cannot sign in with a password. Else the URL POSTed `{"identifier","password"}` at their first sign-in, as Kratos's `migrate_hook` (`https://`, or `http://` to this machine only; in the file also `"password_migration_hook": {"url": …}`) |
//! | `IDENTA_PASSWORD_MIGRATION_HOOK_AUTHORIZATION` | none: the `Authorization` header value sent to the hook (never printed) |
//! | `IDENTA_PASSWORD_MIGRATION_HOOK_TIMEOUT_MS` | `5000` |
//!
//! The client address that per-address limits count is the TCP peer's, unless the peer is
//! one of `IDENTA_TRUSTED_PROXIES`: then it is the right-most address in `X-Forwarded-For`
//! that is not itself a trusted proxy (see [`TrustedProxies`]). Behind a reverse proxy
//! without it, every client shares the proxy's address and its limits. The admin API
//! always uses the TCP peer (its loopback check must not follow a header).
//!
//! What an operator must know about a configuration is logged as a warning at start-up
//! and listed by [`HostConfig::warnings`] ([`StartupWarning`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use identa::courier::{LoggingMailer, Mailer};
use identa::credential::password::PasswordConfig;
use identa::credential::webauthn::RelyingParty;
use identa::flow::{AfterRegistration, DuplicateRegistration, UnverifiedSignIn};
use identa::http::{AdminAuth, AdminToken, HttpConfig};
use identa::identity::SchemaRegistry;
use identa::store::{SeaOrmStore, SqliteDurability, StoreOptions};
use identa::{Config, Identa, Secret, Secrets};
use serde_json::{Value, json};

use crate::BoxError;
use crate::limits::{HostLimits, Throttling};
use crate::migration::MigrationHook;
use crate::oidc::HostProvider;
use crate::proxy::TrustedProxies;

/// Something about a configuration that an operator must know when the host starts:
/// logged as a warning by [`HostConfig::build`], listed by [`HostConfig::warnings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartupWarning {
    /// `IDENTA_LIMITS=off`: nothing is throttled.
    ThrottlingOff,
}

impl std::fmt::Display for StartupWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ThrottlingOff => f.write_str(
                "IDENTA_LIMITS=off: throttling is off; logins, codes and sign-ups are not limited (only for load tests and conformance runs)",
            ),
        }
    }
}

/// Everything the host needs to start. Its `Debug` leaves out secrets and tokens.
#[derive(Clone)]
pub struct HostConfig {
    /// The store URL.
    pub database_url: String,
    /// When a commit to a SQLite file is on disk. Default: `Full`.
    pub sqlite_synchronous: SqliteDurability,
    /// Where the public API listens.
    pub public_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The bearer tokens the admin API accepts (`IDENTA_ADMIN_TOKEN`); none: it answers
    /// loopback clients only, and [`HostConfig::build`] refuses a non-loopback
    /// `admin_addr`.
    pub admin_tokens: Vec<AdminToken>,
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
    /// Where development secrets are kept when none are configured (created on first run,
    /// readable only by the owner), so a restart keeps flows, codes and queued mail.
    /// `None`: random secrets for this run only. Default: `identa-secrets.json`.
    pub secrets_file: Option<PathBuf>,
    /// The WebAuthn relying party id (none: from the public URL).
    pub webauthn_rp_id: Option<String>,
    /// The origins WebAuthn ceremonies may come from (none: the public and UI URLs').
    pub webauthn_origins: Vec<String>,
    /// How a sign-up with a taken address is answered. Default:
    /// [`DuplicateRegistration::AnswerAsNew`], which also means password registration
    /// signs no one in (a provider sign-up the provider vouches for entirely does:
    /// `AfterProviderRegistration::IssueSessionWhenVouched`) and sign-in waits for a
    /// verified address (refused before as a wrong password is,
    /// [`UnverifiedSignIn::RefuseAsWrongCredentials`]); [`DuplicateRegistration::Refuse`]
    /// refuses it, signs new users in and lets unverified accounts sign in.
    pub duplicate_registration: DuplicateRegistration,
    /// Throttling (`IDENTA_LIMITS`, `IDENTA_LIMITS_*`): on with identa's defaults.
    pub limits: HostLimits,
    /// The reverse proxies whose `X-Forwarded-For` the public API believes
    /// (`IDENTA_TRUSTED_PROXIES`). Default: none, the client address is the TCP peer's.
    pub trusted_proxies: TrustedProxies,
    /// The password migration hook (`IDENTA_PASSWORD_MIGRATION_HOOK_*`). Default: none.
    pub password_migration_hook: MigrationHook,
    /// The OpenID Connect providers (`IDENTA_OIDC_PROVIDERS`, `oidc_providers`). Default:
    /// none.
    pub oidc_providers: Vec<HostProvider>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://identa.db?mode=rwc".into(),
            sqlite_synchronous: SqliteDurability::Full,
            public_addr: SocketAddr::from(([127, 0, 0, 1], 4433)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 4434)),
            admin_tokens: Vec::new(),
            public_url: None,
            ui_url: None,
            smtp_url: None,
            smtp_from: "identa <no-reply@localhost>".into(),
            cookie_secrets: Vec::new(),
            cipher_secrets: Vec::new(),
            schema: None,
            allowed_return_urls: Vec::new(),
            password: PasswordConfig::default(),
            secrets_file: Some(PathBuf::from("identa-secrets.json")),
            webauthn_rp_id: None,
            webauthn_origins: Vec::new(),
            duplicate_registration: DuplicateRegistration::AnswerAsNew,
            limits: HostLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            password_migration_hook: MigrationHook::default(),
            oidc_providers: Vec::new(),
        }
    }
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |list: usize| format!("<{list} redacted>");
        f.debug_struct("HostConfig")
            .field("database_url", &self.database_url)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("public_addr", &self.public_addr)
            .field("admin_addr", &self.admin_addr)
            .field("admin_tokens", &redacted(self.admin_tokens.len()))
            .field("public_url", &self.public_url)
            .field("ui_url", &self.ui_url)
            .field("smtp_from", &self.smtp_from)
            .field("cookie_secrets", &redacted(self.cookie_secrets.len()))
            .field("cipher_secrets", &redacted(self.cipher_secrets.len()))
            .field("schema", &self.schema)
            .field("allowed_return_urls", &self.allowed_return_urls)
            .field("secrets_file", &self.secrets_file)
            .field("webauthn_rp_id", &self.webauthn_rp_id)
            .field("webauthn_origins", &self.webauthn_origins)
            // An SMTP URL may carry a password.
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password)
            .field("duplicate_registration", &self.duplicate_registration)
            .field("limits", &self.limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("password_migration_hook", &self.password_migration_hook)
            .field("oidc_providers", &self.oidc_providers)
            .finish()
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
        Self::from_sources(std::env::vars())
    }

    /// Defaults, then the file named by `IDENTA_CONFIG` in `vars`, then `vars` themselves
    /// (`IDENTA_*` names; others are ignored).
    pub fn from_sources(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, BoxError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut config = Self::default();
        let mut values: Vec<(String, String)> = Vec::new();
        if let Some((_, path)) = vars.iter().find(|(k, _)| k == "IDENTA_CONFIG") {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("IDENTA_CONFIG={path}: {e}"))?;
            let file: serde_json::Map<String, Value> = serde_json::from_str(&text)
                .map_err(|e| format!("IDENTA_CONFIG={path} is not a JSON object: {e}"))?;
            for (key, value) in file {
                let text = match value {
                    // A list of objects, kept as JSON.
                    Value::Array(items) if key.eq_ignore_ascii_case("oidc_providers") => {
                        Value::Array(items).to_string()
                    }
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
        for (key, value) in &vars {
            if let Some(name) = key.strip_prefix("IDENTA_") {
                values.push((name.to_ascii_lowercase(), value.clone()));
            }
        }
        let env = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        for (key, value) in values {
            match key.as_str() {
                "oidc_providers" => config.oidc_providers = crate::oidc::parse(&value, env)?,
                _ => config.set(&key, &value)?,
            }
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), BoxError> {
        if self.limits.set(key, value)? || self.password_migration_hook.set(key, value)? {
            return Ok(());
        }
        let addr = |v: &str| -> Result<SocketAddr, BoxError> {
            v.parse()
                .map_err(|e| format!("{key}: `{v}` is not host:port ({e})").into())
        };
        match key {
            "database_url" => self.database_url = value.to_owned(),
            "sqlite_synchronous" => {
                self.sqlite_synchronous = value
                    .parse()
                    .map_err(|e| format!("sqlite_synchronous: {e}; use full or normal"))?
            }
            "public_addr" => self.public_addr = addr(value)?,
            "admin_addr" => self.admin_addr = addr(value)?,
            "admin_token" => {
                self.admin_tokens = list(value)
                    .iter()
                    .map(|t| AdminToken::new(t))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("IDENTA_ADMIN_TOKEN (admin_token): {e}"))?
            }
            "public_url" => self.public_url = Some(value.to_owned()),
            "ui_url" => self.ui_url = Some(value.to_owned()),
            "smtp_url" => self.smtp_url = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "smtp_from" => self.smtp_from = value.to_owned(),
            "secrets_cookie" => self.cookie_secrets = list(value),
            "secrets_cipher" => self.cipher_secrets = list(value),
            "schema" => self.schema = Some(PathBuf::from(value)),
            "allowed_return_urls" => self.allowed_return_urls = list(value),
            "webauthn_rp_id" => self.webauthn_rp_id = Some(value.to_owned()),
            "webauthn_origins" => self.webauthn_origins = list(value),
            "trusted_proxies" => {
                self.trusted_proxies = TrustedProxies::parse(value)
                    .map_err(|e| format!("IDENTA_TRUSTED_PROXIES (trusted_proxies): {e}"))?
            }
            "registration_enumeration_safe" => {
                self.duplicate_registration = match value {
                    "true" => DuplicateRegistration::AnswerAsNew,
                    "false" => DuplicateRegistration::Refuse,
                    other => {
                        return Err(
                            format!("{key}: `{other}` is neither `true` nor `false`").into()
                        );
                    }
                }
            }
            "secrets_file" => {
                self.secrets_file = Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty())
            }
            // Other IDENTA_* variables (test settings, …) are not ours.
            _ => {}
        }
        Ok(())
    }

    fn secrets(list: &[String], what: &str) -> Result<Vec<Secret>, BoxError> {
        list.iter()
            .map(|s| {
                Secret::new(s.as_bytes().to_vec()).map_err(|e| {
                    format!("IDENTA_SECRETS_{}: {e}", what.to_ascii_uppercase()).into()
                })
            })
            .collect()
    }

    /// The configured secrets; without any, development secrets from `secrets_file`
    /// (created on first use) or, without a file, random ones for this run. The secrets
    /// themselves are never printed.
    fn resolve_secrets(&self) -> Result<Secrets, BoxError> {
        match (
            self.cookie_secrets.is_empty(),
            self.cipher_secrets.is_empty(),
        ) {
            (false, false) => {
                return Ok(Secrets {
                    cookie: Self::secrets(&self.cookie_secrets, "cookie")?,
                    cipher: Self::secrets(&self.cipher_secrets, "cipher")?,
                });
            }
            (false, true) => {
                return Err(one_secret_missing(
                    "IDENTA_SECRETS_CIPHER",
                    "IDENTA_SECRETS_COOKIE",
                ));
            }
            (true, false) => {
                return Err(one_secret_missing(
                    "IDENTA_SECRETS_COOKIE",
                    "IDENTA_SECRETS_CIPHER",
                ));
            }
            (true, true) => {}
        }
        let Some(path) = &self.secrets_file else {
            tracing::warn!(
                "IDENTA_SECRETS_COOKIE / IDENTA_SECRETS_CIPHER are not set: using random secrets for this run only"
            );
            return Ok(Secrets::default());
        };
        let (cookie, cipher) = match std::fs::read_to_string(path) {
            Ok(text) => {
                refuse_if_others_may_read(path)?;
                let doc: Value = serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "{}: not the secrets file identa wrote ({e})",
                        path.display()
                    )
                })?;
                let get = |k: &str| {
                    doc[k]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{}: `{k}` is missing", path.display()))
                };
                (get("cookie")?, get("cipher")?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = || {
                    let bytes: [u8; 32] = rand_bytes();
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                };
                let (cookie, cipher) = (fresh(), fresh());
                write_private(
                    path,
                    &serde_json::to_string_pretty(&json!({ "cookie": cookie, "cipher": cipher }))?,
                )?;
                (cookie, cipher)
            }
            Err(e) => return Err(format!("{}: {e}", path.display()).into()),
        };
        tracing::warn!(
            file = %path.display(),
            "IDENTA_SECRETS_COOKIE / IDENTA_SECRETS_CIPHER are not set: using development secrets kept in this file; set both in production"
        );
        Ok(Secrets {
            cookie: vec![Secret::new(cookie.into_bytes())?],
            cipher: vec![Secret::new(cipher.into_bytes())?],
        })
    }

    /// Every factor is on: security keys and passkeys for the public URL's domain (or
    /// `localhost`, since WebAuthn needs a domain, not an IP address).
    fn relying_party(&self, public_url: &str, ui_url: &str) -> Result<RelyingParty, BoxError> {
        let as_domain = |raw: &str| -> Result<url::Url, BoxError> {
            let mut url = url::Url::parse(raw).map_err(|e| format!("`{raw}`: {e}"))?;
            if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
                url.set_host(Some("localhost"))
                    .map_err(|e| format!("`{raw}`: {e}"))?;
            }
            Ok(url)
        };
        let public = as_domain(public_url)?;
        let id = match &self.webauthn_rp_id {
            Some(id) => id.clone(),
            None => public.host_str().unwrap_or("localhost").to_owned(),
        };
        let mut origins = self.webauthn_origins.clone();
        if origins.is_empty() {
            for url in [public, as_domain(ui_url)?] {
                let origin = url.origin().ascii_serialization();
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        Ok(RelyingParty {
            id,
            name: "identa".into(),
            origins,
        })
    }

    /// What an operator must be warned about when this configuration starts.
    pub fn warnings(&self) -> Vec<StartupWarning> {
        let mut warnings = Vec::new();
        if self.limits.throttling == Throttling::Off {
            warnings.push(StartupWarning::ThrottlingOff);
        }
        warnings
    }

    /// Who may call the admin API: bearer tokens when configured, else this machine only.
    pub fn admin_auth(&self) -> AdminAuth {
        if self.admin_tokens.is_empty() {
            AdminAuth::LoopbackOnly
        } else {
            AdminAuth::Tokens(self.admin_tokens.clone())
        }
    }

    /// Refuses an admin API other machines can reach without a token.
    fn check_admin_exposure(&self) -> Result<(), BoxError> {
        if self.admin_tokens.is_empty() && !self.admin_addr.ip().is_loopback() {
            return Err(format!(
                "the admin API would listen on {} (IDENTA_ADMIN_ADDR), which other machines can reach, without a token: set IDENTA_ADMIN_TOKEN (e.g. `openssl rand -hex 32`; comma-separated to rotate) or bind IDENTA_ADMIN_ADDR to 127.0.0.1",
                self.admin_addr
            )
            .into());
        }
        Ok(())
    }

    /// The engine, the HTTP settings and the mailer this configuration describes. Refuses
    /// an admin API on a non-loopback address without `admin_tokens`, only one of the two
    /// secret lists, and a development secrets file others may read.
    pub async fn build(&self) -> Result<(Identa, HttpConfig, Arc<dyn Mailer>), BoxError> {
        self.check_admin_exposure()?;
        let mut schemas = SchemaRegistry::new();
        match &self.schema {
            Some(path) => schemas.add_file("default", path)?,
            None => schemas.add("default", default_schema())?,
        }
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url(self.public_addr));
        let mut config = Config {
            password: self.password.clone(),
            throttle: self.limits.config(),
            ..Config::default()
        };
        for warning in self.warnings() {
            tracing::warn!("{warning}");
        }
        config.flows.public_url = public_url.clone();
        config.flows.allowed_return_urls = self.allowed_return_urls.clone();
        config.secrets = self.resolve_secrets()?;
        let ui_url = self
            .ui_url
            .clone()
            .unwrap_or_else(|| format!("{}/ui", public_url.trim_end_matches('/')));
        config.flows.allowed_return_urls.push(ui_url.clone());
        config.flows.webauthn = Some(self.relying_party(&public_url, &ui_url)?);
        config.flows.registration.duplicate = self.duplicate_registration;
        if self.duplicate_registration == DuplicateRegistration::AnswerAsNew {
            // A session on sign-up would tell a new address from a taken one; so would
            // signing in with the password just submitted before the address is verified.
            config.flows.registration.after = AfterRegistration::AccountOnly;
            config.flows.login.unverified = UnverifiedSignIn::RefuseAsWrongCredentials;
        }
        let options = StoreOptions {
            sqlite_durability: self.sqlite_synchronous,
        };
        let store = SeaOrmStore::connect_with(&self.database_url, options).await?;
        let identa = (self.password_migration_hook.apply(Identa::builder())?)
            .store(store)
            .schemas(schemas)
            .config(config)
            .oidc(crate::oidc::providers(&self.oidc_providers)?)
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

/// 32 random bytes from the operating system's CSPRNG.
fn rand_bytes() -> [u8; 32] {
    rand::random()
}

fn one_secret_missing(missing: &str, set: &str) -> BoxError {
    format!(
        "{set} is set but {missing} is not: set both (cookie secrets sign, cipher secrets encrypt; each at least 32 bytes), or neither for development secrets"
    )
    .into()
}

/// Refuses a secrets file its group or others may read or write: anyone who reads it can
/// forge CSRF tokens and codes and decrypt what is stored.
fn refuse_if_others_may_read(path: &std::path::Path) -> Result<(), BoxError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{}: the secrets file is open to other users (mode {:o}); run `chmod 600 {}` and start again",
                path.display(),
                mode & 0o777,
                path.display()
            )
            .into());
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> Result<(), BoxError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: cannot create the secrets file ({e})", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The URL browsers reach a listener by: `localhost` for a loopback address, since
/// security keys and passkeys are bound to a domain and refuse an IP address.
fn default_public_url(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_file_then_the_environment() {
        let dir = std::env::temp_dir().join(format!("identa-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("identa.json");
        std::fs::write(
            &file,
            r#"{"database_url": "sqlite://from-file.db", "sqlite_synchronous": "normal", "public_addr": "127.0.0.1:5000", "allowed_return_urls": ["https://a.example", "https://b.example"]}"#,
        )
        .unwrap();
        let config = HostConfig::from_sources(vars(&[
            ("IDENTA_CONFIG", file.to_str().unwrap()),
            ("IDENTA_PUBLIC_ADDR", "127.0.0.1:6000"),
            (
                "IDENTA_SMTP_URL",
                "smtp://127.0.0.1:25/?disable_starttls=true",
            ),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap();
        assert_eq!(config.database_url, "sqlite://from-file.db");
        assert_eq!(config.sqlite_synchronous, SqliteDurability::Normal);
        assert_eq!(config.public_addr.port(), 6000, "the environment wins");
        assert_eq!(
            config.allowed_return_urls,
            vec!["https://a.example", "https://b.example"]
        );
        assert_eq!(
            config.smtp_url.as_deref(),
            Some("smtp://127.0.0.1:25/?disable_starttls=true")
        );
        assert_eq!(config.admin_addr.port(), 4434, "defaults stay");
        assert_eq!(
            HostConfig::from_sources(vars(&[]))
                .unwrap()
                .sqlite_synchronous,
            SqliteDurability::Full,
            "every commit synced unless asked otherwise"
        );
        let config =
            HostConfig::from_sources(vars(&[("IDENTA_SQLITE_SYNCHRONOUS", "NORMAL")])).unwrap();
        assert_eq!(config.sqlite_synchronous, SqliteDurability::Normal);
        let err = HostConfig::from_sources(vars(&[("IDENTA_SQLITE_SYNCHRONOUS", "off")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sqlite_synchronous") && err.contains("use full or normal"),
            "{err}"
        );
        let err = HostConfig::from_sources(vars(&[("IDENTA_ADMIN_ADDR", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("admin_addr"), "{err}");
        let err = HostConfig::from_sources(vars(&[("IDENTA_CONFIG", "/nonexistent/identa.json")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/identa.json"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn registration_is_enumeration_safe_unless_turned_off() {
        let engine = |config: HostConfig| async move {
            let config = HostConfig {
                database_url: "sqlite::memory:".into(),
                secrets_file: None,
                ..config
            };
            let (identa, _, _) = config.build().await.unwrap();
            let flows = identa.config().flows.clone();
            (flows.registration, flows.login.unverified)
        };
        let (on, unverified) = engine(HostConfig::default()).await;
        assert_eq!(on.duplicate, DuplicateRegistration::AnswerAsNew);
        assert_eq!(on.after, AfterRegistration::AccountOnly);
        // Provider sign-ups the provider vouches for sign in all the same.
        assert_eq!(
            on.after_provider,
            identa::flow::AfterProviderRegistration::IssueSessionWhenVouched
        );
        assert_eq!(unverified, UnverifiedSignIn::RefuseAsWrongCredentials);
        let off =
            HostConfig::from_sources(vars(&[("IDENTA_REGISTRATION_ENUMERATION_SAFE", "false")]))
                .unwrap();
        let (off, unverified) = engine(off).await;
        assert_eq!(off.duplicate, DuplicateRegistration::Refuse);
        assert_eq!(off.after, AfterRegistration::IssueSession);
        assert_eq!(unverified, UnverifiedSignIn::Allow);
        let err =
            HostConfig::from_sources(vars(&[("IDENTA_REGISTRATION_ENUMERATION_SAFE", "yes")]))
                .unwrap_err();
        assert!(
            err.to_string().contains("registration_enumeration_safe"),
            "{err}"
        );
    }

    #[test]
    fn development_secrets_are_kept_in_a_private_file() {
        let dir = std::env::temp_dir().join(format!("identa-host-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identa-secrets.json");
        let config = HostConfig {
            secrets_file: Some(path.clone()),
            ..HostConfig::default()
        };
        let first = config.resolve_secrets().unwrap();
        let second = config.resolve_secrets().unwrap();
        assert_eq!(first, second, "a restart reads the same secrets");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let configured = HostConfig {
            cookie_secrets: vec!["c".repeat(32)],
            cipher_secrets: vec!["d".repeat(32)],
            secrets_file: Some(path.clone()),
            ..HostConfig::default()
        };
        assert_ne!(
            configured.resolve_secrets().unwrap(),
            first,
            "configured secrets win"
        );
        let short = HostConfig {
            cookie_secrets: vec!["short".into()],
            cipher_secrets: vec!["d".repeat(32)],
            ..HostConfig::default()
        };
        assert!(short.resolve_secrets().is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const TOKEN: &str = "host-admin-token-0123456789abcdef0123456789";

    #[test]
    fn admin_tokens_come_from_the_environment_and_are_never_shown() {
        let config = HostConfig::from_sources(vars(&[
            ("IDENTA_ADMIN_TOKEN", &format!("{TOKEN}, {TOKEN}-next")),
            ("IDENTA_SECRETS_COOKIE", &"c".repeat(32)),
            ("IDENTA_SECRETS_CIPHER", &"d".repeat(32)),
            ("IDENTA_SMTP_URL", "smtps://user:mail-password@mail.example"),
        ]))
        .unwrap();
        assert_eq!(
            config.admin_tokens.len(),
            2,
            "comma-separated, for rotation"
        );
        assert!(matches!(config.admin_auth(), AdminAuth::Tokens(t) if t.len() == 2));
        let shown = format!("{config:?}");
        for secret in [TOKEN, "cccc", "dddd", "mail-password"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        let err = HostConfig::from_sources(vars(&[("IDENTA_ADMIN_TOKEN", "short")])).unwrap_err();
        assert!(err.to_string().contains("IDENTA_ADMIN_TOKEN"), "{err}");
        assert!(err.to_string().contains("openssl rand -hex 32"), "{err}");
        assert!(!err.to_string().contains("short\""), "{err}");
        assert_eq!(HostConfig::default().admin_auth(), AdminAuth::LoopbackOnly);
    }

    #[tokio::test]
    async fn an_admin_api_other_machines_reach_needs_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let exposed = HostConfig {
            admin_addr: "0.0.0.0:4434".parse().unwrap(),
            database_url: "sqlite::memory:".into(),
            secrets_file: Some(dir.path().join("secrets.json")),
            ..HostConfig::default()
        };
        let Err(err) = exposed.build().await else {
            panic!("an exposed admin API without a token started");
        };
        let err = err.to_string();
        assert!(err.contains("IDENTA_ADMIN_TOKEN"), "{err}");
        assert!(err.contains("0.0.0.0:4434"), "{err}");
        let with_token = HostConfig {
            admin_tokens: vec![AdminToken::new(TOKEN).unwrap()],
            ..exposed.clone()
        };
        with_token.build().await.unwrap();
        let loopback = HostConfig {
            admin_addr: "127.0.0.1:4434".parse().unwrap(),
            ..exposed
        };
        loopback.build().await.unwrap();
    }

    #[test]
    fn secrets_come_in_pairs() {
        let only_cookie = HostConfig {
            cookie_secrets: vec!["c".repeat(32)],
            secrets_file: None,
            ..HostConfig::default()
        };
        let err = only_cookie.resolve_secrets().unwrap_err().to_string();
        assert!(err.contains("IDENTA_SECRETS_CIPHER is not"), "{err}");
        let only_cipher = HostConfig {
            cipher_secrets: vec!["d".repeat(32)],
            secrets_file: None,
            ..HostConfig::default()
        };
        let err = only_cipher.resolve_secrets().unwrap_err().to_string();
        assert!(err.contains("IDENTA_SECRETS_COOKIE is not"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secrets_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identa-secrets.json");
        let config = HostConfig {
            secrets_file: Some(path.clone()),
            ..HostConfig::default()
        };
        let first = config.resolve_secrets().unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = config.resolve_secrets().unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("chmod 600"), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(config.resolve_secrets().unwrap(), first);
    }

    #[test]
    fn trusted_proxies_come_from_the_environment_or_the_file() {
        assert!(HostConfig::default().trusted_proxies.is_empty());
        let config = HostConfig::from_sources(vars(&[(
            "IDENTA_TRUSTED_PROXIES",
            "10.0.0.1, 172.16.0.0/12",
        )]))
        .unwrap();
        assert!(
            config
                .trusted_proxies
                .contains("172.16.5.5".parse().unwrap())
        );
        assert!(config.trusted_proxies.contains("10.0.0.1".parse().unwrap()));
        assert!(!config.trusted_proxies.contains("10.0.0.2".parse().unwrap()));
        assert!(format!("{config:?}").contains("trusted_proxies"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("identa.json");
        std::fs::write(&file, r#"{"trusted_proxies": ["fd00::/8", "192.0.2.10"]}"#).unwrap();
        let config =
            HostConfig::from_sources(vars(&[("IDENTA_CONFIG", file.to_str().unwrap())])).unwrap();
        assert!(config.trusted_proxies.contains("fd00::5".parse().unwrap()));
        assert!(
            config
                .trusted_proxies
                .contains("192.0.2.10".parse().unwrap())
        );

        let err =
            HostConfig::from_sources(vars(&[("IDENTA_TRUSTED_PROXIES", "10.0.0.1, the-proxy")]))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("IDENTA_TRUSTED_PROXIES") && err.contains("`the-proxy`"),
            "{err}"
        );
    }

    /// What tracing's fmt layer writes, kept for reading back.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Builds `config` and returns what it logged.
    async fn logged_while_building(config: &HostConfig) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        config.build().await.unwrap();
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn throttling_off_is_warned_about_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("identa.db").display()
        );
        let secrets = dir.path().join("identa-secrets.json");
        let sources = |limits: &str| {
            vars(&[
                ("IDENTA_DATABASE_URL", db.as_str()),
                ("IDENTA_SECRETS_FILE", secrets.to_str().unwrap()),
                ("IDENTA_LIMITS", limits),
            ])
        };
        let off = HostConfig::from_sources(sources("off")).unwrap();
        assert_eq!(off.warnings(), vec![StartupWarning::ThrottlingOff]);
        let logged = logged_while_building(&off).await;
        let warning = logged
            .lines()
            .find(|line| line.contains("IDENTA_LIMITS=off"))
            .unwrap_or_else(|| panic!("no warning about IDENTA_LIMITS=off in: {logged}"));
        assert!(warning.contains("WARN"), "{warning}");
        assert!(warning.contains("throttling is off"), "{warning}");

        let on = HostConfig::from_sources(sources("on")).unwrap();
        assert!(on.warnings().is_empty());
        assert!(!logged_while_building(&on).await.contains("IDENTA_LIMITS"));
    }
}
