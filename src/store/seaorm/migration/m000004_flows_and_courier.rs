//! Self-service flows (one JSON document per flow, with a version for optimistic
//! concurrency) and the courier's outbox (message bodies sealed with the cipher secret).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, blob, integer, json, string, string_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid, uuid_null,
};

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

pub(super) struct FlowsAndCourier;

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
