//! Identities, credentials, addresses and sessions.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    blob, boolean, integer, json, json_null, string, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid,
};

use super::Identities;

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

pub(super) struct Core;

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
