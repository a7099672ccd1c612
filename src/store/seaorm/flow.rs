//! Flows on sea-orm: each flow is one row holding its JSON document, guarded by a version
//! column; a flow commit writes the flow and its effects in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use uuid::Uuid;

use super::entity::{courier_message, flow, known_pair, self_service_error, spent_code};
use super::identities::{insert_identity_in, remember_password_in, replace_identity_in};
use super::sessions::{insert_session_in, revoke_sessions_in, update_session_in};
use super::{SeaOrmStore, db_err};
use crate::secret::hex;
use crate::store::{
    Commit, CommitHook, FlowRecord, FlowStore, OutboxMessage, StoreError, Transaction, Write,
};

fn flow_row(f: &FlowRecord) -> flow::ActiveModel {
    flow::ActiveModel {
        id: Set(f.id),
        kind: Set(f.kind.clone()),
        flow_type: Set(f.flow_type.clone()),
        state: Set(f.state.clone()),
        version: Set(f.version),
        expires_at: Set(f.expires_at),
        document: Set(f.document.clone()),
        created_at: Set(f.created_at),
        updated_at: Set(f.updated_at),
    }
}

/// The outbox row for a queued message.
pub(super) fn outbox_row(m: &OutboxMessage) -> courier_message::ActiveModel {
    courier_message::ActiveModel {
        id: Set(m.id),
        status: Set(m.status.as_str().to_owned()),
        template: Set(m.template.clone()),
        recipient: Set(m.recipient.clone()),
        payload: Set(m.sealed.clone()),
        send_count: Set(i32::try_from(m.send_count).unwrap_or(i32::MAX)),
        last_error: Set(m.last_error.clone()),
        next_attempt_at: Set(m.next_attempt_at),
        useful_until: Set(m.useful_until),
        claimed_until: Set(None),
        claim: Set(None),
        created_at: Set(m.created_at),
        updated_at: Set(m.updated_at),
    }
}

#[async_trait]
impl FlowStore for SeaOrmStore {
    async fn flow(&self, id: Uuid) -> Result<Option<FlowRecord>, StoreError> {
        let row = flow::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.map(|row| FlowRecord {
            id: row.id,
            kind: row.kind,
            flow_type: row.flow_type,
            state: row.state,
            version: row.version,
            expires_at: row.expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            document: row.document,
        }))
    }

    async fn commit(
        &self,
        commit: &Commit<'_>,
        hook: Option<&dyn CommitHook>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        for write in &commit.writes {
            match write {
                Write::InsertFlow(f) => {
                    flow::Entity::insert(flow_row(f))
                        .exec(&tx)
                        .await
                        .map_err(db_err)?;
                }
                Write::UpdateFlow(f) => {
                    let res = flow::Entity::update_many()
                        .set(flow_row(f))
                        .filter(flow::Column::Id.eq(f.id))
                        .filter(flow::Column::Version.eq(f.version - 1))
                        .exec(&tx)
                        .await
                        .map_err(db_err)?;
                    if res.rows_affected != 1 {
                        return Err(StoreError::Stale { what: "flow" });
                    }
                }
                Write::Spend { marker, until } => {
                    let spent = spent_code::ActiveModel {
                        id: Set(*marker),
                        expires_at: Set(*until),
                    };
                    if let Err(err) = spent_code::Entity::insert(spent).exec(&tx).await {
                        return Err(match db_err(err) {
                            StoreError::Conflict { .. } => StoreError::Spent,
                            other => other,
                        });
                    }
                }
                Write::RememberPair { key, until } => {
                    let row = known_pair::ActiveModel {
                        key: Set(hex(key)),
                        expires_at: Set(*until),
                    };
                    known_pair::Entity::insert(row)
                        .on_conflict(
                            OnConflict::column(known_pair::Column::Key)
                                .update_column(known_pair::Column::ExpiresAt)
                                .to_owned(),
                        )
                        .exec(&tx)
                        .await
                        .map_err(db_err)?;
                }
                Write::InsertIdentity(identity) => {
                    insert_identity_in(&tx, std::slice::from_ref(identity)).await?
                }
                Write::RememberPassword {
                    identity_id,
                    hash,
                    at,
                    keep,
                } => remember_password_in(&tx, *identity_id, hash, *at, *keep).await?,
                Write::ReplaceIdentity(identity) => replace_identity_in(&tx, identity).await?,
                Write::RevokeSessions { identity_id, keep } => {
                    revoke_sessions_in(&tx, *identity_id, *keep).await?;
                }
                Write::InsertSession(session, token) => {
                    insert_session_in(&tx, session, token).await?;
                }
                Write::UpdateSession(session) => {
                    if !update_session_in(&tx, session).await? {
                        // Revoked (or deleted) since it was read.
                        return Err(StoreError::Stale { what: "session" });
                    }
                }
                Write::Enqueue(message) => {
                    courier_message::Entity::insert(outbox_row(message))
                        .exec(&tx)
                        .await
                        .map_err(db_err)?;
                }
            }
        }
        if let Some(hook) = hook {
            hook.run(&Transaction::new(&tx))
                .await
                .map_err(|_| StoreError::Aborted)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn delete_expired_flows(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        spent_code::Entity::delete_many()
            .filter(spent_code::Column::ExpiresAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        self_service_error::Entity::delete_many()
            .filter(self_service_error::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        let res = flow::Entity::delete_many()
            .filter(flow::Column::ExpiresAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }

    async fn insert_error(
        &self,
        id: Uuid,
        error: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self_service_error::Entity::insert(self_service_error::ActiveModel {
            id: Set(id),
            error: Set(error.clone()),
            created_at: Set(at),
        })
        .exec(&self.db)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn error(&self, id: Uuid) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(self_service_error::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(|row| row.error))
    }
}
