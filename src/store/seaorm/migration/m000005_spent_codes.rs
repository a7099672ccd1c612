//! One-time values that must not be accepted twice (a TOTP step per identity): a row per
//! accepted value, so a second acceptance fails on the primary key, even when two
//! requests race.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{timestamp_with_time_zone, uuid};

#[derive(DeriveIden)]
enum IdentaSpentCodes {
    Table,
    Id,
    ExpiresAt,
}

pub(super) struct SpentCodes;

impl MigrationName for SpentCodes {
    fn name(&self) -> &str {
        "m20261122_000005_spent_codes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SpentCodes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaSpentCodes::Table)
                .col(uuid(IdentaSpentCodes::Id).primary_key())
                .col(timestamp_with_time_zone(IdentaSpentCodes::ExpiresAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdentaSpentCodes::Table).to_owned())
            .await
    }
}
