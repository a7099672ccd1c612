//! Login flows with a password: sessions issued, failures that look alike, and the
//! refresh of an existing session.

use chrono::Duration;
use identa::ErrorKind;
use identa::flow::login::LoginIntent;
use identa::flow::{ContinueWith, FlowState, FlowType};
use identa::identity::IdentityState;
use serde_json::json;

use crate::common::{
    PASSWORD, TestEnv, api_login, api_login_flow, form_message_ids, invalid_flow, node_value,
    password_login, register, set_identity_state, submit_login, whoami_refusal, with_session,
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
    set_identity_state(&env, grace.id, IdentityState::Inactive).await;
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
    let flow = api_login_flow(&env, &with_session, LoginIntent::Refresh).await;
    assert!(flow.refresh);
    assert_eq!(
        node_value(&flow, "identifier"),
        Some(&json!("linus@example.com"))
    );
    assert_eq!(flow.to_kratos_json()["refresh"], true);
    let before = env.identa.whoami(&token).await.unwrap().session;
    let again = password_login("linus@example.com", PASSWORD);
    let done = submit_login(&env, flow.id, again, &with_session)
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

/// A revocation that lands while a refresh login is being judged (here: from the host's
/// before hook, between the session being read and the refresh being written) wins: the
/// refresh is refused and the session stays revoked, rather than the refresh writing back
/// the copy it read.
async fn a_revocation_during_a_refresh_is_not_undone(env: TestEnv) {
    use identa::store::{SessionStore, StoreError};
    use std::sync::{Arc, Mutex};

    struct RevokeFirst {
        store: identa::store::SeaOrmStore,
        target: Mutex<Option<(uuid::Uuid, uuid::Uuid)>>,
    }
    #[async_trait::async_trait]
    impl identa::hook::Hooks for RevokeFirst {
        async fn before(
            &self,
            _: &identa::hook::BeforeEvent<'_>,
        ) -> Result<(), identa::hook::HookError> {
            let target = *self.target.lock().unwrap();
            if let Some((identity, session)) = target {
                self.store.revoke_session(identity, session).await.unwrap();
            }
            Ok(())
        }
    }
    let hooks = Arc::new(RevokeFirst {
        store: env.store.clone(),
        target: Mutex::new(None),
    });
    let identa = env.engine_with_hooks(hooks.clone());

    let reg = register(&env, "ruth@example.com").await;
    let login = reg.login.unwrap();
    let req = with_session(&login.token);
    let flow = identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::Refresh)
        .await
        .unwrap();
    *hooks.target.lock().unwrap() = Some((login.session.identity.id, login.session.session.id));
    let err = identa
        .login_flow()
        .submit(flow.id, password_login("ruth@example.com", PASSWORD), &req)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            identa::Error::Store(StoreError::Stale { what: "session" })
        ),
        "{err:?}"
    );
    assert!(
        !env.store
            .session(login.session.session.id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    // The revocation came from outside this engine: its cache sees it once its bound has
    // passed.
    env.clock.advance(Duration::seconds(1));
    assert_eq!(
        whoami_refusal(&identa, &login.token).await,
        identa::session::SessionRefusal::Revoked
    );
}

on_every_backend!(
    login_issues_sessions_and_refuses_alike,
    login_with_a_session_needs_refresh,
    a_revocation_during_a_refresh_is_not_undone,
);
