//! Settings flows: profile and password changes, the recent sign-in sensitive changes
//! need, what a password change does to other sessions, and the second factor a
//! submission needs once the identity has one.

use chrono::Duration;
use identa::courier::TemplateKind;
use identa::flow::login::{LoginIntent, LoginSubmission};
use identa::flow::settings::SettingsSubmission;
use identa::flow::{ContinueWith, FlowRequest, FlowState, FlowType};
use identa::identity::{Aal, CredentialType};
use identa::session::SessionRefusal;
use identa::{Error, ErrorKind};
use serde_json::json;
use uuid::Uuid;

use crate::common::{
    PASSWORD, TestEnv, api_login, api_login_flow, api_settings_flow, change_settings, code_sent_to,
    enrol_backup_codes, enrol_totp, form_message_ids, identa_totp_code, invalid_flow, new_password,
    node_message_ids, node_value, password_login, register, register_with_password, session_aal,
    sign_in, step_up, submit_login, submit_settings, with_session,
};
use crate::common::{session_refusal, whoami_refusal};
use crate::on_every_backend;

async fn settings_profile_and_password(env: TestEnv) {
    let reg = register(&env, "mary@example.com").await;
    let token = reg.login.unwrap().token;
    let req = with_session(&token);
    let settings = env.identa.settings_flow();
    assert_eq!(
        session_refusal(
            settings
                .create(FlowType::Api, &FlowRequest::api())
                .await
                .unwrap_err()
        ),
        SessionRefusal::Unknown
    );
    let flow = settings.create(FlowType::Api, &req).await.unwrap();
    assert_eq!(flow.state, FlowState::ShowForm);
    assert_eq!(
        node_value(&flow, "traits.email"),
        Some(&json!("mary@example.com"))
    );
    assert_eq!(
        flow.ui.node("traits.email").unwrap().group,
        identa::flow::ui::NodeGroup::Profile
    );

    // A name change is not sensitive: fine even 20 minutes after sign-in.
    env.clock.advance(Duration::minutes(20));
    let saved = settings
        .submit(flow.id, rename("mary@example.com", "Mary"), &req)
        .await
        .unwrap();
    assert_eq!(saved.flow.state, FlowState::Success);
    assert_eq!(form_message_ids(&saved.flow), vec![1_050_001]);
    assert_eq!(saved.identity.traits["name"]["first"], "Mary");
    assert_eq!(
        env.identa.whoami(&token).await.unwrap().identity.traits["name"]["first"],
        "Mary"
    );

    // An email change and a password change are sensitive.
    let new_address = || SettingsSubmission::Profile {
        traits: json!({ "email": "mary.new@example.com" }),
    };
    for sensitive in [new_address(), new_password("another fine passphrase")] {
        let err = settings.submit(flow.id, sensitive, &req).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SessionRefreshRequired);
    }
    assert_eq!(
        env.identa.whoami(&token).await.unwrap().identity.traits["email"],
        "mary@example.com"
    );

    // Re-authenticate, then both go through.
    let refresh = api_login_flow(&env, &req, LoginIntent::Refresh).await;
    let again = password_login("mary@example.com", PASSWORD);
    submit_login(&env, refresh.id, again, &req).await.unwrap();
    let saved = settings.submit(flow.id, new_address(), &req).await.unwrap();
    let address = &saved.identity.verifiable_addresses[0];
    assert_eq!(address.value, "mary.new@example.com");
    assert!(!address.verified, "a new address starts unverified");
    assert!(
        saved
            .continue_with
            .iter()
            .any(|c| matches!(c, ContinueWith::ShowVerificationUi { .. }))
    );
    code_sent_to(
        &env,
        "mary.new@example.com",
        TemplateKind::VerificationCodeValid,
    )
    .await;
    assert!(
        api_login(&env, "mary.new@example.com", PASSWORD)
            .await
            .is_ok()
    );

    // The same password as before, or a too short one: refused.
    for (refused, message) in [(PASSWORD, 4_000_039), ("short", 4_000_032)] {
        let err = settings
            .submit(flow.id, new_password(refused), &req)
            .await
            .unwrap_err();
        assert_eq!(
            node_message_ids(&invalid_flow(err), "password"),
            vec![message],
            "{refused}"
        );
    }
    let changed = new_password("another fine passphrase");
    settings.submit(flow.id, changed, &req).await.unwrap();
    assert_eq!(
        form_message_ids(&invalid_flow(
            api_login(&env, "mary.new@example.com", PASSWORD)
                .await
                .unwrap_err()
        )),
        vec![4_000_006]
    );
    api_login(&env, "mary.new@example.com", "another fine passphrase")
        .await
        .unwrap();
    // The session that made the change stays signed in.
    env.identa.whoami(&token).await.unwrap();

    // Someone else's session cannot submit this flow.
    let other = register(&env, "eve@example.com").await.login.unwrap().token;
    let eve = FlowRequest::api().with_session(other);
    let theirs = SettingsSubmission::Profile {
        traits: json!({ "email": "eve2@example.com" }),
    };
    let err = settings.submit(flow.id, theirs, &eve).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IdentityMismatch);
}

async fn password_change_signs_out_every_other_session(env: TestEnv) {
    let current = register(&env, "sid@example.com").await.login.unwrap().token;
    let attacker = api_login(&env, "sid@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    change_settings(&env, &current, new_password("a different passphrase"))
        .await
        .unwrap();
    env.identa.whoami(&current).await.unwrap();
    assert_eq!(
        whoami_refusal(&env.identa, &attacker).await,
        SessionRefusal::Revoked
    );
}

async fn password_change_can_keep_other_sessions(env: TestEnv) {
    let mut config = crate::common::test_config();
    config.flows.settings.after_password_change = identa::flow::OtherSessions::Keep;
    let env = TestEnv::with_config(env.backend, config).await;
    let current = register(&env, "sid@example.com").await.login.unwrap().token;
    let elsewhere = api_login(&env, "sid@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    change_settings(&env, &current, new_password("a different passphrase"))
        .await
        .unwrap();
    env.identa.whoami(&current).await.unwrap();
    env.identa.whoami(&elsewhere).await.unwrap();
}

on_every_backend!(
    settings_profile_and_password,
    password_change_signs_out_every_other_session,
    password_change_can_keep_other_sessions,
);

/// A profile change that keeps the address (`email`) and sets the first name: not
/// sensitive, so only the assurance level can refuse it.
fn rename(email: &str, first: &str) -> SettingsSubmission {
    SettingsSubmission::Profile {
        traits: json!({ "email": email, "name": { "first": first } }),
    }
}

/// Submits to settings flow `flow`, as the `aal1` session `weak` presents, what a thief
/// holding such a session would try: a rename, a new password and removing the second
/// factor (`remove_factor`). Each is refused (`Aal2Required`).
async fn aal1_changes_are_refused(
    env: &TestEnv,
    flow: Uuid,
    weak: &FlowRequest,
    email: &str,
    remove_factor: SettingsSubmission,
) {
    for submission in [
        rename(email, "Mallory"),
        new_password("a passphrase the thief picked"),
        remove_factor,
    ] {
        let err = submit_settings(env, flow, submission, weak)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Flow(identa::flow::FlowError::Aal2Required)),
            "{err:?}"
        );
    }
}

/// A settings flow an `aal2` session made is no pass for an `aal1` session of the same
/// identity: submitting it is refused (`Aal2Required`) and changes nothing; the `aal2`
/// session may submit it.
async fn settings_refuse_an_aal1_submission_to_a_flow_an_aal2_session_made(env: TestEnv) {
    let email = "strong@example.com";
    let (identity, token) = register_with_password(&env, email).await;
    let codes = enrol_backup_codes(&env, &token).await;
    let code = codes[0].clone();
    let stepped = step_up(&env, &token, LoginSubmission::LookupSecret { code })
        .await
        .unwrap();
    assert_eq!(stepped.session.session.aal, Aal::Aal2);
    let strong = with_session(&token);
    let flow = api_settings_flow(&env, &strong).await;

    let weak_token = sign_in(&env, email).await.token;
    assert_eq!(session_aal(&env, &weak_token).await, Aal::Aal1);
    let weak = with_session(&weak_token);
    let remove_factor = SettingsSubmission::LookupDisable;
    aal1_changes_are_refused(&env, flow.id, &weak, email, remove_factor).await;
    let unchanged = env.identa.identity(identity.id).await.unwrap();
    assert_eq!(unchanged.traits, json!({ "email": email }));
    assert!(unchanged.credential(CredentialType::LookupSecret).is_some());
    sign_in(&env, email).await; // with the old password

    let saved = submit_settings(&env, flow.id, rename(email, "Ada"), &strong)
        .await
        .unwrap();
    assert_eq!(saved.identity.traits["name"]["first"], "Ada");
}

/// A settings flow made before the identity had a second factor: once it has one, an
/// `aal1` session, even the one that made the flow, cannot submit it (the level is checked
/// at submission, not only when the flow was made). Stepped up, the same session can.
async fn settings_refuse_an_aal1_submission_once_a_second_factor_is_added(env: TestEnv) {
    let email = "later@example.com";
    let (identity, token) = register_with_password(&env, email).await;
    let req = with_session(&token);
    let early = api_settings_flow(&env, &req).await;
    let secret = enrol_totp(&env, &token).await;
    assert_eq!(
        session_aal(&env, &token).await,
        Aal::Aal1,
        "enrolling does not upgrade the session"
    );
    let remove_factor = SettingsSubmission::TotpUnlink;
    aal1_changes_are_refused(&env, early.id, &req, email, remove_factor).await;
    let unchanged = env.identa.identity(identity.id).await.unwrap();
    assert_eq!(unchanged.traits, json!({ "email": email }));
    assert!(unchanged.credential(CredentialType::Totp).is_some());

    // The code is identa's own: the point here is the flow, not TOTP.
    env.clock.advance(Duration::seconds(30));
    let code = identa_totp_code(&env, &secret);
    step_up(&env, &token, LoginSubmission::Totp { code })
        .await
        .unwrap();
    let saved = submit_settings(&env, early.id, rename(email, "Ada"), &req)
        .await
        .unwrap();
    assert_eq!(saved.identity.traits["name"]["first"], "Ada");
}

on_every_backend!(
    settings_refuse_an_aal1_submission_to_a_flow_an_aal2_session_made,
    settings_refuse_an_aal1_submission_once_a_second_factor_is_added,
);
