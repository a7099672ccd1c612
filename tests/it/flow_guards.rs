//! What every self-service flow enforces, whatever its kind: the CSRF pair of browser
//! flows, expiry, clear errors for hostile input, allowed `return_to` URLs, and settings
//! flows shown only to their own user.

use chrono::Duration;
use identa::credential::password::Password;
use identa::flow::CodeSubmission;
use identa::flow::csrf;
use identa::flow::login::{LoginIntent, LoginSubmission};
use identa::flow::registration::RegistrationSubmission;
use identa::flow::{ContinueWith, FlowRequest, FlowType};
use identa::session::SessionRefusal;
use identa::{Error, ErrorKind};
use serde_json::{Value, json};

use crate::common::session_refusal;
use crate::common::{
    PASSWORD, TestEnv, api_login, api_registration_flow, form_message_ids, invalid_flow,
    node_message_ids, node_value, register,
};
use crate::on_every_backend;

async fn browser_flows_need_the_csrf_pair(env: TestEnv) {
    let cookie = csrf::new_cookie_value();
    let req = FlowRequest::browser(cookie.clone());
    let reg = env.identa.registration_flow();
    let flow = reg.create(FlowType::Browser, &req).await.unwrap();
    let token = node_value(&flow, "csrf_token")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    let submission = || RegistrationSubmission::Password {
        traits: json!({ "email": "csrf@example.com" }),
        password: Password::new(PASSWORD),
    };
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
    assert!(
        env.identa
            .identity_by_identifier("csrf@example.com")
            .await
            .unwrap()
            .is_none()
    );
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
    let reg = api_registration_flow(&env).await;
    let login = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await
        .unwrap();
    let recovery = env
        .identa
        .recovery_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    env.clock.advance(Duration::minutes(61));
    let err = env
        .identa
        .registration_flow()
        .submit(
            reg.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "late@example.com" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
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
    let err = env
        .identa
        .login_flow()
        .submit(
            login.id,
            LoginSubmission::Password {
                identifier: "x@example.com".into(),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlowExpired);
    let err = env
        .identa
        .recovery_flow()
        .submit(
            recovery.id,
            CodeSubmission::Email("x@example.com".into()),
            &req,
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
    let err = env
        .identa
        .login_flow()
        .submit(
            uuid::Uuid::new_v4(),
            LoginSubmission::Password {
                identifier: "x@example.com".into(),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A login flow id submitted as a registration is refused.
    let fresh_login = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await
        .unwrap();
    let err = env
        .identa
        .registration_flow()
        .submit(
            fresh_login.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "x@example.com" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
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

    let reg = env.identa.registration_flow();
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    let err = reg
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "nul\0@example.com" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValidationFailed, "{err:?}");
    let err = reg
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "not-an-email" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(
        node_message_ids(&invalid_flow(err), "traits.email"),
        vec![4_000_004]
    );

    let recovery = env
        .identa
        .recovery_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let step = env
        .identa
        .recovery_flow()
        .submit(
            recovery.id,
            CodeSubmission::Email("nul\0@example.com".into()),
            &req,
        )
        .await;
    let shown = invalid_flow(step.unwrap_err());
    assert_eq!(node_message_ids(&shown, "email"), vec![4_000_004]);
    assert_eq!(node_value(&shown, "email"), None);
    let step = env
        .identa
        .recovery_flow()
        .submit(recovery.id, CodeSubmission::Email(long.clone()), &req)
        .await;
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
    let mary = register(&env, "private@example.com")
        .await
        .login
        .unwrap()
        .token;
    let mine = FlowRequest::api().with_session(mary);
    let flow = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &mine)
        .await
        .unwrap();
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
    let eve = register(&env, "nosy@example.com")
        .await
        .login
        .unwrap()
        .token;
    assert_eq!(
        env.identa
            .flow(flow.id, &FlowRequest::api().with_session(eve))
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
