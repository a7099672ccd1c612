//! Password history: the hashes of an identity's previous passwords, numbered per identity
//! (`position`, newest highest), kept only as many as the configured history holds and
//! deleted with the identity.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, text, timestamp_with_time_zone, uuid};

#[derive(DeriveIden)]
enum IdentaPasswordHistory {
    Table,
    Id,
    IdentityId,
    Position,
    HashedPassword,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdentaIdentities {
    Table,
    Id,
}

pub(super) struct PasswordHistory;

impl MigrationName for PasswordHistory {
    fn name(&self) -> &str {
        "m20261127_000013_password_history"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PasswordHistory {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaPasswordHistory::Table)
                .col(uuid(IdentaPasswordHistory::Id).primary_key())
                .col(uuid(IdentaPasswordHistory::IdentityId))
                .col(big_integer(IdentaPasswordHistory::Position))
                .col(text(IdentaPasswordHistory::HashedPassword))
                .col(timestamp_with_time_zone(IdentaPasswordHistory::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            IdentaPasswordHistory::Table,
                            IdentaPasswordHistory::IdentityId,
                        )
                        .to(IdentaIdentities::Table, IdentaIdentities::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identa_password_history_identity_position_key")
                .table(IdentaPasswordHistory::Table)
                .col(IdentaPasswordHistory::IdentityId)
                .col(IdentaPasswordHistory::Position)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdentaPasswordHistory::Table).to_owned())
            .await
    }
}
