//! Known pairs: an identifier and a client address that signed in together with the
//! password are remembered (30 days, by MAC) and let through the identifier's failure
//! limit from all addresses, while every other address is refused by it; a known pair's
//! wrong password is answered and counted as any other; the marker belongs to its one
//! identifier and address, lapses (the clock is moved, never slept on), and holds neither
//! in the clear.

use chrono::Duration;
use identa::credential::password::Password;
use identa::session::Device;
use sea_orm::{ConnectionTrait, Statement};

use crate::common::{PASSWORD, TestEnv, register_with_password};
use crate::on_every_backend;
use crate::throttle::{assert_invalid_credentials, login_from, retry_after};

/// The owner's usual address.
const HOME: &str = "203.0.113.7";

/// Fails `n` sign-ins as `identifier` from `n` addresses its owner never used (50 spend
/// the identifier's failure limit from all addresses: 50 in 15 minutes).
async fn failures_from_elsewhere(env: &TestEnv, identifier: &str, n: u32) {
    for i in 0..n {
        let ip = format!("198.51.100.{i}");
        assert_invalid_credentials(login_from(&env.identa, &ip, identifier, "guess").await);
    }
}

async fn a_known_pair_passes_the_identifier_limit_an_unknown_address_does_not(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    // An IPv6 owner is known by the /64 the counters key on.
    let (v6_home, v6_roaming) = ("2001:db8:7:7::10", "2001:db8:7:7:aaaa::99");
    login_from(&env.identa, v6_home, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    failures_from_elsewhere(&env, "alice@example.com", 50).await;
    // A fresh address is refused, even with the right password...
    retry_after(login_from(&env.identa, "192.0.2.200", "alice@example.com", PASSWORD).await);
    // ...the owner at home is not (the identifier written differently is the same one).
    login_from(&env.identa, HOME, " Alice@Example.com", PASSWORD)
        .await
        .unwrap();
    retry_after(
        login_from(
            &env.identa,
            "2001:db8:7:8::10",
            "alice@example.com",
            PASSWORD,
        )
        .await,
    );
    login_from(&env.identa, v6_roaming, "alice@example.com", PASSWORD)
        .await
        .unwrap();
}

async fn a_known_pairs_wrong_password_is_still_refused_and_counted(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    for _ in 0..5 {
        // The same answer as anyone's wrong password: 4000006.
        assert_invalid_credentials(
            login_from(&env.identa, HOME, "alice@example.com", "typo").await,
        );
    }
    // Counted against the pair's own limit (5 in 15 minutes): refused now, right password
    // or not.
    retry_after(login_from(&env.identa, HOME, "alice@example.com", PASSWORD).await);
    env.clock.advance(Duration::minutes(15));
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
}

async fn a_known_pair_lapses_30_days_after_its_last_sign_in(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    // A sign-in 20 days on keeps the pair known for 30 days from then.
    env.clock.advance(Duration::days(20));
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    env.clock.advance(Duration::days(29));
    failures_from_elsewhere(&env, "alice@example.com", 50).await;
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    // 30 days after the last sign-in (the one just now) it is an address like any other.
    env.clock.advance(Duration::days(30));
    failures_from_elsewhere(&env, "alice@example.com", 50).await;
    retry_after(login_from(&env.identa, HOME, "alice@example.com", PASSWORD).await);
}

async fn a_known_pair_is_its_identifier_and_address_only(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    register_with_password(&env, "bob@example.com").await;
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
    // A failed attempt makes nothing known.
    assert_invalid_credentials(
        login_from(&env.identa, "192.0.2.1", "alice@example.com", "typo").await,
    );
    failures_from_elsewhere(&env, "alice@example.com", 49).await;
    failures_from_elsewhere(&env, "bob@example.com", 50).await;
    // Bob at alice's address, and alice next door or at the address that failed, are
    // refused.
    retry_after(login_from(&env.identa, HOME, "bob@example.com", PASSWORD).await);
    retry_after(login_from(&env.identa, "203.0.113.8", "alice@example.com", PASSWORD).await);
    retry_after(login_from(&env.identa, "192.0.2.1", "alice@example.com", PASSWORD).await);
    login_from(&env.identa, HOME, "alice@example.com", PASSWORD)
        .await
        .unwrap();
}

async fn a_sign_in_outside_flows_makes_its_pair_known_too(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let home = || Some(Device::new(Some(HOME), None));
    env.identa
        .login("alice@example.com", &Password::new(PASSWORD), home())
        .await
        .unwrap();
    failures_from_elsewhere(&env, "alice@example.com", 50).await;
    env.identa
        .login("alice@example.com", &Password::new(PASSWORD), home())
        .await
        .unwrap();
    // Without an address a caller is never known.
    retry_after(
        env.identa
            .login("alice@example.com", &Password::new(PASSWORD), None)
            .await,
    );
}

async fn markers_hold_no_identifier_or_address_and_are_pruned(env: TestEnv) {
    register_with_password(&env, "carol@example.com").await;
    login_from(&env.identa, "192.0.2.77", "carol@example.com", PASSWORD)
        .await
        .unwrap();
    let rows = marker_rows(&env).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(!rows[0].contains("carol") && !rows[0].contains("192.0.2.77"));
    assert!(!rows[0].contains("192.0.2"), "{rows:?}");
    env.clock.advance(Duration::days(29));
    env.identa.prune().await.unwrap();
    assert_eq!(marker_rows(&env).await.len(), 1);
    env.clock.advance(Duration::days(1) + Duration::seconds(1));
    env.identa.prune().await.unwrap();
    assert!(marker_rows(&env).await.is_empty());
}

/// The known-pair table's keys, as stored.
async fn marker_rows(env: &TestEnv) -> Vec<String> {
    let db = env.store.connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key FROM identa_known_pairs",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "key").unwrap())
        .collect()
}

on_every_backend!(
    a_known_pair_passes_the_identifier_limit_an_unknown_address_does_not,
    a_known_pairs_wrong_password_is_still_refused_and_counted,
    a_known_pair_lapses_30_days_after_its_last_sign_in,
    a_known_pair_is_its_identifier_and_address_only,
    a_sign_in_outside_flows_makes_its_pair_known_too,
    markers_hold_no_identifier_or_address_and_are_pruned,
);
