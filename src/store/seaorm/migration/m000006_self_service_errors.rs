//! The errors browser flows redirect to, in the database so that every instance can show
//! the one another instance recorded.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{json, timestamp_with_time_zone, uuid};

#[derive(DeriveIden)]
enum IdentaSelfServiceErrors {
    Table,
    Id,
    Error,
    CreatedAt,
}

pub(super) struct SelfServiceErrors;

impl MigrationName for SelfServiceErrors {
    fn name(&self) -> &str {
        "m20261123_000006_self_service_errors"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SelfServiceErrors {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaSelfServiceErrors::Table)
                .col(uuid(IdentaSelfServiceErrors::Id).primary_key())
                .col(json(IdentaSelfServiceErrors::Error))
                .col(timestamp_with_time_zone(IdentaSelfServiceErrors::CreatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(IdentaSelfServiceErrors::Table)
                .to_owned(),
        )
        .await
    }
}
