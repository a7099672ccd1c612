//! Self-service flows as state machines: registration, login, settings, recovery and
//! verification. A flow is a persisted record ([`Flow`]) with Kratos's states and UI
//! container; each flow kind's module is a state machine over it:
//!
//! ```text
//! (flow, submission, who is asking, facts, now) ──▶ Step::Advance(Transition { flow, effects, outcome })
//!                                                └─▶ Step::Reject(flow showing what to fix)
//!                                                └─▶ FlowError (a typed refusal)
//! ```
//!
//! A transition never writes: its effects (insert an identity, issue a session, queue
//! mail, spend a code, …) are values the engine applies with the flow in one transaction.
//! What a flow needs to read (an identity by identifier, a password check, the keyring,
//! the relying party, the host's before hook) comes through the narrow [`Facts`] trait, so
//! a flow is tested without a database. Flows know no HTTP: routes, cookie names and the
//! WebAuthn browser script belong to [`crate::http`].
//!
//! - [`registration`], [`login`], [`settings`], [`recovery`], [`verification`]: the kinds.
//! - `code`: the code method recovery and verification share.
//! - [`ui`]: Kratos's UI container and nodes; `text`: Kratos's message ids and texts.
//! - [`csrf`]: the CSRF token of browser flows.
//! - `transition`: [`Effect`]s and the [`Transition`] a submission returns.

mod code;
mod config;
pub mod csrf;
mod duplicate;
mod facts;
mod form;
mod lifecycle;
pub mod login;
#[cfg(feature = "oidc")]
pub mod oidc;
pub mod recovery;
pub mod registration;
pub mod settings;
pub(crate) mod text;
mod transition;
pub mod ui;
pub mod verification;
mod webauthn;

#[cfg(test)]
mod testing;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::credential::CredentialError;
use crate::credential::code::PendingCode;
use crate::identity::{Aal, IdentityError, UnknownVariant};
use crate::session::{Device, SessionError, SessionToken};
use crate::store::{FlowRecord, StoreError};
use csrf::CsrfRefusal;
use ui::{Node, UiContainer, UiText};

pub use code::CodeSubmission;
pub use config::AfterProviderRegistration;
pub use config::{
    AfterRegistration, CodeFlowConfig, DuplicateRegistration, FlowsConfig, LoginConfig,
    OtherSessions, RegistrationConfig, SettingsConfig, TotpConfig, UnknownRecipients,
    UnverifiedSignIn,
};
pub(crate) use duplicate::{answer_if_taken, check_config as check_duplicate_registration};
pub(crate) use facts::Facts;
pub(crate) use lifecycle::{check_submit, check_view};
pub(crate) use transition::{Answers, CommitRefusal, Effect, Fallback, Step, Transition};

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

/// What a client should do next (Kratos's `continue_with` items). Its `Debug` hides the
/// session token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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

impl ContinueWith {
    /// For an API flow, the item that hands a new session's token to the app (a browser
    /// gets it as a cookie from the HTTP layer instead).
    pub(crate) fn token_for(flow_type: FlowType, token: &SessionToken) -> Option<Self> {
        (flow_type == FlowType::Api).then(|| Self::SetOrySessionToken {
            ory_session_token: token.expose().to_owned(),
        })
    }
}

impl fmt::Debug for ContinueWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShowVerificationUi { flow } => f
                .debug_struct("ShowVerificationUi")
                .field("flow", flow)
                .finish(),
            Self::SetOrySessionToken { .. } => f
                .debug_struct("SetOrySessionToken")
                .field("ory_session_token", &"<redacted>")
                .finish(),
            Self::ShowSettingsUi { flow } => f
                .debug_struct("ShowSettingsUi")
                .field("flow", flow)
                .finish(),
            Self::RedirectBrowserTo {
                redirect_browser_to,
            } => f
                .debug_struct("RedirectBrowserTo")
                .field("redirect_browser_to", redirect_browser_to)
                .finish(),
        }
    }
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
    /// (Feature `oidc`.) A new API flow started with
    /// [`FlowRequest::session_token_exchange`]: the code a native app keeps to fetch its
    /// session token after signing in with a provider (Kratos's
    /// `session_token_exchange_code`). Shown once, when the flow is created; never stored.
    #[cfg(feature = "oidc")]
    #[serde(skip)]
    pub session_token_exchange_code: Option<String>,
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
    /// A sign-in with an OpenID Connect provider waiting for its callback (the state as a
    /// MAC, the nonce, the PKCE verifier sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) oidc: Option<Value>,
    /// An API flow's session-token exchange (MACs of its codes, the token sealed until
    /// the app fetches it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exchange: Option<Value>,
    /// A login flow: a provider account waiting to be linked to the account that owns its
    /// address once the user signs in to it (sealed to the flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) oidc_link: Option<String>,
}

impl Internal {
    /// Drops the WebAuthn ceremonies: a completed flow answers none.
    pub(crate) fn clear_ceremonies(&mut self) {
        self.security_key = None;
        self.passkey = None;
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
            #[cfg(feature = "oidc")]
            if let Some(code) = &self.session_token_exchange_code {
                map.insert("session_token_exchange_code".into(), json!(code));
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
    /// (Feature `oidc`.) A new API login or registration flow hands out a
    /// `session_token_exchange_code`, so that a native app can sign in with a provider in
    /// the system browser and then fetch its session token (Kratos's
    /// `return_session_token_exchange_code=true`).
    #[cfg(feature = "oidc")]
    pub session_token_exchange: bool,
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

/// Why a flow refused a request. Input the user can fix is not an error: it comes back
/// as [`FlowError::Invalid`], the flow showing what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// No flow has this id.
    #[error("flow {0} not found; start a new flow")]
    NotFound(Uuid),
    /// The flow was submitted to another kind's endpoint.
    #[error("flow {id} is a {actual} flow, not a {expected} flow; submit it to its own endpoint")]
    WrongKind {
        /// The flow.
        id: Uuid,
        /// What it is.
        actual: FlowKind,
        /// What the request expected.
        expected: FlowKind,
    },
    /// The flow expired: the front end must start a new flow of the same kind.
    #[error("the {kind} flow {flow_id} expired at {expired_at}; start a new {kind} flow")]
    Expired {
        /// The expired flow.
        flow_id: Uuid,
        /// Its kind, so the front end knows which flow to start.
        kind: FlowKind,
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The submission was not judged: the input has errors, shown on the returned flow
    /// (its nodes and `ui.messages`, with Kratos message ids). Render the flow again.
    #[error("the submission has errors; show the flow's messages to the user")]
    Invalid(Box<Flow>),
    /// A browser submission failed the CSRF check.
    #[error("CSRF check failed: {}", .0.as_str())]
    Csrf(CsrfRefusal),
    /// A browser flow was started without the browser's CSRF cookie value.
    #[error(
        "a browser flow needs the browser's CSRF cookie value: create one with identa::flow::csrf::new_cookie_value(), set it as a cookie, and pass it in FlowRequest::browser"
    )]
    NoCsrfCookie,
    /// The flow does not accept this input in its current state.
    #[error("the {kind} flow is in state `{state}`, where {reason}")]
    State {
        /// The flow's kind.
        kind: FlowKind,
        /// Its state.
        state: FlowState,
        /// What is not possible there.
        reason: &'static str,
    },
    /// This flow is turned off in the configuration.
    #[error("the {0} flow is disabled in the configuration")]
    Disabled(FlowKind),
    /// A login or registration flow was started or submitted while a valid session exists;
    /// start a login flow with refresh to re-authenticate instead.
    #[error(
        "a valid session was detected; sign out first, or start a login flow with refresh to re-authenticate"
    )]
    SessionAlreadyAvailable,
    /// The change needs a recent sign-in: re-authenticate with a login flow with refresh,
    /// then submit again.
    #[error(
        "this change needs a recent sign-in: re-authenticate with a login flow with refresh=true, then try again"
    )]
    RefreshRequired,
    /// The session presented does not belong to the flow's identity.
    #[error("the session does not belong to the identity this flow was started for")]
    IdentityMismatch,
    /// The session must complete its second factor first (a login flow with `aal2`).
    #[error("this session must complete the second factor first: start a login flow with aal=aal2")]
    Aal2Required,
    /// A second-factor login flow was asked for an account without a second factor.
    #[error("this account has no second factor set up: add one in the settings")]
    NoSecondFactor,
    /// `return_to` points somewhere not allowed (an open redirect).
    #[error("return_to `{0}` is not allowed: add its origin to flows.allowed_return_urls")]
    ReturnToForbidden(String),
    /// Wrong identifier or password. Deliberately does not say which.
    #[error(
        "the provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number"
    )]
    InvalidCredentials,
    /// The password was right, but none of the account's addresses is verified and the
    /// configuration requires one ([`UnverifiedSignIn::Refuse`]).
    #[error(
        "this account has no verified address yet: verify the address with the code sent to it (or ask for a new one in a verification flow), then sign in"
    )]
    AddressNotVerified,
    /// An OpenID Connect callback whose `state` is missing, unknown, already used, for
    /// another provider or from another browser.
    #[error(
        "the sign-in with the provider could not be matched to a sign-in this browser started (the state is missing, unknown or was already used); start again"
    )]
    OidcState,
    /// Traits or metadata were refused.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A credential operation failed.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The session cannot be used (or the identity may not hold one).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A read through [`Facts`] failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::identity::SchemaError> for FlowError {
    fn from(err: crate::identity::SchemaError) -> Self {
        Self::Identity(err.into())
    }
}

impl From<crate::credential::password::PasswordError> for FlowError {
    fn from(err: crate::credential::password::PasswordError) -> Self {
        Self::Credential(err.into())
    }
}

impl From<webauthn_rs::prelude::WebauthnError> for FlowError {
    fn from(err: webauthn_rs::prelude::WebauthnError) -> Self {
        Self::Credential(err.into())
    }
}

/// `Result` with [`FlowError`].
pub(crate) type Result<T, E = FlowError> = std::result::Result<T, E>;
