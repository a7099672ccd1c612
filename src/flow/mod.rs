//! Self-service flows as persisted state machines: registration, login, settings,
//! recovery and verification (plus logout, which needs no flow). A flow is created, shown
//! by any front end through its UI container, and submitted; each submission loads it,
//! checks expiry and CSRF, judges the input against the flow's state, and commits the flow
//! change with all of its effects (identity, session, code, mail) in one transaction.
//!
//! Each flow type has its own module with its rules; this module owns the record they
//! share ([`Flow`]), the request context ([`FlowRequest`]) and the plumbing (expiry,
//! CSRF, committing).

pub mod csrf;
pub mod login;
pub mod logout;
pub(crate) mod one_time;
pub mod recovery;
pub mod registration;
pub mod settings;
pub mod text;
pub mod ui;
pub mod verification;
pub mod webauthn;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::credential::code::PendingCode;
use crate::identity::Aal;
use crate::identity::UnknownVariant;
use crate::session::{Device, SessionToken};

pub use ui::{Node, NodeGroup, UiContainer, UiText};

/// Which self-service flow a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Sign up.
    Registration,
    /// Sign in (or re-authenticate).
    Login,
    /// Change profile or password.
    Settings,
    /// Regain access with a code sent to a recovery address.
    Recovery,
    /// Prove an address with a code sent to it.
    Verification,
}

impl FlowKind {
    /// The stable name (Kratos's path segment).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::Settings => "settings",
            Self::Recovery => "recovery",
            Self::Verification => "verification",
        }
    }

    /// Kratos's "flow expired" message id for this kind.
    fn expired_message_id(self) -> u32 {
        match self {
            Self::Login => 4_010_001,
            Self::Registration => 4_040_001,
            Self::Settings => 4_050_001,
            Self::Recovery => 4_060_005,
            Self::Verification => 4_070_005,
        }
    }
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FlowKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Registration,
            Self::Login,
            Self::Settings,
            Self::Recovery,
            Self::Verification,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| UnknownVariant::new("flow kind", s))
    }
}

/// Who drives a flow: a browser (cookies, CSRF) or a native app (session tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowType {
    /// A browser: protected against CSRF; sessions travel in a cookie.
    Browser,
    /// A native app or script: no CSRF; sessions travel as tokens.
    Api,
}

impl FlowType {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Api => "api",
        }
    }
}

impl FromStr for FlowType {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "browser" => Ok(Self::Browser),
            "api" => Ok(Self::Api),
            other => Err(UnknownVariant::new("flow type", other)),
        }
    }
}

/// Where a flow is (Kratos's states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Waiting for the user to choose a method and submit (login, registration,
    /// recovery, verification).
    ChooseMethod,
    /// A code was sent; waiting for it (recovery, verification).
    SentEmail,
    /// Done (login, registration, recovery, verification): nothing more to submit.
    PassedChallenge,
    /// Waiting for changes (settings).
    ShowForm,
    /// Changes saved (settings; more may follow).
    Success,
}

impl FlowState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChooseMethod => "choose_method",
            Self::SentEmail => "sent_email",
            Self::PassedChallenge => "passed_challenge",
            Self::ShowForm => "show_form",
            Self::Success => "success",
        }
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client should do next (Kratos's `continue_with` items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ContinueWith {
    /// Show the verification flow for an address that was just sent a code.
    ShowVerificationUi {
        /// The verification flow.
        flow: ContinueFlow,
    },
    /// Store this session token (native apps).
    SetOrySessionToken {
        /// The token.
        ory_session_token: String,
    },
    /// Show the settings flow (e.g. to set a new password after recovery).
    ShowSettingsUi {
        /// The settings flow.
        flow: ContinueFlow,
    },
    /// Send the browser here.
    RedirectBrowserTo {
        /// Where to.
        redirect_browser_to: String,
    },
}

/// A flow to continue with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinueFlow {
    /// Its id.
    pub id: Uuid,
    /// Where its UI is, if a UI URL is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// For verification: the address being verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifiable_address: Option<String>,
}

/// A self-service flow. Hosts read it (to render `ui`) and hand its id back on submit;
/// only identa changes it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Its id.
    pub id: Uuid,
    /// Which flow.
    pub kind: FlowKind,
    /// Browser or API.
    pub flow_type: FlowType,
    /// Where it is.
    pub state: FlowState,
    /// When it was created.
    pub issued_at: DateTime<Utc>,
    /// When it stops accepting submissions.
    pub expires_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The URL the flow was started from.
    pub request_url: String,
    /// Where to send the user when the flow is done.
    pub return_to: Option<String>,
    /// The form to show.
    pub ui: UiContainer,
    /// What to do after the last submission.
    #[serde(default)]
    pub continue_with: Vec<ContinueWith>,
    /// Login: whether this re-authenticates an existing session.
    #[serde(default)]
    pub refresh: bool,
    /// Login: the assurance level asked for.
    pub requested_aal: Aal,
    /// Settings, and a recovery or verification that found its identity: whose flow.
    pub identity_id: Option<Uuid>,
    /// Settings and refresh logins: the session the flow belongs to.
    pub session_id: Option<Uuid>,
    /// Increases with each change; guards against concurrent submissions.
    pub version: i64,
    /// State no client may see.
    #[serde(default)]
    pub(crate) internal: Internal,
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("flow_type", &self.flow_type)
            .field("state", &self.state)
            .field("expires_at", &self.expires_at)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The private part of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(crate) struct Internal {
    /// The code sent by a recovery or verification flow, as a MAC.
    #[serde(default)]
    pub(crate) code: Option<PendingCode>,
    /// Code submissions so far.
    #[serde(default)]
    pub(crate) code_attempts: u32,
    /// Settings: a TOTP secret offered for enrolment, sealed and bound to the flow.
    #[serde(default)]
    pub(crate) pending_totp: Option<String>,
    /// Settings: a set of backup codes shown once, sealed, until the user confirms it.
    #[serde(default)]
    pub(crate) pending_lookup: Option<String>,
    /// A security-key ceremony waiting for the client's answer
    /// ([`Ceremony`](crate::credential::webauthn::Ceremony)).
    #[serde(default)]
    pub(crate) security_key: Option<Value>,
    /// A passkey ceremony waiting for the client's answer.
    #[serde(default)]
    pub(crate) passkey: Option<Value>,
}

/// The WebAuthn ceremonies of a flow, taken out when it completes (a completed flow
/// answers none) and put back if completing fails.
pub(crate) struct Ceremonies {
    security_key: Option<Value>,
    passkey: Option<Value>,
}

impl Internal {
    pub(crate) fn take_ceremonies(&mut self) -> Ceremonies {
        Ceremonies {
            security_key: self.security_key.take(),
            passkey: self.passkey.take(),
        }
    }

    pub(crate) fn put_back(&mut self, ceremonies: Ceremonies) {
        self.security_key = ceremonies.security_key;
        self.passkey = ceremonies.passkey;
    }
}

impl Flow {
    /// The flow in Kratos's JSON shape (what the public API returns): internal state
    /// left out, kind-specific fields only where Kratos has them.
    pub fn to_kratos_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "type": self.flow_type.as_str(),
            "state": self.state.as_str(),
            "expires_at": self.expires_at,
            "issued_at": self.issued_at,
            "created_at": self.issued_at,
            "updated_at": self.updated_at,
            "request_url": self.request_url,
            "ui": self.ui,
        });
        if let Some(map) = out.as_object_mut() {
            if let Some(r) = &self.return_to {
                map.insert("return_to".into(), json!(r));
            }
            match self.kind {
                FlowKind::Login => {
                    map.insert("refresh".into(), json!(self.refresh));
                    map.insert("requested_aal".into(), json!(self.requested_aal));
                }
                FlowKind::Settings | FlowKind::Recovery | FlowKind::Registration => {
                    map.insert("continue_with".into(), json!(self.continue_with));
                }
                FlowKind::Verification => {}
            }
        }
        out
    }

    /// The flow as the store keeps it.
    pub(crate) fn to_record(&self) -> Result<FlowRecord, StoreError> {
        Ok(FlowRecord {
            id: self.id,
            kind: self.kind.as_str().to_owned(),
            flow_type: self.flow_type.as_str().to_owned(),
            state: self.state.as_str().to_owned(),
            version: self.version,
            expires_at: self.expires_at,
            created_at: self.issued_at,
            updated_at: self.updated_at,
            document: serde_json::to_value(self)
                .map_err(|e| StoreError::Corrupt(format!("flow {}: {e}", self.id)))?,
        })
    }

    /// A flow read back from the store (its version is the record's).
    pub(crate) fn from_record(record: FlowRecord) -> Result<Self, StoreError> {
        let mut flow: Flow = serde_json::from_value(record.document)
            .map_err(|e| StoreError::Corrupt(format!("flow {}: {e}", record.id)))?;
        flow.version = record.version;
        Ok(flow)
    }

    /// Whether the flow no longer accepts submissions at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// Kratos's "flow expired" message for this flow at `now`.
    pub fn expired_message(&self, now: DateTime<Utc>) -> UiText {
        let minutes = (now - self.expires_at).num_seconds() as f64 / 60.0;
        UiText::error(
            self.kind.expired_message_id(),
            format!(
                "The {} flow expired {minutes:.2} minutes ago, please try again.",
                self.kind
            ),
        )
    }

    /// The value the user typed for `name`, if the form kept it.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.ui.node(name).and_then(Node::value)
    }
}

/// Who is asking, as the host saw the request: the CSRF cookie (browser flows), the
/// session (cookie or token), the device, and the URL.
#[derive(Clone, Default)]
pub struct FlowRequest {
    /// The value of the CSRF cookie, for browser flows (see [`csrf`]).
    pub csrf_cookie: Option<String>,
    /// The CSRF token the client submitted (body field `csrf_token` or `X-CSRF-Token`).
    pub csrf_token: Option<String>,
    /// The session the client presented, if any.
    pub session: Option<SessionToken>,
    /// The client's device, recorded on sessions issued.
    pub device: Option<Device>,
    /// The URL of this request (recorded as a flow's `request_url`).
    pub url: Option<String>,
    /// Where to go when the flow is done (used when a flow is created).
    pub return_to: Option<String>,
}

impl fmt::Debug for FlowRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowRequest")
            .field("has_csrf_cookie", &self.csrf_cookie.is_some())
            .field("has_session", &self.session.is_some())
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl FlowRequest {
    /// A request from a native app (no CSRF).
    pub fn api() -> Self {
        Self::default()
    }

    /// A request from a browser holding this CSRF cookie value.
    pub fn browser(csrf_cookie: impl Into<String>) -> Self {
        Self {
            csrf_cookie: Some(csrf_cookie.into()),
            ..Self::default()
        }
    }

    /// The same request presenting a session.
    pub fn with_session(mut self, token: SessionToken) -> Self {
        self.session = Some(token);
        self
    }

    /// The same request carrying a CSRF token.
    pub fn with_csrf_token(mut self, token: impl Into<String>) -> Self {
        self.csrf_token = Some(token.into());
        self
    }

    /// The same request from a device.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = Some(device);
        self
    }

    /// The same request asking to return somewhere when done.
    pub fn with_return_to(mut self, url: impl Into<String>) -> Self {
        self.return_to = Some(url.into());
        self
    }
}

/// Flow lifespans and switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsConfig {
    /// TOTP as a second factor.
    pub totp: TotpConfig,
    /// Security keys (a second factor) and passkeys (sign-in without a password), both
    /// WebAuthn. `None` (the default) turns them off: they are bound to the domain your
    /// users see, which only you can name. Development: `Some(RelyingParty::localhost(url))`.
    pub webauthn: Option<crate::credential::webauthn::RelyingParty>,
    /// The public base URL of the HTTP API, used in each flow's `ui.action`.
    /// Default: `http://127.0.0.1:4433`.
    pub public_url: String,
    /// Where flows may send the user when done, besides paths on this site and the public
    /// URL: absolute URLs (an origin, or a path below it), e.g. your front end's
    /// `https://app.example.com`. A `return_to` elsewhere is refused (no open redirects).
    /// Default: none.
    pub allowed_return_urls: Vec<String>,
    /// Registration.
    pub registration: RegistrationConfig,
    /// Login.
    pub login: LoginConfig,
    /// Settings.
    pub settings: SettingsConfig,
    /// Recovery.
    pub recovery: CodeFlowConfig,
    /// Verification.
    pub verification: CodeFlowConfig,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            totp: TotpConfig::default(),
            webauthn: None,
            public_url: "http://127.0.0.1:4433".into(),
            allowed_return_urls: Vec::new(),
            registration: RegistrationConfig::default(),
            login: LoginConfig::default(),
            settings: SettingsConfig::default(),
            recovery: CodeFlowConfig::default(),
            verification: CodeFlowConfig::default(),
        }
    }
}

/// TOTP (authenticator apps) as a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    /// Whether settings offer TOTP enrolment. Default: true.
    pub enabled: bool,
    /// The issuer shown in authenticator apps. Default: `identa`.
    pub issuer: String,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            issuer: "identa".into(),
        }
    }
}

/// What happens after a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRegistration {
    /// Sign the new user in (issue a session). The default.
    IssueSession,
    /// Create the account only; the user signs in next.
    AccountOnly,
}

/// Registration settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Whether users may sign up. Default: true.
    pub enabled: bool,
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// What happens after a registration. Default: [`AfterRegistration::IssueSession`].
    pub after: AfterRegistration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lifespan: Duration::hours(1),
            after: AfterRegistration::IssueSession,
        }
    }
}

/// Login settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::hours(1),
        }
    }
}

/// What happens to a user's other sessions when they change their password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherSessions {
    /// They stay signed in. The default (as in Kratos).
    Keep,
    /// They are signed out; the session that made the change stays.
    Revoke,
}

/// Settings-flow settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsConfig {
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// How recently the user must have signed in to change a password or an
    /// identifier/address. Default: 15 minutes.
    pub privileged_session_max_age: Duration,
    /// Other sessions after a password change. Default: [`OtherSessions::Keep`].
    pub after_password_change: OtherSessions,
}

impl Default for SettingsConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::hours(1),
            privileged_session_max_age: Duration::minutes(15),
            after_password_change: OtherSessions::Keep,
        }
    }
}

/// Whether mail goes to addresses that belong to no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownRecipients {
    /// Send nothing (the response still looks the same). The default, as in Kratos.
    Silent,
    /// Send an "account not found" email, so a user who mistyped learns why.
    Notify,
}

/// Recovery or verification by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFlowConfig {
    /// Whether the flow is offered. Default: true.
    pub enabled: bool,
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// How long a code is valid. Default: 15 minutes.
    pub code_lifespan: Duration,
    /// Digits per code. Default: 6.
    pub code_digits: u8,
    /// Code submissions allowed per flow; after that even the right code is refused.
    /// Default: 5.
    pub max_attempts: u32,
    /// Mail to unknown addresses. Default: [`UnknownRecipients::Silent`].
    pub unknown_recipients: UnknownRecipients,
}

impl Default for CodeFlowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lifespan: Duration::hours(1),
            code_lifespan: Duration::minutes(15),
            code_digits: 6,
            max_attempts: 5,
            unknown_recipients: UnknownRecipients::Silent,
        }
    }
}

// ---- the plumbing every flow shares ---------------------------------------------------

use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::hook::{AfterEvent, Hooks};
use crate::identity::schema::TraitField;
use crate::session::AuthenticatedSession;
use crate::store::Transaction;
use crate::store::{CommitHook, FlowCommit, FlowRecord, FlowWrite, Rollback, StoreError};
use ui::{InputType, NodeAttributes};

impl Identa {
    /// A flow by id, for showing it (Kratos's `GET /self-service/<flow>/flows?id=`).
    /// A browser flow is only shown to the browser it was made for (the CSRF cookie must
    /// match). Expired flows are still returned; submitting them fails.
    pub async fn flow(&self, id: Uuid, req: &FlowRequest) -> Result<Flow> {
        let flow = fetch_flow(self, id).await?;
        if flow.flow_type == FlowType::Browser {
            let rendered = flow
                .value("csrf_token")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let probe = FlowRequest {
                csrf_cookie: req.csrf_cookie.clone(),
                csrf_token: Some(rendered),
                ..FlowRequest::default()
            };
            csrf::check(self.keyring(), &flow, &probe).map_err(Error::Csrf)?;
        }
        let mut flow = flow;
        if flow.kind == FlowKind::Settings {
            // A settings flow shows the user's traits: only to that user.
            let current = current_session(self, req)
                .await?
                .ok_or(Error::SessionInactive(
                    crate::session::SessionRefusal::Unknown,
                ))?;
            if flow.identity_id != Some(current.identity.id) {
                return Err(Error::IdentityMismatch);
            }
            settings::hydrate_totp(self, &mut flow, &current.identity);
        }
        Ok(flow)
    }
}

/// A new flow of `kind` for `req`, with the CSRF node for browser flows.
pub(crate) fn new_flow(
    identa: &Identa,
    kind: FlowKind,
    flow_type: FlowType,
    req: &FlowRequest,
    lifespan: Duration,
    state: FlowState,
) -> Result<Flow> {
    let now = identa.now();
    let id = Uuid::new_v4();
    let config = &identa.config().flows;
    let mut nodes = Vec::new();
    if flow_type == FlowType::Browser {
        let cookie = req
            .csrf_cookie
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Error::InvalidInput(
                    "a browser flow needs the browser's CSRF cookie value: create one with \
                 identa::flow::csrf::new_cookie_value(), set it as a cookie, and pass it in \
                 FlowRequest::browser"
                        .into(),
                )
            })?;
        nodes.push(
            Node::input(NodeGroup::Default, "csrf_token", InputType::Hidden)
                .required()
                .with_value(csrf::token(identa.keyring(), cookie, id)),
        );
    }
    if let Some(url) = &req.return_to
        && !return_to_allowed(config, url)
    {
        let shown: String = url.chars().take(200).collect();
        return Err(Error::ReturnToForbidden(shown));
    }
    let base = config.public_url.trim_end_matches('/');
    Ok(Flow {
        id,
        kind,
        flow_type,
        state,
        issued_at: now,
        expires_at: now + lifespan,
        updated_at: now,
        request_url: req
            .url
            .clone()
            .unwrap_or_else(|| format!("{base}/self-service/{kind}/{}", flow_type.as_str())),
        return_to: req.return_to.clone(),
        ui: UiContainer {
            action: format!("{base}/self-service/{kind}?flow={id}"),
            method: "POST".into(),
            nodes,
            messages: Vec::new(),
        },
        continue_with: Vec::new(),
        refresh: false,
        requested_aal: Aal::Aal1,
        identity_id: None,
        session_id: None,
        version: 0,
        internal: Internal::default(),
    })
}

/// Whether `url` may be a flow's `return_to`: a path on this site (`/dashboard`), or a URL
/// at or below the public URL or an entry of `allowed_return_urls`.
fn return_to_allowed(config: &FlowsConfig, url: &str) -> bool {
    if url.chars().any(|c| c.is_control() || c == '\\') {
        return false;
    }
    if url.starts_with('/') {
        return !url.starts_with("//");
    }
    let below = |entry: &str| {
        let entry = entry.trim();
        !entry.is_empty()
            && url.strip_prefix(entry).is_some_and(|rest| {
                rest.is_empty() || entry.ends_with('/') || rest.starts_with(['/', '?', '#'])
            })
    };
    below(&config.public_url) || config.allowed_return_urls.iter().any(|e| below(e))
}

/// A flow a submission names (see [`check_for_submit`]).
pub(crate) async fn fetch_flow(identa: &Identa, id: Uuid) -> Result<Flow> {
    let record = identa
        .store()
        .flow(id)
        .await?
        .ok_or(Error::FlowNotFound(id))?;
    Ok(Flow::from_record(record)?)
}

/// Checks a flow read for a submission: it must be of `kind`, not be expired, and pass
/// the CSRF check. Clears the messages of the previous submission.
pub(crate) fn check_for_submit(
    identa: &Identa,
    mut flow: Flow,
    kind: FlowKind,
    req: &FlowRequest,
) -> Result<Flow> {
    let id = flow.id;
    if flow.kind != kind {
        return Err(Error::InvalidInput(format!(
            "flow {id} is a {} flow, not a {kind} flow; submit it to its own endpoint",
            flow.kind
        )));
    }
    if flow.is_expired(identa.now()) {
        return Err(Error::FlowExpired {
            flow_id: id,
            kind,
            expired_at: flow.expires_at,
        });
    }
    csrf::check(identa.keyring(), &flow, req).map_err(Error::Csrf)?;
    flow.ui.clear_messages();
    Ok(flow)
}

/// Persists a flow that carries validation messages and returns the error that hands it
/// back to the caller.
pub(crate) async fn reject(identa: &Identa, mut flow: Flow) -> Error {
    flow.version += 1;
    flow.updated_at = identa.now();
    let record = match flow.to_record() {
        Ok(record) => record,
        Err(err) => return err.into(),
    };
    let commit = FlowCommit {
        flows: vec![FlowWrite::Update(record)],
        ..FlowCommit::default()
    };
    match identa.store().commit_flow(&commit, None).await {
        Ok(()) => Error::FlowInvalid(Box::new(flow)),
        Err(err) => err.into(),
    }
}

/// The session the request presents, if it is usable; `None` if there is none or it is
/// expired, revoked or unknown.
pub(crate) async fn current_session(
    identa: &Identa,
    req: &FlowRequest,
) -> Result<Option<AuthenticatedSession>> {
    let Some(token) = &req.session else {
        return Ok(None);
    };
    match identa.authenticate(token).await {
        Ok(session) => Ok(Some(session)),
        Err(Error::SessionInactive(_)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Commits `commit` with the host's after hook inside the transaction. A hook refusal
/// comes back as `Err(Ok(message))` so the flow can show it; other failures as
/// `Err(Err(error))`.
pub(crate) async fn commit_with_hook(
    identa: &Identa,
    commit: &FlowCommit<'_>,
    event: AfterEvent<'_>,
) -> std::result::Result<(), std::result::Result<crate::hook::HookError, Error>> {
    let hook = AfterHook {
        hooks: identa.hooks(),
        event,
        refusal: std::sync::Mutex::new(None),
    };
    match identa.store().commit_flow(commit, Some(&hook)).await {
        Ok(()) => Ok(()),
        Err(StoreError::Aborted) => {
            let refusal = hook
                .refusal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| crate::hook::HookError::failed("the hook rolled back"));
            Err(Ok(refusal))
        }
        Err(err) => Err(Err(err.into())),
    }
}

struct AfterHook<'a> {
    hooks: &'a dyn Hooks,
    event: AfterEvent<'a>,
    /// Why the hook rolled the commit back.
    refusal: std::sync::Mutex<Option<crate::hook::HookError>>,
}

#[async_trait::async_trait]
impl CommitHook for AfterHook<'_> {
    async fn run(&self, tx: &Transaction<'_>) -> std::result::Result<(), Rollback> {
        self.hooks.after(&self.event, tx).await.map_err(|err| {
            *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
            Rollback
        })
    }
}

/// The input nodes for an identity schema's traits, in `group`, filled from `traits`.
pub(crate) fn trait_nodes(fields: &[TraitField], group: NodeGroup, traits: &Value) -> Vec<Node> {
    fields
        .iter()
        .map(|field| {
            let input_type = match (field.json_type.as_str(), field.format.as_deref()) {
                (_, Some("email")) => InputType::Email,
                (_, Some("tel")) => InputType::Tel,
                (_, Some("uri" | "url")) => InputType::Url,
                (_, Some("date")) => InputType::Date,
                ("number" | "integer", _) => InputType::Number,
                ("boolean", _) => InputType::Checkbox,
                _ => InputType::Text,
            };
            let name = format!("traits.{}", field.path);
            let title = field.title.clone().unwrap_or_else(|| field.path.clone());
            let mut node =
                Node::input(group, &name, input_type).label(text::label_generated(&title, &name));
            if field.required {
                node = node.required();
            }
            if let Some(value) = trait_value(traits, &field.path) {
                node = node.with_value(value);
            }
            node
        })
        .collect()
}

/// The value at a dotted path below the traits object.
pub(crate) fn trait_value(traits: &Value, path: &str) -> Option<Value> {
    let mut current = traits;
    for part in path.split('.') {
        current = current.get(part)?;
    }
    (!current.is_null()).then(|| current.clone())
}

/// The longest value shown back in a node, serialized.
const MAX_ECHO_BYTES: usize = 4096;

/// Whether a value the user typed may be shown back in the form: not too long, and free
/// of NUL characters (which no database stores in JSON).
pub(crate) fn echoable(value: &Value) -> bool {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    !has_nul(value) && serde_json::to_string(value).is_ok_and(|s| s.len() <= MAX_ECHO_BYTES)
}

/// Sets every `traits.*` input of the form from `traits` (after a submission, so the user
/// sees what they typed). Values that cannot be shown back are left out.
pub(crate) fn refill_traits(ui: &mut UiContainer, traits: &Value) {
    for node in &mut ui.nodes {
        if let NodeAttributes::Input(input) = &mut node.attributes
            && let Some(path) = input.name.strip_prefix("traits.")
        {
            input.value = trait_value(traits, path).filter(echoable);
        }
    }
}

/// Puts an engine error that is about the user's input on the form; returns other errors.
pub(crate) fn show_input_error(ui: &mut UiContainer, err: Error) -> Result<()> {
    match err {
        Error::Schema(crate::identity::SchemaError::Traits { violations, .. }) => {
            for v in &violations {
                let field = (v.path != "traits").then_some(v.path.as_str());
                ui.add_message(field, text::trait_violation(v));
            }
            Ok(())
        }
        Error::PasswordPolicy(v) => {
            ui.add_message(Some("password"), text::password_policy(&v));
            Ok(())
        }
        Error::Duplicate { .. } => {
            ui.messages.push(text::duplicate());
            Ok(())
        }
        Error::InvalidCredentials => {
            ui.messages.push(text::invalid_credentials());
            Ok(())
        }
        Error::IdentityDisabled => {
            ui.messages.push(text::identity_disabled());
            Ok(())
        }
        Error::InvalidInput(reason) => {
            ui.messages.push(text::generic(reason));
            Ok(())
        }
        other => Err(other),
    }
}

/// Shows a hook's refusal on the form.
pub(crate) fn show_hook_error(ui: &mut UiContainer, err: crate::hook::HookError) {
    match err {
        crate::hook::HookError::Refused { field, message } => {
            ui.add_message(field.as_deref(), text::generic(message));
        }
        crate::hook::HookError::Failed(reason) => ui.messages.push(text::system_error(&reason)),
    }
}

/// A submit button `method=<value>`.
pub(crate) fn method_button(group: NodeGroup, value: &str, label: UiText) -> Node {
    Node::input(group, "method", InputType::Submit)
        .with_value(value)
        .label(label)
}
