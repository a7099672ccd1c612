//! The id another system knows an identity by (Kratos's `external_id`): a nullable
//! column on `identa_identities`, unique when set (both SQLite and PostgreSQL let any
//! number of rows leave it NULL).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_len_null;

#[derive(DeriveIden)]
enum IdentaIdentities {
    Table,
    ExternalId,
}

/// The unique index, named so that a clash reads as one on `external_id`.
const INDEX: &str = "identa_identities_external_id_key";

pub(super) struct IdentityExternalId;

impl MigrationName for IdentityExternalId {
    fn name(&self) -> &str {
        "m20261127_000012_identity_external_id"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdentityExternalId {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(IdentaIdentities::Table)
                .add_column(string_len_null(IdentaIdentities::ExternalId, 255))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(INDEX)
                .table(IdentaIdentities::Table)
                .col(IdentaIdentities::ExternalId)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(INDEX)
                .table(IdentaIdentities::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(IdentaIdentities::Table)
                .drop_column(IdentaIdentities::ExternalId)
                .to_owned(),
        )
        .await
    }
}
