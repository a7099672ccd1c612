//! The `identa_courier_messages` table: the courier's outbox. `payload` is the sealed
//! (encrypted) message; `claim` and `claimed_until` mark a delivery in progress;
//! `useful_until` is when it stops being worth delivering (none on rows queued before
//! migration 8).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "identa_courier_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub status: String,
    pub template: String,
    pub recipient: String,
    pub payload: Vec<u8>,
    pub send_count: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTimeUtc,
    pub useful_until: Option<DateTimeUtc>,
    pub claimed_until: Option<DateTimeUtc>,
    pub claim: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
