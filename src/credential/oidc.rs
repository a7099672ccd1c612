//! Sign-in with OpenID Connect providers (feature `oidc`): the providers a host
//! configures ([`OidcProvider`], several at once in [`OidcProviders`]), the
//! authorization-code flow with PKCE against each, and the verified claims of the
//! provider's ID token ([`Claims`]), which a [`ClaimsMapper`] turns into traits.
//!
//! The protocol is the `openidconnect` crate's; nothing of JOSE is written here.
//!
//! ```text
//! begin: discovery (cached) ─▶ authorization URL with state, nonce, PKCE S256 challenge
//! finish: code + PKCE verifier ─▶ token endpoint ─▶ ID token verified against the JWKS
//!         (signature, issuer, audience, expiry, nonce) ─▶ Claims
//! ```
//!
//! The provider metadata and its JWKS are cached per provider after the first discovery;
//! an ID token signed by a key the cached JWKS does not know makes one fresh discovery
//! (the provider rotated its keys) and one more check.
//!
//! Security obligations: the caller MUST keep the state, the nonce and the PKCE verifier
//! server-side (identa keeps them in the flow, the verifier sealed), MUST compare the
//! returned state in constant time, and MUST use a [`Claims::subject`] only together with
//! its provider id.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, SubjectIdentifier, TokenResponse,
};
use serde_json::{Value, json};

use crate::identity::IdentitySchema;
use crate::secret::{Keyring, hex, unhex};

mod apple;
pub use apple::AppleKey;

mod capped;

use capped::CappedClient;

/// One OpenID Connect provider, found by discovery from its issuer URL (Kratos's
/// `provider: generic`). Its `Debug` hides the client secret.
#[derive(Clone)]
pub struct OidcProvider {
    id: String,
    label: String,
    issuer_url: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    preset: Preset,
    claims_source: ClaimsSource,
    tokens: ProviderTokens,
    id_token_audiences: Vec<String>,
}

/// What is kept of the tokens a provider's code exchange gives (the ID token, the access
/// token, the refresh token if any). Kratos keeps them always, encrypted, as
/// `initial_id_token`, `initial_access_token` and `initial_refresh_token` of the
/// provider's entry in the identity's `oidc` credential; identa keeps them only when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProviderTokens {
    /// Used for the sign-in, then dropped (the default): nothing a breach of the database
    /// could replay at the provider.
    #[default]
    Discard,
    /// Sealed with the data-at-rest cipher (`secrets.cipher`), bound to the identity, the
    /// provider and the token's kind, in the provider's entry when the account is
    /// registered or linked (as Kratos's `initial_*` tokens: a later sign-in does not
    /// replace them). The admin API shows them with `include_credential=oidc`.
    KeepEncrypted,
}

/// Where a provider's claims are read (Kratos's `claims_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClaimsSource {
    /// The verified ID token's claims (Kratos's default `id_token`).
    #[default]
    IdToken,
    /// The userinfo endpoint's, asked with the access token after the ID token is
    /// verified; its `sub` must be the ID token's (Kratos's `userinfo`). For providers
    /// whose ID tokens carry only `sub`, as the specification prefers when an access token
    /// is issued.
    Userinfo,
}

/// Whose rules a provider follows beyond generic OpenID Connect (Kratos's `provider`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Preset {
    /// Discovery from the issuer URL, nothing more.
    Generic,
    /// Microsoft Entra ID, one tenant's issuer.
    Microsoft { tenant: String },
    /// GitHub: OAuth2 at the web URL (the `issuer_url`), then its user API at `api_url`.
    GitHub { api_url: String },
    /// Sign in with Apple: a client secret minted from the key for each token request,
    /// the answer by form post when the email or name is asked for.
    Apple { key: AppleKey },
}

/// Microsoft's tenant of personal accounts (`consumers`): its issuer names this id.
const MICROSOFT_CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("id", &self.id)
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("has_client_secret", &self.client_secret.is_some())
            .field("scopes", &self.scopes)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl OidcProvider {
    /// A provider with Kratos's `id` (the path segment of its callback and the
    /// `provider` value of its button: letters, digits, `-` and `_`), its issuer URL
    /// (discovery reads `<issuer_url>/.well-known/openid-configuration`) and the client
    /// id registered there. Scopes default to `openid email profile`.
    pub fn new(
        id: impl Into<String>,
        issuer_url: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        let id = id.into();
        Self {
            label: id.clone(),
            id,
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            client_secret: None,
            scopes: vec!["email".into(), "profile".into()],
            preset: Preset::Generic,
            claims_source: ClaimsSource::IdToken,
            tokens: ProviderTokens::Discard,
            id_token_audiences: Vec::new(),
        }
    }

    /// Further audiences a native app's ID token may be for, besides the client id
    /// (Kratos's `additional_id_token_audiences`): an iOS app's bundle id, an Android
    /// client id. Only native ID-token sign-ins (Apple, Google) read them.
    pub fn id_token_audiences<S: Into<String>>(
        mut self,
        audiences: impl IntoIterator<Item = S>,
    ) -> Self {
        self.id_token_audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps (sealed) or drops the tokens of its code exchange (default: drops them).
    pub fn tokens(mut self, tokens: ProviderTokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// What is kept of its tokens.
    pub fn kept_tokens(&self) -> ProviderTokens {
        self.tokens
    }

    /// Reads the claims from `source` (default: the ID token). Not for GitHub, whose
    /// user API is always read.
    pub fn claims_from(mut self, source: ClaimsSource) -> Self {
        self.claims_source = source;
        self
    }

    /// Google (Kratos's `provider: google`): id `google`, issuer
    /// `https://accounts.google.com`, scopes `openid email profile`, labelled "Google".
    /// Google's web clients are confidential: the client secret is required.
    pub fn google(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self::new("google", "https://accounts.google.com", client_id)
            .client_secret(client_secret)
            .label("Google")
    }

    /// Microsoft Entra ID (Kratos's `provider: microsoft`): id `microsoft`, the issuer
    /// `https://login.microsoftonline.com/<tenant>/v2.0`, scopes `openid email profile`,
    /// labelled "Microsoft". `tenant` is the directory (tenant) id, a UUID such as
    /// `72f988bf-86f1-41af-91ab-2d7cd011db47`, or `consumers` (personal accounts).
    /// Anything else is refused when the engine is built: `common` and `organizations`
    /// because a token from them names each user's own tenant as its issuer, which one
    /// issuer check cannot accept (Kratos reads the tenant from the unverified token;
    /// identa asks for the tenant instead), and a domain such as `contoso.onmicrosoft.com`
    /// because Entra's discovery document for it names the tenant's id as issuer, so
    /// discovery would refuse every sign-in.
    pub fn microsoft(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let tenant = tenant.into();
        let issuer_tenant = match tenant.as_str() {
            "consumers" => MICROSOFT_CONSUMERS,
            other => other,
        };
        let issuer = format!("https://login.microsoftonline.com/{issuer_tenant}/v2.0");
        Self {
            preset: Preset::Microsoft { tenant },
            ..Self::new("microsoft", issuer, client_id)
                .client_secret(client_secret)
                .label("Microsoft")
        }
    }

    /// GitHub (Kratos's `provider: github`): id `github`, labelled "GitHub", scope
    /// `user:email`. GitHub is not OpenID Connect: the sign-in is OAuth2's
    /// authorization code (with PKCE) at `https://github.com`, then the user API
    /// (`https://api.github.com`) names the account — `GET /user` (the subject is the
    /// numeric user id, `name`) and `GET /user/emails` (the primary address, verified as
    /// GitHub says).
    pub fn github(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self::github_at(
            "https://github.com",
            "https://api.github.com",
            client_id,
            client_secret,
        )
    }

    /// GitHub at other URLs: GitHub Enterprise Server (`https://<host>` and
    /// `https://<host>/api/v3`), or a stand-in speaking GitHub's API in tests.
    pub fn github_at(
        web_url: impl Into<String>,
        api_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let web_url: String = web_url.into();
        Self {
            preset: Preset::GitHub {
                api_url: api_url.into().trim_end_matches('/').to_owned(),
            },
            scopes: vec!["user:email".into()],
            ..Self::new("github", web_url.trim_end_matches('/'), client_id)
                .client_secret(client_secret)
                .label("GitHub")
        }
    }

    /// Sign in with Apple (Kratos's `provider: apple`): id `apple`, issuer
    /// `https://appleid.apple.com` (found by discovery), scopes `email name`, labelled
    /// "Apple". `client_id` is the Services ID; the client secret is an ES256 JWT signed
    /// with `key` for each token request (see [`AppleKey`]). Because the scopes ask for the
    /// email or name, Apple answers with `response_mode=form_post`, which the callback
    /// route turns into a GET. Apple's `"email_verified": "true"` (a string) counts as
    /// verified; its private-relay addresses (`is_private_email`) are stored as given.
    pub fn apple(client_id: impl Into<String>, key: AppleKey) -> Self {
        Self::apple_at("https://appleid.apple.com", client_id, key)
    }

    /// Sign in with Apple at another issuer (a stand-in speaking Apple's protocol, in
    /// tests). The client secret's audience stays `https://appleid.apple.com`.
    pub fn apple_at(
        issuer_url: impl Into<String>,
        client_id: impl Into<String>,
        key: AppleKey,
    ) -> Self {
        Self {
            preset: Preset::Apple { key },
            scopes: vec!["email".into(), "name".into()],
            ..Self::new("apple", issuer_url, client_id).label("Apple")
        }
    }

    /// Gives the provider another id (the path segment of its callback; presets start
    /// with their provider's name), e.g. for two Microsoft tenants.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Its issuer URL.
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }

    /// The scopes asked for besides `openid`.
    pub fn scope_list(&self) -> &[String] {
        &self.scopes
    }

    /// Its client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret (confidential clients). Without one the client is public and
    /// relies on PKCE alone.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The scopes asked for besides `openid` (replaces the default `email profile`).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The name shown on its button ("Sign in with {label}"; default: the id).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name shown on its button.
    pub fn display_name(&self) -> &str {
        &self.label
    }
}

/// The verified claims of a provider's ID token that identa reads, and all of them as
/// JSON for a custom mapper.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The provider's id (as configured).
    pub provider: String,
    /// The subject (`sub`): the account's stable id at that provider.
    pub subject: String,
    /// `email`, if the provider shared it.
    pub email: Option<String>,
    /// `email_verified`: whether the provider vouches for the address.
    pub email_verified: bool,
    /// `name`, if the provider shared it.
    pub name: Option<String>,
    /// `auth_time`: when the user last signed in at the provider, if its ID token says.
    /// A re-authentication (`refresh=true`) is taken only with one no older than the
    /// flow. None without an ID token (GitHub).
    pub auth_time: Option<DateTime<Utc>>,
    /// Every claim of the ID token, as JSON.
    pub raw: Value,
}

/// Turns a provider's claims into the traits of a new identity of `schema` (the default
/// schema). A mapper that cannot map returns the reason, shown on the flow. The traits
/// are then checked against the schema like any sign-up's.
pub trait ClaimsMapper: Send + Sync {
    /// The traits for a new identity with these claims.
    fn traits(&self, claims: &Claims, schema: &IdentitySchema) -> Result<Value, String>;
}

impl<F> ClaimsMapper for F
where
    F: Fn(&Claims, &IdentitySchema) -> Result<Value, String> + Send + Sync,
{
    fn traits(&self, claims: &Claims, schema: &IdentitySchema) -> Result<Value, String> {
        self(claims, schema)
    }
}

/// The default mapper, for the traits the schema has: `email` to the `email` trait
/// (stored verified when the provider says `email_verified`); `name` to a text `name`
/// trait, or `given_name` and `family_name` to `name.first` and `name.last`. A schema
/// with other required traits needs a mapper of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMapper;

impl ClaimsMapper for DefaultMapper {
    fn traits(&self, claims: &Claims, schema: &IdentitySchema) -> Result<Value, String> {
        let fields = schema.trait_fields();
        let text = |path: &str| {
            fields
                .iter()
                .any(|f| f.path == path && f.json_type == "string")
        };
        if !text("email") {
            return Err(
                "the identity schema has no `email` trait: configure a claims mapper".into(),
            );
        }
        let Some(email) = &claims.email else {
            return Err(format!(
                "{} did not share an email address; allow the `email` scope, or configure a claims mapper",
                claims.provider
            ));
        };
        let mut traits = serde_json::Map::new();
        traits.insert("email".into(), json!(email));
        let claim = |name: &str| claims.raw.get(name).filter(|v| v.is_string()).cloned();
        if let (true, Some(name)) = (text("name"), &claims.name) {
            traits.insert("name".into(), json!(name));
        }
        let mut name = serde_json::Map::new();
        for (path, key, claim_name) in [
            ("name.first", "first", "given_name"),
            ("name.last", "last", "family_name"),
        ] {
            if let (true, Some(value)) = (text(path), claim(claim_name)) {
                name.insert(key.into(), value);
            }
        }
        if !name.is_empty() {
            traits.insert("name".into(), Value::Object(name));
        }
        Ok(Value::Object(traits))
    }
}

/// The configured providers and the mapper for new accounts.
#[derive(Clone)]
pub struct OidcProviders {
    providers: Vec<Arc<Cached>>,
    mapper: Arc<dyn ClaimsMapper>,
    /// Every request to a provider goes through it: answers are read up to 1 MiB.
    http: CappedClient,
}

impl fmt::Debug for OidcProviders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviders")
            .field(
                "providers",
                &self
                    .providers
                    .iter()
                    .map(|p| &p.provider)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for OidcProviders {
    fn default() -> Self {
        Self::new()
    }
}

/// A provider and its discovered metadata (with the JWKS), once read.
struct Cached {
    provider: OidcProvider,
    metadata: tokio::sync::RwLock<Option<CoreProviderMetadata>>,
}

/// Whether `id` can name a provider: letters, digits, `-` or `_`, at least one (usable in
/// a URL path as it is). What the configuration requires of every provider's id and what
/// the callback routes check before anything else.
pub(crate) fn is_provider_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
impl OidcProviders {
    /// No providers yet, the [`DefaultMapper`].
    pub fn new() -> Self {
        Self {
            providers: Vec::new(),
            mapper: Arc::new(DefaultMapper),
            http: CappedClient::new(),
        }
    }

    /// Adds a provider (a later one with the same id replaces it).
    pub fn provider(mut self, provider: OidcProvider) -> Self {
        self.providers.retain(|p| p.provider.id != provider.id);
        self.providers.push(Arc::new(Cached {
            provider,
            metadata: tokio::sync::RwLock::new(None),
        }));
        self
    }

    /// Uses this mapper for new accounts' traits.
    pub fn mapper(mut self, mapper: impl ClaimsMapper + 'static) -> Self {
        self.mapper = Arc::new(mapper);
        self
    }

    /// The providers, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = &OidcProvider> {
        self.providers.iter().map(|p| &p.provider)
    }

    /// The mapper.
    pub(crate) fn claims_mapper(&self) -> &dyn ClaimsMapper {
        self.mapper.as_ref()
    }

    /// Checks the configuration: ids usable in a URL path, issuer URLs that parse.
    pub(crate) fn check(&self) -> Result<(), String> {
        for p in self.iter() {
            if !is_provider_id(&p.id) {
                return Err(format!(
                    "OpenID Connect provider id `{}` must be letters, digits, `-` or `_`",
                    p.id
                ));
            }
            if let Preset::Microsoft { tenant } = &p.preset
                && matches!(tenant.as_str(), "common" | "organizations" | "")
            {
                return Err(format!(
                    "OpenID Connect provider `{}`: the Microsoft tenant `{tenant}` is not one issuer (each user's token names their own tenant); give your tenant's id (a UUID, the Directory (tenant) ID in Entra's app overview), or `consumers` for personal accounts",
                    p.id
                ));
            }
            if let Preset::Microsoft { tenant } = &p.preset
                && tenant != "consumers"
                && !(tenant.len() == 36 && uuid::Uuid::try_parse(tenant).is_ok())
            {
                return Err(format!(
                    "OpenID Connect provider `{}`: the Microsoft tenant `{tenant}` is not a tenant id; give your tenant's id (a UUID, the Directory (tenant) ID in Entra's app overview; a domain does not work: Entra names the tenant's id as issuer), or `consumers` for personal accounts",
                    p.id
                ));
            }
            if let Preset::Apple { key } = &p.preset {
                key.check()
                    .map_err(|e| format!("OpenID Connect provider `{}`: {e}", p.id))?;
            }
            IssuerUrl::new(p.issuer_url.clone()).map_err(|e| {
                format!(
                    "OpenID Connect provider `{}`: issuer_url `{}` is not a URL: {e}",
                    p.id, p.issuer_url
                )
            })?;
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<&Arc<Cached>, OidcError> {
        self.providers
            .iter()
            .find(|p| p.provider.id == id)
            .ok_or_else(|| OidcError::UnknownProvider(id.to_owned()))
    }

    /// The provider's metadata: cached, or discovered now (`fresh` forces discovery).
    async fn metadata(
        &self,
        cached: &Cached,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, OidcError> {
        if !fresh && let Some(metadata) = cached.metadata.read().await.as_ref() {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(cached.provider.issuer_url.clone())
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        *cached.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    /// Starts a sign-in with provider `id`: the authorization URL to send the browser to,
    /// and what must be kept to finish it.
    /// The state is `<state_prefix>.<random>`.
    /// With [`Prompt::Login`] a generic provider (Google and Microsoft too) is asked to
    /// sign the user in again (`prompt=login`, as Kratos asks on a re-authentication).
    /// GitHub and Apple are not: neither documents `prompt=login` (GitHub's OAuth2 knows
    /// only `select_account`, and Kratos sends it nothing; Apple's authorization request
    /// has no `prompt`, though Kratos sends one).
    pub(crate) async fn begin(
        &self,
        id: &str,
        redirect_url: &str,
        state_prefix: &str,
        prompt: Prompt,
    ) -> Result<Begun, OidcError> {
        let cached = self.get(id)?;
        let p = &cached.provider;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = format!("{state_prefix}.{}", CsrfToken::new_random().secret());
        if let Preset::GitHub { .. } = &p.preset {
            let (url, state) = github::client(p, redirect(redirect_url)?)?
                .authorize_url(move || CsrfToken::new(state))
                .add_scopes(p.scopes.iter().map(|s| Scope::new(s.clone())))
                .set_pkce_challenge(challenge)
                .url();
            return Ok(Begun {
                url: url.to_string(),
                state: state.secret().clone(),
                // No ID token, so no nonce to check; one is kept all the same.
                nonce: CsrfToken::new_random().secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            });
        }
        let metadata = self.metadata(cached, false).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(p.client_id.clone()),
            p.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect(redirect_url)?);
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &p.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if prompt == Prompt::Login && !matches!(p.preset, Preset::Apple { .. }) {
            // `max_age=0`: the provider must sign the user in afresh and put `auth_time`
            // in the ID token (OpenID Connect Core 3.1.2.1), which the callback checks;
            // `prompt=login` alone can be deleted from the URL unnoticed.
            request = request
                .add_extra_param("prompt", "login")
                .add_extra_param("max_age", "0");
        }
        // Apple answers by form post when asked for the email or name, and only so.
        if let Preset::Apple { .. } = &p.preset
            && p.scopes.iter().any(|s| s == "email" || s == "name")
        {
            request = request.add_extra_param("response_mode", "form_post");
        }
        let (url, state, nonce) = request.url();
        Ok(Begun {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finishes a sign-in: exchanges `code` (with the PKCE verifier) at the token
    /// endpoint and verifies the ID token (signature against the provider's JWKS, issuer,
    /// audience, expiry at `now`, `nonce`).
    pub(crate) async fn finish(
        &self,
        id: &str,
        redirect_url: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<(Claims, Option<Tokens>), OidcError> {
        let cached = self.get(id)?;
        let p = &cached.provider;
        if let Preset::GitHub { api_url } = &p.preset {
            use oauth2::TokenResponse as _;
            let client = github::client(p, redirect(redirect_url)?)?;
            let response = client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                .request_async(&self.http)
                .await
                .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
            let claims = github::claims(
                self.http.reqwest(),
                api_url,
                response.access_token().secret(),
            )
            .await?;
            let tokens = Tokens {
                id_token: None,
                access_token: response.access_token().secret().clone(),
                refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            };
            let claims = Claims {
                provider: id.to_owned(),
                ..claims
            };
            return Ok((claims, p.kept(tokens)));
        }
        let metadata = self.metadata(cached, false).await?;
        let secret = p.secret_at(now)?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(p.client_id.clone()),
            secret.clone(),
        )
        .set_redirect_uri(redirect(redirect_url)?);
        // Apple takes the client credentials in the request body only.
        let client = match &p.preset {
            Preset::Apple { .. } => client.set_auth_type(openidconnect::AuthType::RequestBody),
            _ => client,
        };
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| p.exchange_refused(&error_chain(&e)))?;
        // The access and refresh tokens are kept only if the provider says so.
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let nonce = Nonce::new(nonce.to_owned());
        let verified = {
            let verifier = client.id_token_verifier().set_time_fn(move || now);
            id_token.claims(&verifier, &nonce).map(to_claims)
        };
        let claims = match verified {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys: read its JWKS again, once.
                let metadata = self.metadata(cached, true).await?;
                let client = CoreClient::from_provider_metadata(
                    metadata,
                    ClientId::new(p.client_id.clone()),
                    secret,
                );
                let verifier = client.id_token_verifier().set_time_fn(move || now);
                id_token.claims(&verifier, &nonce).map(to_claims)
            }
            other => other,
        }
        .map_err(|e| OidcError::IdToken(e.to_string()))?;
        let claims = match p.claims_source {
            ClaimsSource::IdToken => claims,
            ClaimsSource::Userinfo => {
                let subject = SubjectIdentifier::new(claims.subject.clone());
                let info: CoreUserInfoClaims = client
                    .user_info(response.access_token().clone(), Some(subject))
                    .map_err(|e| OidcError::UserApi(format!("userinfo: {e}")))?
                    .request_async(&self.http)
                    .await
                    .map_err(|e| OidcError::UserApi(format!("userinfo: {}", error_chain(&e))))?;
                let mut raw = claims.raw.clone();
                if let (Some(all), Ok(Value::Object(more))) =
                    (raw.as_object_mut(), serde_json::to_value(&info))
                {
                    all.extend(more);
                }
                Claims {
                    provider: String::new(),
                    subject: claims.subject,
                    email: info.email().map(|e| e.as_str().to_owned()),
                    email_verified: info.email_verified().unwrap_or(false),
                    name: info
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned()),
                    auth_time: claims.auth_time,
                    raw,
                }
            }
        };
        let tokens = Tokens {
            id_token: Some(id_token.to_string()),
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        };
        let claims = Claims {
            provider: id.to_owned(),
            ..claims
        };
        Ok((claims, p.kept(tokens)))
    }
}

/// Google's issuer: its ID tokens may be submitted by native apps, as Kratos allows.
const GOOGLE_ISSUER: &str = "https://accounts.google.com";

impl OidcProviders {
    /// Whether provider `id` takes ID tokens that a native app got from the provider's
    /// SDK (Kratos: Apple and Google).
    pub(crate) fn takes_native_id_tokens(&self, id: &str) -> Result<bool, OidcError> {
        let p = &self.get(id)?.provider;
        Ok(matches!(p.preset, Preset::Apple { .. })
            || (p.preset == Preset::Generic && p.issuer_url == GOOGLE_ISSUER))
    }

    /// Whether provider `id` can prove a re-authentication (`refresh=true`): it is asked
    /// for a fresh sign-in (`prompt=login`, `max_age=0`) and its ID token says when the
    /// user signed in (`auth_time`). GitHub has no ID token and Apple documents neither
    /// parameter: neither is offered on a refresh flow. Unknown providers cannot.
    pub(crate) fn proves_fresh_sign_in(&self, id: &str) -> bool {
        self.get(id).is_ok_and(|p| {
            matches!(
                p.provider.preset,
                Preset::Generic | Preset::Microsoft { .. }
            )
        })
    }

    /// Verifies an ID token a native app got from provider `id`'s SDK: signature against
    /// the provider's JWKS (read again once for an unknown key), issuer, audience (the
    /// client id), expiry at `now`, and its `nonce`, which must be there and be the
    /// `nonce` the app submits.
    pub(crate) async fn verify_native_id_token(
        &self,
        id: &str,
        id_token: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<Claims, OidcError> {
        let cached = self.get(id)?;
        let p = &cached.provider;
        let token: openidconnect::core::CoreIdToken = id_token
            .trim()
            .parse()
            .map_err(|e| OidcError::IdToken(format!("not an ID token: {e}")))?;
        let check = |found: Option<&Nonce>| native_nonce(found, nonce);
        // The client id, then each further audience (as Kratos's `verifyToken`).
        let verify = |metadata: CoreProviderMetadata| {
            let mut verified = Err(ClaimsVerificationError::InvalidAudience(String::new()));
            for audience in std::iter::once(&p.client_id).chain(&p.id_token_audiences) {
                let client = CoreClient::from_provider_metadata(
                    metadata.clone(),
                    ClientId::new(audience.clone()),
                    None,
                );
                let verifier = client.id_token_verifier().set_time_fn(move || now);
                verified = token.claims(&verifier, check).map(to_claims);
                if !matches!(verified, Err(ClaimsVerificationError::InvalidAudience(_))) {
                    break;
                }
            }
            verified
        };
        let verified = match verify(self.metadata(cached, false).await?) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => verify(self.metadata(cached, true).await?),
            other => other,
        };
        let claims = verified.map_err(|e| OidcError::IdToken(e.to_string()))?;
        Ok(Claims {
            provider: id.to_owned(),
            ..claims
        })
    }
}

/// Kratos's nonce rule for a native ID token (`ProcessIDToken` in
/// selfservice/strategy/oidc/strategy.go), without its exceptions: the token must carry a
/// nonce, and the app must submit that same nonce (compared in constant time).
fn native_nonce(found: Option<&Nonce>, submitted: &str) -> Result<(), String> {
    use subtle::ConstantTimeEq;
    match found {
        None => Err("No nonce was included in the id_token but is required by the provider".into()),
        Some(_) if submitted.is_empty() => {
            Err("No nonce was provided but is required by the provider".into())
        }
        Some(found) if bool::from(found.secret().as_bytes().ct_eq(submitted.as_bytes())) => Ok(()),
        Some(_) => Err("The supplied nonce does not match the nonce from the id_token".into()),
    }
}

impl OidcProvider {
    /// The client secret for a token request at `now`: the configured one, or Apple's
    /// minted for this request.
    fn secret_at(&self, now: DateTime<Utc>) -> Result<Option<ClientSecret>, OidcError> {
        match &self.preset {
            Preset::Apple { key } => key
                .client_secret(&self.client_id, now)
                .map(|jwt| Some(ClientSecret::new(jwt)))
                .map_err(OidcError::Exchange),
            _ => Ok(self.client_secret.clone().map(ClientSecret::new)),
        }
    }

    /// The token endpoint's refusal, with what to check for Apple's minted secret.
    fn exchange_refused(&self, chain: &str) -> OidcError {
        match &self.preset {
            Preset::Apple { .. } if chain.contains("invalid_client") => {
                OidcError::Exchange(format!(
                    "{chain}; Apple refused the client secret: check the team id (apple_team_id), the key id (apple_private_key_id), the private key (apple_private_key), the Services ID (client_id) and this server's clock"
                ))
            }
            _ => OidcError::Exchange(chain.to_owned()),
        }
    }

    /// `tokens`, if this provider keeps them.
    fn kept(&self, tokens: Tokens) -> Option<Tokens> {
        (self.tokens == ProviderTokens::KeepEncrypted).then_some(tokens)
    }
}

/// The tokens of one code exchange, for a provider that keeps them. Its `Debug` hides
/// them.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Tokens {
    pub(crate) id_token: Option<String>,
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

/// The keys of a provider entry's tokens in the `oidc` credential's config (Kratos's).
const TOKEN_KEYS: [&str; 3] = [
    "initial_id_token",
    "initial_access_token",
    "initial_refresh_token",
];

/// What a token of `kind` (one of [`TOKEN_KEYS`]) of `identity_id`'s account at
/// `provider` is sealed to: it opens for no other identity, provider or kind.
fn token_context(identity_id: uuid::Uuid, provider: &str, kind: &str) -> Vec<u8> {
    let mut ctx = b"identa/v1/oidc-token/".to_vec();
    ctx.extend_from_slice(identity_id.as_bytes());
    ctx.extend_from_slice(format!("/{provider}/{kind}").as_bytes());
    ctx
}

/// Seals `tokens` into `entry` (a provider entry of `identity_id`'s `oidc` credential) as
/// Kratos's `initial_*` keys, hex-encoded; a token the provider did not send is left out.
pub(crate) fn seal_tokens(
    keyring: &Keyring,
    identity_id: uuid::Uuid,
    provider: &str,
    tokens: &Tokens,
    entry: &mut serde_json::Map<String, Value>,
) -> Result<(), crate::secret::SealError> {
    let [id_key, access_key, refresh_key] = TOKEN_KEYS;
    for (key, token) in [
        (id_key, tokens.id_token.as_deref()),
        (access_key, Some(tokens.access_token.as_str())),
        (refresh_key, tokens.refresh_token.as_deref()),
    ] {
        match token {
            Some(token) => {
                let sealed =
                    keyring.seal(&token_context(identity_id, provider, key), token.as_bytes())?;
                entry.insert(key.into(), Value::String(hex(&sealed)));
            }
            None => {
                entry.remove(key);
            }
        }
    }
    Ok(())
}

/// The `oidc` credential's config of `identity_id` as the admin API shows it with
/// `include_credential=oidc` (Kratos's shape): each provider entry's `provider` and
/// `subject`, and its `initial_*` tokens opened — empty when none were kept (or a
/// retired cipher key no longer opens them).
pub(crate) fn opened_config(keyring: &Keyring, identity_id: uuid::Uuid, config: &Value) -> Value {
    let entries = config
        .get("providers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let providers: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or_default();
            let provider = text("provider");
            let mut shown = serde_json::Map::new();
            shown.insert("provider".into(), json!(provider));
            shown.insert("subject".into(), json!(text("subject")));
            for key in TOKEN_KEYS {
                let opened = unhex(text(key))
                    .and_then(|sealed| {
                        keyring
                            .open(&token_context(identity_id, provider, key), &sealed)
                            .ok()
                    })
                    .and_then(|plain| String::from_utf8(plain).ok())
                    .unwrap_or_default();
                shown.insert(key.into(), Value::String(opened));
            }
            Value::Object(shown)
        })
        .collect();
    json!({ "providers": providers })
}

fn redirect(url: &str) -> Result<RedirectUrl, OidcError> {
    RedirectUrl::new(url.to_owned()).map_err(|e| {
        OidcError::Unreachable(format!(
            "the callback URL `{url}` is not a URL ({e}); check flows.public_url"
        ))
    })
}

/// An error with its sources (the crates' outer errors say little).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

fn to_claims(claims: &CoreIdTokenClaims) -> Claims {
    Claims {
        provider: String::new(),
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        auth_time: claims.auth_time(),
        raw: serde_json::to_value(claims).unwrap_or(Value::Null),
    }
}

/// Whether a sign-in asks the provider to have the user sign in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// The provider may reuse the session it has with the browser.
    AsProviderDecides,
    /// A re-authentication: the provider must ask for the user's credentials again
    /// (`prompt=login`), not answer from its own session.
    Login,
}

/// A started sign-in: where to send the browser, and what to keep for the callback. Its
/// `Debug` hides the state, nonce and verifier.
pub(crate) struct Begun {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
}

impl fmt::Debug for Begun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Begun").finish_non_exhaustive()
    }
}

/// Why a sign-in with a provider did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// No provider has this id.
    #[error("no OpenID Connect provider `{0}` is configured; use the id of a configured provider")]
    UnknownProvider(String),
    /// Discovery failed (the provider is down, or its issuer URL is wrong).
    #[error("the provider could not be reached ({0}); try again later")]
    Unreachable(String),
    /// The token endpoint refused the code or could not be reached.
    #[error(
        "the sign-in could not be completed at the provider's token endpoint (refused or unreachable: {0}); try again"
    )]
    Exchange(String),
    /// The token response carried no ID token.
    #[error("the provider sent no ID token; ask for the `openid` scope")]
    NoIdToken,
    /// The ID token failed verification (signature, issuer, audience, expiry or nonce).
    #[error("the provider's ID token was refused ({0}); try again")]
    IdToken(String),
    /// A provider's user API (GitHub's, or the userinfo endpoint) refused the token or
    /// answered something else.
    #[error("the provider's user API did not name the account ({0}); try again")]
    UserApi(String),
    /// The provider's user API withheld the account's email addresses: the access was
    /// granted without the scope (GitHub answers `/user/emails` with 404 without
    /// `user:email`).
    #[error(
        "the provider did not share the account's email addresses: access was granted without the `{0}` scope; ask for that scope in the provider's configuration, then sign in again"
    )]
    ScopeNotGranted(String),
}

/// GitHub's part: OAuth2 (not OpenID Connect) and its user API.
mod github {
    use oauth2::basic::BasicClient;
    use oauth2::{AuthType, AuthUrl, ClientId, ClientSecret, RedirectUrl, TokenUrl};
    use serde_json::Value;

    use super::capped::{ReadError, read_capped};
    use super::{Claims, OidcError, OidcProvider, error_chain};

    /// An OAuth2 client with its authorization and token endpoints set.
    pub(super) type Client = oauth2::Client<
        oauth2::basic::BasicErrorResponse,
        oauth2::basic::BasicTokenResponse,
        oauth2::basic::BasicTokenIntrospectionResponse,
        oauth2::StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >;

    /// The OAuth2 client for GitHub at `p`'s web URL (client id and secret sent in the
    /// request body, as GitHub documents).
    pub(super) fn client(p: &OidcProvider, redirect: RedirectUrl) -> Result<Client, OidcError> {
        let url = |path: &str| format!("{}{path}", p.issuer_url);
        let bad = |e: oauth2::url::ParseError| {
            OidcError::Unreachable(format!("`{}` is not a URL: {e}", p.issuer_url))
        };
        let client = BasicClient::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(AuthUrl::new(url("/login/oauth/authorize")).map_err(bad)?)
            .set_token_uri(TokenUrl::new(url("/login/oauth/access_token")).map_err(bad)?)
            .set_redirect_uri(redirect)
            .set_auth_type(AuthType::RequestBody);
        Ok(match &p.client_secret {
            Some(secret) => client.set_client_secret(ClientSecret::new(secret.clone())),
            None => client,
        })
    }

    /// `GET <api_url><path>` with the access token: its JSON answer (at most 1 MiB).
    async fn get(
        http: &reqwest::Client,
        api_url: &str,
        path: &str,
        token: &str,
    ) -> Result<Value, OidcError> {
        let failed =
            |e: &dyn std::error::Error| OidcError::UserApi(format!("{path}: {}", error_chain(e)));
        let mut res = http
            .get(format!("{api_url}{path}"))
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "identa")
            .send()
            .await
            .map_err(|e| failed(&e))?;
        // GitHub's answer to a token granted without `user:email`.
        if path == "/user/emails" && res.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(OidcError::ScopeNotGranted("user:email".into()));
        }
        if !res.status().is_success() {
            return Err(OidcError::UserApi(format!(
                "{path} answered {}",
                res.status()
            )));
        }
        let body = match read_capped(&mut res).await {
            Ok(body) => body,
            Err(ReadError::TooLong) => {
                return Err(OidcError::UserApi(format!(
                    "{path} answered more than 1 MiB"
                )));
            }
            Err(ReadError::Reqwest(e)) => return Err(failed(&e)),
        };
        serde_json::from_slice(&body).map_err(|e| failed(&e))
    }

    /// The account the access token belongs to: `GET /user` (the subject is its numeric
    /// `id`) and `GET /user/emails` (the primary address, verified as GitHub says).
    pub(super) async fn claims(
        http: &reqwest::Client,
        api_url: &str,
        token: &str,
    ) -> Result<Claims, OidcError> {
        let user = get(http, api_url, "/user", token).await?;
        let Some(id) = user.get("id").and_then(Value::as_u64) else {
            return Err(OidcError::UserApi("/user named no numeric `id`".into()));
        };
        let emails = get(http, api_url, "/user/emails", token).await?;
        let primary = emails.as_array().and_then(|all| {
            all.iter()
                .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        });
        let email = primary
            .and_then(|e| e.get("email"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let email_verified = primary.is_some_and(|e| e.get("verified") == Some(&Value::Bool(true)));
        let mut raw = user.clone();
        if let (Some(fields), Some(email)) = (raw.as_object_mut(), &email) {
            fields.insert("email".into(), Value::String(email.clone()));
            fields.insert("email_verified".into(), Value::Bool(email_verified));
        }
        Ok(Claims {
            provider: String::new(),
            subject: id.to_string(),
            email,
            email_verified,
            name: user.get("name").and_then(Value::as_str).map(str::to_owned),
            auth_time: None,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kept tokens open only for their identity, provider and kind, never show in
    /// `Debug`, and are shown as Kratos's empty strings where none were kept.
    #[test]
    fn kept_tokens_are_sealed_to_their_identity_provider_and_kind() {
        let keyring = Keyring::new(&crate::secret::Secrets::default()).unwrap();
        let tokens = Tokens {
            id_token: Some("id.token.text".into()),
            access_token: "access-token-text".into(),
            refresh_token: None,
        };
        assert!(!format!("{tokens:?}").contains("token-text"));
        let ada = uuid::Uuid::new_v4();
        let mut entry = serde_json::Map::new();
        entry.insert("provider".into(), json!("corp"));
        entry.insert("subject".into(), json!("ada"));
        seal_tokens(&keyring, ada, "corp", &tokens, &mut entry).unwrap();
        let stored = Value::Object(entry.clone()).to_string();
        assert!(!stored.contains("token-text") && !stored.contains("id.token"));
        assert!(entry.get("initial_refresh_token").is_none());
        let config = json!({ "providers": [Value::Object(entry.clone())] });
        assert_eq!(
            opened_config(&keyring, ada, &config),
            json!({ "providers": [{ "provider": "corp", "subject": "ada",
                "initial_id_token": "id.token.text",
                "initial_access_token": "access-token-text",
                "initial_refresh_token": "" }] })
        );
        let empty = json!({ "providers": [{ "provider": "corp", "subject": "ada",
            "initial_id_token": "", "initial_access_token": "", "initial_refresh_token": "" }] });
        // Another identity's, or moved to another provider's entry: nothing opens.
        assert_eq!(
            opened_config(&keyring, uuid::Uuid::new_v4(), &config),
            empty
        );
        let mut moved = entry.clone();
        moved.insert("provider".into(), json!("other"));
        let other = json!({ "providers": [Value::Object(moved)] });
        let shown = opened_config(&keyring, ada, &other);
        assert_eq!(shown["providers"][0]["initial_access_token"], "");
        // Swapped between kinds: nothing opens.
        let mut swapped = entry;
        let access = swapped["initial_access_token"].clone();
        swapped.insert("initial_id_token".into(), access);
        let swapped = json!({ "providers": [Value::Object(swapped)] });
        assert_eq!(
            opened_config(&keyring, ada, &swapped)["providers"][0]["initial_id_token"],
            ""
        );
    }

    #[test]
    fn a_provider_id_is_letters_digits_dash_or_underscore() {
        assert!(is_provider_id("staff-google_2"));
        for bad in ["", "bad/id", "bad.id", "bad id", "bäd"] {
            assert!(!is_provider_id(bad), "{bad:?}");
            let provider = OidcProvider::google("client", "secret").with_id(bad);
            let refused = OidcProviders::new().provider(provider).check().unwrap_err();
            assert!(refused.contains("must be letters, digits"), "{refused}");
        }
    }

    #[test]
    fn google_is_a_preset_of_its_issuer_and_scopes() {
        let google = OidcProvider::google("client.apps.googleusercontent.com", "shh-google");
        assert_eq!(google.id(), "google");
        assert_eq!(google.issuer_url(), "https://accounts.google.com");
        assert_eq!(google.scope_list(), ["email", "profile"]);
        assert_eq!(google.display_name(), "Google");
        assert_eq!(google.client_id(), "client.apps.googleusercontent.com");
        assert!(!format!("{google:?}").contains("shh-google"));
        let providers = OidcProviders::new().provider(google.with_id("staff-google"));
        assert_eq!(providers.check(), Ok(()));
        assert_eq!(
            providers.iter().next().map(|p| p.id()),
            Some("staff-google")
        );
    }

    #[test]
    fn microsoft_needs_one_tenant() {
        let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let microsoft = OidcProvider::microsoft(tenant, "client", "secret");
        assert_eq!(microsoft.id(), "microsoft");
        assert_eq!(
            microsoft.issuer_url(),
            format!("https://login.microsoftonline.com/{tenant}/v2.0")
        );
        assert_eq!(microsoft.display_name(), "Microsoft");
        assert_eq!(OidcProviders::new().provider(microsoft).check(), Ok(()));
        let consumers = OidcProvider::microsoft("consumers", "client", "secret");
        assert_eq!(
            consumers.issuer_url(),
            "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "personal accounts' tokens name this tenant as issuer"
        );
        for tenant in ["common", "organizations"] {
            let err = OidcProviders::new()
                .provider(OidcProvider::microsoft(tenant, "client", "secret"))
                .check()
                .unwrap_err();
            assert!(err.contains(&format!("`{tenant}`")), "{err}");
            assert!(err.contains("your tenant's id (a UUID"), "{err}");
        }
    }

    #[test]
    fn microsoft_refuses_a_tenant_domain_asking_for_the_tenant_id() {
        let err = OidcProviders::new()
            .provider(OidcProvider::microsoft(
                "contoso.onmicrosoft.com",
                "client",
                "secret",
            ))
            .check()
            .unwrap_err();
        assert!(
            err.contains("`contoso.onmicrosoft.com` is not a tenant id"),
            "{err}"
        );
        assert!(err.contains("your tenant's id (a UUID"), "{err}");
        let consumers = OidcProvider::microsoft("consumers", "client", "secret");
        assert_eq!(OidcProviders::new().provider(consumers).check(), Ok(()));
    }

    #[test]
    fn apple_is_a_preset_whose_key_is_checked_at_build() {
        let key = AppleKey::new("TEAM123456", "KEY1234567", apple::tests::TEST_KEY);
        let apple = OidcProvider::apple("com.example.web", key.clone());
        assert_eq!(apple.id(), "apple");
        assert_eq!(apple.issuer_url(), "https://appleid.apple.com");
        assert_eq!(apple.scope_list(), ["email", "name"]);
        assert_eq!(apple.display_name(), "Apple");
        assert!(!format!("{apple:?}").contains("MIGHAgEA"));
        assert_eq!(OidcProviders::new().provider(apple).check(), Ok(()));
        let wrong = AppleKey::new("TEAM123456", "KEY1234567", "-----BEGIN PRIVATE KEY-----");
        let err = OidcProviders::new()
            .provider(OidcProvider::apple_at("http://127.0.0.1:9", "c", wrong))
            .check()
            .unwrap_err();
        assert!(
            err.starts_with("OpenID Connect provider `apple`: "),
            "{err}"
        );
        assert!(err.contains("apple_private_key"), "{err}");
        let minted = OidcProvider::apple("com.example.web", key)
            .secret_at(DateTime::from_timestamp(1_800_000_000, 0).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(minted.secret().split('.').count(), 3, "a JWT per request");
    }

    #[test]
    fn github_asks_for_the_email_scope_at_its_web_url() {
        let github = OidcProvider::github("Iv1.client", "gh-secret");
        assert_eq!(github.id(), "github");
        assert_eq!(github.issuer_url(), "https://github.com");
        assert_eq!(github.scope_list(), ["user:email"]);
        assert_eq!(github.display_name(), "GitHub");
        assert_eq!(
            github.preset,
            Preset::GitHub {
                api_url: "https://api.github.com".into()
            }
        );
        let ghes = OidcProvider::github_at(
            "https://ghe.example.com/",
            "https://ghe.example.com/api/v3/",
            "c",
            "s",
        );
        assert_eq!(ghes.issuer_url(), "https://ghe.example.com");
        assert_eq!(
            ghes.preset,
            Preset::GitHub {
                api_url: "https://ghe.example.com/api/v3".into()
            }
        );
    }
}
