//! What every self-service flow enforces, whatever its kind: the CSRF pair of browser
//! flows, expiry, clear errors for hostile input, allowed `return_to` URLs, and settings
//! flows shown only to their own user.

use chrono::Duration;
use identa::flow::CodeSubmission;
use identa::flow::csrf;
use identa::flow::login::LoginIntent;
use identa::flow::{ContinueWith, FlowRequest, FlowType};
use identa::session::SessionRefusal;
use identa::{Error, ErrorKind};
use serde_json::json;

use crate::common::session_refusal;
use crate::common::{
    PASSWORD, TestEnv, api_login, api_login_flow, api_recovery_flow, api_registration_flow,
    api_settings_flow, form_message_ids, has_account, invalid_flow, node_message_ids, node_str,
    node_value, password_login, password_registration, register, submit_login, submit_recovery,
    submit_registration, with_session,
};
use crate::on_every_backend;

async fn browser_flows_need_the_csrf_pair(env: TestEnv) {
    let cookie = csrf::new_cookie_value();
    let req = FlowRequest::browser(cookie.clone());
    let reg = env.identa.registration_flow();
    let flow = reg.create(FlowType::Browser, &req).await.unwrap();
    let token = node_str(&flow, "csrf_token");
    let submission = || password_registration(json!({ "email": "csrf@example.com" }), PASSWORD);
    // No token.
    let err = reg.submit(flow.id, submission(), &req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CsrfViolation);
    // The token with another browser's cookie.
    let other = FlowRequest::browser(csrf::new_cookie_value()).with_csrf_token(token.clone());
    let err = reg.submit(flow.id, submission(), &other).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Flow(identa::flow::FlowError::Csrf(csrf::CsrfRefusal::Mismatch))
        ),
        "{err:?}"
    );
    // No cookie at all.
    let err = reg
        .submit(
            flow.id,
            submission(),
            &FlowRequest::api().with_csrf_token(token.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Flow(identa::flow::FlowError::Csrf(csrf::CsrfRefusal::NoCookie))
        ),
        "{err:?}"
    );
    // Another browser cannot even read the flow.
    assert_eq!(
        env.identa
            .flow(flow.id, &FlowRequest::browser(csrf::new_cookie_value()))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::CsrfViolation
    );
    assert!(!has_account(&env, "csrf@example.com").await);
    // The right pair passes.
    let ok = req.clone().with_csrf_token(token);
    let done = reg.submit(flow.id, submission(), &ok).await.unwrap();
    assert_eq!(done.identity.traits["email"], "csrf@example.com");
    assert!(
        !done
            .continue_with
            .iter()
            .any(|c| matches!(c, ContinueWith::SetOrySessionToken { .. })),
        "browser flows get a cookie, not a token in the body"
    );
    // A browser flow cannot be created without the cookie.
    assert_eq!(
        reg.create(FlowType::Browser, &FlowRequest::api())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

async fn expired_flows_are_refused_with_a_typed_error(env: TestEnv) {
    let req = FlowRequest::api();
    let sign_up = |email: &str| password_registration(json!({ "email": email }), PASSWORD);
    let sign_in = || password_login("x@example.com", PASSWORD);
    let reg = api_registration_flow(&env).await;
    let login = api_login_flow(&env, &req, LoginIntent::SignIn).await;
    let recovery = api_recovery_flow(&env).await;
    env.clock.advance(Duration::minutes(61));
    let err = submit_registration(&env, reg.id, sign_up("late@example.com"), &req)
        .await
        .unwrap_err();
    match &err {
        Error::Flow(identa::flow::FlowError::Expired { flow_id, kind, .. }) => {
            assert_eq!(*flow_id, reg.id);
            assert_eq!(*kind, identa::flow::FlowKind::Registration);
        }
        other => panic!("expected FlowExpired, got {other:?}"),
    }
    assert_eq!(err.kind().as_str(), "self_service_flow_expired");
    let err = submit_login(&env, login.id, sign_in(), &req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlowExpired);
    let err = submit_recovery(
        &env,
        recovery.id,
        CodeSubmission::Email("x@example.com".into()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlowExpired);
    let message = reg.expired_message(env.clock_now());
    assert_eq!(message.id, 4_040_001);
    assert_eq!(
        message.text,
        "The registration flow expired 1.00 minutes ago, please try again."
    );
    // Unknown flows are their own error.
    let err = submit_login(&env, uuid::Uuid::new_v4(), sign_in(), &req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A login flow id submitted as a registration is refused.
    let fresh_login = api_login_flow(&env, &req, LoginIntent::SignIn).await;
    let err = submit_registration(&env, fresh_login.id, sign_up("x@example.com"), &req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

async fn hostile_input_gets_clear_errors(env: TestEnv) {
    let req = FlowRequest::api();
    // NUL characters and oversized values never reach the database as errors.
    let login = api_login(&env, "nul\0@example.com", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(login.kind(), ErrorKind::ValidationFailed, "{login:?}");
    let long = "x".repeat(100_000);
    let login = api_login(&env, &long, PASSWORD).await.unwrap_err();
    let shown = invalid_flow(login);
    assert_eq!(form_message_ids(&shown), vec![4_000_006]);
    assert!(
        serde_json::to_string(&shown.to_kratos_json())
            .unwrap()
            .len()
            < 20_000,
        "huge input is not echoed"
    );

    let sign_up = |email: &str| password_registration(json!({ "email": email }), PASSWORD);
    let flow = api_registration_flow(&env).await;
    let err = submit_registration(&env, flow.id, sign_up("nul\0@example.com"), &req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValidationFailed, "{err:?}");
    let err = submit_registration(&env, flow.id, sign_up("not-an-email"), &req)
        .await
        .unwrap_err();
    assert_eq!(
        node_message_ids(&invalid_flow(err), "traits.email"),
        vec![4_000_004]
    );

    let recovery = api_recovery_flow(&env).await;
    let step = submit_recovery(
        &env,
        recovery.id,
        CodeSubmission::Email("nul\0@example.com".into()),
    )
    .await;
    let shown = invalid_flow(step.unwrap_err());
    assert_eq!(node_message_ids(&shown, "email"), vec![4_000_004]);
    assert_eq!(node_value(&shown, "email"), None);
    let step = submit_recovery(&env, recovery.id, CodeSubmission::Email(long.clone())).await;
    assert_eq!(
        node_message_ids(&invalid_flow(step.unwrap_err()), "email"),
        vec![4_000_004]
    );
}

async fn return_to_must_be_allowed_and_settings_flows_stay_private(env: TestEnv) {
    let reg = env.identa.registration_flow();
    let ok = |url: &str| FlowRequest::api().with_return_to(url);
    for allowed in [
        "/dashboard",
        "http://127.0.0.1:4433/welcome",
        "http://127.0.0.1:4433",
    ] {
        let flow = reg.create(FlowType::Api, &ok(allowed)).await.unwrap();
        assert_eq!(flow.return_to.as_deref(), Some(allowed));
    }
    for forbidden in [
        "https://evil.example/",
        "//evil.example/x",
        "http://127.0.0.1:4433.evil.example/",
        "/\\evil.example",
    ] {
        let err = reg.create(FlowType::Api, &ok(forbidden)).await.unwrap_err();
        assert!(
            matches!(&err, Error::Flow(identa::flow::FlowError::ReturnToForbidden(url)) if url == forbidden),
            "{forbidden}: {err:?}"
        );
        assert_eq!(err.kind().as_str(), "self_service_flow_return_to_forbidden");
    }
    let mut config = crate::common::test_config();
    config.flows.allowed_return_urls = vec!["https://app.example.com".into()];
    let env2 = TestEnv::with_config(env.backend, config).await;
    let r = env2.identa.registration_flow();
    r.create(FlowType::Api, &ok("https://app.example.com/after"))
        .await
        .unwrap();
    let err = r
        .create(FlowType::Api, &ok("https://app.example.com.evil.example/"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Flow(identa::flow::FlowError::ReturnToForbidden(_))
        ),
        "{err:?}"
    );

    // A settings flow is shown only to its own user.
    let mary = register(&env, "private@example.com").await.login.unwrap();
    let mine = with_session(&mary.token);
    let flow = api_settings_flow(&env, &mine).await;
    assert_eq!(env.identa.flow(flow.id, &mine).await.unwrap().id, flow.id);
    assert_eq!(
        session_refusal(
            env.identa
                .flow(flow.id, &FlowRequest::api())
                .await
                .unwrap_err()
        ),
        SessionRefusal::Unknown
    );
    let eve = register(&env, "nosy@example.com").await.login.unwrap();
    assert_eq!(
        env.identa
            .flow(flow.id, &with_session(&eve.token))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::IdentityMismatch
    );
}

on_every_backend!(
    browser_flows_need_the_csrf_pair,
    expired_flows_are_refused_with_a_typed_error,
    hostile_input_gets_clear_errors,
    return_to_must_be_allowed_and_settings_flows_stay_private,
);
