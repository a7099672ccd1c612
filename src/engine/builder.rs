//! Building an [`Identa`]: a store and at least one identity schema are required; the
//! rest has defaults (configuration, templates, no hooks, the system clock).

use std::sync::Arc;

use super::cache::SessionCache;
use super::push::{CacheSink, PushState};
use super::{Identa, Inner};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, SessionCacheConfig};
use crate::courier::Templates;
use crate::credential::breached::{BreachedPasswords, CommonPasswords};
use crate::credential::password::PasswordHasher;
use crate::credential::password::migration::PasswordMigration;
use crate::error::{Error, Result};
use crate::hook::{Hooks, NoHooks};
use crate::identity::SchemaRegistry;
use crate::secret::Keyring;
use crate::store::Store;
use crate::throttle::policy::Throttle;
use crate::throttle::{Limiter, StoreLimiter};

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
    limiter: Option<Arc<dyn Limiter>>,
    breached: Option<Arc<dyn BreachedPasswords>>,
    #[cfg(feature = "oidc")]
    oidc: crate::credential::oidc::OidcProviders,
    password_migration: Option<Arc<dyn PasswordMigration>>,
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

    /// Counts throttled attempts with this limiter (default: [`StoreLimiter`] on the
    /// store, shared by every engine on the database). The limits are
    /// [`Config::throttle`].
    pub fn limiter(mut self, limiter: impl Limiter + 'static) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    /// Checks new passwords against this breach source (default: [`CommonPasswords`],
    /// the offline list shipped with identa; with the `hibp` feature,
    /// [`PwnedPasswords`](crate::credential::breached::PwnedPasswords) asks Have I Been
    /// Pwned). A password found is refused with message 4000034.
    pub fn breached_passwords(mut self, check: impl BreachedPasswords + 'static) -> Self {
        self.breached = Some(Arc::new(check));
        self
    }

    /// Uses this clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Signs in with these OpenID Connect providers (feature `oidc`): login and
    /// registration flows show a button per provider.
    #[cfg(feature = "oidc")]
    pub fn oidc(mut self, providers: crate::credential::oidc::OidcProviders) -> Self {
        self.oidc = providers;
        self
    }

    /// Checks the first password sign-in of identities imported with
    /// `use_password_migration_hook` through this hook (default: none; such a sign-in is
    /// then refused with `password_migration_hook_not_configured`). With feature
    /// `migration-hook`,
    /// [`HttpPasswordMigration`](crate::credential::password::migration::HttpPasswordMigration)
    /// calls a URL as Kratos's `migrate_hook` does.
    pub fn password_migration(mut self, hook: impl PasswordMigration + 'static) -> Self {
        self.password_migration = Some(Arc::new(hook));
        self
    }

    /// Builds the engine. Fails if no store or no schema was given, if the password
    /// parameters, secrets or WebAuthn relying party are invalid, or if enumeration-safe
    /// registration is combined with what would give it away (a session on sign-up, no
    /// verification).
    ///
    /// Built inside a Tokio runtime on a store that pushes session events (PostgreSQL),
    /// with the session cache on, the engine starts listening for them here, in a
    /// background task that stops when the last clone of the engine is dropped: other
    /// instances' revocations then reach its cache as they commit, not at its next read
    /// of the event log.
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
        crate::flow::check_duplicate_registration(&self.config.flows)
            .map_err(Error::InvalidInput)?;
        #[cfg(feature = "oidc")]
        self.oidc.check().map_err(Error::InvalidInput)?;
        let hasher = PasswordHasher::new(self.config.password.clone())?;
        let keyring = Keyring::new(&self.config.secrets)
            .map_err(|e| Error::InvalidInput(format!("secrets: {e}")))?;
        let webauthn = match &self.config.flows.webauthn {
            Some(rp) => Some(rp.build().map_err(Error::InvalidInput)?),
            None => None,
        };
        let limiter = self
            .limiter
            .unwrap_or_else(|| Arc::new(StoreLimiter::new(store.clone())));
        let cache = Arc::new(SessionCache::new(self.config.session.cache));
        let push_state = Arc::new(tokio::sync::watch::Sender::new(PushState::default()));
        let push = match self.config.session.cache {
            SessionCacheConfig::Disabled => None,
            SessionCacheConfig::InProcess { .. } => {
                store.push_session_events(Arc::new(CacheSink {
                    cache: cache.clone(),
                    state: push_state.clone(),
                }))
            }
        };
        Ok(Identa {
            inner: Arc::new(Inner {
                throttle: Throttle::new(&self.config.throttle, limiter),
                cache,
                push,
                push_state,
                keyring: Arc::new(keyring),
                untagged_tokens_until: tokio::sync::OnceCell::new(),
                cost_floor_read_at: std::sync::Mutex::new(None),
                templates: Arc::new(self.templates),
                hooks: self.hooks.unwrap_or_else(|| Arc::new(NoHooks)),
                webauthn,
                #[cfg(feature = "oidc")]
                oidc: self.oidc,
                config: self.config,
                schemas: self.schemas,
                hasher,
                breached: self.breached.unwrap_or_else(|| Arc::new(CommonPasswords)),
                store,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                password_migration: self.password_migration,
            }),
        })
    }
}
