//! The error every engine call returns. Each layer has its own error ([`FlowError`],
//! [`IdentityError`], [`CredentialError`], [`SessionError`], [`StoreError`],
//! [`CourierError`]); [`Error`] wraps them, and [`ErrorKind`] gives every error a stable,
//! machine-readable class (`as_str()` is the id the HTTP layer answers with). Messages say
//! what went wrong and what to do next, and never carry a secret.

use uuid::Uuid;

use crate::courier::CourierError;
use crate::credential::CredentialError;
use crate::credential::password::migration::MigrationError;
use crate::credential::password::{PasswordError, PolicyViolation};
use crate::flow::FlowError;
use crate::identity::{IdentityError, SchemaError};
use crate::session::SessionError;
use crate::store::StoreError;
use crate::throttle::Throttled;

/// An engine error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flow refused the request (expired, CSRF, wrong state, …), or the submission has
    /// errors the returned flow shows ([`FlowError::Invalid`]).
    #[error(transparent)]
    Flow(FlowError),
    /// Traits or metadata were refused, or the schema is unknown or invalid.
    #[error(transparent)]
    Identity(IdentityError),
    /// A credential operation failed (the password policy, hashing, WebAuthn, sealing).
    #[error(transparent)]
    Credential(CredentialError),
    /// The presented session cannot be used, or the identity may not sign in.
    #[error(transparent)]
    Session(SessionError),
    /// Storage failed, or refused a write (a taken identifier, a lost race).
    #[error(transparent)]
    Store(StoreError),
    /// The courier failed (not a delivery failure: those are recorded on the message).
    #[error(transparent)]
    Courier(CourierError),
    /// No identity or session has this id.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for (`identity`, `session`).
        what: &'static str,
        /// Its id.
        id: Uuid,
    },
    /// The request itself is malformed, or the engine is misconfigured.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Too many attempts: a throttling limit is spent (see [`crate::throttle`]). Nothing
    /// was checked or changed; try again after `retry_after`.
    #[error(transparent)]
    Throttled(Throttled),
}

impl From<FlowError> for Error {
    /// Lower-layer errors a flow passes on become the top-level variant of their layer,
    /// so each error has one shape whichever way it arrived.
    fn from(err: FlowError) -> Self {
        match err {
            FlowError::Identity(err) => Self::Identity(err),
            FlowError::Credential(err) => Self::Credential(err),
            FlowError::Session(err) => Self::Session(err),
            FlowError::Store(err) => Self::Store(err),
            other => Self::Flow(other),
        }
    }
}

impl From<IdentityError> for Error {
    fn from(err: IdentityError) -> Self {
        Self::Identity(err)
    }
}

impl From<SchemaError> for Error {
    fn from(err: SchemaError) -> Self {
        Self::Identity(err.into())
    }
}

impl From<CredentialError> for Error {
    fn from(err: CredentialError) -> Self {
        Self::Credential(err)
    }
}

impl From<PasswordError> for Error {
    fn from(err: PasswordError) -> Self {
        Self::Credential(err.into())
    }
}

impl From<PolicyViolation> for Error {
    fn from(err: PolicyViolation) -> Self {
        Self::Credential(CredentialError::Policy(err))
    }
}

impl From<SessionError> for Error {
    fn from(err: SessionError) -> Self {
        Self::Session(err)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<CourierError> for Error {
    fn from(err: CourierError) -> Self {
        match err {
            CourierError::Store(err) => Self::Store(err),
            other => Self::Courier(other),
        }
    }
}

/// A stable, machine-readable class of [`Error`]. [`ErrorKind::as_str`] is the id the
/// HTTP layer answers with (Kratos's id where Kratos has one).
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
    /// The account has no verified address and the configuration requires one.
    AddressNotVerified,
    /// Identity, session or flow not found.
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
    /// `return_to` not allowed.
    ReturnToForbidden,
    /// The second factor is needed.
    Aal2Required,
    /// A courier message that cannot be requeued (sent, still queued, or its code expired).
    MessageNotRequeueable,
    /// Too many attempts; try again later.
    TooManyRequests,
    /// identa is too busy to check a password now (the hashing queue is full); try again
    /// in a second.
    Busy,
    /// The password migration hook could not be reached or answered improperly (Kratos
    /// answers 502 too); nothing changed.
    PasswordMigrationUnavailable,
    /// An identity awaits password migration but no hook is configured (Kratos: a
    /// misconfiguration error).
    PasswordMigrationNotConfigured,
}

impl ErrorKind {
    /// The stable id (snake case; Kratos's id where Kratos has one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidTraits => "invalid_traits",
            Self::SchemaNotFound => "schema_not_found",
            Self::InvalidSchema => "invalid_schema",
            Self::PasswordPolicy => "password_policy_violation",
            Self::Duplicate => "duplicate_identifier",
            Self::InvalidCredentials => "invalid_credentials",
            Self::IdentityDisabled => "identity_disabled",
            Self::AddressNotVerified => "session_verified_address_required",
            Self::NotFound => "not_found",
            Self::SessionInactive => "session_inactive",
            Self::InvalidInput => "bad_request",
            Self::Internal => "internal_server_error",
            Self::FlowExpired => "self_service_flow_expired",
            Self::ValidationFailed => "validation_failed",
            Self::CsrfViolation => "security_csrf_violation",
            Self::FlowState => "self_service_flow_state_invalid",
            Self::FlowDisabled => "self_service_flow_disabled",
            Self::SessionAlreadyAvailable => "session_already_available",
            Self::SessionRefreshRequired => "session_refresh_required",
            Self::IdentityMismatch => "security_identity_mismatch",
            Self::Conflict => "concurrent_update",
            Self::ReturnToForbidden => "self_service_flow_return_to_forbidden",
            Self::Aal2Required => "session_aal2_required",
            Self::MessageNotRequeueable => "courier_message_not_requeueable",
            Self::TooManyRequests => "too_many_requests",
            Self::Busy => "service_busy",
            Self::PasswordMigrationUnavailable => "password_migration_hook_unavailable",
            Self::PasswordMigrationNotConfigured => "password_migration_hook_not_configured",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Flow(err) => flow_kind(err),
            Self::Identity(err) => identity_kind(err),
            Self::Credential(err) => credential_kind(err),
            Self::Session(err) => session_kind(*err),
            Self::Store(err) => store_kind(err),
            Self::Courier(err) => courier_kind(err),
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Throttled(_) => ErrorKind::TooManyRequests,
        }
    }

    /// The flow that shows what to fix, when this is [`FlowError::Invalid`].
    pub fn into_invalid_flow(self) -> Result<crate::flow::Flow, Self> {
        match self {
            Self::Flow(FlowError::Invalid(flow)) => Ok(*flow),
            other => Err(other),
        }
    }
}

fn flow_kind(err: &FlowError) -> ErrorKind {
    match err {
        FlowError::NotFound(_) => ErrorKind::NotFound,
        FlowError::WrongKind { .. } | FlowError::NoCsrfCookie | FlowError::NoSecondFactor => {
            ErrorKind::InvalidInput
        }
        FlowError::Expired { .. } => ErrorKind::FlowExpired,
        FlowError::Invalid(_) => ErrorKind::ValidationFailed,
        FlowError::Csrf(_) => ErrorKind::CsrfViolation,
        FlowError::State { .. } => ErrorKind::FlowState,
        FlowError::Disabled(_) => ErrorKind::FlowDisabled,
        FlowError::SessionAlreadyAvailable => ErrorKind::SessionAlreadyAvailable,
        FlowError::RefreshRequired => ErrorKind::SessionRefreshRequired,
        FlowError::IdentityMismatch => ErrorKind::IdentityMismatch,
        FlowError::Aal2Required => ErrorKind::Aal2Required,
        FlowError::ReturnToForbidden(_) => ErrorKind::ReturnToForbidden,
        FlowError::OidcState => ErrorKind::InvalidInput,
        FlowError::InvalidCredentials => ErrorKind::InvalidCredentials,
        FlowError::AddressNotVerified => ErrorKind::AddressNotVerified,
        FlowError::Identity(err) => identity_kind(err),
        FlowError::Credential(err) => credential_kind(err),
        FlowError::Session(err) => session_kind(*err),
        FlowError::Store(err) => store_kind(err),
    }
}

fn identity_kind(err: &IdentityError) -> ErrorKind {
    match err {
        IdentityError::Schema(SchemaError::Traits { .. }) => ErrorKind::InvalidTraits,
        IdentityError::Schema(SchemaError::NotFound { .. }) => ErrorKind::SchemaNotFound,
        IdentityError::Schema(SchemaError::Invalid { .. } | SchemaError::Read { .. }) => {
            ErrorKind::InvalidSchema
        }
        IdentityError::TooLarge { .. }
        | IdentityError::MetadataTooLarge { .. }
        | IdentityError::IdentifierTooLong { .. }
        | IdentityError::Nul(_)
        | IdentityError::ExternalIdLength { .. } => ErrorKind::InvalidInput,
    }
}

fn credential_kind(err: &CredentialError) -> ErrorKind {
    match err {
        CredentialError::Policy(_) => ErrorKind::PasswordPolicy,
        CredentialError::Password(PasswordError::Busy) => ErrorKind::Busy,
        CredentialError::Password(
            PasswordError::InvalidConfig(_)
            | PasswordError::UnsupportedHash { .. }
            | PasswordError::CostOutOfBounds { .. }
            | PasswordError::Hashing(_)
            | PasswordError::WorkerGone,
        )
        | CredentialError::Webauthn(_)
        | CredentialError::Sealing(_) => ErrorKind::Internal,
        CredentialError::Migration(MigrationError::Unavailable(_)) => {
            ErrorKind::PasswordMigrationUnavailable
        }
        CredentialError::Migration(MigrationError::NotConfigured) => {
            ErrorKind::PasswordMigrationNotConfigured
        }
    }
}

fn session_kind(err: SessionError) -> ErrorKind {
    match err {
        SessionError::Inactive(_) => ErrorKind::SessionInactive,
        SessionError::IdentityDisabled => ErrorKind::IdentityDisabled,
    }
}

fn store_kind(err: &StoreError) -> ErrorKind {
    match err {
        StoreError::Conflict { .. } => ErrorKind::Duplicate,
        StoreError::Stale { .. } | StoreError::Spent => ErrorKind::Conflict,
        StoreError::NotFound { .. } => ErrorKind::NotFound,
        StoreError::Corrupt(_)
        | StoreError::UnsupportedUrl { .. }
        | StoreError::Aborted
        | StoreError::Database(_) => ErrorKind::Internal,
    }
}

fn courier_kind(err: &CourierError) -> ErrorKind {
    match err {
        CourierError::Store(err) => store_kind(err),
        CourierError::Sealing(_) | CourierError::Unreadable(_) => ErrorKind::Internal,
        CourierError::NotRequeueable { .. } => ErrorKind::MessageNotRequeueable,
    }
}

/// `Result` with identa's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
