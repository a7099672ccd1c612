//! The `identa_identities` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "identa_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub schema_id: String,
    pub state: String,
    pub state_changed_at: Option<DateTimeUtc>,
    pub traits: Json,
    pub metadata_public: Option<Json>,
    pub metadata_admin: Option<Json>,
    /// The id another system knows the identity by; unique when set.
    pub external_id: Option<String>,
    /// Addresses and credentials as one JSON document, so an identity loads from its row.
    pub document: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
