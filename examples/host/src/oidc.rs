//! The OpenID Connect providers a host signs in with (`oidc_providers`): Kratos's
//! provider entries (`selfservice.methods.oidc.config.providers`) where they map, read
//! from the JSON file or `IDENTA_OIDC_PROVIDERS`, with each client secret given inline,
//! in a file or in an environment variable — and never printed.

use std::path::Path;

use identa::credential::oidc::{
    AppleKey, ClaimsSource, OidcProvider, OidcProviders, ProviderTokens,
};
use serde_json::{Map, Value};

use crate::BoxError;

/// Which provider's rules an entry follows (Kratos's `provider` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderType {
    /// Any OpenID Connect provider, found by discovery from `issuer_url`.
    Generic,
    /// Google: the issuer is `https://accounts.google.com`.
    Google,
    /// Microsoft Entra ID: the issuer is `microsoft_tenant`'s.
    Microsoft,
    /// GitHub (OAuth2 and its user API): `https://github.com`, or GitHub Enterprise
    /// Server at `issuer_url` (its API at `github_api_url`, default
    /// `<issuer_url>/api/v3`).
    GitHub,
    /// Sign in with Apple: `https://appleid.apple.com` (or a stand-in at `issuer_url`),
    /// its client secret minted from `apple_team_id`, `apple_private_key_id` and
    /// `apple_private_key`.
    Apple,
}

impl ProviderType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "generic" => Some(Self::Generic),
            "google" => Some(Self::Google),
            "microsoft" => Some(Self::Microsoft),
            "github" => Some(Self::GitHub),
            "apple" => Some(Self::Apple),
            _ => None,
        }
    }
}

/// One provider of the host's configuration. Its `Debug` leaves out the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HostProvider {
    /// Kratos's `id`: the last segment of the callback URL.
    pub id: String,
    /// Kratos's `provider`.
    pub provider: ProviderType,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (`client_secret`, `client_secret_file` or `client_secret_env`).
    pub client_secret: Option<String>,
    /// The issuer (`generic`: required; presets: their own).
    pub issuer_url: Option<String>,
    /// The scopes besides `openid` (none: `email profile`).
    pub scope: Vec<String>,
    /// Microsoft's tenant (`microsoft`: required).
    pub microsoft_tenant: Option<String>,
    /// GitHub's API URL (`github` with an `issuer_url`: default `<issuer_url>/api/v3`).
    pub github_api_url: Option<String>,
    /// The name on the button (Kratos's `label`; none: the preset's name, or the id).
    pub label: Option<String>,
    /// Where the claims are read (Kratos's `claims_source`: `id_token`, the default, or
    /// `userinfo`).
    pub claims_source: ClaimsSource,
    /// What is kept of the provider's tokens (`store_tokens`: `discard`, the default, or
    /// `keep_encrypted`; Kratos always keeps them).
    pub store_tokens: ProviderTokens,
    /// Apple's signing key (`apple`: required; Kratos's `apple_team_id`,
    /// `apple_private_key_id` and `apple_private_key`, the PEM text). Never printed.
    pub apple_key: Option<AppleKey>,
    /// Further audiences a native app's ID token may be for (Kratos's
    /// `additional_id_token_audiences`: an iOS app's bundle id; `apple` and `google`).
    pub id_token_audiences: Vec<String>,
}

impl std::fmt::Debug for HostProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostProvider")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("issuer_url", &self.issuer_url)
            .field("scope", &self.scope)
            .field("microsoft_tenant", &self.microsoft_tenant)
            .field("github_api_url", &self.github_api_url)
            .field("label", &self.label)
            .field("claims_source", &self.claims_source)
            .field("store_tokens", &self.store_tokens)
            .field("apple_key", &self.apple_key)
            .field("id_token_audiences", &self.id_token_audiences)
            .finish()
    }
}

const KEYS: &[&str] = &[
    "id",
    "provider",
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_env",
    "issuer_url",
    "scope",
    "microsoft_tenant",
    "github_api_url",
    "label",
    "claims_source",
    "store_tokens",
    "apple_team_id",
    "apple_private_key_id",
    "apple_private_key",
    "additional_id_token_audiences",
];

/// Reads `oidc_providers`: a JSON array of provider objects. `env` looks up the variables
/// that `client_secret_env` names.
pub(crate) fn parse(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<HostProvider>, BoxError> {
    let what = "oidc_providers (IDENTA_OIDC_PROVIDERS)";
    let list: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| format!("{what} is not a JSON array of providers: {e}"))?;
    let mut providers: Vec<HostProvider> = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(format!("{what}[{i}] is not a JSON object").into());
        };
        let provider = one(entry, &env).map_err(|e| format!("{what}[{i}]: {e}"))?;
        if providers.iter().any(|p| p.id == provider.id) {
            return Err(format!("{what}: the id `{}` is used twice", provider.id).into());
        }
        providers.push(provider);
    }
    Ok(providers)
}

fn one(
    entry: &Map<String, Value>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HostProvider, String> {
    if let Some(key) = entry.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown key `{key}`; the keys are {}",
            KEYS.join(", ")
        ));
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let id = text("id")?.ok_or("`id` is missing")?;
    let kind = text("provider")?.unwrap_or_else(|| "generic".into());
    let provider = ProviderType::parse(&kind).ok_or_else(|| {
        format!(
            "provider `{id}`: `provider: {kind}` is not supported; use generic, google, microsoft, github or apple"
        )
    })?;
    let client_id = text("client_id")?.ok_or(format!("provider `{id}`: `client_id` is missing"))?;
    let sources = [
        text("client_secret")?,
        match text("client_secret_file")? {
            Some(path) => Some(read_secret_file(Path::new(&path), &id)?),
            None => None,
        },
        match text("client_secret_env")? {
            Some(name) => Some(env(&name).filter(|v| !v.is_empty()).ok_or(format!(
                "provider `{id}`: the environment variable `{name}` (client_secret_env) is not set"
            ))?),
            None => None,
        },
    ];
    let mut given = sources.into_iter().flatten();
    let client_secret = given.next();
    if given.next().is_some() {
        return Err(format!(
            "provider `{id}`: give the client secret one way: client_secret, client_secret_file or client_secret_env"
        ));
    }
    let string_list = |key: &str| {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(()),
            Some(_) => Err(()),
        }
        .map_err(|()| format!("provider `{id}`: `{key}` must be a list of strings"))
    };
    let id_token_audiences = string_list("additional_id_token_audiences")?;
    let scope = string_list("scope")?;
    let claims_source = match text("claims_source")?.as_deref() {
        None | Some("id_token") => ClaimsSource::IdToken,
        Some("userinfo") => ClaimsSource::Userinfo,
        Some(other) => {
            return Err(format!(
                "provider `{id}`: `claims_source: {other}` is neither `id_token` nor `userinfo`"
            ));
        }
    };
    let store_tokens = match text("store_tokens")?.as_deref() {
        None | Some("discard") => ProviderTokens::Discard,
        Some("keep_encrypted") => ProviderTokens::KeepEncrypted,
        Some(other) => {
            return Err(format!(
                "provider `{id}`: `store_tokens: {other}` is neither `discard` nor `keep_encrypted`"
            ));
        }
    };
    let apple_key = match (
        text("apple_team_id")?,
        text("apple_private_key_id")?,
        text("apple_private_key")?,
    ) {
        (None, None, None) => None,
        (Some(team), Some(key_id), Some(pem)) => Some(AppleKey::new(team, key_id, pem)),
        _ => {
            return Err(format!(
                "provider `{id}`: give all of apple_team_id, apple_private_key_id and apple_private_key"
            ));
        }
    };
    let host = HostProvider {
        id_token_audiences,
        apple_key,
        claims_source,
        store_tokens,
        issuer_url: text("issuer_url")?,
        microsoft_tenant: text("microsoft_tenant")?,
        github_api_url: text("github_api_url")?,
        label: text("label")?,
        id,
        provider,
        client_id,
        client_secret,
        scope,
    };
    host.to_provider()?;
    Ok(host)
}

/// A secret file's first line, without its line break.
fn read_secret_file(path: &Path, id: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "provider `{id}`: client_secret_file {}: {e}",
            path.display()
        )
    })?;
    let secret = text.lines().next().unwrap_or_default().trim().to_owned();
    if secret.is_empty() {
        return Err(format!(
            "provider `{id}`: client_secret_file {} is empty",
            path.display()
        ));
    }
    Ok(secret)
}

impl HostProvider {
    /// The library's provider this entry describes.
    pub fn to_provider(&self) -> Result<OidcProvider, String> {
        let id = &self.id;
        let secret = || {
            self.client_secret.clone().ok_or(format!(
                "provider `{id}`: a client secret is required (client_secret, client_secret_file or client_secret_env)"
            ))
        };
        let no_issuer = || match &self.issuer_url {
            Some(_) => Err(format!(
                "provider `{id}`: `issuer_url` is the preset's own; leave it out"
            )),
            None => Ok(()),
        };
        let mut provider = match self.provider {
            ProviderType::Generic => {
                let issuer = self.issuer_url.clone().ok_or(format!(
                    "provider `{id}`: `issuer_url` is missing (generic providers are found by discovery from it)"
                ))?;
                let provider = OidcProvider::new(id.clone(), issuer, self.client_id.clone());
                match &self.client_secret {
                    Some(secret) => provider.client_secret(secret.clone()),
                    None => provider,
                }
            }
            ProviderType::Google => {
                no_issuer()?;
                OidcProvider::google(self.client_id.clone(), secret()?).with_id(id.clone())
            }
            ProviderType::Microsoft => {
                no_issuer()?;
                let tenant = self.microsoft_tenant.clone().ok_or(format!(
                    "provider `{id}`: `microsoft_tenant` is missing (your tenant's id, a UUID, or `consumers`)"
                ))?;
                OidcProvider::microsoft(tenant, self.client_id.clone(), secret()?)
                    .with_id(id.clone())
            }
            ProviderType::GitHub => match &self.issuer_url {
                None => OidcProvider::github(self.client_id.clone(), secret()?),
                Some(web) => {
                    let api = self
                        .github_api_url
                        .clone()
                        .unwrap_or_else(|| format!("{}/api/v3", web.trim_end_matches('/')));
                    OidcProvider::github_at(web.clone(), api, self.client_id.clone(), secret()?)
                }
            }
            .with_id(id.clone()),
            ProviderType::Apple => {
                if self.client_secret.is_some() {
                    return Err(format!(
                        "provider `{id}`: Apple's client secret is minted from apple_private_key for each sign-in; leave client_secret out"
                    ));
                }
                let key = self.apple_key.clone().ok_or(format!(
                    "provider `{id}`: apple_team_id, apple_private_key_id and apple_private_key are missing (the team id, the key's id and the .p8 key's PEM text from Apple's developer account)"
                ))?;
                match &self.issuer_url {
                    None => OidcProvider::apple(self.client_id.clone(), key),
                    Some(issuer) => {
                        OidcProvider::apple_at(issuer.clone(), self.client_id.clone(), key)
                    }
                }
                .with_id(id.clone())
            }
        };
        if self.apple_key.is_some() && self.provider != ProviderType::Apple {
            return Err(format!(
                "provider `{id}`: apple_team_id, apple_private_key_id and apple_private_key are for `provider: apple` only"
            ));
        }
        if self.github_api_url.is_some() && self.provider != ProviderType::GitHub {
            return Err(format!(
                "provider `{id}`: `github_api_url` is for `provider: github` only"
            ));
        }
        if !self.scope.is_empty() {
            let scope = self.scope.iter().filter(|s| *s != "openid");
            provider = provider.scopes(scope.cloned().collect::<Vec<_>>());
        }
        if let Some(label) = &self.label {
            provider = provider.label(label.clone());
        }
        if !self.id_token_audiences.is_empty() {
            if !matches!(self.provider, ProviderType::Apple | ProviderType::Google) {
                return Err(format!(
                    "provider `{id}`: `additional_id_token_audiences` is for apple and google (the ID tokens of their native SDKs)"
                ));
            }
            provider = provider.id_token_audiences(self.id_token_audiences.clone());
        }
        if self.claims_source != ClaimsSource::IdToken {
            if self.provider == ProviderType::GitHub {
                return Err(format!(
                    "provider `{id}`: `claims_source` does not apply to GitHub (its user API is always read)"
                ));
            }
            provider = provider.claims_from(self.claims_source);
        }
        Ok(provider.tokens(self.store_tokens))
    }
}

/// The library's providers for these entries (checked when the engine is built).
pub(crate) fn providers(entries: &[HostProvider]) -> Result<OidcProviders, BoxError> {
    let mut providers = OidcProviders::new();
    for entry in entries {
        providers = providers.provider(entry.to_provider()?);
    }
    Ok(providers)
}

/// The origins of the providers' issuers, where their buttons lead (the UI lets its
/// forms be redirected there).
pub(crate) fn origins(entries: &[HostProvider]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e.to_provider().ok())
        .filter_map(|p| url::Url::parse(p.issuer_url()).ok())
        .map(|u| u.origin().ascii_serialization())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn kratos_shaped_entries_become_providers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("google-secret");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let text = serde_json::json!([
            { "id": "corp", "provider": "generic", "issuer_url": "https://login.example.com",
              "client_id": "identa", "client_secret_env": "CORP_SECRET", "scope": ["openid", "email", "groups"],
              "label": "Corp", "claims_source": "userinfo", "store_tokens": "keep_encrypted" },
            { "id": "google", "provider": "google", "client_id": "g",
              "client_secret_file": file.to_str().unwrap() },
            { "id": "entra", "provider": "microsoft", "client_id": "m", "client_secret": "inline",
              "microsoft_tenant": "72f988bf-86f1-41af-91ab-2d7cd011db47" },
            { "id": "github", "provider": "github", "client_id": "gh", "client_secret": "inline-gh" },
            { "id": "ghes", "provider": "github", "client_id": "gh", "client_secret": "inline-ghes",
              "issuer_url": "https://ghe.example.com" },
        ])
        .to_string();
        let env = |name: &str| (name == "CORP_SECRET").then(|| "from-the-env".to_owned());
        let parsed = parse(&text, env).unwrap();
        assert_eq!(parsed[0].client_secret.as_deref(), Some("from-the-env"));
        assert_eq!(parsed[0].claims_source, ClaimsSource::Userinfo);
        assert_eq!(
            parsed[1].claims_source,
            ClaimsSource::IdToken,
            "the default"
        );
        assert_eq!(parsed[1].client_secret.as_deref(), Some("from-a-file"));
        assert_eq!(parsed[0].store_tokens, ProviderTokens::KeepEncrypted);
        assert_eq!(
            parsed[1].store_tokens,
            ProviderTokens::Discard,
            "the default"
        );
        assert_eq!(
            parsed[0].to_provider().unwrap().kept_tokens(),
            ProviderTokens::KeepEncrypted
        );
        assert_eq!(
            parsed[1].to_provider().unwrap().kept_tokens(),
            ProviderTokens::Discard
        );
        assert_eq!(parsed[2].client_secret.as_deref(), Some("inline"));
        let corp = parsed[0].to_provider().unwrap();
        assert_eq!(corp.issuer_url(), "https://login.example.com");
        assert_eq!(corp.scope_list(), ["email", "groups"]);
        assert_eq!(corp.display_name(), "Corp");
        let google = parsed[1].to_provider().unwrap();
        assert_eq!(google.issuer_url(), "https://accounts.google.com");
        assert_eq!(google.display_name(), "Google");
        let entra = parsed[2].to_provider().unwrap();
        assert_eq!(entra.id(), "entra");
        assert_eq!(
            entra.issuer_url(),
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
        );
        let github = parsed[3].to_provider().unwrap();
        assert_eq!(github.issuer_url(), "https://github.com");
        assert_eq!(github.scope_list(), ["user:email"]);
        let ghes = parsed[4].to_provider().unwrap();
        assert_eq!(ghes.issuer_url(), "https://ghe.example.com");
        assert_eq!(
            origins(&parsed),
            [
                "https://login.example.com",
                "https://accounts.google.com",
                "https://login.microsoftonline.com",
                "https://github.com",
                "https://ghe.example.com"
            ],
            "where the UI's forms may lead"
        );
        let shown = format!("{parsed:?}");
        for secret in ["from-the-env", "from-a-file", "inline"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    /// A P-256 key made for these tests only.
    const APPLE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOSE0x4jW8Bo9jJep\njFomTQ89Q0ae3AsLrFohuRvZ1XChRANCAATZEZ5iJgmZBRnyXOvw+MLkfkxcooAe\n9eWQnHdo4AxwLVeDHxikWwmsd6VkHIHxCj5e5tCotR4hcig3YC+3rW35\n-----END PRIVATE KEY-----\n";

    #[test]
    fn apple_entries_take_kratos_keys_and_never_print_the_key() {
        let text = serde_json::json!([
            { "id": "apple", "provider": "apple", "client_id": "com.example.web",
              "apple_team_id": "TEAM123456", "apple_private_key_id": "KEY1234567",
              "apple_private_key": APPLE_KEY,
              "additional_id_token_audiences": ["com.example.ios"] },
        ])
        .to_string();
        let parsed = parse(&text, no_env).unwrap();
        let key = parsed[0].apple_key.as_ref().unwrap();
        assert_eq!(key.team_id(), "TEAM123456");
        assert_eq!(key.key_id(), "KEY1234567");
        assert_eq!(parsed[0].id_token_audiences, ["com.example.ios"]);
        let apple = parsed[0].to_provider().unwrap();
        assert_eq!(apple.issuer_url(), "https://appleid.apple.com");
        assert_eq!(apple.scope_list(), ["email", "name"]);
        assert_eq!(apple.display_name(), "Apple");
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("MIGHAgEA"), "the private key in {shown}");
        assert!(shown.contains("<redacted>"), "{shown}");

        let err = |text: &str| parse(text, no_env).unwrap_err().to_string();
        assert!(
            err(r#"[{"id": "apple", "provider": "apple", "client_id": "c"}]"#)
                .contains("apple_team_id, apple_private_key_id and apple_private_key are missing")
        );
        assert!(
            err(
                r#"[{"id": "apple", "provider": "apple", "client_id": "c", "apple_team_id": "T"}]"#
            )
            .contains("give all of apple_team_id")
        );
        let with_secret = serde_json::json!([{ "id": "apple", "provider": "apple",
            "client_id": "c", "client_secret": "s", "apple_team_id": "T",
            "apple_private_key_id": "K", "apple_private_key": APPLE_KEY }]);
        assert!(err(&with_secret.to_string()).contains("leave client_secret out"));
        let elsewhere = serde_json::json!([{ "id": "g", "provider": "google",
            "client_id": "c", "client_secret": "s", "apple_team_id": "T",
            "apple_private_key_id": "K", "apple_private_key": APPLE_KEY }]);
        assert!(err(&elsewhere.to_string()).contains("for `provider: apple` only"));
        let audiences = serde_json::json!([{ "id": "corp", "issuer_url": "https://a",
            "client_id": "c", "additional_id_token_audiences": ["com.example.ios"] }]);
        assert!(err(&audiences.to_string()).contains("is for apple and google"));
    }

    #[test]
    fn a_wrong_entry_says_what_to_fix() {
        let err = |text: &str| parse(text, no_env).unwrap_err().to_string();
        assert!(err("{}").contains("JSON array"));
        assert!(err(r#"[{"id": "x", "client_id": "c"}]"#).contains("`issuer_url` is missing"));
        assert!(
            err(r#"[{"id": "x", "provider": "okta", "client_id": "c"}]"#)
                .contains("use generic, google, microsoft, github or apple")
        );
        assert!(
            err(r#"[{"id": "g", "provider": "google", "client_id": "c"}]"#)
                .contains("a client secret is required")
        );
        assert!(
            err(
                r#"[{"id": "m", "provider": "microsoft", "client_id": "c", "client_secret": "s"}]"#
            )
            .contains("`microsoft_tenant` is missing")
        );
        assert!(
            err(r#"[{"id": "x", "issuer_url": "https://a", "client_id": "c", "client_secret": "s", "client_secret_env": "S"}]"#)
                .contains("not set")
        );
        assert!(
            err(
                r#"[{"id": "x", "issuer_url": "https://a", "client_id": "c", "clientsecret": "s"}]"#
            )
            .contains("unknown key `clientsecret`")
        );
        let twice = r#"[{"id": "x", "issuer_url": "https://a", "client_id": "c"},
                        {"id": "x", "issuer_url": "https://b", "client_id": "c"}]"#;
        assert!(err(twice).contains("used twice"));
        assert!(
            err(r#"[{"id": "x", "issuer_url": "https://a", "client_id": "c", "claims_source": "jwt"}]"#)
                .contains("neither `id_token` nor `userinfo`")
        );
        assert!(
            err(r#"[{"id": "x", "issuer_url": "https://a", "client_id": "c", "store_tokens": "plain"}]"#)
                .contains("neither `discard` nor `keep_encrypted`")
        );
        let leaked = err(
            r#"[{"id": "g", "provider": "google", "client_id": "c", "client_secret": "s3cr3t", "issuer_url": "https://a"}]"#,
        );
        assert!(leaked.contains("leave it out"), "{leaked}");
        assert!(!leaked.contains("s3cr3t"), "{leaked}");
    }
}
