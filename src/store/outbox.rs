//! The outbox record: mail a flow queued, sealed, waiting for the courier's worker. The
//! courier composes and delivers; the store keeps the rows and claims them, each message by
//! one conditional update, so no message is claimed by two workers at once.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Page, PageRequest, StoreError};
use crate::identity::UnknownVariant;

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
    /// No more attempts: refused for good, unreadable, or past its useful time
    /// (`last_error` says which).
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

/// An outbox row as stored: the email is sealed with the cipher secret, bound to the row.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Message id.
    pub id: Uuid,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// The name of the template that made it (the courier's `TemplateKind`).
    pub template: String,
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
    /// When the message stops being worth delivering (the code in it expires, or the
    /// courier's maximum age has passed): the worker retries until then and abandons it
    /// after. `None` on messages queued before identa recorded it; the courier reads that
    /// as `created_at` plus its maximum age.
    pub useful_until: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("template", &self.template)
            .field("recipient", &self.recipient)
            .field("send_count", &self.send_count)
            .finish_non_exhaustive()
    }
}

/// How a failed delivery is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Try again, not before this time.
    At(DateTime<Utc>),
    /// Give up: the message is abandoned.
    Abandon,
}

/// The outbox. Messages are inserted by flow commits (see [`FlowStore`](super::FlowStore));
/// this trait is the courier's side: enqueue outside a flow, claim, record outcomes, list.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Inserts messages outside a flow (e.g. an admin-triggered code), all or nothing.
    async fn enqueue(&self, messages: &[OutboxMessage]) -> Result<(), StoreError>;
    /// Claims up to `limit` messages that are due at `now`: queued ones whose
    /// `next_attempt_at` has come, and processing ones whose claim lapsed (a worker died).
    /// Claimed messages are `processing` until `now + lease`; two workers never claim
    /// the same message at the same time.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
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
    /// Abandons a claimed message without an attempt (it is past its useful time),
    /// recording `reason`.
    async fn mark_expired(
        &self,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Puts an abandoned message back in the queue, due at `now` and useful until
    /// `useful_until`, its last error cleared. Only a message that is abandoned at the
    /// time of the update changes (one conditional update); returns whether it did.
    async fn requeue(
        &self,
        id: Uuid,
        useful_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Lists messages, newest first, optionally only those with `status`.
    async fn messages(
        &self,
        status: Option<MessageStatus>,
        page: PageRequest,
    ) -> Result<Page<OutboxMessage>, StoreError>;
    /// One message.
    async fn message(&self, id: Uuid) -> Result<Option<OutboxMessage>, StoreError>;
    /// Deletes sent and abandoned messages last changed before `before`; returns how many.
    /// Queued and processing messages are never deleted.
    async fn delete_finished_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
