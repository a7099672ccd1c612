//! The store's two guards that single use rests on, through the `identa::store` traits
//! alone: a flow write names the version it was loaded at and is refused once another
//! write got there first (`StoreError::Stale`), and a one-time marker (a spent TOTP step
//! or backup code) can be spent once. A refused commit writes nothing at all. Then both
//! again with many writers at once.

use chrono::Duration;
use identa::flow::{FlowRequest, FlowType};
use identa::store::{FlowCommit, FlowRecord, FlowStore, FlowWrite, StoreError};
use uuid::Uuid;

use crate::common::TestEnv;
use crate::common::race::{ROUNDS, TASKS, released_together};
use crate::{on_every_backend, on_pooled_backends};

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

/// Commits `commit` through the `FlowStore` trait, without a hook.
async fn commit(env: &TestEnv, commit: FlowCommit<'_>) -> Result<(), StoreError> {
    env.store.commit_flow(&commit, None).await
}

async fn a_stale_flow_version_is_refused(env: TestEnv) {
    let loaded = stored_flow(&env).await;
    let first = next_version(&loaded, "first");
    commit(
        &env,
        FlowCommit {
            flows: vec![FlowWrite::Update(first.clone())],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap();

    // A second writer that loaded the same version, with other effects in its commit.
    let second = next_version(&loaded, "second");
    let mut other = loaded.clone();
    other.id = Uuid::new_v4();
    let marker = Uuid::new_v4();
    let kept_until = env.clock_now() + Duration::minutes(5);
    let err = commit(
        &env,
        FlowCommit {
            flows: vec![
                FlowWrite::Insert(other.clone()),
                FlowWrite::Update(second.clone()),
            ],
            spend: vec![(marker, kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Stale { what: "flow" }), "{err:?}");
    let stored = env.store.flow(loaded.id).await.unwrap().unwrap();
    assert_eq!(stored.version, loaded.version + 1);
    assert_eq!(stored.state, "first");
    // Nothing of the refused commit was written: not the flow it inserted, not its marker.
    assert!(env.store.flow(other.id).await.unwrap().is_none());
    commit(
        &env,
        FlowCommit {
            spend: vec![(marker, kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap();

    // Loaded again, the flow takes the next write.
    let third = next_version(&stored, "third");
    commit(
        &env,
        FlowCommit {
            flows: vec![FlowWrite::Update(third.clone())],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        env.store.flow(loaded.id).await.unwrap().unwrap().state,
        "third"
    );
}

async fn a_one_time_marker_is_spent_once(env: TestEnv) {
    let marker = Uuid::new_v4();
    let kept_until = env.clock_now() + Duration::minutes(5);
    commit(
        &env,
        FlowCommit {
            spend: vec![(marker, kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap();

    // Spending it again fails the whole commit: the flow write in it is rolled back.
    let loaded = stored_flow(&env).await;
    let changed = next_version(&loaded, "spent twice");
    let err = commit(
        &env,
        FlowCommit {
            flows: vec![FlowWrite::Update(changed.clone())],
            spend: vec![(marker, kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Spent), "{err:?}");
    let stored = env.store.flow(loaded.id).await.unwrap().unwrap();
    assert_eq!(stored.version, loaded.version);
    assert_ne!(stored.state, "spent twice");

    // Another marker is another value.
    commit(
        &env,
        FlowCommit {
            spend: vec![(Uuid::new_v4(), kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap();
    // The marker is kept until the time it was given; pruning after that lets it go.
    env.store
        .delete_expired_flows(kept_until - Duration::seconds(1))
        .await
        .unwrap();
    let again = commit(
        &env,
        FlowCommit {
            spend: vec![(marker, kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(again, StoreError::Spent), "{again:?}");
    env.store
        .delete_expired_flows(kept_until + Duration::seconds(1))
        .await
        .unwrap();
    commit(
        &env,
        FlowCommit {
            spend: vec![(marker, kept_until)],
            ..FlowCommit::default()
        },
    )
    .await
    .unwrap();
}

on_every_backend!(
    a_stale_flow_version_is_refused,
    a_one_time_marker_is_spent_once
);

/// `TASKS` writers at once, each with the flow as loaded at the same version: exactly one
/// write lands, the rest are `Stale`. Then `TASKS` commits spending one marker at once:
/// exactly one succeeds.
async fn raced_commits_land_once(env: TestEnv) {
    for round in 0..ROUNDS {
        let loaded = stored_flow(&env).await;
        let results = released_together(|i| {
            let (store, next) = (env.store.clone(), next_version(&loaded, &format!("w{i}")));
            async move {
                let commit = FlowCommit {
                    flows: vec![FlowWrite::Update(next.clone())],
                    ..FlowCommit::default()
                };
                store.commit_flow(&commit, None).await
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
        let kept_until = env.clock_now() + Duration::minutes(5);
        let results = released_together(|_| {
            let store = env.store.clone();
            async move {
                let commit = FlowCommit {
                    spend: vec![(marker, kept_until)],
                    ..FlowCommit::default()
                };
                store.commit_flow(&commit, None).await
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
