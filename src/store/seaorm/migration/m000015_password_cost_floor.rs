//! The password cost floor (issue 14): a one-row table holding the costliest imported
//! password hash awaiting its re-hash — its padding work in argon2 blocks, and for bcrypt a
//! dummy hash of the same cost (of random bytes, so it matches no password) — which every
//! password check is padded up to, so that timing does not tell an imported account from
//! an unknown identifier. Work 0 (nothing imported costlier) on a new database.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, text_null};

#[derive(DeriveIden)]
enum IdentaPasswordCostFloor {
    Table,
    Id,
    Work,
    Dummy,
}

pub(super) struct PasswordCostFloor;

impl MigrationName for PasswordCostFloor {
    fn name(&self) -> &str {
        "m20261127_000015_password_cost_floor"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for PasswordCostFloor {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaPasswordCostFloor::Table)
                .col(integer(IdentaPasswordCostFloor::Id).primary_key())
                .col(big_integer(IdentaPasswordCostFloor::Work))
                .col(text_null(IdentaPasswordCostFloor::Dummy))
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO identa_password_cost_floor (id, work, dummy) VALUES (1, 0, NULL)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(IdentaPasswordCostFloor::Table)
                .to_owned(),
        )
        .await
    }
}
