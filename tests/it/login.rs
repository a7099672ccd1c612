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

/// Signs in through a new API login flow of `identa` with the password method.
async fn flow_login(
    identa: &identa::Identa,
    identifier: &str,
    password: &str,
) -> Result<identa::flow::login::LoggedIn, identa::Error> {
    let req = identa::flow::FlowRequest::api();
    let flow = identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await?;
    identa
        .login_flow()
        .submit(flow.id, password_login(identifier, password), &req)
        .await
}

/// The messages (id and text) a refused login flow shows.
fn shown(err: identa::Error) -> Vec<(u32, String)> {
    let flow = invalid_flow(err);
    let form = flow.ui.messages.iter();
    let nodes = flow.ui.nodes.iter().flat_map(|n| n.messages.iter());
    form.chain(nodes).map(|m| (m.id, m.text.clone())).collect()
}

/// An account none of whose addresses is verified signs in as configured: by default (as
/// Kratos without its `require_verified_address` hook); refused with Kratos's 4000010; or
/// refused exactly as a wrong password (same messages through a flow, same error outside
/// one). Once the address is verified, every setting signs it in. A wrong password is
/// still a wrong password whatever the setting.
async fn unverified_accounts_sign_in_as_configured(env: TestEnv) {
    use identa::flow::UnverifiedSignIn;
    let done = register(&env, "ada@example.com").await;
    assert!(!done.identity.verifiable_addresses[0].verified);
    let engine = |unverified| {
        let mut config = env.identa.config().clone();
        config.flows.login.unverified = unverified;
        env.another_engine(config).build().unwrap()
    };
    let refuse = engine(UnverifiedSignIn::Refuse);
    let disguise = engine(UnverifiedSignIn::RefuseAsWrongCredentials);
    let password = identa::credential::password::Password::new(PASSWORD);
    let wrong = identa::credential::password::Password::new("not the password");

    assert_eq!(
        env.identa.config().flows.login.unverified,
        UnverifiedSignIn::Allow,
        "the default"
    );
    flow_login(&env.identa, "ada@example.com", PASSWORD)
        .await
        .unwrap();

    let refused = shown(
        flow_login(&refuse, "ada@example.com", PASSWORD)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        refused,
        vec![(
            4_000_010,
            "Account not active yet. Did you forget to verify your email address?".to_owned()
        )]
    );
    let err = refuse
        .login("ada@example.com", &password, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddressNotVerified);
    assert_eq!(err.kind().as_str(), "session_verified_address_required");
    let wrong_shown = shown(
        flow_login(&refuse, "ada@example.com", "not the password")
            .await
            .unwrap_err(),
    );
    assert_eq!(wrong_shown[0].0, 4_000_006);

    let disguised = shown(
        flow_login(&disguise, "ada@example.com", PASSWORD)
            .await
            .unwrap_err(),
    );
    let wrong_shown = shown(
        flow_login(&disguise, "ada@example.com", "not the password")
            .await
            .unwrap_err(),
    );
    assert_eq!(disguised, wrong_shown);
    assert_eq!(disguised[0].0, 4_000_006);
    let right = disguise
        .login("ada@example.com", &password, None)
        .await
        .unwrap_err();
    let wrong = disguise
        .login("ada@example.com", &wrong, None)
        .await
        .unwrap_err();
    assert!(crate::common::is_invalid_credentials(&right), "{right:?}");
    assert_eq!(right.to_string(), wrong.to_string());

    // Ada verifies her address with the code registration sent.
    let code = crate::common::code_sent_to(
        &env,
        "ada@example.com",
        identa::courier::TemplateKind::VerificationCodeValid,
    )
    .await;
    let flow = crate::common::verification_flow_of(&done.continue_with);
    crate::common::submit_verification(&env, flow, identa::flow::CodeSubmission::Code(code))
        .await
        .unwrap();
    for engine in [&env.identa, &refuse, &disguise] {
        flow_login(engine, "ada@example.com", PASSWORD)
            .await
            .unwrap();
        engine
            .login("ada@example.com", &password, None)
            .await
            .unwrap();
    }
}

on_every_backend!(
    login_issues_sessions_and_refuses_alike,
    login_with_a_session_needs_refresh,
    a_revocation_during_a_refresh_is_not_undone,
    unverified_accounts_sign_in_as_configured,
);
