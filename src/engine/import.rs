//! Importing a user base (Kratos's batch import, `PATCH /admin/identities`): every item is
//! checked first (schema, hash format, password policy; plaintext passwords hashed a few
//! at a time), duplicates within the batch are refused, and what is left is stored in one
//! transaction. Each item is answered on its own: one bad item never fails the others.
//! What an item brings besides a password (a TOTP authenticator, backup codes, provider
//! accounts) becomes credentials as identa stores them: the TOTP secret sealed, codes as
//! MACs, provider accounts under Kratos's `<provider>:<subject>` identifiers.

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt};

use super::Identa;
use crate::credential::password::{COST_FLOOR_REREAD, CostFloor, Password};
use crate::credential::totp::{self, TotpSecret};
use crate::credential::{CredentialError, lookup};
use crate::error::{Error, Result};
use crate::identity::{
    Credential, CredentialType, Identity, ImportedBackupCode, ImportedCredentials,
    ImportedOidcAccount, NewIdentity,
};
use crate::store::StoreError;

/// The most identities one import takes (Kratos's `BatchPatchIdentitiesLimit`).
pub const MAX_IMPORT_BATCH: usize = 1000;
/// The most backup codes one identity may bring (Kratos and identa make 12 a set).
const MAX_IMPORTED_CODES: usize = 100;
/// The longest provider-account identifier (`<provider>:<subject>`) accepted, in bytes:
/// a longer identifier is never looked up at sign-in.
#[cfg(feature = "oidc")]
const MAX_OIDC_IDENTIFIER_BYTES: usize = 1024;

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
        let floor = self.cost_floor_of(&valid).await?;
        match self
            .inner
            .store
            .insert_imported_identities(&valid, floor.as_ref())
            .await
        {
            Ok(()) => {
                self.raise_cost_floor(floor.as_ref());
                return Ok(drafted);
            }
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
            if let Ok(identity) = slot {
                let one = std::slice::from_ref(identity);
                match self
                    .inner
                    .store
                    .insert_imported_identities(one, floor.as_ref())
                    .await
                {
                    Ok(()) => self.raise_cost_floor(floor.as_ref()),
                    Err(err) => *slot = Err(err.into()),
                }
            }
        }
        Ok(drafted)
    }

    /// Stores imported `identities` in one transaction, raising the password cost floor
    /// to the costliest of their hashes in it (and in this engine's hasher once stored).
    pub(super) async fn insert_imported(&self, identities: &[Identity]) -> Result<()> {
        let floor = self.cost_floor_of(identities).await?;
        self.inner
            .store
            .insert_imported_identities(identities, floor.as_ref())
            .await?;
        self.raise_cost_floor(floor.as_ref());
        Ok(())
    }

    /// The cost floor the password hashes of `identities` raise, if any.
    async fn cost_floor_of(&self, identities: &[Identity]) -> Result<Option<CostFloor>> {
        let hashes = identities.iter().filter_map(|identity| {
            identity
                .credential(CredentialType::Password)
                .and_then(|c| c.config.get("hashed_password"))
                .and_then(serde_json::Value::as_str)
        });
        Ok(self.inner.hasher.cost_floor_of(hashes).await?)
    }

    /// Pads this engine's password checks up to `floor`, just stored.
    fn raise_cost_floor(&self, floor: Option<&CostFloor>) {
        if let Some(floor) = floor {
            self.inner.hasher.raise_floor(floor);
        }
    }

    /// Pads password checks up to the stored cost floor: read on the first check, and
    /// again once [`COST_FLOOR_REREAD`] old, so that an import by another engine on the
    /// same database reaches this one within that time. Until a first read succeeds every
    /// check reads; a re-read is claimed by one check (the others pad to the floor known
    /// so far), and should it fail, the next re-read is due [`COST_FLOOR_REREAD`] later.
    pub(super) async fn pad_to_stored_cost_floor(&self) {
        let now = self.now();
        {
            let mut read_at = self
                .inner
                .cost_floor_read_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match *read_at {
                Some(at) if now - at < COST_FLOOR_REREAD => return,
                Some(_) => *read_at = Some(now),
                None => {}
            }
        }
        match self.inner.store.password_cost_floor().await {
            Ok(floor) => {
                self.raise_cost_floor(floor.as_ref());
                *self
                    .inner
                    .cost_floor_read_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
            }
            Err(err) => tracing::warn!(
                error = %err,
                "the password cost floor could not be read: this check pads to the floor known so far"
            ),
        }
    }

    /// Adds what an import brings besides a password to `identity` (just drafted), as
    /// identa stores it: the TOTP secret sealed to the identity, backup codes as MACs
    /// (used ones kept used), provider accounts under `<provider>:<subject>`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the field and what to send instead.
    pub(super) fn add_imported_credentials(
        &self,
        identity: &mut Identity,
        imported: ImportedCredentials,
    ) -> Result<()> {
        let now = self.now();
        if let Some(url) = imported.totp {
            let secret = TotpSecret::from_otpauth_url(url.expose()).map_err(|e| {
                Error::InvalidInput(format!("credentials.totp.config.totp_url: {e}"))
            })?;
            let sealed = secret
                .seal(self.keyring(), &totp::credential_context(identity.id))
                .ok_or(CredentialError::Sealing("TOTP secret"))?;
            let config = totp::credential_config(&sealed, None);
            add_second_factor(identity, CredentialType::Totp, config, now);
        }
        if !imported.backup_codes.is_empty() {
            let config = self.imported_codes_config(identity, &imported.backup_codes)?;
            add_second_factor(identity, CredentialType::LookupSecret, config, now);
        }
        if !imported.oidc.is_empty() {
            self.add_imported_oidc(identity, &imported.oidc, now)?;
        }
        Ok(())
    }

    /// The lookup-secret config of imported `codes`, or why they cannot be imported.
    fn imported_codes_config(
        &self,
        identity: &Identity,
        codes: &[ImportedBackupCode],
    ) -> Result<serde_json::Value> {
        if codes.len() > MAX_IMPORTED_CODES {
            return Err(Error::InvalidInput(format!(
                "credentials.lookup_secret.config.codes: at most {MAX_IMPORTED_CODES} codes; this identity has {}",
                codes.len()
            )));
        }
        let checked = codes
            .iter()
            .enumerate()
            .map(|(n, c)| {
                lookup::imported(&c.code).map(|code| (code, c.used_at)).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "credentials.lookup_secret.config.codes[{n}].code is not a backup code identa accepts: 8 characters of a-z and 0-9, as Kratos makes them"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(lookup::config_for_imported(
            self.keyring(),
            identity.id,
            &checked,
        ))
    }

    /// Adds imported provider accounts as an OpenID Connect credential.
    #[cfg(feature = "oidc")]
    fn add_imported_oidc(
        &self,
        identity: &mut Identity,
        accounts: &[ImportedOidcAccount],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let configured: Vec<&str> = self.inner.oidc.iter().map(|p| p.id()).collect();
        let mut identifiers: Vec<String> = Vec::with_capacity(accounts.len());
        for (n, account) in accounts.iter().enumerate() {
            let at = format!("credentials.oidc.config.providers[{n}]");
            if account.subject.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "{at}.subject is empty: give the subject (`sub`) the provider knows the user by"
                )));
            }
            if !configured.contains(&account.provider.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "{at}.provider `{}` is not a provider configured in identa (configured: {}): configure it before the import, or correct the id",
                    account.provider,
                    configured.join(", ")
                )));
            }
            let identifier = format!("{}:{}", account.provider, account.subject);
            if identifier.len() > MAX_OIDC_IDENTIFIER_BYTES {
                return Err(Error::InvalidInput(format!(
                    "{at}: provider and subject take at most {MAX_OIDC_IDENTIFIER_BYTES} bytes together"
                )));
            }
            if identifiers.contains(&identifier) {
                return Err(Error::InvalidInput(format!(
                    "{at} lists the account of an earlier item again: list each once"
                )));
            }
            identifiers.push(identifier);
        }
        let providers: Vec<serde_json::Value> = accounts
            .iter()
            .map(|a| serde_json::json!({ "provider": a.provider, "subject": a.subject }))
            .collect();
        identifiers.sort();
        identity.credentials.insert(
            CredentialType::Oidc,
            Credential {
                id: uuid::Uuid::now_v7(),
                credential_type: CredentialType::Oidc,
                identifiers,
                config: serde_json::json!({ "providers": providers }),
                version: 0,
                created_at: now,
                updated_at: now,
            },
        );
        Ok(())
    }

    /// Without the `oidc` feature nobody signs in with a provider: refused, saying so.
    #[cfg(not(feature = "oidc"))]
    #[allow(clippy::unused_self)]
    fn add_imported_oidc(
        &self,
        _identity: &mut Identity,
        _accounts: &[ImportedOidcAccount],
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        Err(Error::InvalidInput(
            "credentials.oidc: this identa is built without OpenID Connect sign-in (the `oidc` feature): build it with the feature and configure the providers, or import the identity without them".into(),
        ))
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

/// Adds a second factor's credential (identified by the identity's id, as enrolment in
/// settings makes it).
fn add_second_factor(
    identity: &mut Identity,
    credential_type: CredentialType,
    config: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) {
    identity.credentials.insert(
        credential_type,
        Credential {
            id: uuid::Uuid::new_v4(),
            credential_type,
            identifiers: vec![identity.id.to_string()],
            config,
            version: 0,
            created_at: now,
            updated_at: now,
        },
    );
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
