//! How long each outbox message is worth delivering: `useful_until`, set when it is queued
//! (a code's expiry, or the courier's maximum age). The worker keeps retrying a message
//! until then and abandons it as expired after. Rows queued before this migration have
//! none; the courier treats them as useful until their creation plus the maximum age.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveIden)]
enum IdentaCourierMessages {
    Table,
    UsefulUntil,
}

pub(super) struct CourierUsefulUntil;

impl MigrationName for CourierUsefulUntil {
    fn name(&self) -> &str {
        "m20261127_000008_courier_useful_until"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CourierUsefulUntil {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(IdentaCourierMessages::Table)
                .add_column(timestamp_with_time_zone_null(
                    IdentaCourierMessages::UsefulUntil,
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(IdentaCourierMessages::Table)
                .drop_column(IdentaCourierMessages::UsefulUntil)
                .to_owned(),
        )
        .await
    }
}
