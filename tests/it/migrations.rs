//! An existing database migrates forward: one made by the earlier migrations only (tables
//! without the `identa_` prefix), holding rows as identa wrote them then, opens with the
//! current migrations, and its identity, password and session work through the API.

use chrono::{DateTime, Duration};
use identa::credential::password::Password;
use identa::credential::password::PasswordHasher;
use identa::identity::SchemaRegistry;
use identa::sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};
use identa::session::SessionToken;
use identa::store::{SeaOrmStore, Store};
use identa::{Error, ErrorKind, Identa};
use serde_json::json;
use uuid::Uuid;

use crate::common::{PASSWORD, person_schema, postgres_schema_url, test_config};

/// The migrations before the table prefix (`m20261127_000007_identa_table_prefix`).
const BEFORE_PREFIX: u32 = 6;

/// The tables the earlier migrations made without the prefix.
const UNPREFIXED: [&str; 6] = [
    "identities",
    "identity_credentials",
    "identity_credential_identifiers",
    "identity_verifiable_addresses",
    "identity_recovery_addresses",
    "sessions",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("identa.db").display());
    old_database_migrates_forward(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set IDENTA_TEST_POSTGRES_URL=postgres://user:password@host:5432/database and build with --all-features; run with `cargo test -- --ignored`"]
async fn postgres() {
    old_database_migrates_forward(&postgres_schema_url().await).await;
}

async fn old_database_migrates_forward(url: &str) {
    let old = SeaOrmStore::connect_migrated_up_to(url, BEFORE_PREFIX)
        .await
        .unwrap();
    let db = old.connection();
    let before = tables(db).await;
    for table in UNPREFIXED {
        assert!(before.contains(&table.to_owned()), "{table} in {before:?}");
        assert!(!before.contains(&format!("identa_{table}")), "{before:?}");
    }

    // Rows as identa wrote them before the prefix: no identity document (the loader
    // assembles such identities from the child tables, so every renamed table is read).
    let now = identa::Clock::now(&identa::SystemClock).timestamp();
    let now = DateTime::from_timestamp(now, 0).unwrap();
    let hash = PasswordHasher::new(test_config().password)
        .unwrap()
        .hash(&Password::new(PASSWORD))
        .await
        .unwrap();
    let identity_id = Uuid::new_v4();
    let credential_id = Uuid::new_v4();
    let token = SessionToken::untagged();
    let session_id = Uuid::new_v4();
    let email = "ada@example.com";
    let rows: [(&str, Vec<Value>); 7] = [
        (
            "INSERT INTO identities (id, schema_id, state, traits, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                identity_id.into(),
                "default".into(),
                "active".into(),
                json!({ "email": email }).into(),
                now.into(),
                now.into(),
            ],
        ),
        (
            "INSERT INTO identity_credentials \
             (id, identity_id, credential_type, config, version, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                credential_id.into(),
                identity_id.into(),
                "password".into(),
                json!({ "hashed_password": hash }).into(),
                0i32.into(),
                now.into(),
                now.into(),
            ],
        ),
        (
            "INSERT INTO identity_credential_identifiers \
             (id, identity_id, credential_id, credential_type, identifier) \
             VALUES (?, ?, ?, ?, ?)",
            vec![
                Uuid::new_v4().into(),
                identity_id.into(),
                credential_id.into(),
                "password".into(),
                email.into(),
            ],
        ),
        (
            "INSERT INTO identity_verifiable_addresses \
             (id, identity_id, via, value, verified, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                Uuid::new_v4().into(),
                identity_id.into(),
                "email".into(),
                email.into(),
                false.into(),
                "pending".into(),
                now.into(),
                now.into(),
            ],
        ),
        (
            "INSERT INTO identity_recovery_addresses \
             (id, identity_id, via, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                Uuid::new_v4().into(),
                identity_id.into(),
                "email".into(),
                email.into(),
                now.into(),
                now.into(),
            ],
        ),
        (
            "INSERT INTO sessions (id, identity_id, token_hash, active, issued_at, \
             authenticated_at, expires_at, aal, authentication_methods, devices) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                session_id.into(),
                identity_id.into(),
                token.hash().as_bytes().to_vec().into(),
                true.into(),
                now.into(),
                now.into(),
                (now + Duration::days(1)).into(),
                "aal1".into(),
                json!([{ "method": "password", "aal": "aal1", "completed_at": now }]).into(),
                json!([]).into(),
            ],
        ),
        (
            // An event as logged before migration 9: without its writer's transaction id.
            "INSERT INTO identa_session_events (identity_id, session_id) VALUES (?, ?)",
            vec![identity_id.into(), session_id.into()],
        ),
    ];
    for (sql, values) in rows {
        execute(db, sql, values).await;
    }

    old.migrate().await.unwrap();
    let after = tables(db).await;
    for table in UNPREFIXED {
        assert!(!after.contains(&table.to_owned()), "{table} in {after:?}");
        assert!(after.contains(&format!("identa_{table}")), "{after:?}");
    }
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        // SQLite rewrote the other tables' references to the renamed one
        // (`legacy_alter_table` off), and every reference resolves.
        let schema = query_strings(
            db,
            "SELECT sql AS v FROM sqlite_master WHERE name = 'identa_sessions'",
        )
        .await;
        assert!(schema[0].contains("\"identa_identities\""), "{schema:?}");
        assert!(
            query_strings(
                db,
                "SELECT CAST(\"table\" AS TEXT) AS v FROM pragma_foreign_key_check"
            )
            .await
            .is_empty()
        );
    }
    // Nothing is pending any more: connecting again applies nothing and fails on nothing.
    let store = SeaOrmStore::connect(url).await.unwrap();
    // The event logged before migration 9 is still read.
    {
        use identa::store::{EventCursor, SessionEvent, SessionStore};
        let log = store
            .session_events_after(&EventCursor::default(), 100)
            .await
            .unwrap();
        assert_eq!(log.events, [SessionEvent::Session(session_id)]);
    }

    let identa = engine(store);
    let found = identa
        .identity_by_identifier("Ada@Example.com")
        .await
        .unwrap()
        .expect("the identity, by its identifier");
    assert_eq!(found.id, identity_id);
    assert_eq!(found.traits, json!({ "email": email }));
    assert_eq!(found.verifiable_addresses.len(), 1);
    assert_eq!(found.verifiable_addresses[0].value, email);
    assert_eq!(found.recovery_addresses.len(), 1);
    assert_eq!(found.recovery_addresses[0].value, email);
    let password = found
        .credential(identa::identity::CredentialType::Password)
        .expect("the password credential");
    assert_eq!(password.id, credential_id);
    assert_eq!(password.identifiers, [email]);

    let me = identa.whoami(&token).await.unwrap();
    assert_eq!(me.session.id, session_id);
    assert_eq!(me.identity.id, identity_id);

    // The password verifies, and a new session is written to the renamed table.
    let login = identa
        .login(email, &Password::new(PASSWORD), None)
        .await
        .unwrap();
    assert_eq!(
        identa.whoami(&login.token).await.unwrap().identity.id,
        identity_id
    );
    assert_eq!(identa.sessions(identity_id).await.unwrap().len(), 2);

    // The unique indexes still refuse a taken identifier, and say which.
    let taken = identa
        .register(json!({ "email": email }), &Password::new(PASSWORD))
        .await
        .unwrap_err();
    assert!(
        matches!(
            taken,
            Error::Store(identa::store::StoreError::Conflict {
                what: "credential identifier"
            })
        ),
        "{taken:?}"
    );

    // The foreign keys still cascade: deleting the identity takes its credentials,
    // addresses and sessions with it, so the address can sign up again.
    identa.delete_identity(identity_id).await.unwrap();
    assert!(identa.sessions(identity_id).await.unwrap().is_empty());
    for t in [&token, &login.token] {
        let refused = identa.whoami(t).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::SessionInactive);
    }
    assert!(
        identa
            .identity_by_identifier(email)
            .await
            .unwrap()
            .is_none()
    );
    let again = identa
        .register(json!({ "email": email }), &Password::new(PASSWORD))
        .await
        .unwrap();
    assert_ne!(again.id, identity_id);
}

fn engine(store: SeaOrmStore) -> Identa {
    let mut schemas = SchemaRegistry::new();
    schemas.add("default", person_schema()).unwrap();
    Identa::builder()
        .store(store)
        .schemas(schemas)
        .config(test_config())
        .build()
        .unwrap()
}

/// Runs `sql`, written with `?` placeholders, on either engine.
async fn execute(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            let mut n = 0;
            sql.chars()
                .map(|c| match c {
                    '?' => {
                        n += 1;
                        format!("${n}")
                    }
                    c => c.to_string(),
                })
                .collect()
        }
        _ => sql.to_owned(),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

/// The first column (`v`) of every row `sql` returns.
async fn query_strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "v").unwrap())
        .collect()
}

/// The database's tables (the test's own schema on PostgreSQL).
async fn tables(db: &DatabaseConnection) -> Vec<String> {
    query_strings(
        db,
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                "SELECT CAST(table_name AS TEXT) AS v FROM information_schema.tables \
                 WHERE table_schema = current_schema()"
            }
            _ => "SELECT name AS v FROM sqlite_master WHERE type = 'table'",
        },
    )
    .await
}
