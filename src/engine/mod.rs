//! The [`Identa`] engine: one value built from a config, a store, a schema registry and
//! a clock, holding the rules for identities, passwords and sessions. Hosts call it
//! directly or through the HTTP layer; it is cheap to clone and safe to share.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::courier::{Courier, Templates};
use crate::credential::password::{self, Password, PasswordHasher};
use crate::credential::webauthn;
use crate::error::{Error, Result};
use crate::hook::{Hooks, NoHooks};
use crate::identity::Aal;
use crate::identity::schema::{AddressSpec, AddressVia};
use crate::identity::{
    Credential, CredentialType, ExtractedTraits, Identity, IdentityUpdate, NewIdentity,
    RecoveryAddress, SchemaRegistry, VerifiableAddress, VerificationStatus, normalize,
};
use crate::secret::Keyring;
use crate::store::SessionEvent;
mod cache;
use crate::session::{
    AuthenticatedSession, AuthenticationMethod, Device, Session, SessionRefusal, SessionToken,
};
use crate::store::{Page, PageRequest, Store};
use cache::{SessionCache, SyncNeed};

/// The largest traits document accepted, serialized (a guard against abuse, not a policy).
const MAX_TRAITS_BYTES: usize = 64 * 1024;
/// The longest identifier looked up at login; longer ones cannot exist.
const MAX_IDENTIFIER_BYTES: usize = 1024;
/// How many session events one cache synchronisation reads before giving up and
/// starting the cache over.
const EVENT_READ_LIMIT: u64 = 1000;

/// The identity engine. Clone it freely: clones share one state.
#[derive(Clone, Debug)]
pub struct Identa {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    schemas: SchemaRegistry,
    hasher: PasswordHasher,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: SessionCache,
    keyring: Arc<Keyring>,
    templates: Arc<Templates>,
    hooks: Arc<dyn Hooks>,
    webauthn: Option<webauthn_rs::Webauthn>,
}

impl std::fmt::Debug for dyn Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Hooks")
    }
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Store")
    }
}

/// Builds an [`Identa`]: a store and at least one identity schema are required.
#[must_use]
#[derive(Default)]
pub struct IdentaBuilder {
    config: Config,
    schemas: SchemaRegistry,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
    templates: Templates,
    hooks: Option<Arc<dyn Hooks>>,
}

impl IdentaBuilder {
    /// Uses this configuration (default: [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Uses this store (required), e.g. a [`SeaOrmStore`](crate::store::SeaOrmStore).
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Uses a shared store.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this schema registry (required: at least one schema).
    pub fn schemas(mut self, schemas: SchemaRegistry) -> Self {
        self.schemas = schemas;
        self
    }

    /// Uses these email templates (default: the built-in English ones).
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }

    /// Runs these hooks in every flow (default: none). See [`crate::hook`].
    pub fn hooks(mut self, hooks: impl Hooks + 'static) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// Uses this clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the engine. Fails if no store or no schema was given, or if the password
    /// parameters are invalid.
    pub fn build(self) -> Result<Identa> {
        let store = self.store.ok_or_else(|| {
            Error::InvalidInput(
                "no store configured: call IdentaBuilder::store(SeaOrmStore::connect(url).await?)"
                    .into(),
            )
        })?;
        if self.schemas.default_id().is_none() {
            return Err(Error::InvalidInput(
                "no identity schema registered: add one with SchemaRegistry::add".into(),
            ));
        }
        let hasher = PasswordHasher::new(self.config.password.clone())?;
        let keyring = Keyring::new(&self.config.secrets)
            .map_err(|e| Error::InvalidInput(format!("secrets: {e}")))?;
        let webauthn = match &self.config.flows.webauthn {
            Some(rp) => Some(rp.build().map_err(Error::InvalidInput)?),
            None => None,
        };
        Ok(Identa {
            inner: Arc::new(Inner {
                cache: SessionCache::new(self.config.session.cache),
                keyring: Arc::new(keyring),
                templates: Arc::new(self.templates),
                hooks: self.hooks.unwrap_or_else(|| Arc::new(NoHooks)),
                webauthn,
                config: self.config,
                schemas: self.schemas,
                hasher,
                store,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            }),
        })
    }
}

/// A successful login: the session (with its identity) and its token, shown only now.
#[derive(Debug)]
pub struct Login {
    /// The new session and its identity.
    pub session: AuthenticatedSession,
    /// The session token: give it to the client; identa keeps only its hash.
    pub token: SessionToken,
}

impl Identa {
    /// Starts building an engine.
    pub fn builder() -> IdentaBuilder {
        IdentaBuilder::default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The identity schemas.
    pub fn schemas(&self) -> &SchemaRegistry {
        &self.inner.schemas
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The password hasher (bounded, off the executor).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// The courier: the outbox of messages flows send, and their delivery.
    pub fn courier(&self) -> Courier {
        Courier {
            store: self.inner.store.clone(),
            keyring: self.inner.keyring.clone(),
            clock: self.inner.clock.clone(),
            templates: self.inner.templates.clone(),
            config: self.inner.config.courier.clone(),
        }
    }

    pub(crate) fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The WebAuthn relying party, when security keys and passkeys are configured.
    pub(crate) fn webauthn(&self) -> Option<&webauthn_rs::Webauthn> {
        self.inner.webauthn.as_ref()
    }

    pub(crate) fn hooks(&self) -> &dyn Hooks {
        self.inner.hooks.as_ref()
    }

    /// Tells the session cache that something changed (after a commit).
    pub(crate) fn invalidate(&self, event: SessionEvent) {
        self.inner.cache.invalidate(event);
    }

    /// Now, at microsecond precision: what every supported database stores, so a value
    /// written and read back compares equal.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use chrono::SubsecRound;
        self.inner.clock.now().trunc_subsecs(6)
    }

    // ---- identities ---------------------------------------------------------------

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
        let identity = self.prepare_identity(new, password).await?;
        self.inner.store.insert_identity(&identity).await?;
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
        if !self.inner.hasher.can_verify(hashed_password) {
            return Err(Error::InvalidInput(
                "hashed_password is not a hash identa can verify: use an argon2id or argon2i PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash) or a bcrypt hash ($2a$/$2b$/$2y$, cost 4 to 15)"
                    .into(),
            ));
        }
        let mut identity = self.prepare_identity(new, None).await?;
        let extracted = self.validate_traits(&identity.schema_id, &identity.traits)?;
        if extracted.password_identifiers.is_empty() {
            return Err(Error::InvalidInput(format!(
                "schema `{}` marks no trait as a password identifier, so a password cannot be imported",
                identity.schema_id
            )));
        }
        identity.credentials.insert(
            CredentialType::Password,
            password_credential(
                extracted.password_identifiers,
                hashed_password.to_owned(),
                self.now(),
            ),
        );
        self.inner.store.insert_identity(&identity).await?;
        Ok(identity)
    }

    /// A new identity, validated and with its password hashed, not yet stored.
    pub(crate) async fn prepare_identity(
        &self,
        new: NewIdentity,
        password: Option<&Password>,
    ) -> Result<Identity> {
        for (what, metadata) in [
            ("metadata_public", &new.metadata_public),
            ("metadata_admin", &new.metadata_admin),
        ] {
            if let Some(metadata) = metadata {
                check_no_nul(what, metadata)?;
            }
        }
        let schema_id = match new.schema_id {
            Some(id) => id,
            None => self.default_schema_id()?,
        };
        let extracted = self.validate_traits(&schema_id, &new.traits)?;
        let now = self.now();
        let mut credentials = BTreeMap::new();
        if let Some(password) = password {
            let identifiers = extracted.password_identifiers.clone();
            if identifiers.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "schema `{schema_id}` marks no trait as a password identifier; add \
                     \"ory.sh/kratos\": {{\"credentials\": {{\"password\": {{\"identifier\": true}}}}}} to one"
                )));
            }
            password::check_policy(&self.inner.config.password, password, &identifiers)
                .map_err(Error::PasswordPolicy)?;
            let hash = self.inner.hasher.hash(password).await?;
            credentials.insert(
                CredentialType::Password,
                password_credential(identifiers, hash, now),
            );
        }
        let identity = Identity {
            id: Uuid::new_v4(),
            schema_id,
            state: new.state,
            state_changed_at: None,
            traits: new.traits,
            verifiable_addresses: sync_verifiable(&[], &extracted.verifiable_addresses, now),
            recovery_addresses: sync_recovery(&[], &extracted.recovery_addresses, now),
            metadata_public: new.metadata_public,
            metadata_admin: new.metadata_admin,
            credentials,
            created_at: now,
            updated_at: now,
        };
        Ok(identity)
    }

    /// An identity by id.
    pub async fn identity(&self, id: Uuid) -> Result<Identity> {
        self.inner
            .store
            .identity(id)
            .await?
            .ok_or(Error::IdentityNotFound(id))
    }

    /// Changes traits, state or metadata. New traits are validated, and identifiers and
    /// addresses follow them (an address that stays keeps its verification status).
    pub async fn update_identity(&self, id: Uuid, update: IdentityUpdate) -> Result<Identity> {
        let mut identity = self.identity(id).await?;
        let now = self.now();
        if let Some(traits) = update.traits {
            self.apply_traits(&mut identity, traits)?;
        }
        if let Some(state) = update.state.filter(|s| *s != identity.state) {
            identity.state = state;
            identity.state_changed_at = Some(now);
        }
        if let Some(metadata) = update.metadata_public {
            if let Some(m) = &metadata {
                check_no_nul("metadata_public", m)?;
            }
            identity.metadata_public = metadata;
        }
        if let Some(metadata) = update.metadata_admin {
            if let Some(m) = &metadata {
                check_no_nul("metadata_admin", m)?;
            }
            identity.metadata_admin = metadata;
        }
        identity.updated_at = now;
        self.inner.store.replace_identity(&identity).await?;
        self.inner.cache.invalidate(SessionEvent::Identity(id));
        Ok(identity)
    }

    /// Validates new traits and applies them: identifiers and addresses follow (an
    /// address that stays keeps its verification status). Not stored.
    pub(crate) fn apply_traits(&self, identity: &mut Identity, traits: Value) -> Result<()> {
        let now = self.now();
        let extracted = self.validate_traits(&identity.schema_id, &traits)?;
        identity.traits = traits;
        identity.verifiable_addresses = sync_verifiable(
            &identity.verifiable_addresses,
            &extracted.verifiable_addresses,
            now,
        );
        identity.recovery_addresses = sync_recovery(
            &identity.recovery_addresses,
            &extracted.recovery_addresses,
            now,
        );
        if let Some(cred) = identity.credentials.get_mut(&CredentialType::Passkey) {
            let identifiers =
                webauthn::passkey_identifiers(sign_in_identifiers(&extracted), &cred.config);
            if cred.identifiers != identifiers {
                cred.identifiers = identifiers;
                cred.updated_at = now;
            }
        }
        if let Some(cred) = identity.credentials.get_mut(&CredentialType::Password) {
            let mut identifiers = extracted.password_identifiers;
            identifiers.sort();
            if cred.identifiers != identifiers {
                cred.identifiers = identifiers;
                cred.updated_at = now;
            }
        }
        identity.updated_at = now;
        Ok(())
    }

    /// What an identity's traits let it sign in with a passkey by (its password and
    /// WebAuthn identifiers).
    pub(crate) fn passkey_sign_in_identifiers(&self, identity: &Identity) -> Result<Vec<String>> {
        let extracted = self.validate_traits(&identity.schema_id, &identity.traits)?;
        Ok(sign_in_identifiers(&extracted))
    }

    /// Sets (or replaces) an identity's password, after the policy check.
    pub async fn set_password(&self, id: Uuid, password: &Password) -> Result<Identity> {
        let mut identity = self.identity(id).await?;
        self.apply_password(&mut identity, password).await?;
        self.inner.store.replace_identity(&identity).await?;
        self.inner.cache.invalidate(SessionEvent::Identity(id));
        Ok(identity)
    }

    /// Checks the policy, hashes, and puts the password on the identity. Not stored.
    pub(crate) async fn apply_password(
        &self,
        identity: &mut Identity,
        password: &Password,
    ) -> Result<()> {
        let extracted = self.validate_traits(&identity.schema_id, &identity.traits)?;
        password::check_policy(
            &self.inner.config.password,
            password,
            &extracted.password_identifiers,
        )
        .map_err(Error::PasswordPolicy)?;
        let hash = self.inner.hasher.hash(password).await?;
        let now = self.now();
        let created_at = identity
            .credential(CredentialType::Password)
            .map_or(now, |c| c.created_at);
        let mut credential = password_credential(extracted.password_identifiers, hash, now);
        credential.created_at = created_at;
        identity
            .credentials
            .insert(CredentialType::Password, credential);
        identity.updated_at = now;
        Ok(())
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
        self.inner.cache.invalidate(SessionEvent::Identity(id));
        Ok(identity)
    }

    /// Deletes an identity with its credentials, addresses and sessions.
    pub async fn delete_identity(&self, id: Uuid) -> Result<()> {
        if self.inner.store.delete_identity(id).await? {
            self.inner.cache.invalidate(SessionEvent::Identity(id));
            Ok(())
        } else {
            Err(Error::IdentityNotFound(id))
        }
    }

    /// Lists identities, a page at a time (pass `next` back as `after`).
    pub async fn list_identities(&self, page: PageRequest) -> Result<Page<Identity>> {
        Ok(self.inner.store.list_identities(page).await?)
    }

    /// The identity that signs in with this password identifier (normalised first).
    pub async fn identity_by_identifier(&self, identifier: &str) -> Result<Option<Identity>> {
        // No stored identifier is that long or holds a NUL (refused at registration).
        if identifier.len() > MAX_IDENTIFIER_BYTES || identifier.contains('\0') {
            return Ok(None);
        }
        Ok(self
            .inner
            .store
            .identity_by_identifier(CredentialType::Password, &normalize::identifier(identifier))
            .await?)
    }

    fn default_schema_id(&self) -> Result<String> {
        self.inner
            .schemas
            .default_id()
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidInput("no identity schema registered".into()))
    }

    fn validate_traits(&self, schema_id: &str, traits: &Value) -> Result<ExtractedTraits> {
        let size = serde_json::to_vec(traits).map_or(usize::MAX, |v| v.len());
        if size > MAX_TRAITS_BYTES {
            return Err(Error::InvalidInput(format!(
                "traits are {size} bytes; at most {MAX_TRAITS_BYTES} are accepted"
            )));
        }
        check_no_nul("traits", traits)?;
        Ok(self.inner.schemas.get(schema_id)?.validate(traits)?)
    }

    // ---- passwords and sessions ---------------------------------------------------

    /// Signs in with an identifier and a password and issues a session.
    ///
    /// A wrong password and an unknown identifier fail alike ([`Error::InvalidCredentials`])
    /// and take the same time: an unknown identifier is verified against a dummy hash.
    pub async fn login(
        &self,
        identifier: &str,
        password: &Password,
        device: Option<Device>,
    ) -> Result<Login> {
        let identity = self.check_password(identifier, password).await?;
        let now = self.now();
        let method = AuthenticationMethod {
            method: CredentialType::Password.as_str().to_owned(),
            aal: Aal::Aal1,
            completed_at: now,
        };
        let (session, token) = self.issue_session(&identity, vec![method], device).await?;
        Ok(Login {
            session: AuthenticatedSession { session, identity },
            token,
        })
    }

    /// Verifies an identifier and password, returning the identity (no session issued).
    pub async fn check_password(&self, identifier: &str, password: &Password) -> Result<Identity> {
        let too_long = password.expose().len() > self.inner.config.password.max_length;
        let identity = if too_long {
            None
        } else {
            self.identity_by_identifier(identifier).await?
        };
        let stored = identity
            .as_ref()
            .and_then(|i| i.credential(CredentialType::Password))
            .and_then(Credential::hashed_password)
            .map(str::to_owned);
        if too_long {
            // Refused before any hashing, whatever the account: reveals nothing.
            return Err(Error::InvalidCredentials);
        }
        let verified = match self.inner.hasher.verify(password, stored.as_deref()).await {
            Ok(ok) => ok,
            Err(err) => {
                // An unusable stored hash fails before any hashing; do the same work as a
                // verification anyway, so timing does not single this account out.
                tracing::warn!(error = %err, "stored password hash could not be verified");
                let _ = self.inner.hasher.verify(password, None).await;
                false
            }
        };
        let Some(identity) = identity.filter(|_| verified) else {
            return Err(Error::InvalidCredentials);
        };
        if !identity.is_active() {
            return Err(Error::IdentityDisabled);
        }
        let outdated = stored
            .as_deref()
            .is_some_and(|s| self.inner.hasher.needs_rehash(s));
        if outdated && let Err(err) = self.rehash(&identity, password).await {
            tracing::warn!(error = %err, identity = %identity.id, "password rehash failed; login goes on");
        }
        Ok(identity)
    }

    async fn rehash(&self, identity: &Identity, password: &Password) -> Result<()> {
        let hash = self.inner.hasher.hash(password).await?;
        let mut updated = identity.clone();
        if let Some(cred) = updated.credentials.get_mut(&CredentialType::Password) {
            cred.config = json!({ "hashed_password": hash });
            cred.updated_at = self.now();
        }
        self.inner.store.replace_identity(&updated).await?;
        self.inner
            .cache
            .invalidate(SessionEvent::Identity(identity.id));
        Ok(())
    }

    /// Issues a session for an identity that has just authenticated with `methods`.
    pub async fn issue_session(
        &self,
        identity: &Identity,
        methods: Vec<AuthenticationMethod>,
        device: Option<Device>,
    ) -> Result<(Session, SessionToken)> {
        let (session, token) = self.new_session(identity, methods, device)?;
        self.inner
            .store
            .insert_session(&session, &token.hash())
            .await?;
        Ok((session, token))
    }

    /// A new session and its token, not yet stored.
    pub(crate) fn new_session(
        &self,
        identity: &Identity,
        methods: Vec<AuthenticationMethod>,
        device: Option<Device>,
    ) -> Result<(Session, SessionToken)> {
        if !identity.is_active() {
            return Err(Error::IdentityDisabled);
        }
        let now = self.now();
        let aal = methods.iter().map(|m| m.aal).max().unwrap_or(Aal::Aal1);
        let session = Session {
            id: Uuid::new_v4(),
            identity_id: identity.id,
            active: true,
            issued_at: now,
            authenticated_at: now,
            expires_at: now + self.inner.config.session.lifespan,
            aal,
            authentication_methods: methods,
            devices: device.into_iter().collect(),
        };
        let token = SessionToken::generate();
        Ok((session, token))
    }

    /// The session a token belongs to, with its identity. Refuses unknown, revoked and
    /// expired sessions, and sessions of disabled identities; with
    /// `session.whoami_required_aal = HighestAvailable`, also an `aal1` session of an
    /// identity that has a second factor ([`Error::Aal2Required`]).
    pub async fn whoami(&self, token: &SessionToken) -> Result<AuthenticatedSession> {
        let current = self.authenticate(token).await?;
        if self.inner.config.session.whoami_required_aal
            == crate::config::RequiredAal::HighestAvailable
            && current.session.aal < current.identity.highest_available_aal()
        {
            return Err(Error::Aal2Required);
        }
        Ok(current)
    }

    /// [`whoami`](Self::whoami) without the assurance-level rule: what flows use, since a
    /// session that must step up still drives the step-up.
    pub(crate) async fn authenticate(&self, token: &SessionToken) -> Result<AuthenticatedSession> {
        if token.is_oversized() {
            return Err(Error::SessionInactive(SessionRefusal::Unknown));
        }
        let hash = token.hash();
        let cache = &self.inner.cache;
        if let SyncNeed::ReadAfter(cursor) = cache.sync_need(self.inner.clock.now()) {
            let read_at = self.inner.clock.now();
            let log = self
                .inner
                .store
                .session_events_after(cursor, EVENT_READ_LIMIT)
                .await?;
            cache.apply(cursor, &log.events, log.cursor, log.complete, read_at);
        }
        let current = match cache.get(&hash) {
            Some(hit) => hit,
            None => {
                let generation = cache.generation();
                let (session, identity) = self
                    .inner
                    .store
                    .session_by_token(&hash)
                    .await?
                    .ok_or(Error::SessionInactive(SessionRefusal::Unknown))?;
                let found = AuthenticatedSession { session, identity };
                cache.put(hash, &found, generation);
                found
            }
        };
        // Expiry and state are judged now, on every call, cached or not.
        if let Some(reason) = current
            .session
            .unusable_reason(&current.identity, self.now())
        {
            return Err(Error::SessionInactive(reason));
        }
        Ok(current)
    }

    /// Ends the session a token belongs to.
    pub async fn logout(&self, token: &SessionToken) -> Result<()> {
        let current = self.whoami(token).await?;
        self.revoke_session(current.identity.id, current.session.id)
            .await
    }

    /// Extends an active session by the configured lifespan from now.
    pub async fn extend_session(&self, session_id: Uuid) -> Result<Session> {
        let mut session = self
            .inner
            .store
            .session(session_id)
            .await?
            .ok_or(Error::SessionNotFound(session_id))?;
        let now = self.now();
        if !session.active || session.expires_at <= now {
            return Err(Error::SessionInactive(if session.active {
                SessionRefusal::Expired
            } else {
                SessionRefusal::Revoked
            }));
        }
        session.expires_at = now + self.inner.config.session.lifespan;
        self.inner.store.update_session(&session).await?;
        self.inner
            .cache
            .invalidate(SessionEvent::Session(session.id));
        Ok(session)
    }

    /// All sessions, by id; `active` filters on the revocation flag.
    pub async fn list_sessions(
        &self,
        active: Option<bool>,
        page: PageRequest,
    ) -> Result<Page<Session>> {
        Ok(self.inner.store.list_sessions(active, page).await?)
    }

    /// A session by id (whatever its state).
    pub async fn session(&self, session_id: Uuid) -> Result<Session> {
        self.inner
            .store
            .session(session_id)
            .await?
            .ok_or(Error::SessionNotFound(session_id))
    }

    /// An identity's sessions, newest first (revoked and expired ones included).
    pub async fn sessions(&self, identity_id: Uuid) -> Result<Vec<Session>> {
        Ok(self.inner.store.sessions_of(identity_id).await?)
    }

    /// Revokes one session of an identity.
    pub async fn revoke_session(&self, identity_id: Uuid, session_id: Uuid) -> Result<()> {
        if self
            .inner
            .store
            .revoke_session(identity_id, session_id)
            .await?
        {
            self.inner
                .cache
                .invalidate(SessionEvent::Session(session_id));
            Ok(())
        } else {
            Err(Error::SessionNotFound(session_id))
        }
    }

    /// Revokes every other session of the current session's identity; returns how many.
    pub async fn revoke_other_sessions(&self, current: &AuthenticatedSession) -> Result<u64> {
        let revoked = self
            .inner
            .store
            .revoke_sessions(current.identity.id, Some(current.session.id))
            .await?;
        self.inner
            .cache
            .invalidate(SessionEvent::Identity(current.identity.id));
        Ok(revoked)
    }

    /// Revokes every session of an identity; returns how many.
    pub async fn revoke_all_sessions(&self, identity_id: Uuid) -> Result<u64> {
        let revoked = self.inner.store.revoke_sessions(identity_id, None).await?;
        self.inner
            .cache
            .invalidate(SessionEvent::Identity(identity_id));
        Ok(revoked)
    }

    /// Housekeeping a host runs now and then (e.g. hourly): deletes sessions that expired
    /// more than a day ago, flows that expired more than a day ago, outbox messages sent or
    /// abandoned more than 30 days ago, and trims the session event log to its newest
    /// 10,000 events.
    pub async fn prune(&self) -> Result<()> {
        let store = &self.inner.store;
        store
            .delete_expired_sessions(self.now() - chrono::Duration::days(1))
            .await?;
        store.prune_session_events(10_000).await?;
        store
            .delete_expired_flows(self.now() - chrono::Duration::days(1))
            .await?;
        store
            .delete_finished_before(self.now() - chrono::Duration::days(30))
            .await?;
        Ok(())
    }
}

/// Refuses JSON holding a NUL character: no database stores it portably (PostgreSQL
/// refuses it in text and JSON), so it is bad input, not a storage failure.
fn check_no_nul(what: &str, value: &Value) -> Result<()> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(value) {
        return Err(Error::InvalidInput(format!(
            "{what} must not contain NUL characters (\\u0000)"
        )));
    }
    Ok(())
}

/// A password credential; identifiers are kept sorted, as the store returns them.
fn password_credential(
    mut identifiers: Vec<String>,
    hash: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Credential {
    identifiers.sort();
    Credential {
        id: Uuid::new_v4(),
        credential_type: CredentialType::Password,
        identifiers,
        config: json!({ "hashed_password": hash }),
        version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// The addresses for `wanted`: those that stay keep their rows (and, for verifiable
/// addresses, their verification); new ones are made by `fresh`.
fn sync_addresses<A: Clone>(
    existing: &[A],
    wanted: &[AddressSpec],
    key: impl Fn(&A) -> (AddressVia, &str),
    fresh: impl Fn(&AddressSpec) -> A,
) -> Vec<A> {
    wanted
        .iter()
        .map(|spec| {
            existing
                .iter()
                .find(|a| key(a) == (spec.via, spec.value.as_str()))
                .cloned()
                .unwrap_or_else(|| fresh(spec))
        })
        .collect()
}

fn sync_verifiable(
    existing: &[VerifiableAddress],
    wanted: &[AddressSpec],
    now: DateTime<Utc>,
) -> Vec<VerifiableAddress> {
    sync_addresses(
        existing,
        wanted,
        |a| (a.via, a.value.as_str()),
        |spec| VerifiableAddress {
            id: Uuid::new_v4(),
            value: spec.value.clone(),
            via: spec.via,
            verified: false,
            status: VerificationStatus::Pending,
            verified_at: None,
            created_at: now,
            updated_at: now,
        },
    )
}

fn sync_recovery(
    existing: &[RecoveryAddress],
    wanted: &[AddressSpec],
    now: DateTime<Utc>,
) -> Vec<RecoveryAddress> {
    sync_addresses(
        existing,
        wanted,
        |a| (a.via, a.value.as_str()),
        |spec| RecoveryAddress {
            id: Uuid::new_v4(),
            value: spec.value.clone(),
            via: spec.via,
            created_at: now,
            updated_at: now,
        },
    )
}

/// The identifiers a passkey signs in by: the password and WebAuthn identifiers of the
/// traits, sorted, without repeats.
fn sign_in_identifiers(extracted: &ExtractedTraits) -> Vec<String> {
    let mut ids: Vec<String> = extracted
        .password_identifiers
        .iter()
        .chain(&extracted.webauthn_identifiers)
        .cloned()
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
