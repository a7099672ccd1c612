//! The sea-orm store: SQLite (a file in WAL mode, or `sqlite::memory:` pinned to one
//! connection) and, with the `postgres` feature, PostgreSQL. Each write that changes one
//! thing is one transaction, a [`Commit`](crate::store::Commit) is one transaction;
//! housekeeping deletes statement by statement. Unique indexes turn clashes into
//! [`StoreError::Conflict`].

mod courier;
mod entity;
mod flow;
mod migration;
#[cfg(feature = "postgres")]
mod session_pg;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde_json::Value;
use uuid::Uuid;

use self::entity::{
    credential, credential_identifier, identity, recovery_address, session, session_event,
    verifiable_address,
};
use super::{
    AddressKind, IdentityStore, Page, PageRequest, SessionEvents, SessionStore, Store, StoreError,
};
use crate::identity::AddressVia;
use crate::identity::{
    Credential, CredentialType, Identity, RecoveryAddress, UnknownVariant, VerifiableAddress,
};
use crate::session::{Session, TokenHash};
use crate::store::SessionEvent;

/// The store on sea-orm. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SeaOrmStore {
    db: DatabaseConnection,
}

impl SeaOrmStore {
    /// Connects to `url` and runs the migrations:
    /// - `sqlite::memory:`: a private in-memory database (tests, demos);
    /// - `sqlite://path/to/file.db` or `sqlite:file.db`: a file, created if missing, in WAL
    ///   mode with foreign keys on and a 5 s busy timeout;
    /// - `postgres://…` (feature `postgres`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self {
            db: open(url).await?,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to `url` and applies the migrations up to the `last`-th only (counted from
    /// 1): a database as an older identa left it, for tests of the migrations after it
    /// (feature `testing`); [`SeaOrmStore::connect`] applies them all.
    #[cfg(feature = "testing")]
    pub async fn connect_migrated_up_to(url: &str, last: u32) -> Result<Self, StoreError> {
        let db = open(url).await?;
        migration::up_to(&db, last).await.map_err(db_err)?;
        Ok(Self { db })
    }

    /// The pool, for hosts that keep their own tables in the same database.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

async fn open(url: &str) -> Result<DatabaseConnection, StoreError> {
    let scheme = url.split(':').next().unwrap_or_default();
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false);
    // No ping before every query: a SQLite connection is a file handle that nothing drops;
    // PostgreSQL pings only connections that sat idle (below).
    opts.test_before_acquire(false);
    match scheme {
        "sqlite" => configure_sqlite(&mut opts, url),
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
fn configure_sqlite(opts: &mut ConnectOptions, url: &str) {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if in_memory {
        // One connection, held forever: a second one would see a different, empty database.
        opts.max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
        opts.map_sqlx_sqlite_opts(|o| o.foreign_keys(true));
    } else {
        opts.max_connections(4).min_connections(1);
        opts.map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    }
}

#[cfg(not(feature = "sqlite"))]
fn configure_sqlite(_: &mut ConnectOptions, _: &str) {}

/// Maps a database error, naming the unique index that refused a write without the value.
fn db_err(err: DbErr) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(msg)) => StoreError::Conflict {
            what: if msg.contains("identifier") {
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

fn corrupt(err: impl std::fmt::Display) -> StoreError {
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

/// Appends to the session event log (inside the caller's transaction).
async fn log_event(
    tx: &impl ConnectionTrait,
    identity_id: Uuid,
    session_id: Option<Uuid>,
) -> Result<(), StoreError> {
    session_event::Entity::insert(session_event::ActiveModel {
        seq: sea_orm::ActiveValue::NotSet,
        identity_id: Set(identity_id),
        session_id: Set(session_id),
    })
    .exec(tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

// ---- identities -------------------------------------------------------------------

/// An identity's addresses and credentials, stored as JSON on its row.
#[derive(serde::Serialize, serde::Deserialize)]
struct IdentityDocument {
    verifiable_addresses: Vec<VerifiableAddress>,
    recovery_addresses: Vec<RecoveryAddress>,
    credentials: Vec<CredentialDocument>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CredentialDocument {
    id: Uuid,
    credential_type: CredentialType,
    identifiers: Vec<String>,
    config: Value,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn identity_row(i: &Identity) -> Result<identity::ActiveModel, StoreError> {
    let document = IdentityDocument {
        verifiable_addresses: i.verifiable_addresses.clone(),
        recovery_addresses: i.recovery_addresses.clone(),
        credentials: i
            .credentials
            .values()
            .map(|c| CredentialDocument {
                id: c.id,
                credential_type: c.credential_type,
                identifiers: c.identifiers.clone(),
                config: c.config.clone(),
                version: c.version,
                created_at: c.created_at,
                updated_at: c.updated_at,
            })
            .collect(),
    };
    Ok(identity::ActiveModel {
        id: Set(i.id),
        schema_id: Set(i.schema_id.clone()),
        state: Set(i.state.as_str().to_owned()),
        state_changed_at: Set(i.state_changed_at),
        traits: Set(i.traits.clone()),
        metadata_public: Set(i.metadata_public.clone()),
        metadata_admin: Set(i.metadata_admin.clone()),
        document: Set(Some(to_json(&document)?)),
        created_at: Set(i.created_at),
        updated_at: Set(i.updated_at),
    })
}

/// An identity from its row alone, when the row carries its document.
fn identity_from_document(
    mut row: identity::Model,
) -> Result<Result<Identity, identity::Model>, StoreError> {
    let Some(document) = row.document.take() else {
        return Ok(Err(row));
    };
    let doc: IdentityDocument = serde_json::from_value(document).map_err(corrupt)?;
    identity_from_parts(row, doc).map(Ok)
}

/// An identity from its row's columns and its decoded document.
fn identity_from_parts(
    row: identity::Model,
    doc: IdentityDocument,
) -> Result<Identity, StoreError> {
    Ok(Identity {
        id: row.id,
        schema_id: row.schema_id,
        state: row.state.parse()?,
        state_changed_at: row.state_changed_at,
        traits: row.traits,
        verifiable_addresses: doc.verifiable_addresses,
        recovery_addresses: doc.recovery_addresses,
        metadata_public: row.metadata_public,
        metadata_admin: row.metadata_admin,
        credentials: doc
            .credentials
            .into_iter()
            .map(|c| {
                let credential = Credential {
                    id: c.id,
                    credential_type: c.credential_type,
                    identifiers: c.identifiers,
                    config: c.config,
                    version: c.version,
                    created_at: c.created_at,
                    updated_at: c.updated_at,
                };
                (c.credential_type, credential)
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Inserts everything an identity owns (its row must exist).
async fn insert_children(tx: &impl ConnectionTrait, i: &Identity) -> Result<(), StoreError> {
    let creds: Vec<_> = i.credentials.values().collect();
    if !creds.is_empty() {
        credential::Entity::insert_many(creds.iter().map(|c| credential::ActiveModel {
            id: Set(c.id),
            identity_id: Set(i.id),
            credential_type: Set(c.credential_type.as_str().to_owned()),
            config: Set(c.config.clone()),
            version: Set(c.version),
            created_at: Set(c.created_at),
            updated_at: Set(c.updated_at),
        }))
        .exec(tx)
        .await
        .map_err(db_err)?;
    }
    let identifiers: Vec<_> = creds
        .iter()
        .flat_map(|c| {
            c.identifiers
                .iter()
                .map(|identifier| credential_identifier::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    identity_id: Set(i.id),
                    credential_id: Set(c.id),
                    credential_type: Set(c.credential_type.as_str().to_owned()),
                    identifier: Set(identifier.clone()),
                })
        })
        .collect();
    if !identifiers.is_empty() {
        credential_identifier::Entity::insert_many(identifiers)
            .exec(tx)
            .await
            .map_err(db_err)?;
    }
    if !i.verifiable_addresses.is_empty() {
        verifiable_address::Entity::insert_many(i.verifiable_addresses.iter().map(|a| {
            verifiable_address::ActiveModel {
                id: Set(a.id),
                identity_id: Set(i.id),
                via: Set(a.via.as_str().to_owned()),
                value: Set(a.value.clone()),
                verified: Set(a.verified),
                status: Set(a.status.as_str().to_owned()),
                verified_at: Set(a.verified_at),
                created_at: Set(a.created_at),
                updated_at: Set(a.updated_at),
            }
        }))
        .exec(tx)
        .await
        .map_err(db_err)?;
    }
    if !i.recovery_addresses.is_empty() {
        recovery_address::Entity::insert_many(i.recovery_addresses.iter().map(|a| {
            recovery_address::ActiveModel {
                id: Set(a.id),
                identity_id: Set(i.id),
                via: Set(a.via.as_str().to_owned()),
                value: Set(a.value.clone()),
                created_at: Set(a.created_at),
                updated_at: Set(a.updated_at),
            }
        }))
        .exec(tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Loads the children of the given identity rows with one query per table.
async fn load_identities(
    db: &impl ConnectionTrait,
    rows: Vec<identity::Model>,
) -> Result<Vec<Identity>, StoreError> {
    // Rows that carry their document need no further query; older rows are assembled
    // from the child tables. The order of `rows` is kept.
    let order: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut loaded: HashMap<Uuid, Identity> = HashMap::with_capacity(rows.len());
    let mut legacy = Vec::new();
    for row in rows {
        match identity_from_document(row)? {
            Ok(identity) => {
                loaded.insert(identity.id, identity);
            }
            Err(row) => legacy.push(row),
        }
    }
    for identity in load_from_children(db, legacy).await? {
        loaded.insert(identity.id, identity);
    }
    Ok(order
        .into_iter()
        .filter_map(|id| loaded.remove(&id))
        .collect())
}

/// Assembles identities from the child tables (rows written before identity documents).
async fn load_from_children(
    db: &impl ConnectionTrait,
    rows: Vec<identity::Model>,
) -> Result<Vec<Identity>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    // Four independent reads: issued together, they cost one round trip's latency on a
    // pooled connection rather than four.
    let (creds, idents, verifiable, recovery) = tokio::try_join!(
        credential::Entity::find()
            .filter(credential::Column::IdentityId.is_in(ids.clone()))
            .all(db),
        credential_identifier::Entity::find()
            .filter(credential_identifier::Column::IdentityId.is_in(ids.clone()))
            .order_by_asc(credential_identifier::Column::Identifier)
            .all(db),
        verifiable_address::Entity::find()
            .filter(verifiable_address::Column::IdentityId.is_in(ids.clone()))
            .order_by_asc(verifiable_address::Column::CreatedAt)
            .order_by_asc(verifiable_address::Column::Value)
            .all(db),
        recovery_address::Entity::find()
            .filter(recovery_address::Column::IdentityId.is_in(ids))
            .order_by_asc(recovery_address::Column::CreatedAt)
            .order_by_asc(recovery_address::Column::Value)
            .all(db),
    )
    .map_err(db_err)?;

    let mut identifiers_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in idents {
        identifiers_of
            .entry(row.credential_id)
            .or_default()
            .push(row.identifier);
    }
    let mut out: Vec<Identity> = Vec::with_capacity(rows.len());
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        index.insert(row.id, out.len());
        out.push(Identity {
            id: row.id,
            schema_id: row.schema_id,
            state: row.state.parse()?,
            state_changed_at: row.state_changed_at,
            traits: row.traits,
            verifiable_addresses: Vec::new(),
            recovery_addresses: Vec::new(),
            metadata_public: row.metadata_public,
            metadata_admin: row.metadata_admin,
            credentials: BTreeMap::new(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
    }
    fn owner<'a>(
        index: &HashMap<Uuid, usize>,
        out: &'a mut [Identity],
        identity_id: Uuid,
    ) -> Result<&'a mut Identity, StoreError> {
        index
            .get(&identity_id)
            .and_then(|&i| out.get_mut(i))
            .ok_or_else(|| corrupt("child row without its identity"))
    }
    for c in creds {
        let credential_type: CredentialType = c.credential_type.parse()?;
        let identifiers = identifiers_of.remove(&c.id).unwrap_or_default();
        owner(&index, &mut out, c.identity_id)?.credentials.insert(
            credential_type,
            Credential {
                id: c.id,
                credential_type,
                identifiers,
                config: c.config,
                version: c.version,
                created_at: c.created_at,
                updated_at: c.updated_at,
            },
        );
    }
    for a in verifiable {
        owner(&index, &mut out, a.identity_id)?
            .verifiable_addresses
            .push(VerifiableAddress {
                id: a.id,
                value: a.value,
                via: a.via.parse().map_err(corrupt)?,
                verified: a.verified,
                status: a.status.parse()?,
                verified_at: a.verified_at,
                created_at: a.created_at,
                updated_at: a.updated_at,
            });
    }
    for a in recovery {
        owner(&index, &mut out, a.identity_id)?
            .recovery_addresses
            .push(RecoveryAddress {
                id: a.id,
                value: a.value,
                via: a.via.parse().map_err(corrupt)?,
                created_at: a.created_at,
                updated_at: a.updated_at,
            });
    }
    Ok(out)
}

async fn load_identity(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<Identity>, StoreError> {
    let Some(row) = identity::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    Ok(load_identities(db, vec![row]).await?.pop())
}

/// Replaces an identity's row and children and logs the change (inside `tx`).
pub(super) async fn replace_identity_in(
    tx: &impl ConnectionTrait,
    i: &Identity,
) -> Result<(), StoreError> {
    let updated = identity::Entity::update_many()
        .set(identity_row(i)?)
        .filter(identity::Column::Id.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    if updated.rows_affected == 0 {
        return Err(StoreError::NotFound { what: "identity" });
    }
    credential::Entity::delete_many()
        .filter(credential::Column::IdentityId.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    verifiable_address::Entity::delete_many()
        .filter(verifiable_address::Column::IdentityId.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    recovery_address::Entity::delete_many()
        .filter(recovery_address::Column::IdentityId.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    insert_children(tx, i).await?;
    log_event(tx, i.id, None).await
}

/// Inserts an identity with its children (inside `tx`).
pub(super) async fn insert_identity_in(
    tx: &impl ConnectionTrait,
    i: &Identity,
) -> Result<(), StoreError> {
    identity::Entity::insert(identity_row(i)?)
        .exec(tx)
        .await
        .map_err(db_err)?;
    insert_children(tx, i).await
}

/// Inserts a session under its token hash (inside `tx`).
pub(super) async fn insert_session_in(
    tx: &impl ConnectionTrait,
    s: &Session,
    token: &TokenHash,
) -> Result<(), StoreError> {
    let mut row = session_row(s)?;
    row.token_hash = Set(token.as_bytes().to_vec());
    session::Entity::insert(row)
        .exec(tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Replaces a session's mutable fields and logs the change (inside `tx`).
pub(super) async fn update_session_in(
    tx: &impl ConnectionTrait,
    s: &Session,
) -> Result<bool, StoreError> {
    let res = session::Entity::update_many()
        .set(session_row(s)?)
        .filter(session::Column::Id.eq(s.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    if res.rows_affected > 0 {
        log_event(tx, s.identity_id, Some(s.id)).await?;
    }
    Ok(res.rows_affected > 0)
}

/// Revokes an identity's active sessions but `keep` and logs the change (inside `tx`).
pub(super) async fn revoke_sessions_in(
    tx: &impl ConnectionTrait,
    identity_id: Uuid,
    keep: Option<Uuid>,
) -> Result<u64, StoreError> {
    let mut q = session::Entity::update_many()
        .col_expr(session::Column::Active, Expr::value(false))
        .filter(session::Column::IdentityId.eq(identity_id))
        .filter(session::Column::Active.eq(true));
    if let Some(keep) = keep {
        q = q.filter(session::Column::Id.ne(keep));
    }
    let revoked = q.exec(tx).await.map_err(db_err)?.rows_affected;
    if revoked > 0 {
        log_event(tx, identity_id, None).await?;
    }
    Ok(revoked)
}

#[async_trait]
impl IdentityStore for SeaOrmStore {
    async fn insert_identity(&self, i: &Identity) -> Result<(), StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        insert_identity_in(&tx, i).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn replace_identity(&self, i: &Identity) -> Result<(), StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        replace_identity_in(&tx, i).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
        load_identity(&self.db, id).await
    }

    async fn delete_identity(&self, id: Uuid) -> Result<bool, StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        let res = identity::Entity::delete_by_id(id)
            .exec(&tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected > 0 {
            log_event(&tx, id, None).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected > 0)
    }

    async fn list_identities(&self, page: PageRequest) -> Result<Page<Identity>, StoreError> {
        let size = page.clamped_size();
        let mut query = identity::Entity::find().order_by_asc(identity::Column::Id);
        if let Some(after) = page.after {
            query = query.filter(identity::Column::Id.gt(after));
        }
        let mut rows = query.limit(size + 1).all(&self.db).await.map_err(db_err)?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next = if more {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page {
            items: load_identities(&self.db, rows).await?,
            next,
        })
    }

    async fn identity_by_identifier(
        &self,
        credential_type: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let row = credential_identifier::Entity::find()
            .filter(credential_identifier::Column::CredentialType.eq(credential_type.as_str()))
            .filter(credential_identifier::Column::Identifier.eq(identifier))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => load_identity(&self.db, row.identity_id).await,
            None => Ok(None),
        }
    }

    async fn identity_by_address(
        &self,
        kind: AddressKind,
        via: AddressVia,
        value: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let owner = match kind {
            AddressKind::Recovery => recovery_address::Entity::find()
                .filter(recovery_address::Column::Via.eq(via.as_str()))
                .filter(recovery_address::Column::Value.eq(value))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|row| row.identity_id),
            AddressKind::Verifiable => verifiable_address::Entity::find()
                .filter(verifiable_address::Column::Via.eq(via.as_str()))
                .filter(verifiable_address::Column::Value.eq(value))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|row| row.identity_id),
        };
        match owner {
            Some(id) => load_identity(&self.db, id).await,
            None => Ok(None),
        }
    }
}

// ---- sessions ---------------------------------------------------------------------

fn session_from_row(row: session::Model) -> Result<Session, StoreError> {
    Ok(Session {
        id: row.id,
        identity_id: row.identity_id,
        active: row.active,
        issued_at: row.issued_at,
        authenticated_at: row.authenticated_at,
        expires_at: row.expires_at,
        aal: row.aal.parse()?,
        authentication_methods: serde_json::from_value(row.authentication_methods)
            .map_err(corrupt)?,
        devices: serde_json::from_value(row.devices).map_err(corrupt)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(corrupt)
}

fn session_row(s: &Session) -> Result<session::ActiveModel, StoreError> {
    Ok(session::ActiveModel {
        id: Set(s.id),
        identity_id: Set(s.identity_id),
        token_hash: sea_orm::ActiveValue::NotSet,
        active: Set(s.active),
        issued_at: Set(s.issued_at),
        authenticated_at: Set(s.authenticated_at),
        expires_at: Set(s.expires_at),
        aal: Set(s.aal.as_str().to_owned()),
        authentication_methods: Set(to_json(&s.authentication_methods)?),
        devices: Set(to_json(&s.devices)?),
    })
}

impl SeaOrmStore {
    /// The session of a token with its identity, or the identity's row when it predates
    /// identity documents. Hand-written on PostgreSQL, where it is the hot path of uncached
    /// lookups (see `session_pg`).
    async fn session_rows(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Session, Result<Identity, identity::Model>)>, StoreError> {
        #[cfg(feature = "postgres")]
        if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let pool = self.db.get_postgres_connection_pool();
            return session_pg::session_by_token(pool, token.as_bytes())
                .await
                .map_err(|e| db_err(DbErr::Query(sea_orm::RuntimeErr::SqlxError(e.into()))))?
                .map(|(session, identity, document)| {
                    let identity = match document {
                        Some(document) => Ok(identity_from_parts(identity, document)?),
                        None => Err(identity),
                    };
                    Ok((session, identity))
                })
                .transpose();
        }
        let Some((row, identity_row)) = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token.as_bytes().to_vec()))
            .find_also_related(identity::Entity)
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let identity_row = identity_row.ok_or_else(|| corrupt("session without its identity"))?;
        Ok(Some((
            session_from_row(row)?,
            identity_from_document(identity_row)?,
        )))
    }
}

#[async_trait]
impl SessionStore for SeaOrmStore {
    async fn insert_session(&self, s: &Session, token: &TokenHash) -> Result<(), StoreError> {
        insert_session_in(&self.db, s, token).await
    }

    async fn session_by_token(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Session, Identity)>, StoreError> {
        // Session and identity rows in one query; the identity's children follow only for
        // rows written before identity documents.
        let Some((session, identity)) = self.session_rows(token).await? else {
            return Ok(None);
        };
        let identity = match identity {
            Ok(identity) => identity,
            Err(legacy) => load_identities(&self.db, vec![legacy])
                .await?
                .pop()
                .ok_or_else(|| corrupt("session without its identity"))?,
        };
        Ok(Some((session, identity)))
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        session::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(session_from_row)
            .transpose()
    }

    async fn sessions_of(&self, identity_id: Uuid) -> Result<Vec<Session>, StoreError> {
        session::Entity::find()
            .filter(session::Column::IdentityId.eq(identity_id))
            .order_by_desc(session::Column::IssuedAt)
            .order_by_desc(session::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(session_from_row)
            .collect()
    }

    async fn list_sessions(
        &self,
        active: Option<bool>,
        page: PageRequest,
    ) -> Result<Page<Session>, StoreError> {
        let size = page.clamped_size();
        let mut q = session::Entity::find().order_by_asc(session::Column::Id);
        if let Some(active) = active {
            q = q.filter(session::Column::Active.eq(active));
        }
        if let Some(after) = page.after {
            q = q.filter(session::Column::Id.gt(after));
        }
        let mut rows = q.limit(size + 1).all(&self.db).await.map_err(db_err)?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let items = rows
            .into_iter()
            .map(session_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            items.last().map(|s| s.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn update_session(&self, s: &Session) -> Result<bool, StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        let updated = update_session_in(&tx, s).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(updated)
    }

    async fn revoke_session(
        &self,
        identity_id: Uuid,
        session_id: Uuid,
    ) -> Result<bool, StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        let res = session::Entity::update_many()
            .col_expr(session::Column::Active, Expr::value(false))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::IdentityId.eq(identity_id))
            .filter(session::Column::Active.eq(true))
            .exec(&tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected > 0 {
            log_event(&tx, identity_id, Some(session_id)).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected > 0)
    }

    async fn revoke_sessions(
        &self,
        identity_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        let revoked = revoke_sessions_in(&tx, identity_id, keep).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(revoked)
    }

    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let res = session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }

    async fn session_events_after(
        &self,
        cursor: i64,
        limit: u64,
    ) -> Result<SessionEvents, StoreError> {
        let (min, max): (Option<i64>, Option<i64>) = session_event::Entity::find()
            .select_only()
            .column_as(session_event::Column::Seq.min(), "min_seq")
            .column_as(session_event::Column::Seq.max(), "max_seq")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(db_err)?
            .unwrap_or((None, None));
        let (Some(min), Some(max)) = (min, max) else {
            // An empty log: nothing happened, or everything was pruned.
            return Ok(SessionEvents {
                events: Vec::new(),
                cursor,
                complete: true,
            });
        };
        if max <= cursor {
            return Ok(SessionEvents {
                events: Vec::new(),
                cursor: max,
                complete: max == cursor,
            });
        }
        // Events between the cursor and the oldest retained one may have been pruned.
        let pruned_past_cursor = cursor > 0 && min > cursor + 1;
        let rows = session_event::Entity::find()
            .filter(session_event::Column::Seq.gt(cursor))
            .order_by_asc(session_event::Column::Seq)
            .limit(limit.saturating_add(1))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let complete = !pruned_past_cursor && rows.len() as u64 <= limit;
        let events = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| match r.session_id {
                Some(id) => SessionEvent::Session(id),
                None => SessionEvent::Identity(r.identity_id),
            })
            .collect();
        Ok(SessionEvents {
            events,
            cursor: if complete {
                rows.last().map_or(cursor, |r| r.seq)
            } else {
                max
            },
            complete,
        })
    }

    async fn prune_session_events(&self, keep: u64) -> Result<u64, StoreError> {
        let max: Option<i64> = session_event::Entity::find()
            .select_only()
            .column_as(session_event::Column::Seq.max(), "max_seq")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(db_err)?
            .flatten();
        let Some(max) = max else { return Ok(0) };
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let res = session_event::Entity::delete_many()
            .filter(session_event::Column::Seq.lte(max.saturating_sub(keep)))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }
}
