//! The `identa_sessions` table. The token is kept only as its SHA-256 digest (`token_hash`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "identa_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub identity_id: Uuid,
    pub token_hash: Vec<u8>,
    pub active: bool,
    pub issued_at: DateTimeUtc,
    pub authenticated_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub aal: String,
    pub authentication_methods: Json,
    pub devices: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::identity::Entity",
        from = "Column::IdentityId",
        to = "super::identity::Column::Id"
    )]
    Identity,
}

impl Related<super::identity::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Identity.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
