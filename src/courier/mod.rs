//! The courier: emails the flows send (recovery and verification codes, …), written to a
//! persisted outbox in the same transaction as the flow change that caused them, then
//! delivered by a worker the host runs, with retries and backoff. Bodies are sealed with
//! the cipher secret at rest, because they carry one-time codes.
//!
//! - [`template`]: the built-in templates and host overrides.
//! - [`mailer`]: the [`Mailer`] trait and the development [`LoggingMailer`].
//! - [`smtp`] (feature `smtp`): delivery over SMTP with lettre.
//! - [`worker`]: claiming due messages, sending, retrying, abandoning.

pub mod mailer;
#[cfg(feature = "smtp")]
pub mod smtp;
pub mod template;
pub mod worker;

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::UnknownVariant;
use crate::store::{Page, PageRequest, StoreError};

pub use mailer::{LoggingMailer, MailError, Mailer};
pub use template::{Template, TemplateVars, Templates};
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
}

impl TemplateKind {
    /// Every kind, for iteration.
    pub const ALL: [Self; 4] = [
        Self::RecoveryCodeValid,
        Self::RecoveryCodeInvalid,
        Self::VerificationCodeValid,
        Self::VerificationCodeInvalid,
    ];

    /// The stable name (Kratos's template type).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecoveryCodeValid => "recovery_code_valid",
            Self::RecoveryCodeInvalid => "recovery_code_invalid",
            Self::VerificationCodeValid => "verification_code_valid",
            Self::VerificationCodeInvalid => "verification_code_invalid",
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

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for (another) delivery attempt.
    Queued,
    /// Claimed by a worker that is sending it.
    Processing,
    /// Delivered to the mail server.
    Sent,
    /// Failed too often; no more attempts.
    Abandoned,
}

impl MessageStatus {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Sent => "sent",
            Self::Abandoned => "abandoned",
        }
    }
}

impl FromStr for MessageStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(Self::Queued),
            "processing" => Ok(Self::Processing),
            "sent" => Ok(Self::Sent),
            "abandoned" => Ok(Self::Abandoned),
            other => Err(UnknownVariant::new("message status", other)),
        }
    }
}

/// An outbox row as stored: the email is sealed (see [`crate::secret`]).
#[derive(Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Message id.
    pub id: Uuid,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// Which template made it.
    pub template: TemplateKind,
    /// The recipient (kept in the clear so an admin can list messages by address).
    pub recipient: String,
    /// The sealed [`Email`] (JSON, encrypted and authenticated).
    pub sealed: Vec<u8>,
    /// Delivery attempts so far.
    pub send_count: u32,
    /// Why the last attempt failed (never contains the body).
    pub last_error: Option<String>,
    /// Not to be attempted before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for QueuedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedMessage")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("template", &self.template)
            .field("recipient", &self.recipient)
            .field("send_count", &self.send_count)
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
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// How a failed delivery is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Try again, not before this time.
    At(DateTime<Utc>),
    /// Give up: the message is abandoned.
    Abandon,
}

/// The outbox. Messages are inserted by flow commits (see `FlowStore`); this trait is
/// the worker's and the reader's side.
#[async_trait]
pub trait CourierStore: Send + Sync {
    /// Inserts messages outside a flow (e.g. an admin-triggered code), all or nothing.
    async fn enqueue(&self, messages: &[QueuedMessage]) -> Result<(), StoreError>;
    /// Atomically claims up to `limit` messages that are due at `now`: queued ones whose
    /// `next_attempt_at` has come, and processing ones whose claim lapsed (a worker died).
    /// Claimed messages are `processing` until `now + lease`; two workers never claim
    /// the same message at the same time.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<QueuedMessage>, StoreError>;
    /// Marks a claimed message sent (counting the attempt).
    async fn mark_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records a failed attempt: queued again for `Retry::At`, or abandoned.
    async fn mark_failed(
        &self,
        id: Uuid,
        error: &str,
        retry: Retry,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Lists messages, newest first, optionally only those with `status`.
    async fn messages(
        &self,
        status: Option<MessageStatus>,
        page: PageRequest,
    ) -> Result<Page<QueuedMessage>, StoreError>;
    /// One message.
    async fn message(&self, id: Uuid) -> Result<Option<QueuedMessage>, StoreError>;
    /// Deletes sent and abandoned messages last changed before `before`; returns how many.
    /// Queued and processing messages are never deleted.
    async fn delete_finished_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// How the courier delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourierConfig {
    /// Attempts before a message is abandoned. Default: 5 (Kratos's `message_retries`).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one. Default: 2 seconds.
    pub backoff_base: Duration,
    /// The longest wait between attempts. Default: 10 minutes.
    pub backoff_max: Duration,
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
            max_attempts: 5,
            backoff_base: Duration::seconds(2),
            backoff_max: Duration::minutes(10),
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
    ) -> Result<QueuedMessage, crate::Error> {
        let email = self.templates.render(kind, vars);
        let id = Uuid::now_v7();
        let json = serde_json::to_vec(&email)
            .map_err(|e| crate::Error::InvalidInput(format!("email not serialisable: {e}")))?;
        let sealed = self
            .keyring
            .seal(&seal_context(id), &json)
            .map_err(|e| crate::Error::Store(StoreError::Corrupt(e.to_string())))?;
        let now = self.now();
        Ok(QueuedMessage {
            id,
            status: MessageStatus::Queued,
            template: kind,
            recipient: email.to,
            sealed,
            send_count: 0,
            last_error: None,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
        })
    }

    /// Opens a stored message.
    pub(crate) fn open(&self, m: QueuedMessage) -> Result<Message, crate::Error> {
        let json = self
            .keyring
            .open(&seal_context(m.id), &m.sealed)
            .map_err(|e| crate::Error::Store(StoreError::Corrupt(e.to_string())))?;
        let email: Email = serde_json::from_slice(&json)
            .map_err(|e| crate::Error::Store(StoreError::Corrupt(e.to_string())))?;
        Ok(Message {
            id: m.id,
            status: m.status,
            template: m.template,
            email,
            send_count: m.send_count,
            last_error: m.last_error,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl Courier {
    /// Queues a message outside any flow (e.g. a host's own notice, or an admin-issued
    /// code); the worker delivers it. Returns its id.
    pub async fn enqueue(
        &self,
        kind: TemplateKind,
        vars: &TemplateVars,
    ) -> Result<Uuid, crate::Error> {
        let message = self.compose(kind, vars)?;
        let id = message.id;
        self.store.enqueue(std::slice::from_ref(&message)).await?;
        Ok(id)
    }
}
