//! The outbox on sea-orm. Claiming is an atomic conditional update per message (portable
//! to SQLite and PostgreSQL): of several workers racing for a message, exactly one update
//! matches, so a message is never sent twice at the same time.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::entity::courier_message::{self, Column};
use super::{SeaOrmStore, corrupt, db_err};
use crate::store::{
    MessageStatus, OutboxMessage, OutboxStore, Page, PageRequest, Retry, StoreError,
};

fn from_row(row: courier_message::Model) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: row.id,
        status: row.status.parse()?,
        template: row.template,
        recipient: row.recipient,
        sealed: row.payload,
        send_count: u32::try_from(row.send_count).map_err(corrupt)?,
        last_error: row.last_error,
        next_attempt_at: row.next_attempt_at,
        useful_until: row.useful_until,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Messages a worker may take at `now`: queued and due, or claimed by a worker whose
/// claim lapsed.
fn due(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(Column::Status.eq(MessageStatus::Queued.as_str()))
                .add(Column::NextAttemptAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(Column::Status.eq(MessageStatus::Processing.as_str()))
                .add(Column::ClaimedUntil.lt(now)),
        )
}

#[async_trait]
impl OutboxStore for SeaOrmStore {
    async fn enqueue(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        courier_message::Entity::insert_many(messages.iter().map(super::flow::outbox_row))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let candidates: Vec<Uuid> = courier_message::Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(due(now))
            .order_by_asc(Column::NextAttemptAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db_err)?;
        let mut claimed = Vec::new();
        for id in candidates {
            let claim = Uuid::new_v4();
            let res = courier_message::Entity::update_many()
                .col_expr(
                    Column::Status,
                    Expr::value(MessageStatus::Processing.as_str()),
                )
                .col_expr(Column::Claim, Expr::value(claim))
                .col_expr(Column::ClaimedUntil, Expr::value(now + lease))
                .col_expr(Column::UpdatedAt, Expr::value(now))
                .filter(Column::Id.eq(id))
                .filter(due(now))
                .exec(&self.db)
                .await
                .map_err(db_err)?;
            if res.rows_affected == 1
                && let Some(row) = courier_message::Entity::find_by_id(id)
                    .filter(Column::Claim.eq(claim))
                    .one(&self.db)
                    .await
                    .map_err(db_err)?
            {
                claimed.push(from_row(row)?);
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        released(id, now)
            .col_expr(Column::Status, Expr::value(MessageStatus::Sent.as_str()))
            .col_expr(Column::SendCount, Expr::col(Column::SendCount).add(1))
            .col_expr(Column::LastError, Expr::value(Option::<String>::None))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: Uuid,
        error: &str,
        retry: Retry,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(1000).collect();
        let mut update = released(id, now)
            .col_expr(Column::SendCount, Expr::col(Column::SendCount).add(1))
            .col_expr(Column::LastError, Expr::value(error));
        update = match retry {
            Retry::At(at) => update
                .col_expr(Column::Status, Expr::value(MessageStatus::Queued.as_str()))
                .col_expr(Column::NextAttemptAt, Expr::value(at)),
            Retry::Abandon => update.col_expr(
                Column::Status,
                Expr::value(MessageStatus::Abandoned.as_str()),
            ),
        };
        update.exec(&self.db).await.map_err(db_err)?;
        Ok(())
    }

    async fn mark_expired(
        &self,
        id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let reason: String = reason.chars().take(1000).collect();
        released(id, now)
            .col_expr(
                Column::Status,
                Expr::value(MessageStatus::Abandoned.as_str()),
            )
            .col_expr(Column::LastError, Expr::value(reason))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn requeue(
        &self,
        id: Uuid,
        useful_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let res = courier_message::Entity::update_many()
            .col_expr(Column::Status, Expr::value(MessageStatus::Queued.as_str()))
            .col_expr(Column::NextAttemptAt, Expr::value(now))
            .col_expr(Column::UsefulUntil, Expr::value(useful_until))
            .col_expr(Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(id))
            .filter(Column::Status.eq(MessageStatus::Abandoned.as_str()))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected == 1)
    }

    async fn messages(
        &self,
        status: Option<MessageStatus>,
        page: PageRequest,
    ) -> Result<Page<OutboxMessage>, StoreError> {
        let size = page.clamped_size();
        let mut q = courier_message::Entity::find().order_by_desc(Column::Id);
        if let Some(status) = status {
            q = q.filter(Column::Status.eq(status.as_str()));
        }
        if let Some(after) = page.after {
            q = q.filter(Column::Id.lt(after));
        }
        let mut rows = q.limit(size + 1).all(&self.db).await.map_err(db_err)?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let items = rows
            .into_iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            items.last().map(|m| m.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn delete_finished_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let res = courier_message::Entity::delete_many()
            .filter(Column::Status.is_in([
                MessageStatus::Sent.as_str(),
                MessageStatus::Abandoned.as_str(),
            ]))
            .filter(Column::UpdatedAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected)
    }

    async fn message(&self, id: Uuid) -> Result<Option<OutboxMessage>, StoreError> {
        courier_message::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db_err)?
            .map(from_row)
            .transpose()
    }
}

/// An update of message `id` that releases its worker's claim, stamped `now`; the caller
/// adds what the attempt's outcome sets.
fn released(id: Uuid, now: DateTime<Utc>) -> sea_orm::UpdateMany<courier_message::Entity> {
    courier_message::Entity::update_many()
        .col_expr(Column::Claim, Expr::value(Option::<Uuid>::None))
        .col_expr(
            Column::ClaimedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
}
