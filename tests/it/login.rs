//! Login flows with a password: sessions issued, failures that look alike, and the
//! refresh of an existing session.

use chrono::Duration;
use identa::ErrorKind;
use identa::credential::password::Password;
use identa::flow::login::{LoginIntent, LoginSubmission};
use identa::flow::{ContinueWith, FlowState, FlowType};
use serde_json::json;

use crate::common::{
    PASSWORD, TestEnv, api_login, form_message_ids, invalid_flow, node_value, register,
    with_session,
};
use crate::on_every_backend;

async fn login_issues_sessions_and_refuses_alike(env: TestEnv) {
    register(&env, "grace@example.com").await;
    let done = api_login(&env, " Grace@Example.com ", PASSWORD)
        .await
        .unwrap();
    let token = done.token.expect("a new session token");
    assert_eq!(done.flow.state, FlowState::PassedChallenge);
    assert_eq!(
        done.session.session.authentication_methods[0].method,
        "password"
    );
    assert_eq!(done.session.session.aal, identa::identity::Aal::Aal1);
    assert!(
        matches!(&done.continue_with[..], [ContinueWith::SetOrySessionToken { ory_session_token }] if ory_session_token == token.expose())
    );
    env.identa.whoami(&token).await.unwrap();

    let wrong = invalid_flow(
        api_login(&env, "grace@example.com", "not the password")
            .await
            .unwrap_err(),
    );
    let unknown = invalid_flow(
        api_login(&env, "nobody@example.com", PASSWORD)
            .await
            .unwrap_err(),
    );
    assert_eq!(form_message_ids(&wrong), vec![4_000_006]);
    assert_eq!(wrong.ui.messages, unknown.ui.messages);
    assert_eq!(
        node_value(&wrong, "identifier"),
        Some(&json!("grace@example.com"))
    );
    assert_eq!(node_value(&wrong, "password"), None);

    // A disabled identity cannot sign in.
    let grace = env
        .identa
        .identity_by_identifier("grace@example.com")
        .await
        .unwrap()
        .unwrap();
    env.identa
        .update_identity(
            grace.id,
            identa::identity::IdentityUpdate {
                state: Some(identa::identity::IdentityState::Inactive),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let disabled = invalid_flow(
        api_login(&env, "grace@example.com", PASSWORD)
            .await
            .unwrap_err(),
    );
    assert_eq!(form_message_ids(&disabled), vec![4_010_011]);
}

async fn login_with_a_session_needs_refresh(env: TestEnv) {
    let reg = register(&env, "linus@example.com").await;
    let token = reg.login.unwrap().token;
    let with_session = with_session(&token);
    let err = env
        .identa
        .login_flow()
        .create(FlowType::Api, &with_session, LoginIntent::SignIn)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionAlreadyAvailable);

    env.clock.advance(Duration::minutes(30));
    let flow = env
        .identa
        .login_flow()
        .create(FlowType::Api, &with_session, LoginIntent::Refresh)
        .await
        .unwrap();
    assert!(flow.refresh);
    assert_eq!(
        node_value(&flow, "identifier"),
        Some(&json!("linus@example.com"))
    );
    assert_eq!(flow.to_kratos_json()["refresh"], true);
    let before = env.identa.whoami(&token).await.unwrap().session;
    let done = env
        .identa
        .login_flow()
        .submit(
            flow.id,
            LoginSubmission::Password {
                identifier: "linus@example.com".into(),
                password: Password::new(PASSWORD),
            },
            &with_session,
        )
        .await
        .unwrap();
    assert!(
        done.token.is_none(),
        "a refresh keeps the session and its token"
    );
    assert_eq!(done.session.session.id, before.id);
    let after = env.identa.whoami(&token).await.unwrap().session;
    assert_eq!(
        after.authenticated_at,
        before.authenticated_at + Duration::minutes(30)
    );
    assert_eq!(after.authentication_methods.len(), 2);
}

on_every_backend!(
    login_issues_sessions_and_refuses_alike,
    login_with_a_session_needs_refresh,
);
