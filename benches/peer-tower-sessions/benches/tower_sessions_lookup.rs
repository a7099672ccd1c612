//! tower-sessions' SQLite store loading one of 100,000 sessions from a file database,
//! each holding a payload the size of identa's `whoami` answer (a session with its
//! identity, about 1.2 KB of JSON): the peer of identa's `session_lookup` bench.

use std::collections::HashMap;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions_sqlx_store::SqliteStore;
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions,
};

const SESSIONS: usize = 100_000;
const STRIDE: usize = 7_919;

fn payload(n: usize) -> HashMap<String, serde_json::Value> {
    let session = serde_json::json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"),
        "active": true,
        "issued_at": "2026-11-22T12:00:00Z", "authenticated_at": "2026-11-22T12:00:00Z",
        "expires_at": "2026-11-23T12:00:00Z", "authenticator_assurance_level": "aal1",
        "authentication_methods": [{"method": "password", "aal": "aal1", "completed_at": "2026-11-22T12:00:00Z"}],
        "devices": [{"id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "ip_address": "203.0.113.9", "user_agent": "Mozilla/5.0", "location": null}],
        "identity": {
            "id": "6ba7b811-9dad-11d1-80b4-00c04fd430c8", "schema_id": "default", "state": "active",
            "state_changed_at": null, "traits": {"email": format!("user{}@example.com", n % 1000)},
            "verifiable_addresses": [{"id": "6ba7b812-9dad-11d1-80b4-00c04fd430c8", "value": format!("user{}@example.com", n % 1000),
                "via": "email", "verified": false, "status": "pending", "verified_at": null,
                "created_at": "2026-11-22T12:00:00Z", "updated_at": "2026-11-22T12:00:00Z"}],
            "recovery_addresses": [{"id": "6ba7b813-9dad-11d1-80b4-00c04fd430c8", "value": format!("user{}@example.com", n % 1000),
                "via": "email", "created_at": "2026-11-22T12:00:00Z", "updated_at": "2026-11-22T12:00:00Z"}],
            "metadata_public": null, "created_at": "2026-11-22T12:00:00Z", "updated_at": "2026-11-22T12:00:00Z"
        }
    });
    HashMap::from([("session".to_owned(), session)])
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, ids) = rt.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("tower.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap();
        let store = SqliteStore::new(pool);
        store.migrate().await.unwrap();
        let expiry = time::OffsetDateTime::now_utc() + time::Duration::days(1);
        let mut ids = Vec::with_capacity(SESSIONS);
        for n in 0..SESSIONS {
            let mut record = Record {
                id: Id::default(),
                data: payload(n),
                expiry_date: expiry,
            };
            store.create(&mut record).await.unwrap();
            ids.push(record.id);
        }
        (store, ids)
    });

    let mut group = c.benchmark_group("session_lookup_sqlite_100k");
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    group.bench_function("tower_sessions_load", |b| {
        b.iter(|| {
            i = (i + STRIDE) % SESSIONS;
            rt.block_on(store.load(&ids[i])).unwrap().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
