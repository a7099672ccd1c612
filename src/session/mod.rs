//! Sessions: who is signed in, since when, how strongly (AAL), with which methods, and
//! from which devices. A session is found by the hash of its token ([`token`]).

mod token;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{Aal, Identity};

pub(crate) use token::TokenCheck;
pub use token::{SessionToken, TokenHash};

/// One completed authentication step of a session (Kratos's AMR entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    /// The credential type used (`password`, `totp`, …).
    pub method: String,
    /// The level this step counts for.
    pub aal: Aal,
    /// When the step was completed.
    pub completed_at: DateTime<Utc>,
}

/// Where a session was used from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Device {
    /// Row id.
    #[serde(default = "Uuid::new_v4")]
    pub id: Uuid,
    /// Client IP address as the host saw it.
    pub ip_address: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// A coarse location, if the host knows one.
    pub location: Option<String>,
}

impl Device {
    /// A device seen at `ip_address` with `user_agent` (both truncated to sane lengths).
    pub fn new(ip_address: Option<&str>, user_agent: Option<&str>) -> Self {
        let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        Self {
            id: Uuid::new_v4(),
            ip_address: ip_address.map(|s| clip(s, 64)),
            user_agent: user_agent.map(|s| clip(s, 512)),
            location: None,
        }
    }
}

/// A session as stored: everything but the token, which only its holder has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The session's id (safe to show; not a credential).
    pub id: Uuid,
    /// Whose session it is.
    #[serde(skip)]
    pub identity_id: Uuid,
    /// False once revoked (see [`Session::is_usable`] for the full rule).
    pub active: bool,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When its holder last authenticated (refreshed by re-authentication).
    pub authenticated_at: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
    /// How strongly its holder authenticated.
    #[serde(rename = "authenticator_assurance_level")]
    pub aal: Aal,
    /// The steps its holder completed.
    pub authentication_methods: Vec<AuthenticationMethod>,
    /// Devices it was used from.
    pub devices: Vec<Device>,
}

impl Session {
    /// A new session for `identity`, which has just authenticated with `methods` (its
    /// level is the highest of theirs), and its token. Not stored.
    pub(crate) fn issue(
        identity: &Identity,
        methods: Vec<AuthenticationMethod>,
        device: Option<Device>,
        now: DateTime<Utc>,
        lifespan: chrono::Duration,
        keyring: &crate::secret::Keyring,
    ) -> Result<(Self, SessionToken), SessionError> {
        if !identity.is_active() {
            return Err(SessionError::IdentityDisabled);
        }
        let aal = methods.iter().map(|m| m.aal).max().unwrap_or(Aal::Aal1);
        let session = Self {
            id: Uuid::new_v4(),
            identity_id: identity.id,
            active: true,
            issued_at: now,
            authenticated_at: now,
            expires_at: now + lifespan,
            aal,
            authentication_methods: methods,
            devices: device.into_iter().collect(),
        };
        Ok((session, SessionToken::generate(keyring)))
    }

    /// Why a session cannot be used at `now`, or `None` if it can. The identity's state
    /// counts: a disabled identity's sessions are refused.
    pub fn unusable_reason(
        &self,
        identity: &Identity,
        now: DateTime<Utc>,
    ) -> Option<SessionRefusal> {
        if !self.active {
            Some(SessionRefusal::Revoked)
        } else if self.expires_at <= now {
            Some(SessionRefusal::Expired)
        } else if !identity.is_active() {
            Some(SessionRefusal::IdentityDisabled)
        } else {
            None
        }
    }

    /// Whether the session can be used at `now`.
    pub fn is_usable(&self, identity: &Identity, now: DateTime<Utc>) -> bool {
        self.unusable_reason(identity, now).is_none()
    }
}

/// Why a presented session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No session has that token.
    Unknown,
    /// The session was revoked (logout or admin).
    Revoked,
    /// The session's lifespan is over.
    Expired,
    /// The session's identity is inactive.
    IdentityDisabled,
}

impl SessionRefusal {
    /// A short human reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "no session matches the presented token",
            Self::Revoked => "the session was revoked",
            Self::Expired => "the session has expired",
            Self::IdentityDisabled => "the identity is disabled",
        }
    }
}

/// What went wrong with a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The presented session cannot be used; sign in again.
    #[error("no valid session: {}; sign in again", .0.as_str())]
    Inactive(SessionRefusal),
    /// The identity is disabled: it may not sign in or hold sessions.
    #[error("this account is disabled; an administrator can reactivate it")]
    IdentityDisabled,
}

/// A new session: the session with its identity, and its token, shown only now (identa
/// keeps only the token's hash).
#[derive(Debug)]
pub struct Login {
    /// The new session and its identity.
    pub session: AuthenticatedSession,
    /// The session token: give it to the client.
    pub token: SessionToken,
}

/// A session together with its identity: what `whoami` answers. Serializes to
/// Kratos's session JSON (`identity` embedded, without credentials).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthenticatedSession {
    /// The session.
    #[serde(flatten)]
    pub session: Session,
    /// Its identity.
    pub identity: Identity,
}
