//! Each identity's addresses and credentials as one JSON document on its row, so that an
//! identity (and `whoami`) loads with one query. The normalised tables stay the source of
//! uniqueness and of identifier lookups; rows written before this migration load from them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::json_null;

use super::Identities;

pub(super) struct IdentityDocument;

impl MigrationName for IdentityDocument {
    fn name(&self) -> &str {
        "m20261122_000003_identity_document"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdentityDocument {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Identities::Table)
                .add_column(json_null(Identities::Document))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Identities::Table)
                .drop_column(Identities::Document)
                .to_owned(),
        )
        .await
    }
}
