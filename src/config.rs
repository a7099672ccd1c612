//! Configuration with documented defaults. Every field has a safe default; a host
//! changes only what it needs: `Config { session: SessionConfig { lifespan: … }, ..Default::default() }`.

use chrono::Duration;

use crate::courier::CourierConfig;
use crate::credential::password::PasswordConfig;
use crate::flow::FlowsConfig;
use crate::secret::Secrets;
use crate::throttle::ThrottleConfig;

/// Everything an [`Identa`](crate::Identa) engine can be tuned with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Password hashing (argon2id parameters, concurrency) and policy.
    pub password: PasswordConfig,
    /// Session lifetimes.
    pub session: SessionConfig,
    /// Self-service flows: lifespans, switches, code rules.
    pub flows: FlowsConfig,
    /// The courier's delivery rules.
    pub courier: CourierConfig,
    /// Secrets for CSRF tokens, one-time codes and sealed data. The default is random per
    /// process (fine for one process in development); set them in production.
    pub secrets: Secrets,
    /// Throttling: limits on login, second-factor, code, registration and flow attempts,
    /// per identifier and per client address. Default: on, with [`Limits::default`](crate::throttle::Limits).
    pub throttle: ThrottleConfig,
}

/// Session lifetimes and the `whoami` cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// How long a session lives after it is issued or extended. Default: 24 hours.
    pub lifespan: Duration,
    /// The in-process `whoami` cache. Default: on, with revocations by other processes
    /// seen within 1 second. See [`SessionCacheConfig`].
    pub cache: SessionCacheConfig,
    /// The assurance level `whoami` demands. Default: [`RequiredAal::HighestAvailable`]
    /// (as Kratos's `session.whoami.required_aal`): a session of an identity with a
    /// second factor must have used it.
    pub whoami_required_aal: RequiredAal,
}

/// What assurance level a session must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequiredAal {
    /// Any signed-in session, even one of an identity that has a second factor it has
    /// not used: opt in only where one factor is enough.
    Aal1,
    /// The highest the identity can reach: an identity with a second factor set up must
    /// have used it (`aal2`); others need only `aal1`. The default.
    #[default]
    HighestAvailable,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::hours(24),
            cache: SessionCacheConfig::default(),
            whoami_required_aal: RequiredAal::default(),
        }
    }
}

/// How the `whoami` cache behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCacheConfig {
    /// Every `whoami` reads the database.
    Disabled,
    /// Sessions are cached in this process.
    InProcess {
        /// How long another process's revocation may go unseen here. Default 1 s.
        max_staleness: std::time::Duration,
        /// How long an entry is served after it was read from the store, whatever the
        /// session event log says; then it is read again. A backstop for a change the log
        /// does not carry (a row changed by hand, a lost event): the longest any change can
        /// go unseen here. Default 60 s.
        max_age: std::time::Duration,
        /// At most this many sessions are cached; when full, the cache starts over.
        capacity: usize,
    },
}

impl SessionCacheConfig {
    /// The most one cached session may weigh, in bytes: its estimated memory (the session,
    /// its identity as parsed — traits, metadata, addresses, credentials —, its slots in
    /// the cache's tables and, once kept, its rendered HTTP answer). A heavier session is
    /// not cached: every `whoami` of it reads the store (correct, only slower); a
    /// rendered answer that would make its entry heavier is sent but not kept. So an
    /// in-process cache holds at most `capacity × MAX_ENTRY_BYTES` (1.5 GiB at the default
    /// capacity; a one-email identity's session weighs about 1.5 KiB), plus its tables'
    /// spare room. Parsed traits take about twice their JSON size: 4 KiB of traits (as 40
    /// fields) make an entry of about 11 KiB, just under 16 KiB with its rendered answer.
    /// The estimate is checked against measured allocations by `benches/session_scale.rs`.
    pub const MAX_ENTRY_BYTES: usize = 16 * 1024;
}

impl Default for SessionCacheConfig {
    fn default() -> Self {
        Self::InProcess {
            max_staleness: std::time::Duration::from_secs(1),
            max_age: std::time::Duration::from_secs(60),
            capacity: 100_000,
        }
    }
}
