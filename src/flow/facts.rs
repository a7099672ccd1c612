//! What a flow needs to know beyond its own record and the submission: the time, its
//! configuration, the keyring, the WebAuthn relying party, identities it looks up,
//! password checks, and the host's before hook. The engine implements [`Facts`] over its
//! store and hasher; unit tests implement it over a few identities in memory.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{FlowRequest, FlowsConfig};
use crate::credential::password::migration::{MigrationError, Verdict};
use crate::credential::password::{Lane, Password, PasswordConfig, PasswordError};
use crate::credential::webauthn::RelyingParty;
use crate::hook::{BeforeEvent, HookError};
use crate::identity::{AddressVia, CredentialType, Identity, SchemaRegistry};
use crate::secret::Keyring;
use crate::store::{AddressKind, StoreError};

/// The reads and checks a flow makes. Each is a narrow question, never a write.
#[async_trait]
pub(crate) trait Facts: Send + Sync {
    /// Now, at the stores' precision (microseconds).
    fn now(&self) -> DateTime<Utc>;
    /// The flows' configuration.
    fn config(&self) -> &FlowsConfig;
    /// The password policy and hashing parameters.
    fn password_config(&self) -> &PasswordConfig;
    /// How long a new session lives.
    fn session_lifespan(&self) -> Duration;
    /// The identity schemas.
    fn schemas(&self) -> &SchemaRegistry;
    /// The keys for MACs and sealed data.
    fn keyring(&self) -> &Keyring;
    /// The WebAuthn relying party, when security keys and passkeys are on: the
    /// webauthn-rs engine and its configuration.
    fn webauthn(&self) -> Option<(&webauthn_rs::Webauthn, &RelyingParty)>;

    /// An identity by id.
    async fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError>;
    /// The identity whose credential of `credential_type` has this normalised identifier.
    async fn identity_by_identifier(
        &self,
        credential_type: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError>;
    /// The identity that has this normalised address.
    async fn identity_by_address(
        &self,
        kind: AddressKind,
        via: AddressVia,
        value: &str,
    ) -> Result<Option<Identity>, StoreError>;

    /// The breached-password check new passwords pass after the policy.
    fn breached_passwords(&self) -> &dyn crate::credential::breached::BreachedPasswords;
    /// Hashes a password with the current parameters (off the executor, bounded).
    async fn hash_password(&self, password: &Password) -> Result<String, PasswordError>;
    /// Verifies a password against a stored hash; `None` (no account) does the same work
    /// against a dummy hash and answers false. Waits in the ordinary lane.
    async fn verify_password(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        self.verify_password_in(Lane::Ordinary, password, stored)
            .await
    }
    /// [`verify_password`](Self::verify_password), waiting in `lane` when the hasher is
    /// busy.
    async fn verify_password_in(
        &self,
        lane: Lane,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError>;
    /// The lane a password sign-in as `identifier` by the client of `req` waits in: the
    /// priority lane when that identifier signed in from that client address recently.
    /// It decides only the wait, never the answer.
    async fn password_lane(&self, identifier: &str, req: &FlowRequest) -> Result<Lane, StoreError>;
    /// The hashes of identity `id`'s previous passwords that a new one must differ from
    /// (newest first; none when [`PasswordConfig::history`] is off).
    async fn password_history(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        let _ = id;
        Ok(Vec::new())
    }
    /// Whether a stored hash should be re-hashed with the current parameters.
    fn needs_rehash(&self, stored: &str) -> bool;

    /// The configured OpenID Connect providers: (id, name shown), in order.
    #[cfg(feature = "oidc")]
    fn oidc_providers(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether OpenID Connect provider `id` can prove the user signed in again, as a
    /// re-authentication (`refresh=true`) needs: its ID token carries `auth_time`.
    #[cfg(feature = "oidc")]
    fn oidc_proves_fresh_sign_in(&self, id: &str) -> bool {
        let _ = id;
        false
    }

    /// The host's password migration hook's verdict on `password` for `identity_id`,
    /// whose password awaits migration.
    /// [`MigrationError::NotConfigured`] without a hook.
    async fn migrate_password(
        &self,
        identity_id: Uuid,
        identifier: &str,
        password: &Password,
    ) -> Result<Verdict, MigrationError> {
        let _ = (identity_id, identifier, password);
        Err(MigrationError::NotConfigured)
    }

    /// The host's verdict on a registration or login about to be judged.
    async fn before(&self, event: &BeforeEvent<'_>) -> Result<(), HookError>;
}
