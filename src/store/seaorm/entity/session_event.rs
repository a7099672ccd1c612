//! The `identa_session_events` table: an append-only log of changes that make cached
//! sessions stale, read by every engine sharing the database.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "identa_session_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub identity_id: Uuid,
    pub session_id: Option<Uuid>,
    /// The writer's transaction id (PostgreSQL; set by the column's default).
    pub tx: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
