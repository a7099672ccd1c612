//! The [`Identa`] engine: one value built from a config, a store, schemas, hooks and a
//! clock. It runs the flows' state machines, applies what they decide in one transaction
//! per submission, runs the host's hooks, and keeps the session cache coherent. Hosts
//! call it directly or through the HTTP layer; it is cheap to clone and safe to share.
//!
//! - `builder`: [`IdentaBuilder`].
//! - `identities`: identities and their credentials (the admin surface).
//! - `sessions`: sign-in without a flow, `whoami`, revocation, logout, housekeeping.
//! - `flows`: creating, showing and submitting flows.
//! - `apply`: turning a transition's effects into one store commit.
//! - `facts`: what flows may read, answered from the store, the hasher and the config.
//! - `cache`: the in-process `whoami` cache.
//! - `push`: session events the store pushes into the cache as they commit.
//! - `throttle`: what each submission counts as, and refusals shown on the flow.
//! - `oidc` (feature `oidc`): sign-in with OpenID Connect providers — starting one from a
//!   flow, and its callback.

mod apply;
mod builder;
mod cache;
mod facts;
mod flows;
mod identities;
mod import;
#[cfg(feature = "oidc")]
mod oidc;
mod push;
mod sessions;
mod throttle;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

use crate::clock::Clock;
use crate::config::Config;
use crate::courier::{Courier, Templates};
use crate::credential::password::PasswordHasher;
use crate::hook::Hooks;
use crate::identity::SchemaRegistry;
use crate::secret::Keyring;
use crate::store::{SessionEvent, SessionPush, Store};
use cache::SessionCache;

pub use builder::IdentaBuilder;
#[cfg(feature = "http")]
pub(crate) use flows::kind;
pub use flows::{LoginFlows, RecoveryFlows, RegistrationFlows, SettingsFlows, VerificationFlows};
pub use import::{IdentityImport, MAX_IMPORT_BATCH, PasswordImport};
#[cfg(feature = "oidc")]
pub use oidc::OidcFlows;

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
    /// The breached-password check new passwords pass after the policy.
    breached: Arc<dyn crate::credential::breached::BreachedPasswords>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cache: Arc<SessionCache>,
    /// Pushed session events (PostgreSQL): held for its `Drop`, which stops the listener
    /// when the engine is dropped; read only by the `testing` helpers.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    push: Option<SessionPush>,
    /// How the push is doing (the listener's task reports here; the `testing` helpers wait
    /// on it).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    push_state: Arc<tokio::sync::watch::Sender<push::PushState>>,
    keyring: Arc<Keyring>,
    /// Until when tokens minted before tags are looked up (`None`: never), read from the
    /// store on the first such token.
    untagged_tokens_until: tokio::sync::OnceCell<Option<chrono::DateTime<chrono::Utc>>>,
    /// When the stored password cost floor was last read (`None`: not yet): read again
    /// once [`COST_FLOOR_REREAD`](crate::credential::password::COST_FLOOR_REREAD) old.
    cost_floor_read_at: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    templates: Arc<Templates>,
    hooks: Arc<dyn Hooks>,
    /// The WebAuthn relying party, when security keys and passkeys are configured.
    webauthn: Option<webauthn_rs::Webauthn>,
    /// The throttling policy with its limiter.
    throttle: crate::throttle::policy::Throttle,
    /// The OpenID Connect providers.
    #[cfg(feature = "oidc")]
    oidc: crate::credential::oidc::OidcProviders,
    /// The host's password migration hook, if any.
    password_migration: Option<Arc<dyn crate::credential::password::migration::PasswordMigration>>,
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

    /// The password hasher: its configuration, and the argon2 work it has done
    /// ([`PasswordHasher::argon2_work`]).
    pub fn password_hasher(&self) -> &PasswordHasher {
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

    /// Drops cached sessions something just changed (after a commit).
    fn invalidate(&self, event: SessionEvent) {
        self.inner.cache.invalidate(event);
    }

    /// How many sessions the `whoami` cache holds, and their estimated weight in bytes.
    #[cfg(feature = "testing")]
    pub(crate) fn session_cache_usage(&self) -> (usize, usize) {
        self.inner.cache.usage()
    }

    /// Whether the store pushes session events to this engine.
    #[cfg(feature = "testing")]
    pub(crate) fn store_pushes(&self) -> bool {
        self.inner.push.is_some()
    }

    /// How the store's push of session events is doing (see `push`).
    #[cfg(feature = "testing")]
    pub(crate) fn push_state(&self) -> tokio::sync::watch::Receiver<push::PushState> {
        self.inner.push_state.subscribe()
    }

    /// Now, at microsecond precision: what every supported database stores, so a value
    /// written and read back compares equal.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now().trunc_subsecs(6)
    }
}
