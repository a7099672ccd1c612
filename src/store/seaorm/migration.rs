//! The schema, as sea-orm-migration migrations shipped inside the crate. They are
//! portable (SQLite and PostgreSQL) and recorded in `identa_migrations`, so they never
//! clash with a host's own migration table in a shared database.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, blob, boolean, integer, json, json_null, string, string_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid, uuid_null,
};

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
        ]
    }

    fn migration_table_name() -> DynIden {
        "identa_migrations".into_iden()
    }
}

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

#[derive(DeriveIden)]
enum IdentityCredentials {
    Table,
    Id,
    IdentityId,
    CredentialType,
    Config,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IdentityCredentialIdentifiers {
    Table,
    Id,
    IdentityId,
    CredentialId,
    CredentialType,
    Identifier,
}

#[derive(DeriveIden)]
enum IdentityVerifiableAddresses {
    Table,
    Id,
    IdentityId,
    Via,
    Value,
    Verified,
    Status,
    VerifiedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IdentityRecoveryAddresses {
    Table,
    Id,
    IdentityId,
    Via,
    Value,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    IdentityId,
    TokenHash,
    Active,
    IssuedAt,
    AuthenticatedAt,
    ExpiresAt,
    Aal,
    AuthenticationMethods,
    Devices,
}

/// A foreign key to `identities.id` that deletes with the identity.
fn owned_by_identity(
    from: impl IntoIden + 'static,
    col: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from, col)
        .to(Identities::Table, Identities::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// Identities, credentials, addresses and sessions.
struct Core;

impl MigrationName for Core {
    fn name(&self) -> &str {
        "m20261122_000001_core"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Core {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Identities::Table)
                .col(uuid(Identities::Id).primary_key())
                .col(string(Identities::SchemaId))
                .col(string(Identities::State))
                .col(timestamp_with_time_zone_null(Identities::StateChangedAt))
                .col(json(Identities::Traits))
                .col(json_null(Identities::MetadataPublic))
                .col(json_null(Identities::MetadataAdmin))
                .col(timestamp_with_time_zone(Identities::CreatedAt))
                .col(timestamp_with_time_zone(Identities::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdentityCredentials::Table)
                .col(uuid(IdentityCredentials::Id).primary_key())
                .col(uuid(IdentityCredentials::IdentityId))
                .col(string(IdentityCredentials::CredentialType))
                .col(json(IdentityCredentials::Config))
                .col(integer(IdentityCredentials::Version))
                .col(timestamp_with_time_zone(IdentityCredentials::CreatedAt))
                .col(timestamp_with_time_zone(IdentityCredentials::UpdatedAt))
                .foreign_key(&mut owned_by_identity(
                    IdentityCredentials::Table,
                    IdentityCredentials::IdentityId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identity_credentials_identity_type_uq")
                .table(IdentityCredentials::Table)
                .col(IdentityCredentials::IdentityId)
                .col(IdentityCredentials::CredentialType)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdentityCredentialIdentifiers::Table)
                .col(uuid(IdentityCredentialIdentifiers::Id).primary_key())
                .col(uuid(IdentityCredentialIdentifiers::IdentityId))
                .col(uuid(IdentityCredentialIdentifiers::CredentialId))
                .col(string(IdentityCredentialIdentifiers::CredentialType))
                .col(string(IdentityCredentialIdentifiers::Identifier))
                .foreign_key(&mut owned_by_identity(
                    IdentityCredentialIdentifiers::Table,
                    IdentityCredentialIdentifiers::IdentityId,
                ))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            IdentityCredentialIdentifiers::Table,
                            IdentityCredentialIdentifiers::CredentialId,
                        )
                        .to(IdentityCredentials::Table, IdentityCredentials::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("credential_identifiers_type_identifier_uq")
                .table(IdentityCredentialIdentifiers::Table)
                .col(IdentityCredentialIdentifiers::CredentialType)
                .col(IdentityCredentialIdentifiers::Identifier)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("credential_identifiers_identity_idx")
                .table(IdentityCredentialIdentifiers::Table)
                .col(IdentityCredentialIdentifiers::IdentityId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdentityVerifiableAddresses::Table)
                .col(uuid(IdentityVerifiableAddresses::Id).primary_key())
                .col(uuid(IdentityVerifiableAddresses::IdentityId))
                .col(string(IdentityVerifiableAddresses::Via))
                .col(string(IdentityVerifiableAddresses::Value))
                .col(boolean(IdentityVerifiableAddresses::Verified))
                .col(string(IdentityVerifiableAddresses::Status))
                .col(timestamp_with_time_zone_null(
                    IdentityVerifiableAddresses::VerifiedAt,
                ))
                .col(timestamp_with_time_zone(
                    IdentityVerifiableAddresses::CreatedAt,
                ))
                .col(timestamp_with_time_zone(
                    IdentityVerifiableAddresses::UpdatedAt,
                ))
                .foreign_key(&mut owned_by_identity(
                    IdentityVerifiableAddresses::Table,
                    IdentityVerifiableAddresses::IdentityId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("verifiable_addresses_via_value_uq")
                .table(IdentityVerifiableAddresses::Table)
                .col(IdentityVerifiableAddresses::Via)
                .col(IdentityVerifiableAddresses::Value)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("verifiable_addresses_identity_idx")
                .table(IdentityVerifiableAddresses::Table)
                .col(IdentityVerifiableAddresses::IdentityId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdentityRecoveryAddresses::Table)
                .col(uuid(IdentityRecoveryAddresses::Id).primary_key())
                .col(uuid(IdentityRecoveryAddresses::IdentityId))
                .col(string(IdentityRecoveryAddresses::Via))
                .col(string(IdentityRecoveryAddresses::Value))
                .col(timestamp_with_time_zone(
                    IdentityRecoveryAddresses::CreatedAt,
                ))
                .col(timestamp_with_time_zone(
                    IdentityRecoveryAddresses::UpdatedAt,
                ))
                .foreign_key(&mut owned_by_identity(
                    IdentityRecoveryAddresses::Table,
                    IdentityRecoveryAddresses::IdentityId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("recovery_addresses_via_value_uq")
                .table(IdentityRecoveryAddresses::Table)
                .col(IdentityRecoveryAddresses::Via)
                .col(IdentityRecoveryAddresses::Value)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("recovery_addresses_identity_idx")
                .table(IdentityRecoveryAddresses::Table)
                .col(IdentityRecoveryAddresses::IdentityId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(uuid(Sessions::Id).primary_key())
                .col(uuid(Sessions::IdentityId))
                .col(blob(Sessions::TokenHash))
                .col(boolean(Sessions::Active))
                .col(timestamp_with_time_zone(Sessions::IssuedAt))
                .col(timestamp_with_time_zone(Sessions::AuthenticatedAt))
                .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                .col(string(Sessions::Aal))
                .col(json(Sessions::AuthenticationMethods))
                .col(json(Sessions::Devices))
                .foreign_key(&mut owned_by_identity(
                    Sessions::Table,
                    Sessions::IdentityId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sessions_token_hash_uq")
                .table(Sessions::Table)
                .col(Sessions::TokenHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sessions_identity_idx")
                .table(Sessions::Table)
                .col(Sessions::IdentityId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sessions_expires_at_idx")
                .table(Sessions::Table)
                .col(Sessions::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Sessions::Table.into_iden(),
            IdentityRecoveryAddresses::Table.into_iden(),
            IdentityVerifiableAddresses::Table.into_iden(),
            IdentityCredentialIdentifiers::Table.into_iden(),
            IdentityCredentials::Table.into_iden(),
            Identities::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum IdentaSessionEvents {
    Table,
    Seq,
    IdentityId,
    SessionId,
}

/// The log of changes that make cached sessions stale (see `session::cache`).
struct SessionEvents;

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

/// Each identity's addresses and credentials as one JSON document on its row, so that an
/// identity (and `whoami`) loads with one query. The normalised tables stay the source of
/// uniqueness and of identifier lookups; rows written before this migration load from them.
struct IdentityDocument;

impl MigrationName for IdentityDocument {
    fn name(&self) -> &str {
        "m20261122_000003_identity_document"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IdentityDocument {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Identities::Table)
                .add_column(json_null(Identities::Document))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Identities::Table)
                .drop_column(Identities::Document)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum IdentaFlows {
    Table,
    Id,
    Kind,
    FlowType,
    State,
    Version,
    ExpiresAt,
    Document,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IdentaCourierMessages {
    Table,
    Id,
    Status,
    Template,
    Recipient,
    Payload,
    SendCount,
    LastError,
    NextAttemptAt,
    ClaimedUntil,
    Claim,
    CreatedAt,
    UpdatedAt,
}

/// Self-service flows (one JSON document per flow, with a version for optimistic
/// concurrency) and the courier's outbox (message bodies sealed with the cipher secret).
struct FlowsAndCourier;

impl MigrationName for FlowsAndCourier {
    fn name(&self) -> &str {
        "m20261122_000004_flows_and_courier"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FlowsAndCourier {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaFlows::Table)
                .col(uuid(IdentaFlows::Id).primary_key())
                .col(string(IdentaFlows::Kind))
                .col(string(IdentaFlows::FlowType))
                .col(string(IdentaFlows::State))
                .col(big_integer(IdentaFlows::Version))
                .col(timestamp_with_time_zone(IdentaFlows::ExpiresAt))
                .col(json(IdentaFlows::Document))
                .col(timestamp_with_time_zone(IdentaFlows::CreatedAt))
                .col(timestamp_with_time_zone(IdentaFlows::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identa_flows_expires_at_idx")
                .table(IdentaFlows::Table)
                .col(IdentaFlows::ExpiresAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IdentaCourierMessages::Table)
                .col(uuid(IdentaCourierMessages::Id).primary_key())
                .col(string(IdentaCourierMessages::Status))
                .col(string(IdentaCourierMessages::Template))
                .col(string(IdentaCourierMessages::Recipient))
                .col(blob(IdentaCourierMessages::Payload))
                .col(integer(IdentaCourierMessages::SendCount))
                .col(string_null(IdentaCourierMessages::LastError))
                .col(timestamp_with_time_zone(
                    IdentaCourierMessages::NextAttemptAt,
                ))
                .col(timestamp_with_time_zone_null(
                    IdentaCourierMessages::ClaimedUntil,
                ))
                .col(uuid_null(IdentaCourierMessages::Claim))
                .col(timestamp_with_time_zone(IdentaCourierMessages::CreatedAt))
                .col(timestamp_with_time_zone(IdentaCourierMessages::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("identa_courier_due_idx")
                .table(IdentaCourierMessages::Table)
                .col(IdentaCourierMessages::Status)
                .col(IdentaCourierMessages::NextAttemptAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdentaCourierMessages::Table.into_iden(),
            IdentaFlows::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum IdentaSpentCodes {
    Table,
    Id,
    ExpiresAt,
}

/// One-time values that must not be accepted twice (a TOTP step per identity): a row per
/// accepted value, so a second acceptance fails on the primary key, even when two
/// requests race.
struct SpentCodes;

impl MigrationName for SpentCodes {
    fn name(&self) -> &str {
        "m20261122_000005_spent_codes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SpentCodes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(IdentaSpentCodes::Table)
                .col(uuid(IdentaSpentCodes::Id).primary_key())
                .col(timestamp_with_time_zone(IdentaSpentCodes::ExpiresAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdentaSpentCodes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IdentaSelfServiceErrors {
    Table,
    Id,
    Error,
    CreatedAt,
}

/// The errors browser flows redirect to, in the database so that every instance can show
/// the one another instance recorded.
struct SelfServiceErrors;

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
