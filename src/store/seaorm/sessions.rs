//! Sessions on sea-orm: rows found by the hash of their token, their changes logged in
//! the session event log (what other processes' caches read), and the `whoami` read.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::entity::{identity, session, session_event};
use super::{EventCursor, Page, PageRequest, SessionEvents, SessionStore, StoreError};
use crate::identity::Identity;
use crate::session::{Session, TokenHash};

use super::identities::{identity_from_document, load_identities};
use super::{SeaOrmStore, corrupt, db_err, log_event, to_json};

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
    // Only a session still active is changed, and an update never sets `active`: a copy
    // read before a revocation cannot bring the session back.
    let mut row = session_row(s)?;
    row.active = sea_orm::ActiveValue::NotSet;
    let res = session::Entity::update_many()
        .set(row)
        .filter(session::Column::Id.eq(s.id))
        .filter(session::Column::Active.eq(true))
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

/// A session with its identity, or the identity's row when it predates identity documents.
type SessionRows = Option<(Session, Result<Identity, identity::Model>)>;

pub(super) fn session_from_row(row: session::Model) -> Result<Session, StoreError> {
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

pub(super) fn session_row(s: &Session) -> Result<session::ActiveModel, StoreError> {
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
    /// identity documents. Hand-written on PostgreSQL and SQLite, where it is the hot path
    /// of uncached lookups (see `session_read`).
    async fn session_rows(&self, token: &TokenHash) -> Result<SessionRows, StoreError> {
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        fn assemble(
            found: Result<Option<super::session_read::Found>, sea_orm::sqlx::Error>,
        ) -> Result<SessionRows, StoreError> {
            found
                .map_err(|e| {
                    db_err(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(
                        e.into(),
                    )))
                })?
                .map(|(session, identity, document)| {
                    let identity = match document {
                        Some(document) => {
                            Ok(super::identities::identity_from_parts(identity, document)?)
                        }
                        None => Err(identity),
                    };
                    Ok((session, identity))
                })
                .transpose()
        }
        match self.db.get_database_backend() {
            #[cfg(feature = "postgres")]
            sea_orm::DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                // This read bypasses sea-orm's statement callback: count it here.
                self.count_raw_statement();
                return assemble(
                    super::session_read::postgres::session_by_token(pool, token.as_bytes()).await,
                );
            }
            #[cfg(feature = "sqlite")]
            sea_orm::DbBackend::Sqlite => {
                self.count_raw_statement();
                if let Some(reader) = &self.file_reader {
                    match reader.session_by_token(token.as_bytes()) {
                        Ok(found) => return assemble(Ok(found)),
                        Err(why) => tracing::debug!(%why, "session read goes through the pool"),
                    }
                }
                let pool = self.db.get_sqlite_connection_pool();
                return assemble(
                    super::session_read::sqlite::session_by_token(pool, token.as_bytes()).await,
                );
            }
            _ => {}
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

    async fn untagged_tokens_until(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                "SELECT untagged_valid_until FROM identa_session_token_tags WHERE id = 1",
            ))
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => row
                .try_get::<Option<DateTime<Utc>>>("", "untagged_valid_until")
                .map_err(db_err),
            None => Ok(None),
        }
    }

    async fn session_events_after(
        &self,
        cursor: &EventCursor,
        limit: u64,
    ) -> Result<SessionEvents, StoreError> {
        self.read_session_events(cursor, limit).await
    }

    #[cfg(feature = "postgres")]
    fn push_session_events(
        &self,
        sink: std::sync::Arc<dyn crate::store::SessionEventSink>,
    ) -> Option<crate::store::SessionPush> {
        if self.db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return None;
        }
        super::session_push::start(self.db.get_postgres_connection_pool().clone(), sink)
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
