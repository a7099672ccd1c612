//! Importing a user base (Kratos's batch import, `PATCH /admin/identities`): every item is
//! checked first (schema, hash format, password policy; plaintext passwords hashed a few
//! at a time), duplicates within the batch are refused, and what is left is stored in one
//! transaction. Each item is answered on its own: one bad item never fails the others.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};

use super::Identa;
use crate::credential::password::Password;
use crate::error::{Error, Result};
use crate::identity::{Identity, NewIdentity};
use crate::store::StoreError;

/// The most identities one import takes (Kratos's `BatchPatchIdentitiesLimit`).
pub const MAX_IMPORT_BATCH: usize = 1000;

/// One identity to import: what [`Identa::create_identity`] takes, and its password.
#[derive(Debug)]
pub struct IdentityImport {
    /// The identity: traits, state, metadata, external id, verified addresses.
    pub identity: NewIdentity,
    /// Its password, if it has one.
    pub password: PasswordImport,
}

/// The password an imported identity brings.
#[derive(Debug)]
pub enum PasswordImport {
    /// None: it signs in another way (or sets one through recovery).
    None,
    /// A plaintext password: policy-checked and hashed at import.
    Plaintext(Password),
    /// A hash from the system it leaves (one identa verifies; re-hashed at first sign-in).
    Hashed(String),
    /// No password here: the first sign-in asks the host's password migration hook
    /// (Kratos's `use_password_migration_hook`;
    /// [`IdentaBuilder::password_migration`](crate::IdentaBuilder::password_migration)),
    /// and a match stores identa's own hash.
    MigrationHook,
}

impl Identa {
    /// Imports up to [`MAX_IMPORT_BATCH`] identities: the answer has one result per item,
    /// in order, the identity as stored or why it was refused (a schema violation, a hash
    /// identa cannot verify, an identifier, address or external id that is taken, or that
    /// an earlier item of the batch takes). The valid items are stored in one transaction;
    /// should a unique constraint refuse it (a row written meanwhile), they are stored one
    /// by one so that each refusal lands on its own item. Any other failure of that
    /// transaction (the database unreachable, a commit whose outcome is unknown) answers
    /// every valid item with the store's error and is logged: look the identities up
    /// (by identifier or external id) before sending the batch again.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a batch over the limit (nothing is stored).
    pub async fn import_identities(
        &self,
        imports: Vec<IdentityImport>,
    ) -> Result<Vec<Result<Identity>>> {
        if imports.len() > MAX_IMPORT_BATCH {
            return Err(Error::InvalidInput(format!(
                "an import takes at most {MAX_IMPORT_BATCH} identities; this one has {}: split it",
                imports.len()
            )));
        }
        let hashing = self.inner.config.password.concurrency().max(1);
        let mut drafted: Vec<Result<Identity>> = stream::iter(imports)
            .map(|import| self.draft_import(import))
            .buffered(hashing)
            .collect()
            .await;
        refuse_duplicates_within(&mut drafted);
        let valid: Vec<Identity> = drafted
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .cloned()
            .collect();
        if valid.is_empty() {
            return Ok(drafted);
        }
        match self.inner.store.insert_identities(&valid).await {
            Ok(()) => return Ok(drafted),
            // A row written meanwhile took a unique value: one by one, so that the refusal
            // lands on its item and the others are stored.
            Err(StoreError::Conflict { .. }) => {}
            // Anything else (the database down, the commit's outcome unknown) is not an
            // item's fault, and retrying item by item could answer "taken" for identities
            // the batch did store: every item it held gets the error.
            Err(err) => {
                tracing::error!(
                    error = %err,
                    items = valid.len(),
                    "a batch import could not be stored; its items are answered with the error"
                );
                for slot in &mut drafted {
                    if slot.is_ok() {
                        *slot = Err(err.clone().into());
                    }
                }
                return Ok(drafted);
            }
        }
        for slot in &mut drafted {
            if let Ok(identity) = slot
                && let Err(err) = self.inner.store.insert_identity(identity).await
            {
                *slot = Err(err.into());
            }
        }
        Ok(drafted)
    }

    /// One item checked and ready to store.
    async fn draft_import(&self, import: IdentityImport) -> Result<Identity> {
        match import.password {
            PasswordImport::None => {
                self.draft_identity_with_password(import.identity, None)
                    .await
            }
            PasswordImport::Plaintext(password) => {
                self.draft_identity_with_password(import.identity, Some(&password))
                    .await
            }
            PasswordImport::Hashed(hash) => {
                self.draft_identity_with_imported_hash(import.identity, &hash)
            }
            PasswordImport::MigrationHook => {
                self.draft_identity_awaiting_migration(import.identity)
            }
        }
    }
}

/// What must be unique among identities, as an item claims it.
#[derive(PartialEq, Eq, Hash)]
enum Claim {
    Identifier(&'static str, String),
    VerifiableAddress(&'static str, String),
    RecoveryAddress(&'static str, String),
    ExternalId(String),
}

impl Claim {
    /// What clashed, as the store names it.
    fn what(&self) -> &'static str {
        match self {
            Self::Identifier(..) => "credential identifier",
            Self::VerifiableAddress(..) => "verifiable address",
            Self::RecoveryAddress(..) => "recovery address",
            Self::ExternalId(_) => "external id",
        }
    }
}

fn claims(identity: &Identity) -> Vec<Claim> {
    let identifiers = identity.credentials.values().flat_map(|c| {
        c.identifiers
            .iter()
            .map(|i| Claim::Identifier(c.credential_type.as_str(), i.clone()))
    });
    let verifiable = identity
        .verifiable_addresses
        .iter()
        .map(|a| Claim::VerifiableAddress(a.via.as_str(), a.value.clone()));
    let recovery = identity
        .recovery_addresses
        .iter()
        .map(|a| Claim::RecoveryAddress(a.via.as_str(), a.value.clone()));
    let external = identity
        .external_id
        .iter()
        .map(|e| Claim::ExternalId(e.as_str().to_owned()));
    identifiers
        .chain(verifiable)
        .chain(recovery)
        .chain(external)
        .collect()
}

/// Refuses an item that claims what an earlier valid item of the batch claims, as the
/// database would refuse it after the earlier one.
fn refuse_duplicates_within(drafted: &mut [Result<Identity>]) {
    let mut taken: HashSet<Claim> = HashSet::new();
    for slot in drafted.iter_mut() {
        let Ok(identity) = slot else { continue };
        let claims = claims(identity);
        if let Some(clash) = claims.iter().find(|c| taken.contains(c)) {
            *slot = Err(StoreError::Conflict { what: clash.what() }.into());
            continue;
        }
        taken.extend(claims);
    }
}
