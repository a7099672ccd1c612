//! Throttling: each limit refuses the attempt after the last one allowed, on every
//! backend, until its window is over (the clock is moved, never slept on); unknown
//! identifiers and addresses are refused exactly like known ones; two engines on one
//! database share the counts; counters hold no identifier or address in the clear.

use std::time::Duration as StdDuration;

use chrono::Duration;
use identa::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use identa::flow::recovery::RecoveryStep;
use identa::flow::{CodeSubmission, FlowRequest, FlowType};
use identa::session::{Device, SessionToken};
use identa::throttle::{Limit, Limits, ThrottleConfig};
use identa::{Error, ErrorKind, Identa};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::common::race::{TASKS, released_together};
use crate::common::{
    PASSWORD, TestEnv, all_message_ids, enrol_totp, identa_totp_code, invalid_flow,
    is_invalid_credentials, mail_to, new_password, password_login, password_registration,
    register_with_password, sign_in, sign_in_with, step_up, submit_login, submit_settings,
    with_session,
};
use crate::{on_every_backend, on_pooled_backends};

/// identa's message id for a throttled attempt.
const THROTTLED: u32 = 4_900_001;

/// An API request from client address `ip`.
pub(crate) fn from(ip: &str) -> FlowRequest {
    FlowRequest::api().with_device(Device::new(Some(ip), None))
}

/// Signs in through a new API login flow from `ip`.
pub(crate) async fn login_from(
    identa: &Identa,
    ip: &str,
    identifier: &str,
    password: &str,
) -> Result<LoggedIn, Error> {
    let req = from(ip);
    let flow = identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await?;
    identa
        .login_flow()
        .submit(flow.id, password_login(identifier, password), &req)
        .await
}

/// How long a throttled attempt is told to wait; panics on any other answer.
pub(crate) fn retry_after<T: std::fmt::Debug>(result: Result<T, Error>) -> StdDuration {
    match result {
        Err(Error::Throttled(throttled)) => {
            assert_eq!(
                Error::Throttled(throttled).kind(),
                ErrorKind::TooManyRequests
            );
            throttled.retry_after
        }
        other => panic!("expected a throttled attempt, got {other:?}"),
    }
}

pub(crate) fn assert_invalid_credentials<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(err) if is_invalid_credentials(&err) => {}
        Err(Error::Flow(identa::flow::FlowError::Invalid(flow)))
            if all_message_ids(&flow).contains(&4_000_006) => {}
        other => panic!("expected invalid credentials, got {other:?}"),
    }
}

/// The rows of the counters table, as text.
async fn counter_rows(env: &TestEnv) -> Vec<String> {
    let db = env.store.connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key, window_start, count FROM identa_throttle_counters",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let key: String = r.try_get("", "key").unwrap();
            let start: i64 = r.try_get("", "window_start").unwrap();
            let count: i32 = r.try_get("", "count").unwrap();
            format!("{key} {start} {count}")
        })
        .collect()
}

async fn five_failures_from_one_address_throttle_that_address(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    for _ in 0..5 {
        assert_invalid_credentials(
            login_from(&env.identa, "192.0.2.1", "alice@example.com", "wrong guess").await,
        );
    }
    // The right password is not even checked now.
    let wait =
        retry_after(login_from(&env.identa, "192.0.2.1", "alice@example.com", PASSWORD).await);
    assert!(wait > StdDuration::ZERO && wait <= StdDuration::from_secs(15 * 60));
    // Another address, and the same address for another identifier, are not affected.
    login_from(&env.identa, "192.0.2.2", "alice@example.com", PASSWORD)
        .await
        .unwrap();
    assert_invalid_credentials(
        login_from(&env.identa, "192.0.2.1", "bob@example.com", "wrong guess").await,
    );
    // The window ends: the address may try again.
    env.clock.advance(Duration::minutes(15));
    login_from(&env.identa, "192.0.2.1", "alice@example.com", PASSWORD)
        .await
        .unwrap();
}

async fn unknown_identifiers_are_throttled_like_known_ones(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let mut waits = Vec::new();
    for identifier in ["alice@example.com", "nobody@example.com"] {
        for _ in 0..5 {
            assert_invalid_credentials(
                login_from(&env.identa, "192.0.2.1", identifier, "wrong guess").await,
            );
        }
        waits.push(retry_after(
            login_from(&env.identa, "192.0.2.1", identifier, "wrong guess").await,
        ));
    }
    assert_eq!(
        waits[0], waits[1],
        "the refusal must not tell the two apart"
    );
}

async fn a_success_clears_the_failures_of_its_address(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    for _ in 0..4 {
        assert_invalid_credentials(
            login_from(&env.identa, "192.0.2.1", "alice@example.com", "typo").await,
        );
    }
    login_from(&env.identa, "192.0.2.1", "alice@example.com", PASSWORD)
        .await
        .unwrap();
    for _ in 0..5 {
        assert_invalid_credentials(
            login_from(&env.identa, "192.0.2.1", "alice@example.com", "typo").await,
        );
    }
    retry_after(login_from(&env.identa, "192.0.2.1", "alice@example.com", "typo").await);
}

async fn failures_per_identifier_add_up_across_addresses(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    for i in 0..50 {
        let ip = format!("198.51.100.{i}");
        assert_invalid_credentials(
            login_from(&env.identa, &ip, "Alice@Example.com", "guess").await,
        );
    }
    // A fresh address, and a caller who names no address at all, are refused.
    retry_after(login_from(&env.identa, "203.0.113.9", "alice@example.com", PASSWORD).await);
    retry_after(sign_in_without_address(&env.identa, "alice@example.com").await);
    env.clock.advance(Duration::minutes(15));
    login_from(&env.identa, "203.0.113.9", "alice@example.com", PASSWORD)
        .await
        .unwrap();
}

async fn sign_in_without_address(
    identa: &Identa,
    identifier: &str,
) -> Result<identa::session::Login, Error> {
    identa
        .login(
            identifier,
            &identa::credential::password::Password::new(PASSWORD),
            None,
        )
        .await
}

async fn one_address_may_try_100_logins_a_minute(env: TestEnv) {
    for i in 0..100 {
        let identifier = format!("user{i}@example.com");
        assert_invalid_credentials(
            login_from(&env.identa, "192.0.2.1", &identifier, "guess").await,
        );
    }
    let wait =
        retry_after(login_from(&env.identa, "192.0.2.1", "other@example.com", "guess").await);
    assert!(wait <= StdDuration::from_secs(60));
    // Flowless sign-in with a device counts against the same address.
    let device = Device::new(Some("192.0.2.1"), None);
    retry_after(
        env.identa
            .login(
                "other@example.com",
                &identa::credential::password::Password::new("guess"),
                Some(device),
            )
            .await,
    );
    env.clock.advance(Duration::minutes(1));
    assert_invalid_credentials(
        login_from(&env.identa, "192.0.2.1", "other@example.com", "guess").await,
    );
}

async fn a_throttled_flow_shows_why_and_nothing_else(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let req = from("192.0.2.1");
    let flow = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await
        .unwrap();
    for _ in 0..5 {
        assert_invalid_credentials(
            submit_login(
                &env,
                flow.id,
                password_login("alice@example.com", "guess"),
                &req,
            )
            .await,
        );
    }
    retry_after(
        submit_login(
            &env,
            flow.id,
            password_login("alice@example.com", PASSWORD),
            &req,
        )
        .await,
    );
    let shown = env.identa.flow(flow.id, &req).await.unwrap();
    assert_eq!(all_message_ids(&shown), vec![THROTTLED]);
    assert_eq!(shown.state, flow.state);
    let message = &shown.ui.messages[0];
    assert!(message.text.contains("try again in"), "{}", message.text);
    assert!(message.context["retry_after_seconds"].as_u64().unwrap() > 0);
}

async fn second_factor_failures_are_limited_per_identity(env: TestEnv) {
    let (_, token) = register_with_password(&env, "alice@example.com").await;
    let secret = enrol_totp(&env, &token).await;
    let session = sign_in(&env, "alice@example.com").await;
    let wrong = || LoginSubmission::Totp {
        code: "not-a-code".into(),
    };
    for _ in 0..5 {
        let refused = step_up(&env, &session.token, wrong()).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ValidationFailed);
    }
    // Another flow, another session of the same identity: still refused, right code too.
    let other = sign_in(&env, "alice@example.com").await;
    let code = identa_totp_code(&env, &secret);
    retry_after(step_up(&env, &other.token, LoginSubmission::Totp { code }).await);
    retry_after(
        step_up(
            &env,
            &session.token,
            LoginSubmission::LookupSecret {
                code: "abcd-efgh".into(),
            },
        )
        .await,
    );
    env.clock.advance(Duration::minutes(15));
    let code = identa_totp_code(&env, &secret);
    step_up(&env, &other.token, LoginSubmission::Totp { code })
        .await
        .unwrap();
}

async fn a_second_factor_success_does_not_count(env: TestEnv) {
    let (_, token) = register_with_password(&env, "alice@example.com").await;
    let secret = enrol_totp(&env, &token).await;
    for _ in 0..6 {
        // Each TOTP step is accepted once (enrolment spent the first); the next is 30 s on.
        env.clock.advance(Duration::seconds(30));
        let session = sign_in(&env, "alice@example.com").await;
        let code = identa_totp_code(&env, &secret);
        step_up(&env, &session.token, LoginSubmission::Totp { code })
            .await
            .unwrap();
    }
}

async fn two_engines_on_one_database_share_the_counts(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let second = env
        .another_engine(env.identa.config().clone())
        .build()
        .unwrap();
    for engine in [&env.identa, &second, &env.identa, &second, &env.identa] {
        assert_invalid_credentials(
            login_from(engine, "192.0.2.1", "alice@example.com", "guess").await,
        );
    }
    retry_after(login_from(&second, "192.0.2.1", "alice@example.com", PASSWORD).await);
}

async fn counters_hold_no_identifier_or_address_and_are_pruned(env: TestEnv) {
    assert_invalid_credentials(
        login_from(&env.identa, "192.0.2.77", "carol@example.com", "guess").await,
    );
    let rows = counter_rows(&env).await;
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(
            !row.contains("carol") && !row.contains("192.0.2.77"),
            "{row}"
        );
    }
    env.clock.advance(Duration::minutes(16));
    env.identa.prune().await.unwrap();
    // Only the counter of the flow just created is current; the login counters are gone.
    assert!(counter_rows(&env).await.len() < rows.len());
    env.clock.advance(Duration::hours(2));
    env.identa.prune().await.unwrap();
    assert!(counter_rows(&env).await.is_empty());
}

async fn limits_are_configurable_and_can_be_off(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let off = env
        .another_engine(identa::Config {
            throttle: ThrottleConfig::Off,
            ..env.identa.config().clone()
        })
        .build()
        .unwrap();
    for _ in 0..8 {
        assert_invalid_credentials(
            login_from(&off, "192.0.2.1", "alice@example.com", "guess").await,
        );
    }
    let strict = env
        .another_engine(identa::Config {
            throttle: ThrottleConfig::On(Limits {
                login_failures_per_identifier_and_ip: Limit::new(1, Duration::minutes(1)),
                ..Limits::default()
            }),
            ..env.identa.config().clone()
        })
        .build()
        .unwrap();
    assert_invalid_credentials(
        login_from(&strict, "192.0.2.9", "alice@example.com", "guess").await,
    );
    let wait = retry_after(login_from(&strict, "192.0.2.9", "alice@example.com", "guess").await);
    assert!(wait <= StdDuration::from_secs(60));
}

/// The store's counters, except that the `n`-th counting once armed fails, as a
/// database that drops out mid-admission would.
struct FailingLimiter {
    inner: identa::throttle::StoreLimiter,
    /// Shared with the test, which arms it.
    fail_in: std::sync::Arc<std::sync::Mutex<Option<u32>>>,
}

#[async_trait::async_trait]
impl identa::throttle::Limiter for FailingLimiter {
    async fn hit(
        &self,
        key: &identa::throttle::ThrottleKey,
        window: identa::throttle::Window,
    ) -> Result<u32, identa::store::StoreError> {
        let fail = {
            let mut fail_in = self.fail_in.lock().unwrap();
            match fail_in.as_mut() {
                Some(1) => {
                    *fail_in = None;
                    true
                }
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            }
        };
        if fail {
            return Err(identa::store::StoreError::Database(
                "connection lost".into(),
            ));
        }
        self.inner.hit(key, window).await
    }

    async fn undo(
        &self,
        key: &identa::throttle::ThrottleKey,
        window: identa::throttle::Window,
    ) -> Result<(), identa::store::StoreError> {
        self.inner.undo(key, window).await
    }

    async fn clear(
        &self,
        key: &identa::throttle::ThrottleKey,
    ) -> Result<(), identa::store::StoreError> {
        self.inner.clear(key).await
    }

    async fn prune(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, identa::store::StoreError> {
        self.inner.prune(now).await
    }
}

/// A password login from an address is counted on three counters (attempts per address,
/// failures per identifier and address, failures per identifier). When the third fails,
/// the login is answered with an error, and the two already counted are taken back: after
/// five such errors the address still has its five guesses, the sixth is throttled, and
/// only the five new flows were counted meanwhile.
async fn an_attempt_answered_with_an_error_counts_nowhere(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let fail_in = std::sync::Arc::new(std::sync::Mutex::new(None));
    let limiter = FailingLimiter {
        inner: identa::throttle::StoreLimiter::new(std::sync::Arc::new(env.store.clone())),
        fail_in: fail_in.clone(),
    };
    let identa = env
        .another_engine(env.identa.config().clone())
        .limiter(limiter)
        .build()
        .unwrap();
    let req = from("192.0.2.1");
    for _ in 0..5 {
        let flow = identa
            .login_flow()
            .create(FlowType::Api, &req, LoginIntent::SignIn)
            .await
            .unwrap();
        *fail_in.lock().unwrap() = Some(3);
        let err = identa
            .login_flow()
            .submit(flow.id, password_login("alice@example.com", PASSWORD), &req)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal, "{err:?}");
    }
    let counted: i64 = counter_rows(&env)
        .await
        .iter()
        .map(|row| row.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(counted, 5, "only the new flows count");
    for _ in 0..5 {
        assert_invalid_credentials(
            login_from(&identa, "192.0.2.1", "alice@example.com", "wrong guess").await,
        );
    }
    retry_after(login_from(&identa, "192.0.2.1", "alice@example.com", PASSWORD).await);
}

/// Asks a new recovery flow from `ip` to send a code to `address`.
async fn recovery_code_from(
    identa: &Identa,
    ip: &str,
    address: &str,
) -> Result<RecoveryStep, Error> {
    let req = from(ip);
    let flow = identa.recovery_flow().create(FlowType::Api, &req).await?;
    identa
        .recovery_flow()
        .submit(flow.id, CodeSubmission::Email(address.into()), &req)
        .await
}

/// Asks a new verification flow from `ip` to send a code to `address`.
async fn verification_code_from(
    identa: &Identa,
    ip: &str,
    address: &str,
) -> Result<identa::flow::verification::VerificationStep, Error> {
    let req = from(ip);
    let flow = identa
        .verification_flow()
        .create(FlowType::Api, &req)
        .await?;
    identa
        .verification_flow()
        .submit(flow.id, CodeSubmission::Email(address.into()), &req)
        .await
}

async fn three_codes_an_address_in_15_minutes_known_or_not(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let mut waits = Vec::new();
    for address in ["alice@example.com", "nobody@example.com"] {
        for _ in 0..3 {
            recovery_code_from(&env.identa, "192.0.2.1", address)
                .await
                .unwrap();
        }
        waits.push(retry_after(
            recovery_code_from(&env.identa, "192.0.2.1", address).await,
        ));
    }
    assert_eq!(
        waits[0], waits[1],
        "the refusal must not tell the two apart"
    );
    // Verification codes count against the same (address, client address).
    retry_after(verification_code_from(&env.identa, "192.0.2.1", "Alice@Example.com").await);
    let before = mail_to(&env, "alice@example.com").await.len();
    env.clock.advance(Duration::minutes(15));
    recovery_code_from(&env.identa, "192.0.2.1", "alice@example.com")
        .await
        .unwrap();
    assert_eq!(mail_to(&env, "alice@example.com").await.len(), before + 1);
}

/// Someone who spends an address's 3 codes from their own client address does not hold
/// back the owner's: another client address still gets a code, and the refused requests
/// did not spend the address-wide cap.
async fn a_second_client_address_still_gets_a_code_after_the_first_spent_its_three(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    for _ in 0..3 {
        recovery_code_from(&env.identa, "192.0.2.66", "alice@example.com")
            .await
            .unwrap();
    }
    for _ in 0..10 {
        retry_after(recovery_code_from(&env.identa, "192.0.2.66", "alice@example.com").await);
    }
    let before = mail_to(&env, "alice@example.com").await.len();
    recovery_code_from(&env.identa, "198.51.100.7", "alice@example.com")
        .await
        .unwrap();
    assert_eq!(mail_to(&env, "alice@example.com").await.len(), before + 1);
}

/// Many client addresses together get at most 10 codes to one address an hour (the
/// address-wide cap), refused like any throttled attempt and alike for known and unknown
/// addresses; the hour over, codes flow again.
async fn ten_codes_an_address_an_hour_across_client_addresses_known_or_not(env: TestEnv) {
    register_with_password(&env, "alice@example.com").await;
    let signed_up = mail_to(&env, "alice@example.com").await.len();
    let mut answers = Vec::new();
    for address in ["alice@example.com", "nobody@example.com"] {
        for i in 0..10 {
            let ip = format!("192.0.2.{}", 10 + i);
            recovery_code_from(&env.identa, &ip, address).await.unwrap();
        }
        let refused = recovery_code_from(&env.identa, "203.0.113.1", address).await;
        answers.push(retry_after(refused));
        // Verification mail to the address is under the same cap.
        retry_after(verification_code_from(&env.identa, "203.0.113.2", address).await);
    }
    assert_eq!(
        answers[0], answers[1],
        "the refusal must not tell the two apart"
    );
    assert!(answers[0] <= StdDuration::from_secs(3600));
    assert_eq!(
        mail_to(&env, "alice@example.com").await.len(),
        signed_up + 10
    );
    env.clock.advance(Duration::hours(1));
    recovery_code_from(&env.identa, "203.0.113.1", "alice@example.com")
        .await
        .unwrap();
    assert_eq!(
        mail_to(&env, "alice@example.com").await.len(),
        signed_up + 11
    );
}

async fn twenty_codes_a_client_address_in_an_hour(env: TestEnv) {
    for i in 0..20 {
        let address = format!("user{i}@example.com");
        verification_code_from(&env.identa, "192.0.2.1", &address)
            .await
            .unwrap();
    }
    let wait = retry_after(recovery_code_from(&env.identa, "192.0.2.1", "new@example.com").await);
    assert!(wait <= StdDuration::from_secs(3600));
    recovery_code_from(&env.identa, "192.0.2.2", "new@example.com")
        .await
        .unwrap();
}

/// Registers `email` from `ip` through a new API flow.
async fn register_from(identa: &Identa, ip: &str, traits: serde_json::Value) -> Result<(), Error> {
    let req = from(ip);
    let flow = identa
        .registration_flow()
        .create(FlowType::Api, &req)
        .await?;
    identa
        .registration_flow()
        .submit(flow.id, password_registration(traits, PASSWORD), &req)
        .await
        .map(|_| ())
}

async fn twenty_registrations_a_client_address_in_an_hour(env: TestEnv) {
    // A refused sign-up does not count.
    let refused = register_from(&env.identa, "192.0.2.1", json!({ "email": "not an email" })).await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::ValidationFailed);
    for i in 0..20 {
        let traits = json!({ "email": format!("user{i}@example.com") });
        register_from(&env.identa, "192.0.2.1", traits)
            .await
            .unwrap();
    }
    let traits = json!({ "email": "one-more@example.com" });
    retry_after(register_from(&env.identa, "192.0.2.1", traits.clone()).await);
    register_from(&env.identa, "192.0.2.2", traits)
        .await
        .unwrap();
}

async fn six_hundred_new_flows_a_client_address_in_an_hour(env: TestEnv) {
    let req = from("192.0.2.1");
    for _ in 0..600 {
        env.identa
            .verification_flow()
            .create(FlowType::Api, &req)
            .await
            .unwrap();
    }
    retry_after(
        env.identa
            .login_flow()
            .create(FlowType::Api, &req, LoginIntent::SignIn)
            .await,
    );
    env.identa
        .login_flow()
        .create(FlowType::Api, &from("192.0.2.2"), LoginIntent::SignIn)
        .await
        .unwrap();
    env.clock.advance(Duration::hours(1));
    env.identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await
        .unwrap();
}

on_every_backend!(
    three_codes_an_address_in_15_minutes_known_or_not,
    twenty_codes_a_client_address_in_an_hour,
    twenty_registrations_a_client_address_in_an_hour,
    six_hundred_new_flows_a_client_address_in_an_hour,
);

on_every_backend!(
    five_failures_from_one_address_throttle_that_address,
    unknown_identifiers_are_throttled_like_known_ones,
    a_success_clears_the_failures_of_its_address,
    failures_per_identifier_add_up_across_addresses,
    one_address_may_try_100_logins_a_minute,
    a_throttled_flow_shows_why_and_nothing_else,
    second_factor_failures_are_limited_per_identity,
    a_second_factor_success_does_not_count,
    counters_hold_no_identifier_or_address_and_are_pruned,
    limits_are_configurable_and_can_be_off,
    an_attempt_answered_with_an_error_counts_nowhere,
);
/// Wrong second factors submitted at once, more than the limit: the counter is atomic,
/// so exactly the limit's worth are judged and the rest refused unjudged.
async fn racing_guesses_get_no_more_answers_than_the_limit(env: TestEnv) {
    let (_, token) = register_with_password(&env, "alice@example.com").await;
    enrol_totp(&env, &token).await;
    let mut attempts = Vec::new();
    for _ in 0..TASKS {
        let session = sign_in(&env, "alice@example.com").await;
        let req = crate::common::with_session(&session.token);
        let flow = env
            .identa
            .login_flow()
            .create(FlowType::Api, &req, LoginIntent::SecondFactor)
            .await
            .unwrap();
        attempts.push((flow.id, req));
    }
    let identa = env.identa.clone();
    let results = released_together(|i| {
        let identa = identa.clone();
        let (flow, req) = attempts[i].clone();
        async move {
            let wrong = LoginSubmission::Totp {
                code: "000000x".into(),
            };
            identa.login_flow().submit(flow, wrong, &req).await
        }
    })
    .await;
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Throttled(_))))
        .count();
    assert_eq!(throttled, TASKS - 5, "{results:?}");
}

on_pooled_backends!(
    two_engines_on_one_database_share_the_counts,
    racing_guesses_get_no_more_answers_than_the_limit,
);

/// A new API settings flow of the session `token`, from client address `ip`, and the
/// request that presents both.
async fn settings_from(identa: &Identa, token: &SessionToken, ip: &str) -> (Uuid, FlowRequest) {
    let req = with_session(token).with_device(Device::new(Some(ip), None));
    let flow = identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    (flow.id, req)
}

/// Settings check a new password against the current one (4000039 when they are the
/// same): an oracle for whoever holds the session. Each refused new password counts like
/// a failed login — 5 per (identity, address) in 15 minutes, then refused unhashed — and
/// a saved one clears the identity's counts.
async fn settings_password_checks_are_throttled_like_logins(env: TestEnv) {
    let (_, token) = register_with_password(&env, "alice@example.com").await;
    let (flow, req) = settings_from(&env.identa, &token, "192.0.2.1").await;
    for _ in 0..5 {
        let refused = submit_settings(&env, flow, new_password(PASSWORD), &req).await;
        assert!(all_message_ids(&invalid_flow(refused.unwrap_err())).contains(&4_000_039));
    }
    let new = "an entirely new passphrase";
    let wait = retry_after(submit_settings(&env, flow, new_password(new), &req).await);
    assert!(wait > StdDuration::ZERO && wait <= StdDuration::from_secs(15 * 60));
    let shown = env.identa.flow(flow, &req).await.unwrap();
    assert_eq!(all_message_ids(&shown), vec![THROTTLED]);
    // The password did not change.
    assert_invalid_credentials(
        login_from(&env.identa, "192.0.2.9", "alice@example.com", new).await,
    );

    // From another address: four refusals, then a saved password clears the count.
    let (flow, req) = settings_from(&env.identa, &token, "192.0.2.2").await;
    for _ in 0..4 {
        let refused = submit_settings(&env, flow, new_password(PASSWORD), &req).await;
        assert!(all_message_ids(&invalid_flow(refused.unwrap_err())).contains(&4_000_039));
    }
    submit_settings(&env, flow, new_password(new), &req)
        .await
        .unwrap();
    let (flow, req) = settings_from(&env.identa, &token, "192.0.2.2").await;
    for _ in 0..5 {
        let refused = submit_settings(&env, flow, new_password(new), &req).await;
        assert!(all_message_ids(&invalid_flow(refused.unwrap_err())).contains(&4_000_039));
    }
    retry_after(submit_settings(&env, flow, new_password(PASSWORD), &req).await);
    // The first address's own count stands until its window ends.
    let (flow, req) = settings_from(&env.identa, &token, "192.0.2.1").await;
    retry_after(submit_settings(&env, flow, new_password(new), &req).await);
    env.clock.advance(Duration::minutes(15));
    let fresh = sign_in_with(&env, "alice@example.com", new).await.unwrap();
    let (flow, req) = settings_from(&env.identa, &fresh.token, "192.0.2.1").await;
    let refused = submit_settings(&env, flow, new_password(new), &req).await;
    assert!(all_message_ids(&invalid_flow(refused.unwrap_err())).contains(&4_000_039));
}

on_every_backend!(
    settings_password_checks_are_throttled_like_logins,
    a_second_client_address_still_gets_a_code_after_the_first_spent_its_three,
    ten_codes_an_address_an_hour_across_client_addresses_known_or_not,
);
