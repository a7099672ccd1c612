//! The tables made without the `identa_` prefix get it (`identities` becomes
//! `identa_identities`, `sessions` becomes `identa_sessions`, …), so that a host can keep
//! tables of those names in the same database.
//!
//! A rename keeps the rows, indexes, unique constraints and foreign keys: PostgreSQL's
//! constraints point at tables by oid, and SQLite (3.26 and later, `legacy_alter_table`
//! off, its default) rewrites the `REFERENCES` clauses of the tables that point at a
//! renamed one. Index names are unchanged. All renames happen in one transaction, on
//! SQLite too: a database is either wholly before this migration or wholly after it.

use sea_orm_migration::prelude::*;

/// The tables to rename, as the earlier migrations named them; each becomes
/// `identa_<name>`.
const UNPREFIXED: [&str; 6] = [
    "identities",
    "identity_credentials",
    "identity_credential_identifiers",
    "identity_verifiable_addresses",
    "identity_recovery_addresses",
    "sessions",
];

pub(super) struct IdentaTablePrefix;

impl MigrationName for IdentaTablePrefix {
    fn name(&self) -> &str {
        "m20261127_000007_identa_table_prefix"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdentaTablePrefix {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for old in UNPREFIXED {
            m.rename_table(
                Table::rename()
                    .table(old, format!("identa_{old}"))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for old in UNPREFIXED.into_iter().rev() {
            m.rename_table(
                Table::rename()
                    .table(format!("identa_{old}"), old)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
