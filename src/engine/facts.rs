//! The engine's answers to what flows may read ([`Facts`]): the store for identities, the
//! bounded hasher for passwords, the configuration, and the host's before hook.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::Identa;
use crate::credential::password::migration::{MigrationError, Verdict};
use crate::credential::password::{Lane, Password, PasswordConfig, PasswordError};
use crate::credential::webauthn::RelyingParty;
use crate::flow::{Facts, FlowRequest, FlowsConfig};
use crate::hook::{BeforeEvent, HookError};
use crate::identity::{AddressVia, CredentialType, Identity, SchemaRegistry};
use crate::secret::Keyring;
use crate::store::{AddressKind, StoreError};

#[async_trait]
impl Facts for Identa {
    fn now(&self) -> DateTime<Utc> {
        Identa::now(self)
    }

    fn config(&self) -> &FlowsConfig {
        &self.inner.config.flows
    }

    fn password_config(&self) -> &PasswordConfig {
        &self.inner.config.password
    }

    fn session_lifespan(&self) -> Duration {
        self.inner.config.session.lifespan
    }

    fn schemas(&self) -> &SchemaRegistry {
        &self.inner.schemas
    }

    fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    fn webauthn(&self) -> Option<(&webauthn_rs::Webauthn, &RelyingParty)> {
        self.inner
            .webauthn
            .as_ref()
            .zip(self.inner.config.flows.webauthn.as_ref())
    }

    async fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
        self.inner.store.identity(id).await
    }

    async fn identity_by_identifier(
        &self,
        credential_type: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError> {
        self.inner
            .store
            .identity_by_identifier(credential_type, identifier)
            .await
    }

    async fn identity_by_address(
        &self,
        kind: AddressKind,
        via: AddressVia,
        value: &str,
    ) -> Result<Option<Identity>, StoreError> {
        self.inner.store.identity_by_address(kind, via, value).await
    }

    fn breached_passwords(&self) -> &dyn crate::credential::breached::BreachedPasswords {
        self.inner.breached.as_ref()
    }

    async fn hash_password(&self, password: &Password) -> Result<String, PasswordError> {
        self.inner.hasher.hash(password).await
    }

    async fn verify_password_in(
        &self,
        lane: Lane,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        self.pad_to_stored_cost_floor().await;
        self.inner.hasher.verify_in(lane, password, stored).await
    }

    async fn password_lane(&self, identifier: &str, req: &FlowRequest) -> Result<Lane, StoreError> {
        let ip = req.device.as_ref().and_then(|d| d.ip_address.as_deref());
        Identa::password_lane(self, identifier, ip).await
    }

    async fn password_history(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        match self.inner.config.password.history.len() {
            0 => Ok(Vec::new()),
            n => self.inner.store.password_history(id, n).await,
        }
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        self.inner.hasher.needs_rehash(stored)
    }

    #[cfg(feature = "oidc")]
    fn oidc_providers(&self) -> Vec<(String, String)> {
        self.inner
            .oidc
            .iter()
            .map(|p| (p.id().to_owned(), p.display_name().to_owned()))
            .collect()
    }

    #[cfg(feature = "oidc")]
    fn oidc_proves_fresh_sign_in(&self, id: &str) -> bool {
        self.inner.oidc.proves_fresh_sign_in(id)
    }

    async fn migrate_password(
        &self,
        identity_id: Uuid,
        identifier: &str,
        password: &Password,
    ) -> Result<Verdict, MigrationError> {
        let Some(hook) = &self.inner.password_migration else {
            tracing::error!(
                identity = %identity_id,
                "a password sign-in needs the password migration hook, but none is configured (IdentaBuilder::password_migration)"
            );
            return Err(MigrationError::NotConfigured);
        };
        let verdict = hook.verify(identity_id, identifier, password).await;
        if let Err(err) = &verdict {
            tracing::warn!(identity = %identity_id, error = %err, "password migration hook failed");
        }
        verdict
    }

    async fn before(&self, event: &BeforeEvent<'_>) -> Result<(), HookError> {
        self.inner.hooks.before(event).await
    }
}
