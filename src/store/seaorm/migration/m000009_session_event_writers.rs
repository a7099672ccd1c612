//! Each session event records its writer's transaction id (`tx`), so that a reader can
//! find events whose writers had not committed when it last read (see
//! `seaorm::session_events`). On PostgreSQL the column defaults to
//! `pg_current_xact_id()`, set inside the writer's transaction, and is indexed; SQLite
//! leaves it empty (its writers are serialised). Events logged before this migration have
//! none and are read by sequence number as before.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum IdentaSessionEvents {
    Table,
    Tx,
}

pub(super) struct SessionEventWriters;

impl MigrationName for SessionEventWriters {
    fn name(&self) -> &str {
        "m20261127_000009_session_event_writers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SessionEventWriters {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(IdentaSessionEvents::Table)
                .add_column(ColumnDef::new(IdentaSessionEvents::Tx).big_integer().null())
                .to_owned(),
        )
        .await?;
        if m.get_database_backend() == sea_orm::DbBackend::Postgres {
            let db = m.get_connection();
            db.execute_unprepared(
                "ALTER TABLE identa_session_events \
                 ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)",
            )
            .await?;
            db.execute_unprepared(
                "CREATE INDEX identa_session_events_tx ON identa_session_events (tx)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == sea_orm::DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP INDEX identa_session_events_tx")
                .await?;
        }
        m.alter_table(
            Table::alter()
                .table(IdentaSessionEvents::Table)
                .drop_column(IdentaSessionEvents::Tx)
                .to_owned(),
        )
        .await
    }
}
