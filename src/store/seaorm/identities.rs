//! Identities on sea-orm: the identity row with its JSON document (traits, addresses and
//! credentials, what one read needs), and the child tables that keep identifiers and
//! addresses unique and searchable; written together, in one transaction.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use super::entity::{
    credential, credential_identifier, identity, recovery_address, verifiable_address,
};
use super::{AddressKind, IdentityStore, Page, PageRequest, StoreError};
use crate::credential::password::CostFloor;
use crate::identity::AddressVia;
use crate::identity::{
    Credential, CredentialType, ExternalId, Identity, RecoveryAddress, VerifiableAddress,
};

use super::{SeaOrmStore, corrupt, db_err, log_event, to_json};

/// An identity's addresses and credentials, stored as JSON on its row.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct IdentityDocument {
    verifiable_addresses: Vec<VerifiableAddress>,
    recovery_addresses: Vec<RecoveryAddress>,
    credentials: Vec<CredentialDocument>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct CredentialDocument {
    id: Uuid,
    credential_type: CredentialType,
    identifiers: Vec<String>,
    config: Value,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub(super) fn identity_row(i: &Identity) -> Result<identity::ActiveModel, StoreError> {
    let document = IdentityDocument {
        verifiable_addresses: i.verifiable_addresses.clone(),
        recovery_addresses: i.recovery_addresses.clone(),
        credentials: i
            .credentials
            .values()
            .map(|c| CredentialDocument {
                id: c.id,
                credential_type: c.credential_type,
                identifiers: c.identifiers.clone(),
                config: c.config.clone(),
                version: c.version,
                created_at: c.created_at,
                updated_at: c.updated_at,
            })
            .collect(),
    };
    Ok(identity::ActiveModel {
        id: Set(i.id),
        schema_id: Set(i.schema_id.clone()),
        state: Set(i.state.as_str().to_owned()),
        state_changed_at: Set(i.state_changed_at),
        traits: Set(i.traits.clone()),
        metadata_public: Set(i.metadata_public.clone()),
        metadata_admin: Set(i.metadata_admin.clone()),
        external_id: Set(i.external_id.as_ref().map(|e| e.as_str().to_owned())),
        document: Set(Some(to_json(&document)?)),
        created_at: Set(i.created_at),
        updated_at: Set(i.updated_at),
    })
}

/// An identity from its row alone, when the row carries its document.
pub(super) fn identity_from_document(
    mut row: identity::Model,
) -> Result<Result<Identity, identity::Model>, StoreError> {
    let Some(document) = row.document.take() else {
        return Ok(Err(row));
    };
    let doc: IdentityDocument = serde_json::from_value(document).map_err(corrupt)?;
    identity_from_parts(row, doc).map(Ok)
}

/// An identity from its row's columns and its decoded document.
pub(super) fn identity_from_parts(
    row: identity::Model,
    doc: IdentityDocument,
) -> Result<Identity, StoreError> {
    Ok(Identity {
        id: row.id,
        schema_id: row.schema_id,
        state: row.state.parse()?,
        state_changed_at: row.state_changed_at,
        traits: row.traits,
        verifiable_addresses: doc.verifiable_addresses,
        recovery_addresses: doc.recovery_addresses,
        metadata_public: row.metadata_public,
        metadata_admin: row.metadata_admin,
        external_id: external_id(row.external_id)?,
        credentials: doc
            .credentials
            .into_iter()
            .map(|c| {
                let credential = Credential {
                    id: c.id,
                    credential_type: c.credential_type,
                    identifiers: c.identifiers,
                    config: c.config,
                    version: c.version,
                    created_at: c.created_at,
                    updated_at: c.updated_at,
                };
                (c.credential_type, credential)
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The stored external id, checked as on the way in.
fn external_id(stored: Option<String>) -> Result<Option<ExternalId>, StoreError> {
    stored
        .map(ExternalId::try_from)
        .transpose()
        .map_err(corrupt)
}

/// Rows per INSERT statement: well under both engines' bound on bound parameters
/// (SQLite 32,766, PostgreSQL 65,535) at the widest table's column count.
const ROWS_PER_INSERT: usize = 500;

/// Inserts `rows` into `E`'s table, [`ROWS_PER_INSERT`] at a time.
async fn insert_chunked<E, A>(tx: &impl ConnectionTrait, rows: Vec<A>) -> Result<(), StoreError>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        E::insert_many(chunk).exec(tx).await.map_err(db_err)?;
    }
    Ok(())
}

/// Inserts everything these identities own (their rows must exist), a few statements
/// per table however many identities there are.
pub(super) async fn insert_children(
    tx: &impl ConnectionTrait,
    identities: &[Identity],
) -> Result<(), StoreError> {
    let creds: Vec<(&Identity, &Credential)> = identities
        .iter()
        .flat_map(|i| i.credentials.values().map(move |c| (i, c)))
        .collect();
    let credential_rows: Vec<_> = creds
        .iter()
        .map(|(i, c)| credential::ActiveModel {
            id: Set(c.id),
            identity_id: Set(i.id),
            credential_type: Set(c.credential_type.as_str().to_owned()),
            config: Set(c.config.clone()),
            version: Set(c.version),
            created_at: Set(c.created_at),
            updated_at: Set(c.updated_at),
        })
        .collect();
    insert_chunked(tx, credential_rows).await?;
    let identifiers: Vec<_> = creds
        .iter()
        .flat_map(|(i, c)| {
            c.identifiers
                .iter()
                .map(|identifier| credential_identifier::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    identity_id: Set(i.id),
                    credential_id: Set(c.id),
                    credential_type: Set(c.credential_type.as_str().to_owned()),
                    identifier: Set(identifier.clone()),
                })
        })
        .collect();
    insert_chunked(tx, identifiers).await?;
    let verifiable: Vec<_> = identities
        .iter()
        .flat_map(|i| {
            i.verifiable_addresses
                .iter()
                .map(|a| verifiable_address::ActiveModel {
                    id: Set(a.id),
                    identity_id: Set(i.id),
                    via: Set(a.via.as_str().to_owned()),
                    value: Set(a.value.clone()),
                    verified: Set(a.verified),
                    status: Set(a.status.as_str().to_owned()),
                    verified_at: Set(a.verified_at),
                    created_at: Set(a.created_at),
                    updated_at: Set(a.updated_at),
                })
        })
        .collect();
    insert_chunked(tx, verifiable).await?;
    let recovery: Vec<_> = identities
        .iter()
        .flat_map(|i| {
            i.recovery_addresses
                .iter()
                .map(|a| recovery_address::ActiveModel {
                    id: Set(a.id),
                    identity_id: Set(i.id),
                    via: Set(a.via.as_str().to_owned()),
                    value: Set(a.value.clone()),
                    created_at: Set(a.created_at),
                    updated_at: Set(a.updated_at),
                })
        })
        .collect();
    insert_chunked(tx, recovery).await
}

/// Loads the children of the given identity rows with one query per table.
pub(super) async fn load_identities(
    db: &impl ConnectionTrait,
    rows: Vec<identity::Model>,
) -> Result<Vec<Identity>, StoreError> {
    // Rows that carry their document need no further query; older rows are assembled
    // from the child tables. The order of `rows` is kept.
    let order: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut loaded: HashMap<Uuid, Identity> = HashMap::with_capacity(rows.len());
    let mut legacy = Vec::new();
    for row in rows {
        match identity_from_document(row)? {
            Ok(identity) => {
                loaded.insert(identity.id, identity);
            }
            Err(row) => legacy.push(row),
        }
    }
    for identity in load_from_children(db, legacy).await? {
        loaded.insert(identity.id, identity);
    }
    Ok(order
        .into_iter()
        .filter_map(|id| loaded.remove(&id))
        .collect())
}

/// Assembles identities from the child tables (rows written before identity documents).
pub(super) async fn load_from_children(
    db: &impl ConnectionTrait,
    rows: Vec<identity::Model>,
) -> Result<Vec<Identity>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    // Four independent reads: issued together, they cost one round trip's latency on a
    // pooled connection rather than four.
    let (creds, idents, verifiable, recovery) = tokio::try_join!(
        credential::Entity::find()
            .filter(credential::Column::IdentityId.is_in(ids.clone()))
            .all(db),
        credential_identifier::Entity::find()
            .filter(credential_identifier::Column::IdentityId.is_in(ids.clone()))
            .order_by_asc(credential_identifier::Column::Identifier)
            .all(db),
        verifiable_address::Entity::find()
            .filter(verifiable_address::Column::IdentityId.is_in(ids.clone()))
            .order_by_asc(verifiable_address::Column::CreatedAt)
            .order_by_asc(verifiable_address::Column::Value)
            .all(db),
        recovery_address::Entity::find()
            .filter(recovery_address::Column::IdentityId.is_in(ids))
            .order_by_asc(recovery_address::Column::CreatedAt)
            .order_by_asc(recovery_address::Column::Value)
            .all(db),
    )
    .map_err(db_err)?;

    let mut identifiers_of: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in idents {
        identifiers_of
            .entry(row.credential_id)
            .or_default()
            .push(row.identifier);
    }
    let mut out: Vec<Identity> = Vec::with_capacity(rows.len());
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        index.insert(row.id, out.len());
        out.push(Identity {
            id: row.id,
            schema_id: row.schema_id,
            state: row.state.parse()?,
            state_changed_at: row.state_changed_at,
            traits: row.traits,
            verifiable_addresses: Vec::new(),
            recovery_addresses: Vec::new(),
            metadata_public: row.metadata_public,
            metadata_admin: row.metadata_admin,
            external_id: external_id(row.external_id)?,
            credentials: BTreeMap::new(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
    }
    fn owner<'a>(
        index: &HashMap<Uuid, usize>,
        out: &'a mut [Identity],
        identity_id: Uuid,
    ) -> Result<&'a mut Identity, StoreError> {
        index
            .get(&identity_id)
            .and_then(|&i| out.get_mut(i))
            .ok_or_else(|| corrupt("child row without its identity"))
    }
    for c in creds {
        let credential_type: CredentialType = c.credential_type.parse()?;
        let identifiers = identifiers_of.remove(&c.id).unwrap_or_default();
        owner(&index, &mut out, c.identity_id)?.credentials.insert(
            credential_type,
            Credential {
                id: c.id,
                credential_type,
                identifiers,
                config: c.config,
                version: c.version,
                created_at: c.created_at,
                updated_at: c.updated_at,
            },
        );
    }
    for a in verifiable {
        owner(&index, &mut out, a.identity_id)?
            .verifiable_addresses
            .push(VerifiableAddress {
                id: a.id,
                value: a.value,
                via: a.via.parse().map_err(corrupt)?,
                verified: a.verified,
                status: a.status.parse()?,
                verified_at: a.verified_at,
                created_at: a.created_at,
                updated_at: a.updated_at,
            });
    }
    for a in recovery {
        owner(&index, &mut out, a.identity_id)?
            .recovery_addresses
            .push(RecoveryAddress {
                id: a.id,
                value: a.value,
                via: a.via.parse().map_err(corrupt)?,
                created_at: a.created_at,
                updated_at: a.updated_at,
            });
    }
    Ok(out)
}

pub(super) async fn load_identity(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<Identity>, StoreError> {
    let Some(row) = identity::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    Ok(load_identities(db, vec![row]).await?.pop())
}

/// Replaces an identity's row and children and logs the change (inside `tx`).
pub(super) async fn replace_identity_in(
    tx: &impl ConnectionTrait,
    i: &Identity,
) -> Result<(), StoreError> {
    let updated = identity::Entity::update_many()
        .set(identity_row(i)?)
        .filter(identity::Column::Id.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    if updated.rows_affected == 0 {
        return Err(StoreError::NotFound { what: "identity" });
    }
    credential::Entity::delete_many()
        .filter(credential::Column::IdentityId.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    verifiable_address::Entity::delete_many()
        .filter(verifiable_address::Column::IdentityId.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    recovery_address::Entity::delete_many()
        .filter(recovery_address::Column::IdentityId.eq(i.id))
        .exec(tx)
        .await
        .map_err(db_err)?;
    insert_children(tx, std::slice::from_ref(i)).await?;
    log_event(tx, i.id, None).await
}

/// Inserts identities with their children (inside `tx`).
pub(super) async fn insert_identity_in(
    tx: &impl ConnectionTrait,
    identities: &[Identity],
) -> Result<(), StoreError> {
    let rows = identities
        .iter()
        .map(identity_row)
        .collect::<Result<Vec<_>, _>>()?;
    insert_chunked(tx, rows).await?;
    insert_children(tx, identities).await
}

#[async_trait]
impl IdentityStore for SeaOrmStore {
    async fn insert_identity(&self, i: &Identity) -> Result<(), StoreError> {
        self.insert_identities(std::slice::from_ref(i)).await
    }

    async fn insert_identities(&self, identities: &[Identity]) -> Result<(), StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        insert_identity_in(&tx, identities).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn insert_imported_identities(
        &self,
        identities: &[Identity],
        floor: Option<&CostFloor>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        insert_identity_in(&tx, identities).await?;
        if let Some(floor) = floor {
            super::cost_floor::raise_in(&tx, floor).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn password_cost_floor(&self) -> Result<Option<CostFloor>, StoreError> {
        super::cost_floor::read(&self.db).await
    }

    async fn replace_identity(&self, i: &Identity) -> Result<(), StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        replace_identity_in(&tx, i).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
        load_identity(&self.db, id).await
    }

    async fn delete_identity(&self, id: Uuid) -> Result<bool, StoreError> {
        let tx = self.db.begin().await.map_err(db_err)?;
        let res = identity::Entity::delete_by_id(id)
            .exec(&tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected > 0 {
            log_event(&tx, id, None).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(res.rows_affected > 0)
    }

    async fn list_identities(&self, page: PageRequest) -> Result<Page<Identity>, StoreError> {
        let size = page.clamped_size();
        let mut query = identity::Entity::find().order_by_asc(identity::Column::Id);
        if let Some(after) = page.after {
            query = query.filter(identity::Column::Id.gt(after));
        }
        let mut rows = query.limit(size + 1).all(&self.db).await.map_err(db_err)?;
        let more = rows.len() as u64 > size;
        rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        let next = if more {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page {
            items: load_identities(&self.db, rows).await?,
            next,
        })
    }

    async fn identities_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Identity>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = identity::Entity::find()
            .filter(identity::Column::Id.is_in(ids.iter().copied()))
            .order_by_asc(identity::Column::Id)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        load_identities(&self.db, rows).await
    }

    async fn password_history(&self, id: Uuid, limit: u8) -> Result<Vec<String>, StoreError> {
        use super::entity::password_history as history;
        let rows = history::Entity::find()
            .filter(history::Column::IdentityId.eq(id))
            .order_by_desc(history::Column::Position)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| r.hashed_password).collect())
    }

    async fn identity_by_external_id(
        &self,
        external_id: &ExternalId,
    ) -> Result<Option<Identity>, StoreError> {
        let row = identity::Entity::find()
            .filter(identity::Column::ExternalId.eq(external_id.as_str()))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => Ok(load_identities(&self.db, vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    async fn identity_by_identifier(
        &self,
        credential_type: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let row = credential_identifier::Entity::find()
            .filter(credential_identifier::Column::CredentialType.eq(credential_type.as_str()))
            .filter(credential_identifier::Column::Identifier.eq(identifier))
            .one(&self.db)
            .await
            .map_err(db_err)?;
        match row {
            Some(row) => load_identity(&self.db, row.identity_id).await,
            None => Ok(None),
        }
    }

    async fn identity_by_address(
        &self,
        kind: AddressKind,
        via: AddressVia,
        value: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let owner = match kind {
            AddressKind::Recovery => recovery_address::Entity::find()
                .filter(recovery_address::Column::Via.eq(via.as_str()))
                .filter(recovery_address::Column::Value.eq(value))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|row| row.identity_id),
            AddressKind::Verifiable => verifiable_address::Entity::find()
                .filter(verifiable_address::Column::Via.eq(via.as_str()))
                .filter(verifiable_address::Column::Value.eq(value))
                .one(&self.db)
                .await
                .map_err(db_err)?
                .map(|row| row.identity_id),
        };
        match owner {
            Some(id) => load_identity(&self.db, id).await,
            None => Ok(None),
        }
    }
}

// ---- sessions ---------------------------------------------------------------------

/// Adds `hash` as identity `identity_id`'s newest previous password, then deletes all but
/// its newest `keep` entries, in `tx`.
pub(super) async fn remember_password_in(
    tx: &sea_orm::DatabaseTransaction,
    identity_id: Uuid,
    hash: &str,
    at: DateTime<Utc>,
    keep: u8,
) -> Result<(), StoreError> {
    use super::entity::password_history as history;
    let newest = history::Entity::find()
        .filter(history::Column::IdentityId.eq(identity_id))
        .order_by_desc(history::Column::Position)
        .one(tx)
        .await
        .map_err(db_err)?
        .map_or(0, |row| row.position);
    let position = newest.saturating_add(1);
    history::Entity::insert(history::ActiveModel {
        id: Set(Uuid::new_v4()),
        identity_id: Set(identity_id),
        position: Set(position),
        hashed_password: Set(hash.to_owned()),
        created_at: Set(at),
    })
    .exec(tx)
    .await
    .map_err(db_err)?;
    history::Entity::delete_many()
        .filter(history::Column::IdentityId.eq(identity_id))
        .filter(history::Column::Position.lte(position.saturating_sub(i64::from(keep))))
        .exec(tx)
        .await
        .map_err(db_err)?;
    Ok(())
}
