//! The read behind every uncached `whoami` on PostgreSQL: a session by its token hash with
//! its identity row, in one hand-written statement on sea-orm's own sqlx pool. Here sea-orm's
//! query building and row mapping cost more than the query itself (docs/performance.md);
//! the rows are decoded into the same entity models, so everything after is shared.

use sea_orm::sqlx::{self, Row, postgres::PgRow};

use super::entity::{identity, session};

/// The session and identity columns of the entity models, in their order (`token_hash`,
/// which the caller already has, is not read back).
const SESSION_BY_TOKEN: &str = "SELECT s.id, s.identity_id, s.active, s.issued_at, \
     s.authenticated_at, s.expires_at, s.aal, s.authentication_methods, s.devices, \
     i.schema_id, i.state, i.state_changed_at, i.traits, i.metadata_public, i.metadata_admin, \
     i.document, i.created_at, i.updated_at \
     FROM sessions s JOIN identities i ON i.id = s.identity_id WHERE s.token_hash = $1";

/// The session whose token hashes to `hash`, with its identity's row.
pub(super) async fn session_by_token(
    pool: &sqlx::PgPool,
    hash: &[u8],
) -> Result<Option<(session::Model, identity::Model)>, sqlx::Error> {
    sqlx::query(SESSION_BY_TOKEN)
        .bind(hash)
        .fetch_optional(pool)
        .await?
        .map(|row| decode(&row, hash))
        .transpose()
}

fn decode(row: &PgRow, hash: &[u8]) -> Result<(session::Model, identity::Model), sqlx::Error> {
    let identity_id = row.try_get(1)?;
    Ok((
        session::Model {
            id: row.try_get(0)?,
            identity_id,
            token_hash: hash.to_vec(),
            active: row.try_get(2)?,
            issued_at: row.try_get(3)?,
            authenticated_at: row.try_get(4)?,
            expires_at: row.try_get(5)?,
            aal: row.try_get(6)?,
            authentication_methods: row.try_get(7)?,
            devices: row.try_get(8)?,
        },
        identity::Model {
            id: identity_id,
            schema_id: row.try_get(9)?,
            state: row.try_get(10)?,
            state_changed_at: row.try_get(11)?,
            traits: row.try_get(12)?,
            metadata_public: row.try_get(13)?,
            metadata_admin: row.try_get(14)?,
            document: row.try_get(15)?,
            created_at: row.try_get(16)?,
            updated_at: row.try_get(17)?,
        },
    ))
}
