//! Identities and their credentials, outside any flow: what a host or the admin API does
//! directly (register, create, import, read, change, delete, list).

use serde_json::Value;
use uuid::Uuid;

use super::Identa;
use crate::credential::breached;
use crate::credential::password::{self, Password, PasswordError};
use crate::credential::webauthn;
use crate::error::{Error, Result};
use crate::identity::{
    CredentialType, ExternalId, Identity, IdentityUpdate, NewIdentity, check_traits, normalize,
};
use crate::store::{Page, PageRequest, SessionEvent};

impl Identa {
    /// Registers a user of the default schema with a password: validates the traits,
    /// checks the password policy, and stores identity, credential and addresses at once.
    pub async fn register(&self, traits: Value, password: &Password) -> Result<Identity> {
        self.create_identity(
            NewIdentity {
                traits,
                ..NewIdentity::default()
            },
            Some(password),
        )
        .await
    }

    /// Creates an identity, optionally with a password (policy-checked and hashed).
    pub async fn create_identity(
        &self,
        new: NewIdentity,
        password: Option<&Password>,
    ) -> Result<Identity> {
        let identity = self.draft_identity_with_password(new, password).await?;
        self.inner.store.insert_identity(&identity).await?;
        Ok(identity)
    }

    /// A new identity, optionally with a password (policy-checked and hashed), not stored.
    pub(super) async fn draft_identity_with_password(
        &self,
        new: NewIdentity,
        password: Option<&Password>,
    ) -> Result<Identity> {
        let (mut identity, identifiers) = self.draft_identity(new)?;
        if let Some(password) = password {
            let identifiers = needs_password_identifiers(&identity, identifiers)?;
            self.check_new_password(password, &identifiers).await?;
            let hash = self.inner.hasher.hash(password).await?;
            password::set_on(&mut identity, identifiers, hash, self.now());
        }
        Ok(identity)
    }

    /// Creates an identity whose password is already hashed (an import from Kratos or
    /// another system). The hash must be one identa can verify; it is re-hashed with the
    /// configured parameters at the first successful login.
    pub async fn import_identity(
        &self,
        new: NewIdentity,
        hashed_password: &str,
    ) -> Result<Identity> {
        let identity = self.draft_identity_with_imported_hash(new, hashed_password)?;
        self.insert_imported(std::slice::from_ref(&identity))
            .await?;
        Ok(identity)
    }

    /// A new identity with an imported password hash, checked, not stored.
    pub(super) fn draft_identity_with_imported_hash(
        &self,
        new: NewIdentity,
        hashed_password: &str,
    ) -> Result<Identity> {
        match self.inner.hasher.check_importable(hashed_password) {
            Ok(()) => {}
            Err(err @ PasswordError::CostOutOfBounds { .. }) => {
                return Err(Error::InvalidInput(format!("hashed_password: {err}")));
            }
            Err(err) => {
                return Err(Error::InvalidInput(format!(
                    "hashed_password is not a hash identa can verify ({err}): use one of the formats Kratos verifies, listed in docs/password-hashes.md"
                )));
            }
        }
        let (mut identity, identifiers) = self.draft_identity(new)?;
        let identifiers = needs_password_identifiers(&identity, identifiers)?;
        password::set_on(
            &mut identity,
            identifiers,
            hashed_password.to_owned(),
            self.now(),
        );
        Ok(identity)
    }

    /// Creates an identity whose password stays in the system it leaves (Kratos's
    /// `use_password_migration_hook`): its first password sign-in asks the host's
    /// [`PasswordMigration`](crate::credential::password::migration::PasswordMigration)
    /// hook, and a match stores identa's own argon2id hash.
    pub async fn import_identity_awaiting_migration(&self, new: NewIdentity) -> Result<Identity> {
        let identity = self.draft_identity_awaiting_migration(new)?;
        self.inner.store.insert_identity(&identity).await?;
        Ok(identity)
    }

    /// A new identity whose password awaits migration through the host's hook, checked,
    /// not stored.
    pub(super) fn draft_identity_awaiting_migration(&self, new: NewIdentity) -> Result<Identity> {
        let (mut identity, identifiers) = self.draft_identity(new)?;
        let identifiers = needs_password_identifiers(&identity, identifiers)?;
        let now = self.now();
        identity.credentials.insert(
            CredentialType::Password,
            password::awaiting_migration(identifiers, now),
        );
        identity.updated_at = now;
        Ok(identity)
    }

    /// The policy and the breach check for a password an administrator or the host sets.
    async fn check_new_password(&self, password: &Password, identifiers: &[String]) -> Result<()> {
        breached::check_new_password(
            &self.inner.config.password,
            self.inner.breached.as_ref(),
            password,
            identifiers,
        )
        .await?;
        Ok(())
    }

    /// A new identity of the schema `new` names (or the default), validated, without
    /// credentials, and the password identifiers its traits mark.
    fn draft_identity(&self, mut new: NewIdentity) -> Result<(Identity, Vec<String>)> {
        let imported = std::mem::take(&mut new.credentials);
        let schema_id = match &new.schema_id {
            Some(id) => id.clone(),
            None => self
                .inner
                .schemas
                .default_id()
                .unwrap_or_default()
                .to_owned(),
        };
        let schema = self.inner.schemas.get(&schema_id)?;
        let (mut identity, extracted) = Identity::draft(&schema, new, self.now())?;
        self.add_imported_credentials(&mut identity, imported)?;
        Ok((identity, extracted.password_identifiers))
    }

    /// An identity by id.
    pub async fn identity(&self, id: Uuid) -> Result<Identity> {
        self.inner.store.identity(id).await?.ok_or(Error::NotFound {
            what: "identity",
            id,
        })
    }

    /// Changes traits, state or metadata. New traits are validated, and identifiers and
    /// addresses follow them (an address that stays keeps its verification status).
    pub async fn update_identity(&self, id: Uuid, update: IdentityUpdate) -> Result<Identity> {
        let mut identity = self.identity(id).await?;
        let now = self.now();
        if let Some(traits) = update.traits {
            let schema = self.inner.schemas.get(&identity.schema_id)?;
            let extracted = identity.set_traits(&schema, traits, now)?;
            webauthn::follow_traits(&mut identity, &extracted, now);
        }
        identity.set_state_and_metadata(
            update.state,
            update.metadata_public,
            update.metadata_admin,
            now,
        )?;
        if let Some(external_id) = update.external_id {
            identity.external_id = external_id;
        }
        self.inner.store.replace_identity(&identity).await?;
        self.invalidate(SessionEvent::Identity(id));
        Ok(identity)
    }

    /// Sets (or replaces) an identity's password, after the policy check.
    pub async fn set_password(&self, id: Uuid, password: &Password) -> Result<Identity> {
        let mut identity = self.identity(id).await?;
        let schema = self.inner.schemas.get(&identity.schema_id)?;
        let identifiers = check_traits(&schema, &identity.traits)?.password_identifiers;
        self.check_new_password(password, &identifiers).await?;
        let hash = self.inner.hasher.hash(password).await?;
        password::set_on(&mut identity, identifiers, hash, self.now());
        self.inner.store.replace_identity(&identity).await?;
        self.invalidate(SessionEvent::Identity(id));
        Ok(identity)
    }

    /// Removes one credential of an identity (a lost TOTP device, say), so the identity
    /// can sign in without it. The password credential cannot be removed this way.
    pub async fn delete_credential(
        &self,
        id: Uuid,
        credential_type: CredentialType,
    ) -> Result<Identity> {
        if credential_type == CredentialType::Password {
            return Err(Error::InvalidInput(
                "the password credential cannot be deleted; set a new password instead".into(),
            ));
        }
        let mut identity = self.identity(id).await?;
        if identity.credentials.remove(&credential_type).is_none() {
            return Err(Error::InvalidInput(format!(
                "identity {id} has no {credential_type} credential"
            )));
        }
        identity.updated_at = self.now();
        self.inner.store.replace_identity(&identity).await?;
        self.invalidate(SessionEvent::Identity(id));
        Ok(identity)
    }

    /// Deletes an identity with its credentials, addresses and sessions.
    pub async fn delete_identity(&self, id: Uuid) -> Result<()> {
        if self.inner.store.delete_identity(id).await? {
            self.invalidate(SessionEvent::Identity(id));
            Ok(())
        } else {
            Err(Error::NotFound {
                what: "identity",
                id,
            })
        }
    }

    /// Lists identities, a page at a time (pass `next` back as `after`).
    pub async fn list_identities(&self, page: PageRequest) -> Result<Page<Identity>> {
        Ok(self.inner.store.list_identities(page).await?)
    }

    /// The identities with these ids (those that exist), ordered by id.
    pub async fn identities_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Identity>> {
        Ok(self.inner.store.identities_by_ids(ids).await?)
    }

    /// The identity another system knows by `external_id`.
    pub async fn identity_by_external_id(
        &self,
        external_id: &ExternalId,
    ) -> Result<Option<Identity>> {
        Ok(self
            .inner
            .store
            .identity_by_external_id(external_id)
            .await?)
    }

    /// The identity that signs in with this password identifier (normalised first).
    pub async fn identity_by_identifier(&self, identifier: &str) -> Result<Option<Identity>> {
        let Some(normalized) = normalize::lookup_identifier(identifier) else {
            return Ok(None);
        };
        Ok(self
            .inner
            .store
            .identity_by_identifier(CredentialType::Password, &normalized)
            .await?)
    }
}

/// The password identifiers of a new identity, or why it cannot have a password.
fn needs_password_identifiers(
    identity: &Identity,
    identifiers: Vec<String>,
) -> Result<Vec<String>> {
    if identifiers.is_empty() {
        return Err(Error::InvalidInput(format!(
            "schema `{}` marks no trait as a password identifier; add \
             \"ory.sh/kratos\": {{\"credentials\": {{\"password\": {{\"identifier\": true}}}}}} to one",
            identity.schema_id
        )));
    }
    Ok(identifiers)
}
