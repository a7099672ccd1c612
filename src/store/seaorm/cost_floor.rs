//! The password cost floor's one row (`identa_password_cost_floor`, migration 15): read
//! as a whole, and raised — never lowered — in the transaction of the import that brings
//! a costlier hash.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};

use super::db_err;
use crate::credential::password::CostFloor;
use crate::store::StoreError;

/// Raises the stored floor to `floor` when `floor` is costlier (one statement: concurrent
/// imports each keep the costlier of the two).
pub(super) async fn raise_in(
    db: &impl ConnectionTrait,
    floor: &CostFloor,
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "UPDATE identa_password_cost_floor SET work = $1, dummy = $2 WHERE id = 1 AND work < $3"
        }
        _ => "UPDATE identa_password_cost_floor SET work = ?, dummy = ? WHERE id = 1 AND work < ?",
    };
    let work = i64::try_from(floor.work()).unwrap_or(i64::MAX);
    let values: Vec<Value> = vec![
        work.into(),
        floor.dummy().map(str::to_owned).into(),
        work.into(),
    ];
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The stored floor (`None` while nothing costlier than a dummy was imported).
pub(super) async fn read(db: &impl ConnectionTrait) -> Result<Option<CostFloor>, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT work, dummy FROM identa_password_cost_floor WHERE id = 1",
        ))
        .await
        .map_err(db_err)?;
    let Some(row) = row else { return Ok(None) };
    let work: i64 = row.try_get("", "work").map_err(db_err)?;
    let dummy: Option<String> = row.try_get("", "dummy").map_err(db_err)?;
    Ok((work > 0).then(|| CostFloor::from_stored(u64::try_from(work).unwrap_or(0), dummy)))
}
