//! The read behind every uncached `whoami`: a session by its token hash with its identity
//! row, in one hand-written statement on sea-orm's own sqlx pool, for SQLite and for
//! PostgreSQL. sea-orm's query building and row mapping cost more than the query itself
//! (docs/performance.md). JSON columns decode straight into their types, not through
//! `serde_json::Value`; the identity's plain columns fill the entity model, so the
//! identity is assembled as on every other read. The two engines differ only in their
//! placeholder and row type: one statement and one decoding, written once below.

use super::entity::identity;
use super::identities::IdentityDocument;
use crate::session::Session;

/// A session, its identity's row (without its document) and the document, which rows
/// written before identity documents lack.
pub(super) type Found = (Session, identity::Model, Option<IdentityDocument>);

/// The session and identity columns, in the order the decoding reads them (`token_hash`,
/// which the caller already has, is not read back), ending before the engine's
/// placeholder for the token hash.
macro_rules! session_by_token_sql {
    ($placeholder:literal) => {
        concat!(
            "SELECT s.id, s.identity_id, s.active, s.issued_at, s.authenticated_at, ",
            "s.expires_at, s.aal, s.authentication_methods, s.devices, i.schema_id, i.state, ",
            "i.state_changed_at, i.traits, i.metadata_public, i.metadata_admin, i.document, ",
            "i.created_at, i.updated_at, i.external_id ",
            "FROM identa_sessions s JOIN identa_identities i ON i.id = s.identity_id ",
            "WHERE s.token_hash = ",
            $placeholder
        )
    };
}

/// `session_by_token` for one engine: its pool, its row type and its placeholder.
macro_rules! session_reader {
    ($feature:literal, $module:ident, $pool:ty, $row:ty, $placeholder:literal) => {
        #[cfg(feature = $feature)]
        pub(super) mod $module {
            use sea_orm::sqlx::{self, Row, types::Json};

            use super::{Found, IdentityDocument, Session, identity};

            /// The session whose token hashes to `hash`, with its identity's row.
            pub(in crate::store::seaorm) async fn session_by_token(
                pool: &$pool,
                hash: &[u8],
            ) -> Result<Option<Found>, sqlx::Error> {
                sqlx::query(session_by_token_sql!($placeholder))
                    .bind(hash)
                    .fetch_optional(pool)
                    .await?
                    .map(|row| decode(&row))
                    .transpose()
            }

            fn decode(row: &$row) -> Result<Found, sqlx::Error> {
                let identity_id = row.try_get(1)?;
                let aal: &str = row.try_get(6)?;
                let session = Session {
                    id: row.try_get(0)?,
                    identity_id,
                    active: row.try_get(2)?,
                    issued_at: row.try_get(3)?,
                    authenticated_at: row.try_get(4)?,
                    expires_at: row.try_get(5)?,
                    aal: aal.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    authentication_methods: row.try_get::<Json<_>, _>(7)?.0,
                    devices: row.try_get::<Json<_>, _>(8)?.0,
                };
                let identity = identity::Model {
                    id: identity_id,
                    schema_id: row.try_get(9)?,
                    state: row.try_get(10)?,
                    state_changed_at: row.try_get(11)?,
                    traits: row.try_get::<Json<_>, _>(12)?.0,
                    metadata_public: row.try_get::<Option<Json<_>>, _>(13)?.map(|j| j.0),
                    metadata_admin: row.try_get::<Option<Json<_>>, _>(14)?.map(|j| j.0),
                    document: None,
                    created_at: row.try_get(16)?,
                    updated_at: row.try_get(17)?,
                    external_id: row.try_get(18)?,
                };
                let document = row
                    .try_get::<Option<Json<IdentityDocument>>, _>(15)?
                    .map(|d| d.0);
                Ok((session, identity, document))
            }
        }
    };
}

session_reader!(
    "sqlite",
    sqlite,
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteRow,
    "?1"
);
session_reader!(
    "postgres",
    postgres,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    "$1"
);
