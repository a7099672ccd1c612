//! Known pairs: one row per (identifier, client address) pair that signed in with its
//! password, kept until its marker lapses. Keys are MACs (hex), never identifiers or
//! addresses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len, timestamp_with_time_zone};

#[derive(DeriveIden)]
enum IdentaKnownPairs {
    Table,
    Key,
    ExpiresAt,
}

pub(super) struct KnownPairs;

impl MigrationName for KnownPairs {
    fn name(&self) -> &str {
        "m20261127_000011_known_pairs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for KnownPairs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaKnownPairs::Table)
                .col(string_len(IdentaKnownPairs::Key, 64).primary_key())
                .col(timestamp_with_time_zone(IdentaKnownPairs::ExpiresAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identa_known_pairs_expires_at_idx")
                .table(IdentaKnownPairs::Table)
                .col(IdentaKnownPairs::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdentaKnownPairs::Table).to_owned())
            .await
    }
}
