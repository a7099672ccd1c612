//! The sea-orm store: SQLite (a file in WAL mode, every commit synced unless the host
//! chose [`SqliteDurability::Normal`], or `sqlite::memory:` pinned to one connection) and, with the `postgres` feature, PostgreSQL. Each write that changes one
//! thing is one transaction, a [`Commit`](crate::store::Commit) is one transaction;
//! housekeeping deletes statement by statement. Unique indexes turn clashes into
//! [`StoreError::Conflict`].

mod cost_floor;
mod courier;
mod entity;
mod flow;
mod identities;
mod migration;
mod session_events;
#[cfg(feature = "postgres")]
mod session_push;
mod session_read;
mod sessions;
mod throttle;

use std::time::Duration;

use async_trait::async_trait;
use sea_orm::{
    ActiveValue::Set, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr,
    EntityTrait, SqlErr,
};
use sea_orm_migration::MigratorTrait;
use serde_json::Value;
use uuid::Uuid;

use self::entity::session_event;
use super::{
    AddressKind, EventCursor, IdentityStore, Page, PageRequest, SessionEvents, SessionStore, Store,
    StoreError,
};
use crate::identity::UnknownVariant;

/// The store on sea-orm. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SeaOrmStore {
    db: DatabaseConnection,
    /// Statements run, when counted (feature `testing`: [`SeaOrmStore::counting_statements`]).
    statements: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// Read-only connections of its own to a SQLite file, for the uncached session read.
    #[cfg(feature = "sqlite")]
    file_reader: Option<std::sync::Arc<session_read::file::FileReader>>,
}

/// When a commit to a SQLite file is on disk (SQLite's `synchronous` setting; the file is
/// always in WAL mode). PostgreSQL and in-memory SQLite ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// `synchronous=FULL`: every commit is synced to disk before it returns. A committed
    /// registration, session or spent code survives an application crash, an OS crash and
    /// a power failure. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits are synced at WAL checkpoints only. A committed
    /// transaction survives an application crash, but the last ones before an OS crash or
    /// a power failure can be lost (the database stays consistent): an account that was
    /// created, a session that was revoked, a code that was spent can come back undone.
    /// Cheaper per write; see docs/performance.md.
    Normal,
}

impl SqliteDurability {
    /// The setting's name (`full`, `normal`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Normal => "normal",
        }
    }
}

impl std::str::FromStr for SqliteDurability {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            _ => Err(UnknownVariant::new("SQLite durability (full or normal)", s)),
        }
    }
}

/// How [`SeaOrmStore::connect_with`] opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOptions {
    /// For a SQLite file: when a commit is on disk. Default: [`SqliteDurability::Full`].
    pub sqlite_durability: SqliteDurability,
}

impl SeaOrmStore {
    /// Connects to `url` with the default [`StoreOptions`] and runs the migrations:
    /// - `sqlite::memory:`: a private in-memory database (tests, demos);
    /// - `sqlite://path/to/file.db` or `sqlite:file.db`: a file, created if missing, in WAL
    ///   mode with `synchronous=FULL` (see [`SqliteDurability`]), foreign keys on and a 5 s
    ///   busy timeout;
    /// - `postgres://…` (feature `postgres`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`SeaOrmStore::connect`] with `options`.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let store = Self::new(open(url, options).await?, url);
        store.migrate().await?;
        Ok(store)
    }

    /// The store on `db`, opened from `url` (which names the file a SQLite reader opens).
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    fn new(db: DatabaseConnection, url: &str) -> Self {
        Self {
            #[cfg(feature = "sqlite")]
            file_reader: sqlite_file(url)
                .map(|path| std::sync::Arc::new(session_read::file::FileReader::new(&path))),
            db,
            statements: None,
        }
    }

    /// Connects to `url` and applies the migrations up to the `last`-th only (counted from
    /// 1): a database as an older identa left it, for tests of the migrations after it
    /// (feature `testing`); [`SeaOrmStore::connect`] applies them all.
    #[cfg(feature = "testing")]
    pub async fn connect_migrated_up_to(url: &str, last: u32) -> Result<Self, StoreError> {
        let db = open(url, StoreOptions::default()).await?;
        migration::up_to(&db, last).await.map_err(db_err)?;
        Ok(Self::new(db, url))
    }

    /// This store (same pool) with a count of every statement it runs, reads included:
    /// for tests and benches that prove a path leaves the database alone (feature
    /// `testing`).
    #[cfg(feature = "testing")]
    pub fn counting_statements(&self) -> (Self, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        use std::sync::atomic::{AtomicU64, Ordering};
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let mut db = self.db.clone();
        let seen = count.clone();
        db.set_metric_callback(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        });
        let store = Self {
            db,
            statements: Some(count.clone()),
            #[cfg(feature = "sqlite")]
            file_reader: self.file_reader.clone(),
        };
        (store, count)
    }

    /// Counts a statement run outside sea-orm (on its sqlx pool), when counting.
    #[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
    fn count_raw_statement(&self) {
        if let Some(count) = &self.statements {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The pool, for hosts that keep their own tables in the same database.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

async fn open(url: &str, options: StoreOptions) -> Result<DatabaseConnection, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false);
    // No ping before every query: a SQLite connection is a file handle that nothing drops;
    // PostgreSQL pings only connections that sat idle (below).
    opts.test_before_acquire(false);
    match scheme {
        "sqlite" => configure_sqlite(&mut opts, url, options.sqlite_durability),
        "postgres" | "postgresql" if cfg!(feature = "postgres") => {
            // sqlx pings every connection it hands out (a round trip per query); only one
            // idle long enough to have been dropped by the server or a firewall is checked.
            opts.max_connections(16)
                .min_connections(1)
                .test_before_acquire_if_idle_for(Duration::from_secs(30));
        }
        _ => {
            return Err(StoreError::UnsupportedUrl {
                scheme: scheme.chars().take(32).collect(),
                pg: if cfg!(feature = "postgres") {
                    " or `postgres://…`"
                } else {
                    " (PostgreSQL needs the `postgres` feature)"
                },
            });
        }
    }
    Database::connect(opts).await.map_err(db_err)
}

#[cfg(feature = "sqlite")]
fn configure_sqlite(opts: &mut ConnectOptions, url: &str, durability: SqliteDurability) {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let synchronous = move || match durability {
        SqliteDurability::Full => SqliteSynchronous::Full,
        SqliteDurability::Normal => SqliteSynchronous::Normal,
    };
    if is_in_memory(url) {
        // One connection, held forever: a second one would see a different, empty database.
        opts.max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
        opts.map_sqlx_sqlite_opts(|o| o.foreign_keys(true));
    } else {
        opts.max_connections(4).min_connections(1);
        opts.map_sqlx_sqlite_opts(move |o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(synchronous())
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    }
}

/// The file a `sqlite:` URL names, when it names one (not an in-memory database).
#[cfg(feature = "sqlite")]
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") || is_in_memory(url) {
        return None;
    }
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_owned())
}

#[cfg(feature = "sqlite")]
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[cfg(not(feature = "sqlite"))]
fn configure_sqlite(_: &mut ConnectOptions, _: &str, _: SqliteDurability) {}

/// Maps a database error, naming the unique index that refused a write without the value.
pub(super) fn db_err(err: DbErr) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(msg)) => StoreError::Conflict {
            what: if msg.contains("external_id") {
                "external id"
            } else if msg.contains("identifier") {
                "credential identifier"
            } else if msg.contains("verifiable") {
                "verifiable address"
            } else if msg.contains("recovery") {
                "recovery address"
            } else if msg.contains("token") {
                "session token"
            } else {
                "record"
            },
        },
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => StoreError::NotFound { what: "identity" },
        _ => StoreError::Database(err.to_string()),
    }
}

pub(super) fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

impl From<UnknownVariant> for StoreError {
    fn from(err: UnknownVariant) -> Self {
        corrupt(err)
    }
}

#[async_trait]
impl Store for SeaOrmStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        migration::Migrator::up(&self.db, None)
            .await
            .map_err(db_err)
    }
}

/// Appends to the session event log (inside the caller's transaction); on PostgreSQL also
/// notifies it, delivered when the transaction commits (see `session_push`).
pub(super) async fn log_event(
    tx: &impl ConnectionTrait,
    identity_id: Uuid,
    session_id: Option<Uuid>,
) -> Result<(), StoreError> {
    #[cfg(feature = "postgres")]
    if tx.get_database_backend() == sea_orm::DbBackend::Postgres {
        tx.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            session_push::LOG_AND_NOTIFY,
            [identity_id.into(), session_id.into()],
        ))
        .await
        .map_err(db_err)?;
        return Ok(());
    }
    session_event::Entity::insert(session_event::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        identity_id: Set(identity_id),
        session_id: Set(session_id),
        tx: sea_orm::ActiveValue::NotSet, // PostgreSQL's default: this transaction's id
    })
    .exec(tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

// ---- identities -------------------------------------------------------------------

/// A value as JSON for a column.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(corrupt)
}
