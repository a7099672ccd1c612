//! The store: the conformance suite every store must pass (`identa::testing`), on SQLite in
//! memory, a SQLite file and PostgreSQL; and its two guards under contention — a flow
//! write names the version it was loaded at, a one-time marker is spent once — with many
//! writers at once.

use chrono::Duration;
use identa::flow::{FlowRequest, FlowType};
use identa::store::{
    Commit, FlowRecord, FlowStore, SeaOrmStore, SqliteDurability, StoreError, StoreOptions, Write,
};
use uuid::Uuid;

use crate::common::race::{ROUNDS, TASKS, released_together};
use crate::common::{Backend, TestEnv};
use crate::on_pooled_backends;

identa::store_conformance!(conformance_sqlite_memory, async {
    TestEnv::new(Backend::SqliteMemory).await.into_store()
});
identa::store_conformance!(conformance_sqlite_file, async {
    TestEnv::new(Backend::SqliteFile).await.into_store()
});
identa::store_conformance!(
    conformance_postgres,
    async { TestEnv::new(Backend::Postgres).await.into_store() },
    #[ignore = "needs PostgreSQL: set IDENTA_TEST_POSTGRES_URL=postgres://user:password@host:5432/database and build with --all-features; run with `cargo test -- --ignored`"]
);

/// A new flow (a recovery flow: nothing but its row), as the store returns it.
async fn stored_flow(env: &TestEnv) -> FlowRecord {
    let flow = env
        .identa
        .recovery_flow()
        .create(FlowType::Api, &FlowRequest::api())
        .await
        .unwrap();
    env.store.flow(flow.id).await.unwrap().unwrap()
}

/// `loaded`, changed as a flow submission changes it: its version one higher, and its
/// state column set to `mark` so the stored row tells which write won.
fn next_version(loaded: &FlowRecord, mark: &str) -> FlowRecord {
    let mut next = loaded.clone();
    next.version += 1;
    next.state = mark.to_owned();
    next
}

/// `TASKS` writers at once, each with the flow as loaded at the same version: exactly one
/// write lands, the rest are `Stale`. Then `TASKS` commits spending one marker at once:
/// exactly one succeeds.
async fn raced_commits_land_once(env: TestEnv) {
    for round in 0..ROUNDS {
        let loaded = stored_flow(&env).await;
        let results = released_together(|i| {
            let (store, next) = (env.store.clone(), next_version(&loaded, &format!("w{i}")));
            async move {
                let commit = Commit {
                    writes: vec![Write::UpdateFlow(next)],
                };
                store.commit(&commit, None).await
            }
        })
        .await;
        let landed: Vec<usize> = (0..TASKS).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(landed.len(), 1, "round {round}: {results:?}");
        for result in &results {
            assert!(
                matches!(result, Ok(()) | Err(StoreError::Stale { what: "flow" })),
                "round {round}: {result:?}"
            );
        }
        let stored = env.store.flow(loaded.id).await.unwrap().unwrap();
        assert_eq!(stored.state, format!("w{}", landed[0]));

        let marker = Uuid::new_v4();
        let until = env.clock_now() + Duration::minutes(5);
        let results = released_together(|_| {
            let store = env.store.clone();
            async move {
                let commit = Commit {
                    writes: vec![Write::Spend { marker, until }],
                };
                store.commit(&commit, None).await
            }
        })
        .await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        for result in &results {
            assert!(
                matches!(result, Ok(()) | Err(StoreError::Spent)),
                "round {round}: {result:?}"
            );
        }
    }
}

on_pooled_backends!(raced_commits_land_once);

/// SQLite's `synchronous` on every pooled connection of a store on a fresh file.
async fn synchronous_of(options: Option<StoreOptions>) -> Vec<i32> {
    use identa::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("identa.db").display());
    let store = match options {
        Some(options) => SeaOrmStore::connect_with(&url, options).await,
        None => SeaOrmStore::connect(&url).await,
    }
    .unwrap();
    let pragma = Statement::from_string(DatabaseBackend::Sqlite, "PRAGMA synchronous");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let row = store
            .connection()
            .query_one_raw(pragma.clone())
            .await
            .unwrap()
            .unwrap();
        seen.push(row.try_get_by_index::<i32>(0).unwrap());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_syncs_every_commit_by_default() {
    // 2 is FULL, 1 is NORMAL (https://sqlite.org/pragma.html#pragma_synchronous).
    assert!(synchronous_of(None).await.iter().all(|&s| s == 2));
    let full = StoreOptions {
        sqlite_durability: SqliteDurability::Full,
    };
    assert!(synchronous_of(Some(full)).await.iter().all(|&s| s == 2));
    let normal = StoreOptions {
        sqlite_durability: SqliteDurability::Normal,
    };
    assert!(synchronous_of(Some(normal)).await.iter().all(|&s| s == 1));
    assert_eq!(
        "Normal".parse::<SqliteDurability>().unwrap(),
        SqliteDurability::Normal
    );
    let err = "off".parse::<SqliteDurability>().unwrap_err().to_string();
    assert!(err.contains("full or normal"), "{err}");
}
