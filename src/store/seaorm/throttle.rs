//! Throttle counters on sea-orm: `INSERT … ON CONFLICT DO UPDATE … RETURNING`, one
//! statement, so concurrent attempts on any instance each get their own count; and the
//! known-pair markers' reads and housekeeping (commits write them).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, Statement, Value,
};

use super::entity::{known_pair, throttle_counter};
use super::{SeaOrmStore, db_err};
use crate::secret::hex;
use crate::store::{CounterId, StoreError, ThrottleStore};

/// The upsert, with the backend's placeholders.
fn upsert_sql(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => {
            "INSERT INTO identa_throttle_counters (key, window_start, count, expires_at) \
             VALUES ($1, $2, 1, $3) \
             ON CONFLICT (key, window_start) \
             DO UPDATE SET count = identa_throttle_counters.count + 1 \
             RETURNING count"
        }
        _ => {
            "INSERT INTO identa_throttle_counters (key, window_start, count, expires_at) \
             VALUES (?, ?, 1, ?) \
             ON CONFLICT (key, window_start) \
             DO UPDATE SET count = identa_throttle_counters.count + 1 \
             RETURNING count"
        }
    }
}

#[async_trait]
impl ThrottleStore for SeaOrmStore {
    async fn count_attempt(
        &self,
        counter: CounterId<'_>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let backend = self.db.get_database_backend();
        let values: Vec<Value> = vec![
            hex(counter.key).into(),
            counter.window_start.into(),
            expires_at.into(),
        ];
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                upsert_sql(backend),
                values,
            ))
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::Database("the counter upsert returned no row".into()))?;
        let count: i32 = row.try_get("", "count").map_err(db_err)?;
        Ok(u32::try_from(count).unwrap_or(0))
    }

    async fn uncount_attempt(&self, counter: CounterId<'_>) -> Result<(), StoreError> {
        throttle_counter::Entity::update_many()
            .col_expr(
                throttle_counter::Column::Count,
                Expr::col(throttle_counter::Column::Count).sub(1),
            )
            .filter(throttle_counter::Column::Key.eq(hex(counter.key)))
            .filter(throttle_counter::Column::WindowStart.eq(counter.window_start))
            .filter(throttle_counter::Column::Count.gt(0))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn clear_attempts(&self, key: &[u8; 32]) -> Result<(), StoreError> {
        throttle_counter::Entity::delete_many()
            .filter(throttle_counter::Column::Key.eq(hex(key)))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_expired_attempts(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = throttle_counter::Entity::delete_many()
            .filter(throttle_counter::Column::ExpiresAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        known_pair::Entity::delete_many()
            .filter(known_pair::Column::ExpiresAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected)
    }

    async fn known_pair_until(&self, key: &[u8; 32]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = known_pair::Entity::find_by_id(hex(key))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        Ok(row.map(|row| row.expires_at))
    }
}
