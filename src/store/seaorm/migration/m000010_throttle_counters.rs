//! Throttle counters: one row per (key, window), counted up by an atomic upsert, so every
//! instance on the database sees the same counts. Keys are MACs (hex), never identifiers
//! or addresses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string_len, timestamp_with_time_zone};

#[derive(DeriveIden)]
enum IdentaThrottleCounters {
    Table,
    Key,
    WindowStart,
    Count,
    ExpiresAt,
}

pub(super) struct ThrottleCounters;

impl MigrationName for ThrottleCounters {
    fn name(&self) -> &str {
        "m20261127_000010_throttle_counters"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ThrottleCounters {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaThrottleCounters::Table)
                .col(string_len(IdentaThrottleCounters::Key, 64))
                .col(big_integer(IdentaThrottleCounters::WindowStart))
                .col(integer(IdentaThrottleCounters::Count))
                .col(timestamp_with_time_zone(IdentaThrottleCounters::ExpiresAt))
                .primary_key(
                    Index::create()
                        .col(IdentaThrottleCounters::Key)
                        .col(IdentaThrottleCounters::WindowStart),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identa_throttle_counters_expires_at_idx")
                .table(IdentaThrottleCounters::Table)
                .col(IdentaThrottleCounters::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(IdentaThrottleCounters::Table)
                .to_owned(),
        )
        .await
    }
}
