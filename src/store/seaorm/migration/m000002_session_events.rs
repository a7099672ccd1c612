//! The log of changes that make cached sessions stale (see `session::cache`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_pk_auto, uuid, uuid_null};

#[derive(DeriveIden)]
enum IdentaSessionEvents {
    Table,
    Seq,
    IdentityId,
    SessionId,
}

pub(super) struct SessionEvents;

impl MigrationName for SessionEvents {
    fn name(&self) -> &str {
        "m20261122_000002_session_events"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SessionEvents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaSessionEvents::Table)
                .col(big_pk_auto(IdentaSessionEvents::Seq))
                .col(uuid(IdentaSessionEvents::IdentityId))
                .col(uuid_null(IdentaSessionEvents::SessionId))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdentaSessionEvents::Table).to_owned())
            .await
    }
}
