//! The courier: emails the flows send (recovery and verification codes, …), written to a
//! persisted outbox in the same transaction as the flow change that caused them, then
//! delivered by a worker the host runs, retrying with backoff for as long as a message is
//! useful (until the code in it expires; other mail up to a maximum age). Bodies are
//! sealed with the cipher secret at rest, because they carry one-time codes.
//!
//! - [`template`]: the built-in templates and host overrides.
//! - [`mailer`]: the [`Mailer`] trait and the development [`LoggingMailer`].
//! - [`smtp`] (feature `smtp`): delivery over SMTP with lettre.
//! - [`worker`]: claiming due messages, sending, retrying, abandoning.

mod mailer;
#[cfg(feature = "smtp")]
pub mod smtp;
mod template;
mod worker;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::UnknownVariant;
use crate::store::{MessageStatus, OutboxMessage, StoreError};

pub use mailer::{LoggingMailer, MailError, Mailer};
pub use template::{Template, TemplateError, TemplateVars, Templates};
pub use worker::{CourierWorker, DispatchReport};

/// Which message a template renders (Kratos's template type names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// A recovery code for a known address.
    RecoveryCodeValid,
    /// Someone asked to recover an account for an address that has none.
    RecoveryCodeInvalid,
    /// A verification code for an address.
    VerificationCodeValid,
    /// Someone asked to verify an address that belongs to no account.
    VerificationCodeInvalid,
    /// Someone tried to sign up with an address that already has an account (sent
    /// instead of a verification code when registration is enumeration-safe).
    RegistrationAttempted,
}

impl TemplateKind {
    /// Every kind, for iteration.
    pub const ALL: [Self; 5] = [
        Self::RecoveryCodeValid,
        Self::RecoveryCodeInvalid,
        Self::VerificationCodeValid,
        Self::VerificationCodeInvalid,
        Self::RegistrationAttempted,
    ];

    /// Whether messages of this kind carry a one-time code (and are useless once it
    /// expired).
    pub fn carries_code(self) -> bool {
        match self {
            Self::RecoveryCodeValid | Self::VerificationCodeValid => true,
            Self::RecoveryCodeInvalid
            | Self::VerificationCodeInvalid
            | Self::RegistrationAttempted => false,
        }
    }

    /// The stable name (Kratos's template type).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecoveryCodeValid => "recovery_code_valid",
            Self::RecoveryCodeInvalid => "recovery_code_invalid",
            Self::VerificationCodeValid => "verification_code_valid",
            Self::VerificationCodeInvalid => "verification_code_invalid",
            Self::RegistrationAttempted => "registration_attempted",
        }
    }
}

impl fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TemplateKind {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownVariant::new("template", s))
    }
}

/// A rendered email. Its `Debug` leaves the bodies out (they carry codes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// The recipient address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// An outbox message with its email opened, as hosts and tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message id.
    pub id: Uuid,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// Which template made it.
    pub template: TemplateKind,
    /// The email.
    pub email: Email,
    /// Delivery attempts so far.
    pub send_count: u32,
    /// Why the last attempt failed, or why the message was abandoned.
    pub last_error: Option<String>,
    /// When the message stops being worth delivering (see [`RetryPolicy`]).
    pub useful_until: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What went wrong in the courier (delivery failures are [`MailError`]s, recorded on the
/// message, not errors of the courier).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CourierError {
    /// The outbox could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An email could not be serialised or sealed.
    #[error("an email could not be sealed: {0}")]
    Sealing(String),
    /// A stored message does not open with the configured cipher secrets (they changed
    /// without keeping the old one), or is damaged.
    #[error(
        "message {0} cannot be opened with the configured cipher secrets; keep the old secret in the list when rotating"
    )]
    Unreadable(Uuid),
    /// [`Courier::requeue`] refused: only an abandoned message that is still of use can be
    /// queued again.
    #[error("message {id} cannot be requeued: {refusal}")]
    NotRequeueable {
        /// The message.
        id: Uuid,
        /// Why not.
        refusal: RequeueRefusal,
    },
}

/// Why a message cannot be requeued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequeueRefusal {
    /// It was delivered already; requeueing would send it twice.
    AlreadySent,
    /// It is queued or being sent: it needs no requeue.
    StillQueued,
    /// The code it carries expired at this time; mailing it would send a code that no
    /// longer works.
    CodeExpired(DateTime<Utc>),
}

impl fmt::Display for RequeueRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadySent => f.write_str(
                "it was already sent, and requeueing would deliver it twice; only abandoned messages can be requeued",
            ),
            Self::StillQueued => f.write_str(
                "it is still queued for delivery; only abandoned messages can be requeued",
            ),
            Self::CodeExpired(at) => write!(
                f,
                "the code in it expired at {}; the user can ask for a new code instead",
                at.to_rfc3339()
            ),
        }
    }
}

/// How long a message that fails for a transient reason (server down, timeout, 4xx) keeps
/// being retried, and how often. There is no attempt limit: a message is retried until
/// it is no longer useful — until the code it carries expires, other mail until
/// `max_age` after it was queued — and then abandoned as expired. A permanent refusal
/// (5xx for the message or its recipient) abandons it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one. Default: 2 seconds.
    pub first_backoff: Duration,
    /// The longest wait between attempts, so mail goes out within this long after the
    /// server is back. Default: 60 seconds.
    pub max_backoff: Duration,
    /// How long mail without a code stays worth delivering after it was queued.
    /// Default: 24 hours.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_backoff: Duration::seconds(2),
            max_backoff: Duration::seconds(60),
            max_age: Duration::hours(24),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, after `attempts` failed ones.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(30);
        let factor = 1i32.checked_shl(exponent).unwrap_or(i32::MAX);
        self.first_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// How the courier delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourierConfig {
    /// Retrying transient failures. Default: [`RetryPolicy::default`] (2 s doubling up to
    /// 60 s, mail without a code kept 24 h).
    pub retry: RetryPolicy,
    /// How often the worker looks for due messages when idle. Default: 1 second.
    pub poll_interval: Duration,
    /// Messages claimed per round. Default: 10.
    pub batch_size: u64,
    /// How long a claim lasts before another worker may take the message over (a worker
    /// that died mid-send). Default: 60 seconds.
    pub lease: Duration,
}

impl Default for CourierConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            poll_interval: Duration::seconds(1),
            batch_size: 10,
            lease: Duration::seconds(60),
        }
    }
}

/// The courier of one engine: composes messages into the outbox, reads them back, and
/// delivers them (see [`worker`]). Get it with [`Identa::courier`](crate::Identa::courier).
#[derive(Clone)]
pub struct Courier {
    pub(crate) store: std::sync::Arc<dyn crate::store::Store>,
    pub(crate) keyring: std::sync::Arc<crate::secret::Keyring>,
    pub(crate) clock: std::sync::Arc<dyn crate::clock::Clock>,
    pub(crate) templates: std::sync::Arc<Templates>,
    pub(crate) config: CourierConfig,
}

impl fmt::Debug for Courier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Courier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a sealed payload is bound to, so a payload cannot be moved to another row.
pub(crate) fn seal_context(id: Uuid) -> Vec<u8> {
    let mut ctx = b"identa/courier/".to_vec();
    ctx.extend_from_slice(id.as_bytes());
    ctx
}

impl Courier {
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }

    /// Renders `kind` for `vars.to` and seals it into a queued message (not yet stored).
    pub(crate) fn compose(
        &self,
        kind: TemplateKind,
        vars: &TemplateVars,
    ) -> Result<OutboxMessage, CourierError> {
        let email = self.templates.render(kind, vars);
        let id = Uuid::now_v7();
        let json = serde_json::to_vec(&email).map_err(|e| CourierError::Sealing(e.to_string()))?;
        let sealed = self
            .keyring
            .seal(&seal_context(id), &json)
            .map_err(|e| CourierError::Sealing(e.to_string()))?;
        let now = self.now();
        let useful_until = vars
            .code_expires_at
            .unwrap_or(now + self.config.retry.max_age);
        Ok(OutboxMessage {
            id,
            status: MessageStatus::Queued,
            template: kind.as_str().to_owned(),
            recipient: email.to,
            sealed,
            send_count: 0,
            last_error: None,
            next_attempt_at: now,
            useful_until: Some(useful_until),
            created_at: now,
            updated_at: now,
        })
    }

    /// When `m` stops being worth delivering (messages queued before this was recorded:
    /// their creation plus the maximum age).
    pub(crate) fn useful_until(&self, m: &OutboxMessage) -> DateTime<Utc> {
        m.useful_until
            .unwrap_or(m.created_at + self.config.retry.max_age)
    }

    /// Opens a stored message.
    pub(crate) fn open(&self, m: OutboxMessage) -> Result<Message, CourierError> {
        let json = self
            .keyring
            .open(&seal_context(m.id), &m.sealed)
            .map_err(|_| CourierError::Unreadable(m.id))?;
        let email: Email =
            serde_json::from_slice(&json).map_err(|_| CourierError::Unreadable(m.id))?;
        let template = m.template.parse().map_err(StoreError::from)?;
        Ok(Message {
            id: m.id,
            status: m.status,
            template,
            email,
            send_count: m.send_count,
            useful_until: self.useful_until(&m),
            last_error: m.last_error,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl Courier {
    /// Puts an abandoned message back in the queue (after the mail server was fixed, say):
    /// the worker tries it at its next round, with the same [`RetryPolicy`]. A message
    /// with a code stays useful until that code expires, and one whose code has expired
    /// is refused ([`RequeueRefusal::CodeExpired`]); other mail gets a fresh
    /// [`RetryPolicy::max_age`]. A message that was sent, or is still queued, is refused
    /// too. Returns the message as requeued.
    pub async fn requeue(&self, id: Uuid) -> Result<Message, CourierError> {
        let refused = |refusal| CourierError::NotRequeueable { id, refusal };
        let stored = self.store.message(id).await?.ok_or(StoreError::NotFound {
            what: "courier message",
        })?;
        match stored.status {
            MessageStatus::Abandoned => {}
            MessageStatus::Sent => return Err(refused(RequeueRefusal::AlreadySent)),
            MessageStatus::Queued | MessageStatus::Processing => {
                return Err(refused(RequeueRefusal::StillQueued));
            }
        }
        let now = self.now();
        let useful_until = self.useful_until(&stored);
        let carries_code = stored
            .template
            .parse::<TemplateKind>()
            .is_ok_and(TemplateKind::carries_code);
        let useful_until = match (useful_until > now, carries_code) {
            (true, _) => useful_until,
            (false, true) => return Err(refused(RequeueRefusal::CodeExpired(useful_until))),
            (false, false) => now + self.config.retry.max_age,
        };
        if !self.store.requeue(id, useful_until, now).await? {
            // Someone else requeued it (or it was pruned) meanwhile.
            return match self.store.message(id).await? {
                Some(_) => Err(refused(RequeueRefusal::StillQueued)),
                None => Err(StoreError::NotFound {
                    what: "courier message",
                }
                .into()),
            };
        }
        tracing::info!(message = %id, "email requeued");
        let requeued = self.store.message(id).await?.ok_or(StoreError::NotFound {
            what: "courier message",
        })?;
        self.open(requeued)
    }

    /// Queues a message outside any flow (e.g. a host's own notice, or an admin-issued
    /// code); the worker delivers it. Returns its id.
    pub async fn enqueue(
        &self,
        kind: TemplateKind,
        vars: &TemplateVars,
    ) -> Result<Uuid, CourierError> {
        let message = self.compose(kind, vars)?;
        let id = message.id;
        self.store.enqueue(std::slice::from_ref(&message)).await?;
        Ok(id)
    }
}
