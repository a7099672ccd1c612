//! The schema, as sea-orm-migration migrations shipped inside the crate. They are
//! portable (SQLite and PostgreSQL) and recorded in `identa_migrations`, so they never
//! clash with a host's own migration table in a shared database.
//!
//! One file per migration, in the order they run. A migration's recorded name (its
//! `MigrationName`) is what a database remembers it by: it never changes once released.

mod m000001_identities_and_sessions;
mod m000002_session_events;
mod m000003_identity_document;
mod m000004_flows_and_courier;
mod m000005_spent_codes;
mod m000006_self_service_errors;
mod m000007_identa_table_prefix;
mod m000008_courier_useful_until;
mod m000009_session_event_writers;
mod m000010_throttle_counters;
mod m000011_known_pairs;
mod m000012_identity_external_id;
mod m000013_password_history;
mod m000014_session_token_tags;
mod m000015_password_cost_floor;

use sea_orm_migration::prelude::*;

use self::m000001_identities_and_sessions::Core;
use self::m000002_session_events::SessionEvents;
use self::m000003_identity_document::IdentityDocument;
use self::m000004_flows_and_courier::FlowsAndCourier;
use self::m000005_spent_codes::SpentCodes;
use self::m000006_self_service_errors::SelfServiceErrors;
use self::m000007_identa_table_prefix::IdentaTablePrefix;
use self::m000008_courier_useful_until::CourierUsefulUntil;
use self::m000009_session_event_writers::SessionEventWriters;
use self::m000010_throttle_counters::ThrottleCounters;
use self::m000011_known_pairs::KnownPairs;
use self::m000012_identity_external_id::IdentityExternalId;
use self::m000013_password_history::PasswordHistory;
use self::m000014_session_token_tags::SessionTokenTags;
use self::m000015_password_cost_floor::PasswordCostFloor;

pub(super) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Core),
            Box::new(SessionEvents),
            Box::new(IdentityDocument),
            Box::new(FlowsAndCourier),
            Box::new(SpentCodes),
            Box::new(SelfServiceErrors),
            Box::new(IdentaTablePrefix),
            Box::new(CourierUsefulUntil),
            Box::new(SessionEventWriters),
            Box::new(ThrottleCounters),
            Box::new(KnownPairs),
            Box::new(IdentityExternalId),
            Box::new(PasswordHistory),
            Box::new(SessionTokenTags),
            Box::new(PasswordCostFloor),
        ]
    }

    fn migration_table_name() -> DynIden {
        "identa_migrations".into_iden()
    }
}

/// The identities table as the first migrations name it (`identities`; the seventh renames
/// it `identa_identities`).
#[derive(DeriveIden)]
enum Identities {
    Table,
    Id,
    SchemaId,
    State,
    StateChangedAt,
    Traits,
    MetadataPublic,
    MetadataAdmin,
    Document,
    CreatedAt,
    UpdatedAt,
}

/// Applies the migrations up to the `last`-th (counted from 1) that are not applied yet:
/// a database as an older identa left it.
#[cfg(feature = "testing")]
pub(super) async fn up_to(db: &sea_orm::DatabaseConnection, last: u32) -> Result<(), DbErr> {
    let applied = Migrator::get_applied_migrations(db).await?.len();
    let applied: u32 = TryFrom::try_from(applied).unwrap_or(u32::MAX);
    Migrator::up(db, Some(last.saturating_sub(applied))).await
}
