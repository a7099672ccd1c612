//! The `whoami` cache's memory bound: a session heavier than
//! `SessionCacheConfig::MAX_ENTRY_BYTES` is answered from the store on every call (and so
//! is always current), and a rendered HTTP answer that would push its entry over the
//! bound is sent but not kept.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use identa::http::{HttpConfig, PublicApi};
use identa::identity::IdentityUpdate;
use identa::session::SessionToken;
use identa::testing::session_cache_usage;
use identa::{Identa, SessionCacheConfig};
use serde_json::{Value, json};

use crate::common::{TestEnv, create_account, create_account_with_traits, sign_in};
use crate::on_every_backend;

/// Traits whose first name is `len` bytes long.
fn traits_with_name(email: &str, len: usize) -> Value {
    json!({ "email": email, "name": { "first": "x".repeat(len) } })
}

/// Statements `whoami(token)` runs on `counted`.
async fn statements_of_whoami(counted: &Identa, reads: &AtomicU64, token: &SessionToken) -> u64 {
    let before = reads.load(Ordering::SeqCst);
    counted.whoami(token).await.unwrap();
    reads.load(Ordering::SeqCst) - before
}

async fn a_session_too_heavy_to_cache_is_read_every_time_and_current(env: TestEnv) {
    let max = SessionCacheConfig::MAX_ENTRY_BYTES;
    let heavy = create_account_with_traits(&env, traits_with_name("heavy@example.com", max))
        .await
        .unwrap();
    create_account(&env, "light@example.com").await;
    let heavy_login = sign_in(&env, "heavy@example.com").await;
    let light_login = sign_in(&env, "light@example.com").await;
    let (counted, reads) = env.counted_engine(env.identa.config().clone());
    for token in [&light_login.token, &heavy_login.token] {
        counted.whoami(token).await.unwrap();
    }
    for _ in 0..3 {
        assert_eq!(
            statements_of_whoami(&counted, &reads, &light_login.token).await,
            0,
            "a light session is cached"
        );
        assert!(
            statements_of_whoami(&counted, &reads, &heavy_login.token).await > 0,
            "a heavy one is read from the store every time"
        );
    }
    assert_eq!(session_cache_usage(&counted).entries, 1);

    // Changed through another engine, seen by the next call at once (no clock moves).
    let traits = traits_with_name("heavy@example.com", max + 1);
    env.identa
        .update_identity(
            heavy.id,
            IdentityUpdate {
                traits: Some(traits.clone()),
                ..IdentityUpdate::default()
            },
        )
        .await
        .unwrap();
    let me = counted.whoami(&heavy_login.token).await.unwrap();
    assert_eq!(me.identity.traits, traits);

    // Over HTTP too: the whole answer, every time, the new traits in it.
    let api = PublicApi::new(counted.clone(), HttpConfig::default());
    for _ in 0..2 {
        let res = api.handle(whoami(&heavy_login.token)).await;
        assert_eq!(res.status(), 200);
        let body: Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(body["identity"]["traits"], traits);
    }
    assert_eq!(session_cache_usage(&counted).entries, 1);
}

fn whoami(token: &SessionToken) -> http::Request<Bytes> {
    http::Request::get("/sessions/whoami")
        .header("x-session-token", token.expose())
        .body(Bytes::new())
        .unwrap()
}

/// A session light enough to cache whose rendered answer would push its entry over the
/// bound: served from the cache, its answer rendered each time and not kept. A light one
/// keeps its answer.
async fn a_rendered_answer_that_would_overweigh_its_entry_is_not_kept(env: TestEnv) {
    let max = SessionCacheConfig::MAX_ENTRY_BYTES;
    create_account_with_traits(&env, traits_with_name("half@example.com", max / 2))
        .await
        .unwrap();
    create_account(&env, "light@example.com").await;
    let half = sign_in(&env, "half@example.com").await.token;
    let light = sign_in(&env, "light@example.com").await.token;
    let (counted, reads) = env.counted_engine(env.identa.config().clone());
    let api = PublicApi::new(counted.clone(), HttpConfig::default());

    counted.whoami(&half).await.unwrap();
    let cached = session_cache_usage(&counted);
    assert_eq!(cached.entries, 1, "cached without its answer");
    let expected = serde_json::to_vec(&json!(counted.whoami(&half).await.unwrap())).unwrap();
    for _ in 0..2 {
        let before = reads.load(Ordering::SeqCst);
        let res = api.handle(whoami(&half)).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.body().as_ref(), expected.as_slice());
        assert_eq!(reads.load(Ordering::SeqCst), before, "from the cache");
        assert_eq!(session_cache_usage(&counted), cached, "the answer not kept");
    }

    counted.whoami(&light).await.unwrap();
    let before = session_cache_usage(&counted);
    let res = api.handle(whoami(&light)).await;
    assert_eq!(res.status(), 200);
    let after = session_cache_usage(&counted);
    assert_eq!(after.entries, 2);
    assert!(
        after.estimated_bytes >= before.estimated_bytes + res.body().len(),
        "a light session keeps its answer: {before:?} → {after:?}"
    );
    assert!(after.estimated_bytes <= after.entries * max);
}

on_every_backend!(
    a_session_too_heavy_to_cache_is_read_every_time_and_current,
    a_rendered_answer_that_would_overweigh_its_entry_is_not_kept,
);
