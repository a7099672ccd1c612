//! Test environment: a fresh engine on a chosen backend, a manual clock, cheap hashing;
//! and the helpers more than one test file needs (each defined once, here):
//! [`accounts`] (signing up and in), [`flows`] (starting and submitting API flows),
//! [`ui`] (reading a flow's nodes and messages), [`mail`] (reading the outbox),
//! [`factors`] (second factors), [`race`] (tasks released together); and [`needs`], what
//! the ignored tests need beyond Rust.

pub mod accounts;
pub mod factors;
pub mod flows;
pub mod mail;
pub mod needs;
pub mod race;
pub mod ui;

pub use accounts::*;
pub use factors::*;
pub use flows::*;
pub use mail::*;
pub use ui::*;

use std::sync::Arc;

use identa::credential::password::PasswordConfig;
use identa::hook::{AfterEvent, BeforeEvent, HookError, Hooks};
use identa::identity::SchemaRegistry;
use identa::store::{SeaOrmStore, Transaction};
use identa::{Config, Identa, IdentaBuilder, ManualClock};
use serde_json::{Value, json};

/// The password the suite registers with.
pub const PASSWORD: &str = "a long and unusual passphrase";

/// Where a test's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SqliteMemory,
    SqliteFile,
    Postgres,
}

pub struct TestEnv {
    pub identa: Identa,
    pub clock: Arc<ManualClock>,
    pub store: SeaOrmStore,
    pub backend: Backend,
    /// The SQLite file (file backend only); the directory lives as long as the env.
    pub sqlite_path: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

/// The identity schema the suite uses: Kratos-shaped, email as identifier, verification
/// and recovery address, an optional username identifier and a nested name.
pub fn person_schema() -> Value {
    json!({
        "$id": "https://example.invalid/person.schema.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Person",
        "type": "object",
        "properties": {
            "traits": {
                "type": "object",
                "properties": {
                    "email": {
                        "type": "string",
                        "format": "email",
                        "title": "E-Mail",
                        "maxLength": 320,
                        "ory.sh/kratos": {
                            "credentials": { "password": { "identifier": true } },
                            "verification": { "via": "email" },
                            "recovery": { "via": "email" }
                        }
                    },
                    "username": {
                        "type": "string",
                        "minLength": 3,
                        "maxLength": 32,
                        "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } }
                    },
                    "name": {
                        "type": "object",
                        "properties": {
                            "first": { "type": "string", "title": "First name" },
                            "last": { "type": "string", "title": "Last name" }
                        }
                    }
                },
                "required": ["email"],
                "additionalProperties": false
            }
        }
    })
}

pub fn test_config() -> Config {
    Config {
        password: PasswordConfig::insecure_fast_for_tests(),
        ..Config::default()
    }
}

impl TestEnv {
    /// A fresh environment on `backend`. PostgreSQL needs `IDENTA_TEST_POSTGRES_URL` and
    /// the `postgres` feature: without them this fails, naming what is missing.
    pub async fn new(backend: Backend) -> Self {
        Self::with_config(backend, test_config()).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> Self {
        let (url, dir, sqlite_path) = match backend {
            Backend::SqliteMemory => ("sqlite::memory:".to_owned(), None, None),
            Backend::SqliteFile => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("identa.db");
                (
                    format!("sqlite://{}", path.display()),
                    Some(dir),
                    Some(path),
                )
            }
            Backend::Postgres => (postgres_schema_url().await, None, None),
        };
        let store = SeaOrmStore::connect(&url).await.unwrap();
        // Whole seconds, so expected instants are exact at the stores' microsecond precision.
        let start = identa::Clock::now(&identa::SystemClock).timestamp();
        let clock = Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp(start, 0).unwrap(),
        ));
        let identa = engine_builder(&store, &clock, config).build().unwrap();
        Self {
            identa,
            clock,
            store,
            backend,
            sqlite_path,
            _dir: dir,
        }
    }

    /// The store, and what must outlive it (a SQLite file's directory): a fixture for
    /// the store conformance suite.
    pub fn into_store(self) -> (SeaOrmStore, Option<tempfile::TempDir>) {
        (self.store, self._dir)
    }

    /// This environment with throttling off (same store, clock and secrets): for races
    /// that submit more wrong answers at once than a limit allows, whose point is the
    /// guard behind the limit.
    pub fn without_throttling(mut self) -> Self {
        let config = Config {
            throttle: identa::throttle::ThrottleConfig::Off,
            ..self.identa.config().clone()
        };
        self.identa = self.another_engine(config).build().unwrap();
        self
    }

    /// The test clock's now.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        identa::Clock::now(&*self.clock)
    }

    /// A second engine on the same database (another "app instance"), with its own
    /// session cache and the same cookie secrets (session tokens are tagged under them);
    /// its cipher secret is its own, so it cannot open what `self.identa` sealed.
    pub async fn second_engine(&self, cache: identa::SessionCacheConfig) -> Identa {
        let mut config = test_config();
        config.session.cache = cache;
        config.secrets.cookie = self.identa.config().secrets.cookie.clone();
        self.another_engine(config).build().unwrap()
    }

    /// A builder for another engine on this store and clock, with the suite's schema and
    /// `config`: for a test that needs hooks, another schema or other settings.
    pub fn another_engine(&self, config: Config) -> IdentaBuilder {
        engine_builder(&self.store, &self.clock, config)
    }

    /// An engine on this store and clock with `config` whose every statement is counted
    /// (reads included): the count, to prove a path leaves the database alone.
    pub fn counted_engine(&self, config: Config) -> (Identa, Arc<std::sync::atomic::AtomicU64>) {
        let (store, count) = self.store.counting_statements();
        (
            engine_builder(&store, &self.clock, config).build().unwrap(),
            count,
        )
    }

    /// Another engine like `self.identa` (its store, clock and configuration, so also its
    /// secrets: `env.identa`'s courier reads this engine's mail) that runs `hooks`, which
    /// the test keeps a handle on.
    pub fn engine_with_hooks(&self, hooks: Arc<impl Hooks + 'static>) -> Identa {
        self.another_engine(self.identa.config().clone())
            .hooks(SharedHooks(hooks))
            .build()
            .unwrap()
    }
}

/// An engine builder on `store` and `clock`, with the suite's schema and `config`.
fn engine_builder(store: &SeaOrmStore, clock: &Arc<ManualClock>, config: Config) -> IdentaBuilder {
    let mut schemas = SchemaRegistry::new();
    schemas.add("default", person_schema()).unwrap();
    Identa::builder()
        .store(store.clone())
        .schemas(schemas)
        .config(config)
        .clock(clock.clone())
}

/// Hooks an engine runs while the test holds them too (to set them up or read what they
/// saw): the builder takes hooks by value.
struct SharedHooks<H>(Arc<H>);

#[async_trait::async_trait]
impl<H: Hooks> Hooks for SharedHooks<H> {
    async fn before(&self, event: &BeforeEvent<'_>) -> Result<(), HookError> {
        self.0.before(event).await
    }

    async fn after(&self, event: &AfterEvent<'_>, tx: &Transaction<'_>) -> Result<(), HookError> {
        self.0.after(event, tx).await
    }
}

/// A URL to a fresh PostgreSQL schema on [`needs::postgres_url`]'s server, so tests
/// running at once never see each other.
pub async fn postgres_schema_url() -> String {
    use sea_orm::{ConnectionTrait, Database};
    let base = needs::postgres_url();
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(base.as_str())
        .await
        .unwrap_or_else(|err| panic!("cannot connect to IDENTA_TEST_POSTGRES_URL: {err}"));
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

/// Runs each listed `async fn(TestEnv)` on every backend, as tests named
/// `<case>::sqlite_memory`, `<case>::sqlite_file` and `<case>::postgres`. The PostgreSQL
/// variant needs a server, so it is ignored by `cargo test` and runs with
/// `cargo test -- --ignored` (where it fails if `IDENTA_TEST_POSTGRES_URL` or the
/// `postgres` feature is missing).
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {$(
        $crate::backend_tests!($case, 2, sqlite_memory: SqliteMemory, sqlite_file: SqliteFile);
    )*};
}

/// Runs each listed `async fn(TestEnv)` on the backends whose pool has several
/// connections, as tests named `<case>::sqlite_file` and `<case>::postgres` (ignored like
/// [`on_every_backend!`]'s), on a runtime with four worker threads: for races
/// ([`race::released_together`]). SQLite in memory is left out on purpose: its pool is one
/// connection, so requests queue on it and no two transactions ever overlap; a race test
/// there would pass whether or not the guard it is about exists.
#[macro_export]
macro_rules! on_pooled_backends {
    ($($case:ident),* $(,)?) => {$(
        $crate::backend_tests!($case, 4, sqlite_file: SqliteFile);
    )*};
}

/// The module of tests for `$case`: one test per listed SQLite backend (`name: Backend`)
/// and the ignored PostgreSQL one, each on a runtime with `$threads` worker threads. Used by
/// [`on_every_backend!`] and [`on_pooled_backends!`].
#[macro_export]
macro_rules! backend_tests {
    ($case:ident, $threads:tt, $($test:ident: $backend:ident),*) => {
        mod $case {
            use $crate::common::{Backend, TestEnv};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn $test() {
                    super::$case(TestEnv::new(Backend::$backend).await).await;
                }
            )*
            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            #[ignore = "needs PostgreSQL: set IDENTA_TEST_POSTGRES_URL=postgres://user:password@host:5432/database and build with --all-features; run with `cargo test -- --ignored`"]
            async fn postgres() {
                super::$case(TestEnv::new(Backend::Postgres).await).await;
            }
        }
    };
}

/// The document of flow `id` as its database row holds it, internal state included.
pub async fn stored_flow_document(env: &TestEnv, id: uuid::Uuid) -> Value {
    stored_documents(env, "identa_flows")
        .await
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .find(|d: &Value| d["id"] == json!(id))
        .expect("the flow's row")
}

/// The `document` column of every row of `table` (`identa_flows`, `identa_identities`) as
/// the database stores it, so tests can check what is kept in the clear.
pub async fn stored_documents(env: &TestEnv, table: &str) -> Vec<String> {
    use identa::sea_orm::{ConnectionTrait, Statement};
    let db = env.store.connection();
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT CAST(document AS TEXT) AS d FROM {table}"),
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| {
        row.try_get::<Option<String>>("", "d")
            .unwrap()
            .unwrap_or_default()
    })
    .collect()
}
