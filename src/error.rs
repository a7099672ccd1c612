//! The error every engine call returns, with a stable [`ErrorKind`] that hosts and the
//! HTTP layer map to responses. Messages say what went wrong and what to do next, and
//! never carry a secret.

use uuid::Uuid;

use crate::credential::password::{PasswordError, PolicyViolation};
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
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { what } => Self::Duplicate { what },
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
            Self::IdentityNotFound(_) | Self::SessionNotFound(_) => ErrorKind::NotFound,
            Self::SessionInactive(_) => ErrorKind::SessionInactive,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Password(_) | Self::Store(_) => ErrorKind::Internal,
        }
    }
}

/// `Result` with identa's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
