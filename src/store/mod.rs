//! Persistence behind object-safe async traits, over *records*: identities with their
//! credentials and addresses, sessions, flows ([`FlowRecord`]: a few columns and an opaque
//! JSON document), outbox messages, the session-event log, throttle counters
//! ([`ThrottleStore`]). The store knows no rules: the flows decide, the engine hands the store a [`Commit`] of writes that succeed or fail
//! together. Writes that change one thing are whole operations (an identity with its
//! credentials and addresses in one transaction); callers never see a transaction.
//! Housekeeping (`delete_expired_*`, `prune_session_events`) and the courier's claiming
//! run statement by statement, each safe on its own. Uniqueness is the database's job: a
//! clash surfaces as [`StoreError::Conflict`], never as a read-then-write race.
//!
//! The one implementation is [`SeaOrmStore`] (SQLite by default, PostgreSQL with the
//! `postgres` feature). A host may implement the traits over its own storage.

mod outbox;
mod seaorm;
mod throttle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::credential::password::CostFloor;
use crate::identity::AddressVia;
use crate::identity::{CredentialType, ExternalId, Identity};
use crate::session::{Session, TokenHash};

pub use outbox::{MessageStatus, OutboxMessage, OutboxStore, Retry};
pub use seaorm::{SeaOrmStore, SqliteDurability, StoreOptions};
pub use throttle::{CounterId, ThrottleStore};

/// What went wrong in storage.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (an identifier or address already taken).
    #[error("already exists: {what}")]
    Conflict {
        /// What clashed (e.g. "credential identifier"), without the clashing value.
        what: &'static str,
    },
    /// The row to change does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was missing.
        what: &'static str,
    },
    /// A stored row could not be read back into the model (corruption or a newer schema).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// The URL names no engine this build supports.
    #[error("unsupported database URL `{scheme}`: use `sqlite://path`, `sqlite::memory:`{pg}")]
    UnsupportedUrl {
        /// The URL's scheme.
        scheme: String,
        /// A hint on the postgres feature.
        pg: &'static str,
    },
    /// The row changed since it was read (another request got there first).
    #[error("{what} was changed by another request")]
    Stale {
        /// What changed.
        what: &'static str,
    },
    /// A one-time value in the commit was spent already (by a racing request).
    #[error("a one-time code in this commit was already used")]
    Spent,
    /// Code running inside the transaction (a [`CommitHook`]) rolled it back; nothing was
    /// written. The hook keeps its own reason.
    #[error("rolled back by code running inside the transaction")]
    Aborted,
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(String),
}

/// A page request for listings (keyset pagination on the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (clamped to 1..=1000).
    pub page_size: u64,
    /// Continue after this id (the `next` of the previous page).
    pub after: Option<Uuid>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page_size: 250,
            after: None,
        }
    }
}

impl PageRequest {
    /// The page size within its bounds.
    pub fn clamped_size(&self) -> u64 {
        self.page_size.clamp(1, 1000)
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, ordered by id.
    pub items: Vec<T>,
    /// The token for the next page, if there is one.
    pub next: Option<Uuid>,
}

/// A change that makes cached entries stale, as read from the store's event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// One session changed (revoked, extended).
    Session(Uuid),
    /// Everything cached for an identity is stale (identity changed, deleted, or all
    /// its sessions revoked).
    Identity(Uuid),
}

/// Where a reader of the session event log stands.
///
/// Sequence numbers are taken inside the writers' transactions, so where writers run at
/// once (PostgreSQL) number `n` can commit after `n + 1`: moving past `n + 1` is not
/// enough. There the cursor also holds the last read's [`LogSnapshot`]: the next read
/// asks for every event whose writer that snapshot could not see, whatever its number. A
/// store whose writers are serialised (SQLite) leaves the snapshot out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventCursor {
    /// The newest sequence number read (0 before the first read).
    pub last: i64,
    /// Which writers the last read could see (`None` before the first read, and where
    /// writers are serialised).
    pub snapshot: Option<LogSnapshot>,
}

/// Which writers' events a read of the session event log could see, in the store's own
/// terms (PostgreSQL: the read's `pg_snapshot`, `xmin:xmax:xip,…`; its size is bounded by
/// the number of transactions that can run at once). Opaque to the reader, which only
/// hands it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot(String);

impl LogSnapshot {
    /// A snapshot as the store wrote it.
    pub fn new(snapshot: impl Into<String>) -> Self {
        Self(snapshot.into())
    }

    /// The snapshot as the store wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a store pushes session events as they commit (see
/// [`SessionStore::push_session_events`]). Called from the store's background task: keep
/// it cheap and non-blocking.
pub trait SessionEventSink: Send + Sync {
    /// An event that has just committed.
    fn event(&self, event: SessionEvent);
    /// The push is running: events committed from now on arrive; those committed before
    /// did not, so read the log before trusting anything cached.
    fn listening(&self);
    /// The push stopped (its connection was lost) and is being restarted: events may go
    /// unpushed meanwhile, so rely on reading the log.
    fn lost(&self);
}

/// A running push of session events; dropping it stops the push.
pub struct SessionPush {
    task: tokio::task::AbortHandle,
}

impl SessionPush {
    /// A push run by `task`, which is aborted when this is dropped.
    pub fn new(task: tokio::task::AbortHandle) -> Self {
        Self { task }
    }
}

impl Drop for SessionPush {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for SessionPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionPush")
    }
}

/// Events read from the session event log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionEvents {
    /// The events after the cursor asked for (and those behind it that committed since),
    /// by sequence number.
    pub events: Vec<SessionEvent>,
    /// The cursor to ask from next time.
    pub cursor: EventCursor,
    /// False when there were more events than asked for (or older ones were pruned):
    /// the reader must then drop everything it cached.
    pub complete: bool,
}

/// Identities with their credentials and addresses.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Inserts an identity with its credentials and addresses, all or nothing.
    /// A taken identifier or address is [`StoreError::Conflict`].
    async fn insert_identity(&self, identity: &Identity) -> Result<(), StoreError>;
    /// Inserts several identities with their credentials and addresses in one
    /// transaction (an import): all of them, or none if any is refused (a taken
    /// identifier, address or external id is [`StoreError::Conflict`]).
    async fn insert_identities(&self, identities: &[Identity]) -> Result<(), StoreError>;
    /// Inserts imported identities as [`insert_identities`](Self::insert_identities)
    /// does and, in the same transaction, raises the stored password cost floor to
    /// `floor` when `floor` is costlier (it is never lowered).
    async fn insert_imported_identities(
        &self,
        identities: &[Identity],
        floor: Option<&CostFloor>,
    ) -> Result<(), StoreError>;
    /// The password cost floor: the costliest imported hash awaiting re-hash, as imports
    /// raised it (`None` while none was costlier than the dummy).
    async fn password_cost_floor(&self) -> Result<Option<CostFloor>, StoreError>;
    /// Replaces an identity's row, credentials and addresses with the given ones, all or
    /// nothing, and logs a [`SessionEvent::Identity`].
    async fn replace_identity(&self, identity: &Identity) -> Result<(), StoreError>;
    /// Loads an identity with credentials and addresses.
    async fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError>;
    /// Deletes an identity with everything it owns (sessions included), logging a
    /// [`SessionEvent::Identity`]. False if absent.
    async fn delete_identity(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Lists identities by id.
    async fn list_identities(&self, page: PageRequest) -> Result<Page<Identity>, StoreError>;
    /// The identities with these ids that exist, ordered by id.
    async fn identities_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Identity>, StoreError>;
    /// The identity with this external id.
    async fn identity_by_external_id(
        &self,
        external_id: &ExternalId,
    ) -> Result<Option<Identity>, StoreError>;
    /// The identity whose credential of `credential_type` has this (normalised) identifier.
    async fn identity_by_identifier(
        &self,
        credential_type: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError>;
    /// The identity that has this (normalised) address of `kind` and `via`.
    async fn identity_by_address(
        &self,
        kind: AddressKind,
        via: AddressVia,
        value: &str,
    ) -> Result<Option<Identity>, StoreError>;
    /// The hashes of identity `id`'s previous passwords, newest first, at most `limit`
    /// ([`Write::RememberPassword`] keeps them).
    async fn password_history(&self, id: Uuid, limit: u8) -> Result<Vec<String>, StoreError>;
}

/// Which table of addresses to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// Addresses recovery codes may go to.
    Recovery,
    /// Addresses that can be verified.
    Verifiable,
}

/// Sessions, found by token hash.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session under the hash of its token.
    async fn insert_session(&self, session: &Session, token: &TokenHash) -> Result<(), StoreError>;
    /// The session with this token hash and its identity (the `whoami` read), whatever
    /// its state; the caller decides whether it is usable.
    async fn session_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Session, Identity)>, StoreError>;
    /// A session by id.
    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;
    /// An identity's sessions, newest first.
    async fn sessions_of(&self, identity_id: Uuid) -> Result<Vec<Session>, StoreError>;
    /// All sessions by id (keyset pagination); with `active`, only those whose `active`
    /// flag matches (expiry is not considered).
    async fn list_sessions(
        &self,
        active: Option<bool>,
        page: PageRequest,
    ) -> Result<Page<Session>, StoreError>;
    /// Replaces a session's mutable fields (authenticated_at, expires_at, aal, methods,
    /// devices) if it is still active, logging a [`SessionEvent::Session`]. False if it is
    /// absent or revoked: an update never brings a revoked session back.
    async fn update_session(&self, session: &Session) -> Result<bool, StoreError>;
    /// Revokes one session of an identity, logging a [`SessionEvent::Session`]. False if
    /// it was not there or already revoked.
    async fn revoke_session(&self, identity_id: Uuid, session_id: Uuid)
    -> Result<bool, StoreError>;
    /// Revokes every active session of an identity except `keep`, logging a
    /// [`SessionEvent::Identity`]; returns how many.
    async fn revoke_sessions(
        &self,
        identity_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<u64, StoreError>;
    /// Deletes sessions that expired before `before`; returns how many.
    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The logged events after `cursor`, at most `limit` of them. Must not miss an event
    /// that commits after a higher-numbered one (see [`EventCursor`]).
    async fn session_events_after(
        &self,
        cursor: &EventCursor,
        limit: u64,
    ) -> Result<SessionEvents, StoreError>;
    /// Starts pushing events to `sink` as they commit, from a background task on the
    /// current Tokio runtime, until the returned [`SessionPush`] is dropped; `None` when
    /// this store cannot push (the default, and SQLite) or no runtime is running. A push
    /// is only ever faster than reading the log, never a replacement for it.
    fn push_session_events(
        &self,
        sink: std::sync::Arc<dyn SessionEventSink>,
    ) -> Option<SessionPush> {
        let _ = sink;
        None
    }
    /// Deletes all but the newest `keep` events; returns how many went.
    async fn prune_session_events(&self, keep: u64) -> Result<u64, StoreError>;
    /// The latest expiry among the active sessions that existed when the schema was
    /// upgraded to tagged tokens (recorded once, by that upgrade): until then, a token in
    /// the older, untagged shape may still belong to a live session. `None` when there
    /// were none (a database created with tagged tokens).
    async fn untagged_tokens_until(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// A self-service flow as stored: a few columns the store can query by, and the flow's
/// whole document as JSON, which the store never interprets (like tower-sessions' record).
#[derive(Clone, PartialEq)]
pub struct FlowRecord {
    /// The flow's id.
    pub id: Uuid,
    /// Which flow (`login`, `registration`, …).
    pub kind: String,
    /// `browser` or `api`.
    pub flow_type: String,
    /// Its state (`choose_method`, …).
    pub state: String,
    /// Increases with each change; an update names the version it replaces.
    pub version: i64,
    /// When it stops accepting submissions.
    pub expires_at: DateTime<Utc>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The flow itself, as JSON.
    pub document: serde_json::Value,
}

impl std::fmt::Debug for FlowRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// One write of a [`Commit`].
#[derive(Debug)]
pub enum Write<'a> {
    /// A new flow.
    InsertFlow(FlowRecord),
    /// A changed flow whose `version` was incremented by one since it was loaded: the
    /// write succeeds only if the stored version is still `version - 1`, else
    /// [`StoreError::Stale`].
    UpdateFlow(FlowRecord),
    /// A new identity with its credentials and addresses (a taken identifier or address
    /// is [`StoreError::Conflict`]).
    InsertIdentity(&'a Identity),
    /// A changed identity, replaced whole; logs a [`SessionEvent::Identity`].
    ReplaceIdentity(&'a Identity),
    /// A new session under the hash of its token.
    InsertSession(&'a Session, TokenHash),
    /// A changed session (not its `active` flag); logs a [`SessionEvent::Session`].
    /// [`StoreError::Stale`] if it was revoked or deleted since it was read.
    UpdateSession(&'a Session),
    /// Revoke an identity's active sessions but `keep`; logs a [`SessionEvent::Identity`].
    RevokeSessions {
        /// Whose.
        identity_id: Uuid,
        /// The one that stays.
        keep: Option<Uuid>,
    },
    /// Mail for the outbox.
    Enqueue(OutboxMessage),
    /// The marker of a known pair (an identifier and a client address that signed in
    /// together; `key` is their MAC), kept until `until`: written, or moved to `until`
    /// if it exists.
    RememberPair {
        /// The pair's MAC.
        key: [u8; 32],
        /// Until when it is known.
        until: DateTime<Utc>,
    },
    /// A one-time value accepted (a TOTP step, a backup code), kept until `until`: if it
    /// was spent already the whole commit fails with [`StoreError::Spent`].
    Spend {
        /// The marker naming what was spent.
        marker: Uuid,
        /// How long it is kept.
        until: DateTime<Utc>,
    },
    /// The hash of a password an identity no longer has, added to its history as the
    /// newest; the history is then cut to its newest `keep` entries.
    RememberPassword {
        /// Whose.
        identity_id: Uuid,
        /// The previous password's hash.
        hash: &'a str,
        /// When it was replaced.
        at: DateTime<Utc>,
        /// How many entries the history keeps.
        keep: u8,
    },
}

/// Writes that succeed or fail together, in one transaction, in the order given.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// The writes.
    pub writes: Vec<Write<'a>>,
}

/// The transaction a commit runs in, as code writing beside identa sees it (a host's
/// after hook).
pub struct Transaction<'a> {
    sea_orm: Option<&'a sea_orm::DatabaseTransaction>,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transaction")
    }
}

impl<'a> Transaction<'a> {
    /// A transaction over a sea-orm one. [`SeaOrmStore`] hands these to hooks; a host's
    /// own tests of a hook can make one over a transaction they opened.
    pub fn new(tx: &'a sea_orm::DatabaseTransaction) -> Self {
        Self { sea_orm: Some(tx) }
    }

    /// A transaction with no database behind it: what a store other than [`SeaOrmStore`]
    /// hands out, and what a hook's unit test can use when the hook writes nothing.
    pub fn detached() -> Transaction<'static> {
        Transaction { sea_orm: None }
    }

    /// The sea-orm transaction, when the store is identa's [`SeaOrmStore`]: write your own
    /// rows through it and they commit (or roll back) with the flow.
    pub fn sea_orm(&self) -> Option<&'a sea_orm::DatabaseTransaction> {
        self.sea_orm
    }
}

/// The commit was rolled back by its [`CommitHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollback;

/// Runs inside a [`Commit`]'s transaction, after its writes and before the commit;
/// [`Rollback`] undoes everything and the commit fails with [`StoreError::Aborted`].
#[async_trait]
pub trait CommitHook: Send + Sync {
    /// Runs the hook.
    async fn run(&self, tx: &Transaction<'_>) -> Result<(), Rollback>;
}

/// Self-service flows.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// A flow by id.
    async fn flow(&self, id: Uuid) -> Result<Option<FlowRecord>, StoreError>;
    /// Writes `commit` in one transaction, running `hook` inside it before committing.
    async fn commit(
        &self,
        commit: &Commit<'_>,
        hook: Option<&dyn CommitHook>,
    ) -> Result<(), StoreError>;
    /// Deletes flows that expired before `before`, the browser errors recorded before it,
    /// and the spent one-time markers kept until before it; returns how many flows.
    async fn delete_expired_flows(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Records an error a browser flow redirects to (the JSON `GET /self-service/errors`
    /// shows).
    async fn insert_error(
        &self,
        id: Uuid,
        error: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A recorded browser error.
    async fn error(&self, id: Uuid) -> Result<Option<serde_json::Value>, StoreError>;
}

/// Everything identa persists.
#[async_trait]
pub trait Store: IdentityStore + SessionStore + FlowStore + OutboxStore + ThrottleStore {
    /// Brings the schema up to date (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
}
