//! Session-token tags (issue 16): a one-row table recording until when tokens in the
//! older, untagged shape may still belong to a live session — the latest expiry among the
//! active sessions present when this migration runs (every one of them has an untagged
//! token). NULL on a database that had none.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, timestamp_with_time_zone_null};

#[derive(DeriveIden)]
enum IdentaSessionTokenTags {
    Table,
    Id,
    UntaggedValidUntil,
}

pub(super) struct SessionTokenTags;

impl MigrationName for SessionTokenTags {
    fn name(&self) -> &str {
        "m20261127_000014_session_token_tags"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SessionTokenTags {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaSessionTokenTags::Table)
                .col(integer(IdentaSessionTokenTags::Id).primary_key())
                .col(timestamp_with_time_zone_null(
                    IdentaSessionTokenTags::UntaggedValidUntil,
                ))
                .to_owned(),
        )
        .await?;
        // `active` is a boolean on PostgreSQL and 0/1 on SQLite: both read it as a truth
        // value. The expiry is copied as stored, so it reads back exactly.
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO identa_session_token_tags (id, untagged_valid_until) \
                 SELECT 1, MAX(expires_at) FROM identa_sessions WHERE active",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(IdentaSessionTokenTags::Table)
                .to_owned(),
        )
        .await
    }
}
