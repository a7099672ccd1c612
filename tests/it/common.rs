//! Test environment: a fresh engine on a chosen backend, a manual clock, cheap hashing.

use std::sync::Arc;

use identa::config::PasswordConfig;
use identa::{Config, Identa, ManualClock, SchemaRegistry, SeaOrmStore};
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
    /// A fresh environment, or `None` when the backend is not available here
    /// (PostgreSQL without `IDENTA_TEST_POSTGRES_URL`, or without the feature).
    pub async fn new(backend: Backend) -> Option<Self> {
        Self::with_config(backend, test_config()).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> Option<Self> {
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
            Backend::Postgres => (postgres_schema_url().await?, None, None),
        };
        let store = SeaOrmStore::connect(&url).await.unwrap();
        // Whole seconds, so expected instants are exact at the stores' microsecond precision.
        let start = identa::Clock::now(&identa::SystemClock).timestamp();
        let clock = Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp(start, 0).unwrap(),
        ));
        let mut schemas = SchemaRegistry::new();
        schemas.add("default", person_schema()).unwrap();
        let identa = Identa::builder()
            .store(store.clone())
            .schemas(schemas)
            .config(config)
            .clock(clock.clone())
            .build()
            .unwrap();
        Some(Self {
            identa,
            clock,
            store,
            backend,
            sqlite_path,
            _dir: dir,
        })
    }

    /// The test clock's now.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        identa::Clock::now(&*self.clock)
    }

    /// A second engine on the same database (another "app instance"), with its own
    /// session cache.
    pub async fn second_engine(&self, cache: identa::config::SessionCacheConfig) -> Identa {
        let mut config = test_config();
        config.session.cache = cache;
        let mut schemas = SchemaRegistry::new();
        schemas.add("default", person_schema()).unwrap();
        Identa::builder()
            .store(self.store.clone())
            .schemas(schemas)
            .config(config)
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }
}

/// A URL to a fresh PostgreSQL schema, so tests running at once never see each other.
#[cfg(feature = "postgres")]
pub async fn postgres_schema_url() -> Option<String> {
    use sea_orm::{ConnectionTrait, Database};
    let base = std::env::var("IDENTA_TEST_POSTGRES_URL").ok()?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(base.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options[search_path]={schema}"))
}

#[cfg(not(feature = "postgres"))]
pub async fn postgres_schema_url() -> Option<String> {
    if std::env::var("IDENTA_TEST_POSTGRES_URL").is_ok() {
        eprintln!(
            "IDENTA_TEST_POSTGRES_URL is set but the `postgres` feature is off: run with --all-features"
        );
    }
    None
}

/// Runs each listed `async fn(TestEnv)` on every backend, as tests named
/// `<case>::sqlite_memory`, `<case>::sqlite_file` and `<case>::postgres`.
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use $crate::common::{Backend, TestEnv};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() {
                super::$case(TestEnv::new(Backend::SqliteMemory).await.unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_file() {
                super::$case(TestEnv::new(Backend::SqliteFile).await.unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match TestEnv::new(Backend::Postgres).await {
                    Some(env) => super::$case(env).await,
                    None => eprintln!("skipped: set IDENTA_TEST_POSTGRES_URL (and --all-features) to run on PostgreSQL"),
                }
            }
        }
    )*};
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

/// A new API registration flow.
pub async fn api_registration_flow(env: &TestEnv) -> identa::flow::Flow {
    use identa::flow::{FlowRequest, FlowType};
    env.identa
        .registration_flow()
        .create(FlowType::Api, &FlowRequest::api())
        .await
        .unwrap()
}

/// Registers `email` through an API registration flow with [`PASSWORD`]; the identity and
/// the session token registration issued.
pub async fn register_with_password(
    env: &TestEnv,
    email: &str,
) -> (identa::Identity, identa::SessionToken) {
    use identa::flow::FlowRequest;
    use identa::flow::registration::RegistrationSubmission;
    let req = FlowRequest::api();
    let flow = api_registration_flow(env).await;
    let done = env
        .identa
        .registration_flow()
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": email }),
                password: identa::Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap();
    (done.identity, done.login.unwrap().token)
}
