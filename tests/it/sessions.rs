//! Sessions: issue, whoami, expiry, revocation, extension, and tokens never at rest.

use chrono::Duration;
use identa::ErrorKind;
use identa::SessionCacheConfig;
use identa::credential::password::Password;
use identa::identity::IdentityState;
use identa::session::SessionRefusal;
use identa::session::{Device, SessionToken};
use sea_orm::{ConnectionTrait, Statement};
use sha2::{Digest, Sha256};
use std::time::Duration as StdDuration;

use crate::common::{
    Backend, PASSWORD, TestEnv, create_account, session_refusal, set_identity_state, sign_in,
    whoami_refusal,
};

async fn login_whoami_logout(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    let device = Device::new(Some("203.0.113.9"), Some("curl/8"));
    let login = env
        .identa
        .login("ada@example.com", &Password::new(PASSWORD), Some(device))
        .await
        .unwrap();
    let me = env.identa.whoami(&login.token).await.unwrap();
    assert_eq!(me.identity.id, ada.id);
    assert_eq!(me.session.aal, identa::identity::Aal::Aal1);
    assert_eq!(me.session.authentication_methods[0].method, "password");
    assert_eq!(
        me.session.devices[0].ip_address.as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(
        me.session.expires_at - me.session.issued_at,
        Duration::hours(24)
    );

    let json = serde_json::to_value(&me).unwrap();
    assert_eq!(json["authenticator_assurance_level"], "aal1");
    assert_eq!(json["identity"]["traits"]["email"], "ada@example.com");
    assert_eq!(json["active"], true);

    env.identa.logout(&login.token).await.unwrap();
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::Revoked
    );
    assert_eq!(
        session_refusal(env.identa.logout(&login.token).await.unwrap_err()),
        SessionRefusal::Revoked
    );
}

async fn garbage_tokens_are_refused(env: TestEnv) {
    for token in ["", "identa_st_nope", "\u{0}\u{1}", &"z".repeat(1 << 20)] {
        let err = env
            .identa
            .whoami(&SessionToken::from_client(token))
            .await
            .unwrap_err();
        assert_eq!(session_refusal(err), SessionRefusal::Unknown);
    }
}

async fn expired_sessions_are_refused(env: TestEnv) {
    create_account(&env, "ada@example.com").await;
    let login = sign_in(&env, "ada@example.com").await;
    env.clock.advance(Duration::hours(23));
    env.identa.whoami(&login.token).await.unwrap();
    env.clock.advance(Duration::hours(1));
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::Expired
    );
    let err = env
        .identa
        .extend_session(login.session.session.id)
        .await
        .unwrap_err();
    assert_eq!(session_refusal(err), SessionRefusal::Expired);
}

async fn extend_pushes_expiry(env: TestEnv) {
    create_account(&env, "ada@example.com").await;
    let login = sign_in(&env, "ada@example.com").await;
    env.clock.advance(Duration::hours(20));
    let extended = env
        .identa
        .extend_session(login.session.session.id)
        .await
        .unwrap();
    assert_eq!(extended.expires_at, env.clock_now() + Duration::hours(24));
    env.clock.advance(Duration::hours(10));
    env.identa.whoami(&login.token).await.unwrap();
    let missing = uuid::Uuid::new_v4();
    let err = env.identa.extend_session(missing).await.unwrap_err();
    assert!(
        matches!(err, identa::Error::NotFound { what: "session", id } if id == missing),
        "{err:?}"
    );
}

async fn disabled_identity_sessions_are_refused(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    let login = sign_in(&env, "ada@example.com").await;
    set_identity_state(&env, ada.id, IdentityState::Inactive).await;
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::IdentityDisabled
    );
    set_identity_state(&env, ada.id, IdentityState::Active).await;
    env.identa.whoami(&login.token).await.unwrap();
}

async fn revoke_one_others_and_all(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    let bob = create_account(&env, "bob@example.com").await;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(sign_in(&env, "ada@example.com").await.token);
    }
    let bobs = sign_in(&env, "bob@example.com").await;

    // Revoke one, by id; another identity's session id is not ours to revoke.
    let victim = env.identa.whoami(&tokens[3]).await.unwrap().session.id;
    assert_eq!(
        env.identa
            .revoke_session(bob.id, victim)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    env.identa.revoke_session(ada.id, victim).await.unwrap();
    assert_eq!(
        whoami_refusal(&env.identa, &tokens[3]).await,
        SessionRefusal::Revoked
    );

    // Revoke all others: only the current one stays.
    let current = env.identa.whoami(&tokens[0]).await.unwrap();
    assert_eq!(env.identa.revoke_other_sessions(&current).await.unwrap(), 2);
    env.identa.whoami(&tokens[0]).await.unwrap();
    for token in &tokens[1..] {
        assert_eq!(
            whoami_refusal(&env.identa, token).await,
            SessionRefusal::Revoked
        );
    }
    let listed = env.identa.sessions(ada.id).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(
        listed
            .iter()
            .filter(|s| s.active)
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec![current.session.id]
    );

    // Revoke all: none stays; bob is untouched.
    assert_eq!(env.identa.revoke_all_sessions(ada.id).await.unwrap(), 1);
    assert_eq!(
        whoami_refusal(&env.identa, &tokens[0]).await,
        SessionRefusal::Revoked
    );
    env.identa.whoami(&bobs.token).await.unwrap();
}

async fn with_a_zero_bound_other_engines_see_changes_at_once(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    let other = env
        .second_engine(SessionCacheConfig::InProcess {
            max_staleness: StdDuration::ZERO,
            max_age: StdDuration::from_secs(60),
            capacity: 1000,
        })
        .await;
    let first = sign_in(&env, "ada@example.com").await;
    let second = sign_in(&env, "ada@example.com").await;
    other.whoami(&first.token).await.unwrap();
    other.whoami(&second.token).await.unwrap();

    env.identa.logout(&first.token).await.unwrap();
    assert_eq!(
        whoami_refusal(&other, &first.token).await,
        SessionRefusal::Revoked
    );

    // An identity change made elsewhere (disabling it) is seen at once too.
    set_identity_state(&env, ada.id, IdentityState::Inactive).await;
    assert_eq!(
        whoami_refusal(&other, &second.token).await,
        SessionRefusal::IdentityDisabled
    );
}

/// Another engine with the default cache sees a revocation made elsewhere within the
/// bound (1 s): once that long has passed since it last read the event log, its next
/// `whoami` reads the log before answering — and, where nothing pushes the event to it
/// (SQLite), not before: until then it serves its cached copy, which shows the cache is
/// in play. Every engine reads the test's manual
/// clock, so the bound is checked to the millisecond without waiting.
async fn other_engines_see_revocation_within_the_default_bound(env: TestEnv) {
    create_account(&env, "ada@example.com").await;
    let SessionCacheConfig::InProcess { max_staleness, .. } = SessionCacheConfig::default() else {
        panic!("the default cache is in process");
    };
    assert_eq!(
        max_staleness,
        StdDuration::from_secs(1),
        "the documented bound"
    );
    let other = env.second_engine(SessionCacheConfig::default()).await;
    let login = sign_in(&env, "ada@example.com").await;
    other.whoami(&login.token).await.unwrap();

    env.identa.logout(&login.token).await.unwrap();
    // The revoking engine refuses at once.
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::Revoked
    );
    // The other engine may serve its cached copy until the bound has passed since it
    // last read the event log … (on PostgreSQL the revocation is pushed to it as it
    // commits, so it may refuse sooner: `it::revocation` tests that path)
    env.clock.advance(chrono::Duration::milliseconds(999));
    if !identa::testing::session_push_listening(&other).await {
        other.whoami(&login.token).await.unwrap();
    }
    // … and not a moment longer.
    env.clock.advance(chrono::Duration::milliseconds(1));
    assert_eq!(
        whoami_refusal(&other, &login.token).await,
        SessionRefusal::Revoked
    );
}

async fn the_cache_never_outlives_expiry_or_deletion(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    let login = sign_in(&env, "ada@example.com").await;
    env.identa.whoami(&login.token).await.unwrap();
    env.identa.whoami(&login.token).await.unwrap();
    env.clock.advance(Duration::hours(25));
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::Expired
    );
    env.clock.advance(Duration::hours(-25));
    env.identa.whoami(&login.token).await.unwrap();
    env.identa.delete_identity(ada.id).await.unwrap();
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::Unknown
    );
}

async fn no_token_in_the_clear(env: TestEnv) {
    create_account(&env, "ada@example.com").await;
    let login = sign_in(&env, "ada@example.com").await;
    let token = login.token.expose().to_owned();
    let db = env.store.connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT * FROM identa_sessions",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: Vec<u8> = rows[0].try_get("", "token_hash").unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());
    // No column of the row holds the token's text.
    let text_cols = ["id", "aal", "authentication_methods", "devices"];
    for col in text_cols {
        let value: String = rows[0]
            .try_get::<String>("", col)
            .or_else(|_| {
                rows[0]
                    .try_get::<serde_json::Value>("", col)
                    .map(|v| v.to_string())
            })
            .or_else(|_| {
                rows[0]
                    .try_get::<uuid::Uuid>("", col)
                    .map(|v| v.to_string())
            })
            .unwrap();
        assert!(!value.contains(&token), "{col} holds the token");
    }
    // And on SQLite, not one byte sequence of the database files is the token.
    if env.backend == Backend::SqliteFile {
        let path = env.sqlite_path.clone().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(
            bytes
                .windows(32)
                .any(|w| *w == Sha256::digest(token.as_bytes())[..])
        );
    }
}

async fn the_event_log_reports_gaps_after_pruning(env: TestEnv) {
    use identa::store::{EventCursor, SessionEvent, SessionStore};
    let ada = create_account(&env, "ada@example.com").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let login = sign_in(&env, "ada@example.com").await;
        ids.push(login.session.session.id);
        env.identa.logout(&login.token).await.unwrap();
    }
    let store = &env.store;
    let all = store
        .session_events_after(&EventCursor::default(), 100)
        .await
        .unwrap();
    assert!(all.complete);
    assert_eq!(
        all.events,
        ids.iter()
            .map(|id| SessionEvent::Session(*id))
            .collect::<Vec<_>>()
    );

    // Asking for fewer than there are: incomplete, and the cursor jumps to the newest.
    let some = store
        .session_events_after(&EventCursor::default(), 2)
        .await
        .unwrap();
    assert!(!some.complete);
    assert_eq!(some.cursor.last, all.cursor.last);

    // Nothing new after the newest.
    let none = store.session_events_after(&all.cursor, 100).await.unwrap();
    assert!(none.complete && none.events.is_empty());

    // After pruning, a reader whose cursor predates the oldest kept event must start over.
    assert_eq!(store.prune_session_events(2).await.unwrap(), 3);
    // (Cursors moved back by hand keep the snapshot, as a reader's would.)
    let at = |last: i64| EventCursor {
        last,
        ..all.cursor.clone()
    };
    let first_cursor = at(all.cursor.last - 4);
    assert!(
        !store
            .session_events_after(&first_cursor, 100)
            .await
            .unwrap()
            .complete
    );
    let recent = store
        .session_events_after(&at(all.cursor.last - 2), 100)
        .await
        .unwrap();
    assert!(recent.complete);
    assert_eq!(recent.events.len(), 2);

    // Revoking all sessions logs one identity-wide event.
    sign_in(&env, "ada@example.com").await;
    env.identa.revoke_all_sessions(ada.id).await.unwrap();
    let last = store.session_events_after(&all.cursor, 100).await.unwrap();
    assert_eq!(last.events, vec![SessionEvent::Identity(ada.id)]);
}

crate::on_every_backend!(
    the_event_log_reports_gaps_after_pruning,
    login_whoami_logout,
    garbage_tokens_are_refused,
    expired_sessions_are_refused,
    extend_pushes_expiry,
    disabled_identity_sessions_are_refused,
    revoke_one_others_and_all,
    with_a_zero_bound_other_engines_see_changes_at_once,
    other_engines_see_revocation_within_the_default_bound,
    the_cache_never_outlives_expiry_or_deletion,
    no_token_in_the_clear,
);
