//! The error every engine call returns, with a stable [`ErrorKind`] that hosts and the
//! HTTP layer map to responses. Messages say what went wrong and what to do next, and
//! never carry a secret.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::credential::password::{PasswordError, PolicyViolation};
use crate::flow::csrf::CsrfRefusal;
use crate::flow::{Flow, FlowKind, FlowState};
use crate::hook::HookError;
use crate::identity::SchemaError;
use crate::session::SessionRefusal;
use crate::store::StoreError;

/// An engine error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The traits do not satisfy the identity schema, or the schema is unknown or invalid.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The password breaks the policy.
    #[error("{0}")]
    PasswordPolicy(PolicyViolation),
    /// Another identity already uses one of these identifiers or addresses.
    #[error(
        "an account with the same identifier (email, phone, username, ...) exists already ({what} taken)"
    )]
    Duplicate {
        /// What clashed, without the value.
        what: &'static str,
    },
    /// Wrong identifier or password. Deliberately does not say which.
    #[error(
        "the provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number"
    )]
    InvalidCredentials,
    /// The identity is inactive and may not sign in.
    #[error("this account is disabled; an administrator can reactivate it")]
    IdentityDisabled,
    /// No identity has this id.
    #[error("identity {0} not found")]
    IdentityNotFound(Uuid),
    /// No session has this id (for this identity).
    #[error("session {0} not found")]
    SessionNotFound(Uuid),
    /// The presented session cannot be used; sign in again.
    #[error("no valid session: {}; sign in again", .0.as_str())]
    SessionInactive(SessionRefusal),
    /// The request itself is malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Hashing failed, or a stored hash is in a format identa cannot verify.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// The courier failed (not a delivery failure: those are recorded on the message).
    #[error(transparent)]
    Courier(#[from] crate::courier::CourierError),
    /// webauthn-rs could not start a ceremony (e.g. it could not serialise its state).
    #[error("WebAuthn: {0}")]
    Webauthn(#[from] webauthn_rs::prelude::WebauthnError),
    /// No flow has this id.
    #[error("flow {0} not found; start a new flow")]
    FlowNotFound(Uuid),
    /// The flow expired: the front end must start a new flow of the same kind.
    #[error("the {kind} flow {flow_id} expired at {expired_at}; start a new {kind} flow")]
    FlowExpired {
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
    FlowInvalid(Box<Flow>),
    /// A browser submission failed the CSRF check.
    #[error("CSRF check failed: {}", .0.as_str())]
    Csrf(CsrfRefusal),
    /// The flow does not accept this input in its current state.
    #[error("the {kind} flow is in state `{state}`, where {reason}")]
    FlowState {
        /// The flow's kind.
        kind: FlowKind,
        /// Its state.
        state: FlowState,
        /// What is not possible there.
        reason: &'static str,
    },
    /// This flow is turned off in the configuration.
    #[error("the {0} flow is disabled in the configuration")]
    FlowDisabled(FlowKind),
    /// A login flow was started or submitted while a valid session exists; pass
    /// `refresh` to re-authenticate instead.
    #[error(
        "a valid session was detected; sign out first, or start a login flow with refresh to re-authenticate"
    )]
    SessionAlreadyAvailable,
    /// The change needs a recent sign-in: re-authenticate with a login flow with
    /// refresh, then submit again.
    #[error(
        "this change needs a recent sign-in: re-authenticate with a login flow with refresh=true, then try again"
    )]
    SessionRefreshRequired,
    /// The session presented does not belong to the flow's identity.
    #[error("the session does not belong to the identity this flow was started for")]
    IdentityMismatch,
    /// Another request changed the same record first; load it again and retry.
    #[error("{what} was changed by another request; load it again")]
    ConcurrentUpdate {
        /// What changed.
        what: &'static str,
    },
    /// A host hook refused the operation.
    #[error("refused by a hook: {0}")]
    HookRefused(HookError),
    /// The session must complete its second factor first (a login flow with `aal2`).
    #[error("this session must complete the second factor first: start a login flow with aal=aal2")]
    Aal2Required,
    /// `return_to` points somewhere not allowed (an open redirect).
    #[error("return_to `{0}` is not allowed: add its origin to flows.allowed_return_urls")]
    ReturnToForbidden(String),
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { what } => Self::Duplicate { what },
            StoreError::Stale { what } => Self::ConcurrentUpdate { what },
            StoreError::Spent => Self::ConcurrentUpdate {
                what: "one-time code",
            },
            other => Self::Store(other),
        }
    }
}

/// A stable, machine-readable class of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Traits invalid against the schema.
    InvalidTraits,
    /// Unknown identity schema id.
    SchemaNotFound,
    /// The identity schema itself is invalid.
    InvalidSchema,
    /// Password policy violation.
    PasswordPolicy,
    /// Identifier or address already in use.
    Duplicate,
    /// Wrong identifier or password.
    InvalidCredentials,
    /// Identity disabled.
    IdentityDisabled,
    /// Identity or session not found.
    NotFound,
    /// Session missing, expired, revoked or of a disabled identity.
    SessionInactive,
    /// Malformed input.
    InvalidInput,
    /// A failure inside identa or its storage.
    Internal,
    /// The flow expired.
    FlowExpired,
    /// The submission has errors (the flow carries them).
    ValidationFailed,
    /// CSRF check failed.
    CsrfViolation,
    /// Input not accepted in the flow's state.
    FlowState,
    /// The flow is disabled.
    FlowDisabled,
    /// Already signed in.
    SessionAlreadyAvailable,
    /// Re-authentication needed.
    SessionRefreshRequired,
    /// Session and flow belong to different identities.
    IdentityMismatch,
    /// Lost a race with another request.
    Conflict,
    /// A host hook refused.
    HookRefused,
    /// `return_to` not allowed.
    ReturnToForbidden,
    /// The second factor is needed.
    Aal2Required,
}

impl ErrorKind {
    /// The stable id (snake case, Kratos-style where Kratos has one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTraits => "invalid_traits",
            Self::SchemaNotFound => "schema_not_found",
            Self::InvalidSchema => "invalid_schema",
            Self::PasswordPolicy => "password_policy_violation",
            Self::Duplicate => "duplicate_identifier",
            Self::InvalidCredentials => "invalid_credentials",
            Self::IdentityDisabled => "identity_disabled",
            Self::NotFound => "not_found",
            Self::SessionInactive => "session_inactive",
            Self::InvalidInput => "invalid_input",
            Self::Internal => "internal",
            Self::FlowExpired => "self_service_flow_expired",
            Self::ValidationFailed => "validation_failed",
            Self::CsrfViolation => "security_csrf_violation",
            Self::FlowState => "self_service_flow_state_invalid",
            Self::FlowDisabled => "self_service_flow_disabled",
            Self::SessionAlreadyAvailable => "session_already_available",
            Self::SessionRefreshRequired => "session_refresh_required",
            Self::IdentityMismatch => "security_identity_mismatch",
            Self::Conflict => "concurrent_update",
            Self::HookRefused => "hook_refused",
            Self::ReturnToForbidden => "self_service_flow_return_to_forbidden",
            Self::Aal2Required => "session_aal2_required",
        }
    }
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Schema(SchemaError::Traits { .. }) => ErrorKind::InvalidTraits,
            Self::Schema(SchemaError::NotFound { .. }) => ErrorKind::SchemaNotFound,
            Self::Schema(_) => ErrorKind::InvalidSchema,
            Self::PasswordPolicy(_) => ErrorKind::PasswordPolicy,
            Self::Duplicate { .. } => ErrorKind::Duplicate,
            Self::InvalidCredentials => ErrorKind::InvalidCredentials,
            Self::IdentityDisabled => ErrorKind::IdentityDisabled,
            Self::IdentityNotFound(_) | Self::SessionNotFound(_) | Self::FlowNotFound(_) => {
                ErrorKind::NotFound
            }
            Self::FlowExpired { .. } => ErrorKind::FlowExpired,
            Self::FlowInvalid(_) => ErrorKind::ValidationFailed,
            Self::Csrf(_) => ErrorKind::CsrfViolation,
            Self::FlowState { .. } => ErrorKind::FlowState,
            Self::FlowDisabled(_) => ErrorKind::FlowDisabled,
            Self::SessionAlreadyAvailable => ErrorKind::SessionAlreadyAvailable,
            Self::SessionRefreshRequired => ErrorKind::SessionRefreshRequired,
            Self::IdentityMismatch => ErrorKind::IdentityMismatch,
            Self::ConcurrentUpdate { .. } => ErrorKind::Conflict,
            Self::HookRefused(_) => ErrorKind::HookRefused,
            Self::ReturnToForbidden(_) => ErrorKind::ReturnToForbidden,
            Self::Aal2Required => ErrorKind::Aal2Required,
            Self::SessionInactive(_) => ErrorKind::SessionInactive,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Password(_) | Self::Store(_) | Self::Courier(_) | Self::Webauthn(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// `Result` with identa's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
