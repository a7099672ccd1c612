//! Recovery by code: the code signs in and opens settings, signing out every other
//! session; unknown addresses look the same; attempts are limited; codes expire, work
//! once (also when raced) and only while their address is still the identity's.

use chrono::Duration;
use identa::courier::TemplateKind;
use identa::flow::recovery::RecoveryStep;
use identa::flow::settings::SettingsSubmission;
use identa::flow::{CodeSubmission, OtherSessions};
use identa::flow::{ContinueWith, Flow, FlowRequest, FlowState};
use identa::identity::IdentityUpdate;
use identa::session::{SessionRefusal, SessionToken};
use identa::{Error, SessionCacheConfig};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::race::{ROUNDS, refused_as_completed, released_together};
use crate::common::{
    PASSWORD, TestEnv, api_login, api_recovery_flow, change_settings, code_sent_to,
    form_message_ids, invalid_flow, mail_to, new_password, register, submit_recovery,
    submit_settings, whoami_refusal, with_session,
};
use crate::{on_every_backend, on_pooled_backends};

async fn start_recovery(env: &TestEnv, address: &str) -> Flow {
    let flow = api_recovery_flow(env).await;
    let ask = CodeSubmission::Email(address.into());
    match submit_recovery(env, flow.id, ask).await.unwrap() {
        RecoveryStep::CodeSent(flow) => *flow,
        other => panic!("expected CodeSent, got {other:?}"),
    }
}

/// Submits `code` to recovery flow `flow`.
async fn submit_code(env: &TestEnv, flow: Uuid, code: &str) -> Result<RecoveryStep, Error> {
    submit_recovery(env, flow, CodeSubmission::Code(code.into())).await
}

/// The message ids on the code field of recovery flow `flow` after refusing `code`.
async fn code_refused(env: &TestEnv, flow: Uuid, code: &str) -> Vec<u32> {
    let shown = invalid_flow(submit_code(env, flow, code).await.unwrap_err());
    form_message_ids(&shown)
}

async fn recovery_by_code_signs_in_and_opens_settings(env: TestEnv) {
    register(&env, "rita@example.com").await;
    let sent = start_recovery(&env, "Rita@Example.com").await;
    assert_eq!(sent.state, FlowState::SentEmail);
    assert_eq!(form_message_ids(&sent), vec![1_060_003]);
    assert!(sent.ui.node("code").is_some());
    let code = code_sent_to(&env, "rita@example.com", TemplateKind::RecoveryCodeValid).await;

    // A wrong code first.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(code_refused(&env, sent.id, wrong).await, vec![4_060_006]);

    let step = submit_code(&env, sent.id, &code).await.unwrap();
    let RecoveryStep::Recovered(done) = step else {
        panic!("expected Recovered")
    };
    assert_eq!(done.flow.state, FlowState::PassedChallenge);
    let me = env.identa.whoami(&done.token).await.unwrap();
    assert_eq!(me.session.authentication_methods[0].method, "code_recovery");
    assert!(
        me.identity.verifiable_addresses[0].verified,
        "the code proved the address"
    );
    match &done.continue_with[..] {
        [
            ContinueWith::SetOrySessionToken { ory_session_token },
            ContinueWith::ShowSettingsUi { flow },
        ] => {
            assert_eq!(ory_session_token, done.token.expose());
            assert_eq!(flow.id, done.settings_flow.id);
        }
        other => panic!("unexpected continue_with {other:?}"),
    }
    assert_eq!(form_message_ids(&done.settings_flow), vec![1_060_001]);
    // The fresh session may set a new password at once.
    let settings_req = with_session(&done.token);
    let change = new_password("my brand new passphrase");
    submit_settings(&env, done.settings_flow.id, change, &settings_req)
        .await
        .unwrap();
    api_login(&env, "rita@example.com", "my brand new passphrase")
        .await
        .unwrap();
    // The used flow refuses more codes.
    let again = invalid_flow(submit_code(&env, sent.id, &code).await.unwrap_err());
    assert_eq!(form_message_ids(&again), vec![4_060_001]);
}

/// The parts of a flow a client sees that could tell two flows apart, minus ids.
fn visible_shape(flow: &Flow) -> Value {
    let mut json = flow.to_kratos_json();
    for key in ["id", "expires_at", "issued_at", "created_at", "updated_at"] {
        json.as_object_mut().unwrap().remove(key);
    }
    json["ui"]["action"] = Value::Null;
    json
}

async fn recovery_for_unknown_address_looks_the_same(env: TestEnv) {
    register(&env, "known@example.com").await;
    let known = start_recovery(&env, "known@example.com").await;
    let unknown = start_recovery(&env, "unknown@example.com").await;
    let (mut k, mut u) = (visible_shape(&known), visible_shape(&unknown));
    // The resend button carries the address the user typed.
    for shape in [&mut k, &mut u] {
        for node in shape["ui"]["nodes"].as_array_mut().unwrap() {
            if node["attributes"]["name"] == "email" {
                node["attributes"]["value"] = Value::Null;
            }
        }
    }
    assert_eq!(k, u);
    assert!(
        mail_to(&env, "unknown@example.com").await.is_empty(),
        "silent by default"
    );
    // No code works for the unknown address, not even the one sent to the known one.
    let code = code_sent_to(&env, "known@example.com", TemplateKind::RecoveryCodeValid).await;
    assert_eq!(code_refused(&env, unknown.id, &code).await, vec![4_060_006]);

    // With notification on, the unknown address gets an "account not found" email.
    let mut config = crate::common::test_config();
    config.flows.recovery.unknown_recipients = identa::flow::UnknownRecipients::Notify;
    let env = TestEnv::with_config(env.backend, config).await;
    start_recovery(&env, "stranger@example.com").await;
    let mail = mail_to(&env, "stranger@example.com").await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].template, TemplateKind::RecoveryCodeInvalid);
    assert!(!mail[0].email.text.chars().any(|c| c.is_ascii_digit()));
}

async fn recovery_code_attempts_are_limited(env: TestEnv) {
    register(&env, "tries@example.com").await;
    let sent = start_recovery(&env, "tries@example.com").await;
    let code = code_sent_to(&env, "tries@example.com", TemplateKind::RecoveryCodeValid).await;
    let wrong = if code == "123456" { "654321" } else { "123456" };
    for _ in 0..5 {
        assert_eq!(code_refused(&env, sent.id, wrong).await, vec![4_060_006]);
    }
    let shown = invalid_flow(submit_code(&env, sent.id, &code).await.unwrap_err());
    assert_eq!(
        shown.ui.messages[0].text,
        "The request was submitted too often. Please request another code."
    );
    assert_eq!(shown.ui.messages[0].id, 4_000_001);
    // Asking for a new code on the same flow does not buy more attempts.
    let resend = CodeSubmission::Email("tries@example.com".into());
    submit_recovery(&env, sent.id, resend).await.unwrap();
    let fresh = code_sent_to(&env, "tries@example.com", TemplateKind::RecoveryCodeValid).await;
    let err = submit_code(&env, sent.id, &fresh).await.unwrap_err();
    assert_eq!(form_message_ids(&invalid_flow(err)), vec![4_000_001]);
}

async fn recovery_code_expires(env: TestEnv) {
    register(&env, "slow@example.com").await;
    let sent = start_recovery(&env, "slow@example.com").await;
    let code = code_sent_to(&env, "slow@example.com", TemplateKind::RecoveryCodeValid).await;
    env.clock.advance(Duration::minutes(16));
    assert_eq!(code_refused(&env, sent.id, &code).await, vec![4_060_006]);
}

/// One recovery code, submitted by `TASKS` tasks at once, signs in exactly one of them;
/// the others are refused as a replay. Each round is a new account and code.
async fn recovery_code_is_accepted_once_under_a_race(env: TestEnv) {
    let req = FlowRequest::api();
    for round in 0..ROUNDS {
        let address = format!("race{round}@example.com");
        let identity = register(&env, &address).await.identity;
        let sent = start_recovery(&env, &address).await;
        let code = code_sent_to(&env, &address, TemplateKind::RecoveryCodeValid).await;
        let results = released_together(|_| {
            let (identa, req, code) = (env.identa.clone(), req.clone(), code.clone());
            async move {
                identa
                    .recovery_flow()
                    .submit(sent.id, CodeSubmission::Code(code), &req)
                    .await
            }
        })
        .await;
        let recovered = results
            .iter()
            .filter(|r| matches!(r, Ok(RecoveryStep::Recovered(_))))
            .count();
        assert_eq!(recovered, 1, "round {round}: {results:#?}");
        for result in results.iter().filter(|r| r.is_err()) {
            // Completed before this task read the flow ("already completed", 4060001), or
            // while it was judged.
            let replay = refused_as_completed(result, 4_060_001);
            assert!(replay, "round {round}: {result:#?}");
        }
        let recovery_sessions = env
            .identa
            .sessions(identity.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| {
                s.authentication_methods
                    .iter()
                    .any(|m| m.method == "code_recovery")
            })
            .count();
        assert_eq!(recovery_sessions, 1, "round {round}");
    }
}

/// Recovers `address`'s account by a code sent to it: the new session's token.
pub(crate) async fn recover(env: &TestEnv, address: &str) -> SessionToken {
    let sent = start_recovery(env, address).await;
    let code = code_sent_to(env, address, TemplateKind::RecoveryCodeValid).await;
    match submit_code(env, sent.id, &code).await.unwrap() {
        RecoveryStep::Recovered(done) => done.token,
        other => panic!("expected Recovered, got {other:?}"),
    }
}

async fn recovery_signs_out_every_other_session(env: TestEnv) {
    let owner = register(&env, "rita@example.com")
        .await
        .login
        .unwrap()
        .token;
    let attacker = api_login(&env, "rita@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    // Another instance has the attacker's session in its cache.
    let elsewhere = env.second_engine(SessionCacheConfig::default()).await;
    elsewhere.whoami(&attacker).await.unwrap();
    let recovered = recover(&env, "rita@example.com").await;
    for revoked in [&attacker, &owner] {
        assert_eq!(
            whoami_refusal(&env.identa, revoked).await,
            SessionRefusal::Revoked
        );
    }
    // The other instance learns it from the session-event log, written in the same
    // transaction.
    env.clock.advance(Duration::seconds(2));
    assert_eq!(
        whoami_refusal(&elsewhere, &attacker).await,
        SessionRefusal::Revoked
    );
    // The session the recovery issued works, and sets the new password.
    env.identa.whoami(&recovered).await.unwrap();
    change_settings(&env, &recovered, new_password("my brand new passphrase"))
        .await
        .unwrap();
    env.identa.whoami(&recovered).await.unwrap();
}

async fn recovery_can_keep_other_sessions(env: TestEnv) {
    let mut config = crate::common::test_config();
    config.flows.after_recovery = OtherSessions::Keep;
    let env = TestEnv::with_config(env.backend, config).await;
    register(&env, "rita@example.com").await;
    let other = api_login(&env, "rita@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    let recovered = recover(&env, "rita@example.com").await;
    env.identa.whoami(&other).await.unwrap();
    env.identa.whoami(&recovered).await.unwrap();
}

/// A code sent to an address the identity no longer has — the user changed it in
/// settings, or an administrator changed the traits — is refused as an invalid code, and
/// nothing changes.
async fn a_recovery_code_dies_with_its_address(env: TestEnv) {
    let reg = register(&env, "rita@example.com").await;
    let token = reg.login.unwrap().token;
    let id = reg.identity.id;
    let sent = start_recovery(&env, "rita@example.com").await;
    let code = code_sent_to(&env, "rita@example.com", TemplateKind::RecoveryCodeValid).await;
    let moved = SettingsSubmission::Profile {
        traits: json!({ "email": "rita.new@example.com" }),
    };
    change_settings(&env, &token, moved).await.unwrap();
    let sessions_before = env.identa.sessions(id).await.unwrap().len();
    assert_eq!(code_refused(&env, sent.id, &code).await, vec![4_060_006]);
    assert_eq!(
        env.identa.sessions(id).await.unwrap().len(),
        sessions_before
    );
    env.identa.whoami(&token).await.unwrap();
    let identity = env.identa.identity(id).await.unwrap();
    assert!(
        identity.verifiable_addresses.iter().all(|a| !a.verified),
        "nothing was verified"
    );

    // An administrator's change of traits voids a code the same way.
    let sent = start_recovery(&env, "rita.new@example.com").await;
    let code = code_sent_to(
        &env,
        "rita.new@example.com",
        TemplateKind::RecoveryCodeValid,
    )
    .await;
    let update = IdentityUpdate {
        traits: Some(json!({ "email": "rita.admin@example.com" })),
        ..IdentityUpdate::default()
    };
    env.identa.update_identity(id, update).await.unwrap();
    assert_eq!(code_refused(&env, sent.id, &code).await, vec![4_060_006]);
    assert_eq!(
        env.identa.sessions(id).await.unwrap().len(),
        sessions_before
    );
}

on_every_backend!(
    recovery_signs_out_every_other_session,
    recovery_can_keep_other_sessions,
    a_recovery_code_dies_with_its_address,
    recovery_by_code_signs_in_and_opens_settings,
    recovery_for_unknown_address_looks_the_same,
    recovery_code_attempts_are_limited,
    recovery_code_expires,
);

on_pooled_backends!(recovery_code_is_accepted_once_under_a_race);
