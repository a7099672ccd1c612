//! Self-service flows end to end at the library level: registration, login, logout,
//! settings, recovery, verification, CSRF, expiry and hooks, on every backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use identa::courier::TemplateKind;
use identa::flow::csrf;
use identa::flow::login::{LoginIntent, LoginSubmission};
use identa::flow::recovery::{RecoveryStep, RecoverySubmission};
use identa::flow::registration::RegistrationSubmission;
use identa::flow::settings::SettingsSubmission;
use identa::flow::verification::{VerificationStep, VerificationSubmission};
use identa::flow::{ContinueWith, Flow, FlowRequest, FlowState, FlowType, UiText};
use identa::{Error, ErrorKind, Password};
use serde_json::{Value, json};

use crate::common::{
    PASSWORD, TestEnv, api_login, api_registration_flow, code_sent_to, form_message_ids,
    invalid_flow, mail_to, node_message_ids, node_value, register, with_session,
};
use crate::on_every_backend;

// ---- registration ---------------------------------------------------------------------

async fn registration_creates_identity_session_and_verification(env: TestEnv) {
    let req = FlowRequest::api();
    let flow = api_registration_flow(&env).await;
    assert_eq!(flow.state, FlowState::ChooseMethod);
    let names: Vec<&str> = flow.ui.nodes.iter().filter_map(|n| n.name()).collect();
    assert!(names.contains(&"traits.email"), "{names:?}");
    assert!(names.contains(&"traits.name.first"), "{names:?}");
    assert!(names.contains(&"password"));
    assert!(
        !names.contains(&"csrf_token"),
        "API flows carry no CSRF token"
    );
    let json = flow.to_kratos_json();
    assert_eq!(json["type"], "api");
    assert_eq!(json["ui"]["method"], "POST");
    assert!(
        json["ui"]["action"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/self-service/registration?flow={}", flow.id))
    );
    assert!(json.get("internal").is_none());
    let email_node = json["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "traits.email")
        .unwrap();
    assert_eq!(email_node["attributes"]["type"], "email");
    assert_eq!(email_node["attributes"]["required"], true);
    assert_eq!(email_node["attributes"]["node_type"], "input");
    assert_eq!(email_node["meta"]["label"]["text"], "E-Mail");

    let done = env
        .identa
        .registration_flow()
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "Ada@Example.com" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap();
    assert_eq!(done.flow.state, FlowState::PassedChallenge);
    assert_eq!(done.identity.traits["email"], "Ada@Example.com");
    let login = done.login.expect("a session after registration");
    let me = env.identa.whoami(&login.token).await.unwrap();
    assert_eq!(me.identity.id, done.identity.id);
    assert!(matches!(
        done.continue_with.first(),
        Some(ContinueWith::SetOrySessionToken { ory_session_token }) if ory_session_token == login.token.expose()
    ));
    let verification_flow = done
        .continue_with
        .iter()
        .find_map(|c| match c {
            ContinueWith::ShowVerificationUi { flow } => Some(flow.id),
            _ => None,
        })
        .expect("a verification flow for the new address");
    let stored = env.identa.flow(verification_flow, &req).await.unwrap();
    assert_eq!(stored.state, FlowState::SentEmail);
    // The token never rests in the stored flow.
    let stored_registration = env.identa.flow(flow.id, &req).await.unwrap();
    assert!(
        !serde_json::to_string(&stored_registration.to_kratos_json())
            .unwrap()
            .contains(login.token.expose())
    );
    // The verification email was queued in the same commit.
    let code = code_sent_to(&env, "ada@example.com", TemplateKind::VerificationCodeValid).await;
    assert_eq!(code.len(), 6);
    // A second submission of the finished flow is refused with a typed error.
    let again = env
        .identa
        .registration_flow()
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "other@example.com" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::FlowState);
}

async fn registration_errors_land_on_their_nodes(env: TestEnv) {
    let req = FlowRequest::api();
    let reg = env.identa.registration_flow();
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    // Missing email.
    let err = reg
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "name": { "first": "Ada" } }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValidationFailed);
    let shown = invalid_flow(err);
    assert_eq!(node_message_ids(&shown, "traits.email"), vec![4_000_002]);
    assert_eq!(node_value(&shown, "traits.name.first"), Some(&json!("Ada")));
    assert_eq!(
        node_value(&shown, "password"),
        None,
        "a password never comes back"
    );
    // The flow was saved with its messages: fetching it shows them.
    let fetched = env.identa.flow(flow.id, &req).await.unwrap();
    assert_eq!(node_message_ids(&fetched, "traits.email"), vec![4_000_002]);

    // Too-short password; the earlier message is gone, the typed email stays.
    let shown = invalid_flow(
        reg.submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "ada@example.com" }),
                password: Password::new("short"),
            },
            &req,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "password"), vec![4_000_032]);
    assert!(node_message_ids(&shown, "traits.email").is_empty());
    assert_eq!(
        node_value(&shown, "traits.email"),
        Some(&json!("ada@example.com"))
    );
    assert_eq!(node_value(&shown, "password"), None);
    let text = &shown.ui.node("password").unwrap().messages[0].text;
    assert_eq!(
        text,
        "The password must be at least 8 characters long, but got 5."
    );

    // Password too similar to the email.
    let shown = invalid_flow(
        reg.submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "ada.lovelace@example.com" }),
                password: Password::new("ada.lovelace@example.com"),
            },
            &req,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "password"), vec![4_000_031]);
    assert!(
        env.identa
            .identity_by_identifier("ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(mail_to(&env, "ada@example.com").await.is_empty());

    // Duplicate account.
    register(&env, "taken@example.com").await;
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    let shown = invalid_flow(
        reg.submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "TAKEN@example.com" }),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(form_message_ids(&shown), vec![4_000_007]);
    assert_eq!(shown.state, FlowState::ChooseMethod);
    // Exactly one verification email for the taken address: the failed commit queued none.
    assert_eq!(mail_to(&env, "taken@example.com").await.len(), 1);
}

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
        matches!(err, Error::Csrf(csrf::CsrfRefusal::Mismatch)),
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
        matches!(err, Error::Csrf(csrf::CsrfRefusal::NoCookie)),
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
        Error::FlowExpired { flow_id, kind, .. } => {
            assert_eq!(*flow_id, reg.id);
            assert_eq!(*kind, identa::FlowKind::Registration);
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
            RecoverySubmission::Email("x@example.com".into()),
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

// ---- login and logout -----------------------------------------------------------------

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
    assert_eq!(done.session.session.aal, identa::Aal::Aal1);
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
            identa::IdentityUpdate {
                state: Some(identa::IdentityState::Inactive),
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

async fn logout_by_url_and_by_token(env: TestEnv) {
    let reg = register(&env, "logout@example.com").await;
    let token = reg.login.unwrap().token;
    let url = env.identa.logout_url(&token).await.unwrap();
    assert!(
        url.logout_url
            .ends_with(&format!("/self-service/logout?token={}", url.logout_token))
    );
    // Another session's logout token does not sign this one out.
    let other = api_login(&env, "logout@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    let other_url = env.identa.logout_url(&other).await.unwrap();
    assert_ne!(other_url.logout_token, url.logout_token);
    let err = env
        .identa
        .logout_with_token(&token, &other_url.logout_token)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    env.identa.whoami(&token).await.unwrap();
    env.identa
        .logout_with_token(&token, &url.logout_token)
        .await
        .unwrap();
    assert_eq!(
        env.identa.whoami(&token).await.unwrap_err().kind(),
        ErrorKind::SessionInactive
    );
    // API logout by session token.
    env.identa.logout(&other).await.unwrap();
    assert_eq!(
        env.identa.whoami(&other).await.unwrap_err().kind(),
        ErrorKind::SessionInactive
    );
}

// ---- settings -------------------------------------------------------------------------

async fn settings_profile_and_password(env: TestEnv) {
    let reg = register(&env, "mary@example.com").await;
    let token = reg.login.unwrap().token;
    let req = with_session(&token);
    let settings = env.identa.settings_flow();
    assert_eq!(
        settings
            .create(FlowType::Api, &FlowRequest::api())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SessionInactive
    );
    let flow = settings.create(FlowType::Api, &req).await.unwrap();
    assert_eq!(flow.state, FlowState::ShowForm);
    assert_eq!(
        node_value(&flow, "traits.email"),
        Some(&json!("mary@example.com"))
    );
    assert_eq!(
        flow.ui.node("traits.email").unwrap().group,
        identa::flow::NodeGroup::Profile
    );

    // A name change is not sensitive: fine even 20 minutes after sign-in.
    env.clock.advance(Duration::minutes(20));
    let saved = settings
        .submit(
            flow.id,
            SettingsSubmission::Profile {
                traits: json!({ "email": "mary@example.com", "name": { "first": "Mary" } }),
            },
            &req,
        )
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
    let err = settings
        .submit(
            flow.id,
            SettingsSubmission::Profile {
                traits: json!({ "email": "mary.new@example.com" }),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionRefreshRequired);
    let err = settings
        .submit(
            flow.id,
            SettingsSubmission::Password {
                password: Password::new("another fine passphrase"),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionRefreshRequired);
    assert_eq!(
        env.identa.whoami(&token).await.unwrap().identity.traits["email"],
        "mary@example.com"
    );

    // Re-authenticate, then both go through.
    let refresh = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::Refresh)
        .await
        .unwrap();
    env.identa
        .login_flow()
        .submit(
            refresh.id,
            LoginSubmission::Password {
                identifier: "mary@example.com".into(),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap();
    let saved = settings
        .submit(
            flow.id,
            SettingsSubmission::Profile {
                traits: json!({ "email": "mary.new@example.com" }),
            },
            &req,
        )
        .await
        .unwrap();
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

    // Same password as before: refused.
    let shown = invalid_flow(
        settings
            .submit(
                flow.id,
                SettingsSubmission::Password {
                    password: Password::new(PASSWORD),
                },
                &req,
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "password"), vec![4_000_039]);
    let shown = invalid_flow(
        settings
            .submit(
                flow.id,
                SettingsSubmission::Password {
                    password: Password::new("short"),
                },
                &req,
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "password"), vec![4_000_032]);
    settings
        .submit(
            flow.id,
            SettingsSubmission::Password {
                password: Password::new("another fine passphrase"),
            },
            &req,
        )
        .await
        .unwrap();
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
    // By default other sessions stay signed in.
    env.identa.whoami(&token).await.unwrap();

    // Someone else's session cannot submit this flow.
    let other = register(&env, "eve@example.com").await.login.unwrap().token;
    let eve = FlowRequest::api().with_session(other);
    let err = settings
        .submit(
            flow.id,
            SettingsSubmission::Profile {
                traits: json!({ "email": "eve2@example.com" }),
            },
            &eve,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IdentityMismatch);
}

async fn password_change_can_revoke_other_sessions(env: TestEnv) {
    let mut config = crate::common::test_config();
    config.flows.settings.after_password_change = identa::config::OtherSessions::Revoke;
    let env = TestEnv::with_config(env.backend, config).await.unwrap();
    let current = register(&env, "sid@example.com").await.login.unwrap().token;
    let elsewhere = api_login(&env, "sid@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    let req = with_session(&current);
    let flow = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    env.identa
        .settings_flow()
        .submit(
            flow.id,
            SettingsSubmission::Password {
                password: Password::new("a different passphrase"),
            },
            &req,
        )
        .await
        .unwrap();
    env.identa.whoami(&current).await.unwrap();
    assert_eq!(
        env.identa.whoami(&elsewhere).await.unwrap_err().kind(),
        ErrorKind::SessionInactive
    );
}

// ---- recovery -------------------------------------------------------------------------

async fn start_recovery(env: &TestEnv, address: &str) -> Flow {
    let req = FlowRequest::api();
    let flow = env
        .identa
        .recovery_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    match env
        .identa
        .recovery_flow()
        .submit(flow.id, RecoverySubmission::Email(address.into()), &req)
        .await
        .unwrap()
    {
        RecoveryStep::CodeSent(flow) => *flow,
        other => panic!("expected CodeSent, got {other:?}"),
    }
}

async fn recovery_by_code_signs_in_and_opens_settings(env: TestEnv) {
    register(&env, "rita@example.com").await;
    let req = FlowRequest::api();
    let sent = start_recovery(&env, "Rita@Example.com").await;
    assert_eq!(sent.state, FlowState::SentEmail);
    assert_eq!(form_message_ids(&sent), vec![1_060_003]);
    assert!(sent.ui.node("code").is_some());
    let code = code_sent_to(&env, "rita@example.com", TemplateKind::RecoveryCodeValid).await;

    // A wrong code first.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let shown = invalid_flow(
        env.identa
            .recovery_flow()
            .submit(sent.id, RecoverySubmission::Code(wrong.into()), &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "code"), vec![4_060_006]);

    let step = env
        .identa
        .recovery_flow()
        .submit(sent.id, RecoverySubmission::Code(code.clone()), &req)
        .await
        .unwrap();
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
    let settings_req = FlowRequest::api().with_session(done.token);
    env.identa
        .settings_flow()
        .submit(
            done.settings_flow.id,
            SettingsSubmission::Password {
                password: Password::new("my brand new passphrase"),
            },
            &settings_req,
        )
        .await
        .unwrap();
    api_login(&env, "rita@example.com", "my brand new passphrase")
        .await
        .unwrap();
    // The used flow refuses more codes.
    let again = invalid_flow(
        env.identa
            .recovery_flow()
            .submit(sent.id, RecoverySubmission::Code(code), &req)
            .await
            .unwrap_err(),
    );
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
    let shown = invalid_flow(
        env.identa
            .recovery_flow()
            .submit(
                unknown.id,
                RecoverySubmission::Code(code),
                &FlowRequest::api(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "code"), vec![4_060_006]);

    // With notification on, the unknown address gets an "account not found" email.
    let mut config = crate::common::test_config();
    config.flows.recovery.unknown_recipients = identa::config::UnknownRecipients::Notify;
    let env = TestEnv::with_config(env.backend, config).await.unwrap();
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
    let req = FlowRequest::api();
    for _ in 0..5 {
        let shown = invalid_flow(
            env.identa
                .recovery_flow()
                .submit(sent.id, RecoverySubmission::Code(wrong.into()), &req)
                .await
                .unwrap_err(),
        );
        assert_eq!(node_message_ids(&shown, "code"), vec![4_060_006]);
    }
    let shown = invalid_flow(
        env.identa
            .recovery_flow()
            .submit(sent.id, RecoverySubmission::Code(code.clone()), &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        shown.ui.messages[0].text,
        "The request was submitted too often. Please request another code."
    );
    assert_eq!(shown.ui.messages[0].id, 4_000_001);
    // Asking for a new code on the same flow does not buy more attempts.
    env.identa
        .recovery_flow()
        .submit(
            sent.id,
            RecoverySubmission::Email("tries@example.com".into()),
            &req,
        )
        .await
        .unwrap();
    let fresh = code_sent_to(&env, "tries@example.com", TemplateKind::RecoveryCodeValid).await;
    let err = env
        .identa
        .recovery_flow()
        .submit(sent.id, RecoverySubmission::Code(fresh), &req)
        .await
        .unwrap_err();
    assert_eq!(form_message_ids(&invalid_flow(err)), vec![4_000_001]);
}

async fn recovery_code_expires(env: TestEnv) {
    register(&env, "slow@example.com").await;
    let sent = start_recovery(&env, "slow@example.com").await;
    let code = code_sent_to(&env, "slow@example.com", TemplateKind::RecoveryCodeValid).await;
    env.clock.advance(Duration::minutes(16));
    let shown = invalid_flow(
        env.identa
            .recovery_flow()
            .submit(sent.id, RecoverySubmission::Code(code), &FlowRequest::api())
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "code"), vec![4_060_006]);
}

async fn recovery_code_raced_by_two_tasks_succeeds_at_most_once(env: TestEnv) {
    register(&env, "race@example.com").await;
    let sent = start_recovery(&env, "race@example.com").await;
    let code = code_sent_to(&env, "race@example.com", TemplateKind::RecoveryCodeValid).await;
    let req = FlowRequest::api();
    let recovery = env.identa.recovery_flow();
    let (a, b) = tokio::join!(
        recovery.submit(sent.id, RecoverySubmission::Code(code.clone()), &req),
        recovery.submit(sent.id, RecoverySubmission::Code(code.clone()), &req),
    );
    let successes = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(RecoveryStep::Recovered(_))))
        .count();
    assert_eq!(successes, 1, "{a:?} / {b:?}");
    let identity = env
        .identa
        .identity_by_identifier("race@example.com")
        .await
        .unwrap()
        .unwrap();
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
    assert_eq!(recovery_sessions, 1);
}

// ---- verification ---------------------------------------------------------------------

async fn verification_marks_the_address_verified(env: TestEnv) {
    let reg = register(&env, "vera@example.com").await;
    let flow_id = reg
        .continue_with
        .iter()
        .find_map(|c| match c {
            ContinueWith::ShowVerificationUi { flow } => Some(flow.id),
            _ => None,
        })
        .unwrap();
    let code = code_sent_to(
        &env,
        "vera@example.com",
        TemplateKind::VerificationCodeValid,
    )
    .await;
    let req = FlowRequest::api();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let shown = invalid_flow(
        env.identa
            .verification_flow()
            .submit(flow_id, VerificationSubmission::Code(wrong.into()), &req)
            .await
            .unwrap_err(),
    );
    assert_eq!(node_message_ids(&shown, "code"), vec![4_070_006]);
    let step = env
        .identa
        .verification_flow()
        .submit(flow_id, VerificationSubmission::Code(code), &req)
        .await
        .unwrap();
    let VerificationStep::Verified { flow, identity } = step else {
        panic!("expected Verified")
    };
    assert_eq!(flow.state, FlowState::PassedChallenge);
    assert_eq!(form_message_ids(&flow), vec![1_080_002]);
    let address = &identity.verifiable_addresses[0];
    assert!(address.verified);
    assert_eq!(address.status.as_str(), "completed");
    assert_eq!(address.verified_at, Some(env.clock_now()));
    let stored = env.identa.identity(identity.id).await.unwrap();
    assert!(stored.verifiable_addresses[0].verified);

    // A verification flow started by the user: unknown addresses look like known ones.
    let start = env
        .identa
        .verification_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let step = env
        .identa
        .verification_flow()
        .submit(
            start.id,
            VerificationSubmission::Email("ghost@example.com".into()),
            &req,
        )
        .await
        .unwrap();
    let VerificationStep::CodeSent(flow) = step else {
        panic!("expected CodeSent")
    };
    assert_eq!(form_message_ids(&flow), vec![1_080_003]);
    assert!(mail_to(&env, "ghost@example.com").await.is_empty());
    // A code in choose_method is a typed state error.
    let fresh = env
        .identa
        .verification_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let err = env
        .identa
        .verification_flow()
        .submit(
            fresh.id,
            VerificationSubmission::Code("123456".into()),
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FlowState);
}

// ---- hooks ----------------------------------------------------------------------------

#[derive(Default)]
struct HostHooks {
    after_logins: AtomicUsize,
}

#[async_trait::async_trait]
impl identa::hook::Hooks for HostHooks {
    async fn before(
        &self,
        event: &identa::hook::BeforeEvent<'_>,
    ) -> Result<(), identa::hook::HookError> {
        if let identa::hook::BeforeEvent::Registration { traits, .. } = event
            && traits["email"]
                .as_str()
                .is_some_and(|e| e.ends_with("@blocked.example"))
        {
            return Err(identa::hook::HookError::refuse_field(
                "traits.email",
                "This domain may not sign up.",
            ));
        }
        Ok(())
    }

    async fn after(
        &self,
        event: &identa::hook::AfterEvent<'_>,
        tx: &identa::hook::Transaction<'_>,
    ) -> Result<(), identa::hook::HookError> {
        use identa::sea_orm::{ConnectionTrait, Statement};
        match event {
            identa::hook::AfterEvent::Registration { identity, .. } => {
                if identity.traits["email"] == "fails@example.com" {
                    return Err(identa::hook::HookError::failed(
                        "the users table is read-only today",
                    ));
                }
                let db = tx.sea_orm().expect("a sea-orm store");
                let backend = db.get_database_backend();
                db.execute_raw(Statement::from_sql_and_values(
                    backend,
                    match backend {
                        identa::sea_orm::DatabaseBackend::Postgres => {
                            "INSERT INTO app_users (id, email) VALUES ($1, $2)"
                        }
                        _ => "INSERT INTO app_users (id, email) VALUES (?, ?)",
                    },
                    [
                        identity.id.to_string().into(),
                        identity.traits["email"].as_str().unwrap_or_default().into(),
                    ],
                ))
                .await
                .map_err(identa::hook::HookError::failed)?;
                Ok(())
            }
            identa::hook::AfterEvent::Login { .. } => {
                self.after_logins.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn hooks_refuse_and_share_the_transaction(env: TestEnv) {
    use identa::sea_orm::ConnectionTrait;
    env.store
        .connection()
        .execute_unprepared("CREATE TABLE app_users (id TEXT PRIMARY KEY, email TEXT NOT NULL)")
        .await
        .unwrap();
    let hooks = Arc::new(HostHooks::default());
    let mut schemas = identa::SchemaRegistry::new();
    schemas
        .add("default", crate::common::person_schema())
        .unwrap();
    struct Shared(Arc<HostHooks>);
    #[async_trait::async_trait]
    impl identa::hook::Hooks for Shared {
        async fn before(
            &self,
            e: &identa::hook::BeforeEvent<'_>,
        ) -> Result<(), identa::hook::HookError> {
            self.0.before(e).await
        }
        async fn after(
            &self,
            e: &identa::hook::AfterEvent<'_>,
            tx: &identa::hook::Transaction<'_>,
        ) -> Result<(), identa::hook::HookError> {
            self.0.after(e, tx).await
        }
    }
    let identa = identa::Identa::builder()
        .store(env.store.clone())
        .schemas(schemas)
        // The same secrets as `env.identa`, so its courier can read this engine's mail.
        .config(env.identa.config().clone())
        .clock(env.clock.clone())
        .hooks(Shared(hooks.clone()))
        .build()
        .unwrap();
    let req = FlowRequest::api();
    let submit = |email: &'static str| {
        let identa = identa.clone();
        let req = req.clone();
        async move {
            let flow = identa
                .registration_flow()
                .create(FlowType::Api, &req)
                .await
                .unwrap();
            identa
                .registration_flow()
                .submit(
                    flow.id,
                    RegistrationSubmission::Password {
                        traits: json!({ "email": email }),
                        password: Password::new(PASSWORD),
                    },
                    &req,
                )
                .await
        }
    };
    let count_users = || async {
        let row = env
            .store
            .connection()
            .query_one_raw(identa::sea_orm::Statement::from_string(
                env.store.connection().get_database_backend(),
                "SELECT COUNT(*) AS n FROM app_users",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };

    // A before hook refuses with a message on the field; nothing is written.
    let shown = invalid_flow(submit("mallory@blocked.example").await.unwrap_err());
    let msg: &UiText = &shown.ui.node("traits.email").unwrap().messages[0];
    assert_eq!(msg.text, "This domain may not sign up.");
    assert!(
        identa
            .identity_by_identifier("mallory@blocked.example")
            .await
            .unwrap()
            .is_none()
    );

    // An after hook writes the host's row in the same transaction.
    let done = submit("host@example.com").await.unwrap();
    assert_eq!(count_users().await, 1);
    assert!(identa.identity(done.identity.id).await.is_ok());

    // An after hook that fails rolls back the identity, its session and its mail.
    let shown = invalid_flow(submit("fails@example.com").await.unwrap_err());
    assert_eq!(shown.ui.messages[0].id, 5_000_001);
    assert_eq!(shown.state, FlowState::ChooseMethod);
    assert!(
        identa
            .identity_by_identifier("fails@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(count_users().await, 1);
    assert!(mail_to(&env, "fails@example.com").await.is_empty());

    // After-login hooks run once per login.
    let flow = identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await
        .unwrap();
    identa
        .login_flow()
        .submit(
            flow.id,
            LoginSubmission::Password {
                identifier: "host@example.com".into(),
                password: Password::new(PASSWORD),
            },
            &req,
        )
        .await
        .unwrap();
    assert_eq!(hooks.after_logins.load(Ordering::SeqCst), 1);
}

on_every_backend!(
    registration_creates_identity_session_and_verification,
    registration_errors_land_on_their_nodes,
    browser_flows_need_the_csrf_pair,
    expired_flows_are_refused_with_a_typed_error,
    login_issues_sessions_and_refuses_alike,
    login_with_a_session_needs_refresh,
    logout_by_url_and_by_token,
    settings_profile_and_password,
    password_change_can_revoke_other_sessions,
    recovery_by_code_signs_in_and_opens_settings,
    recovery_for_unknown_address_looks_the_same,
    recovery_code_attempts_are_limited,
    recovery_code_expires,
    recovery_code_raced_by_two_tasks_succeeds_at_most_once,
    verification_marks_the_address_verified,
    hooks_refuse_and_share_the_transaction,
);

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
            RecoverySubmission::Email("nul\0@example.com".into()),
            &req,
        )
        .await;
    let shown = invalid_flow(step.unwrap_err());
    assert_eq!(node_message_ids(&shown, "email"), vec![4_000_004]);
    assert_eq!(node_value(&shown, "email"), None);
    let step = env
        .identa
        .recovery_flow()
        .submit(recovery.id, RecoverySubmission::Email(long.clone()), &req)
        .await;
    assert_eq!(
        node_message_ids(&invalid_flow(step.unwrap_err()), "email"),
        vec![4_000_004]
    );
}

on_every_backend!(hostile_input_gets_clear_errors);

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
        assert_eq!(
            err.kind().as_str(),
            "self_service_flow_return_to_forbidden",
            "{forbidden}"
        );
    }
    let mut config = crate::common::test_config();
    config.flows.allowed_return_urls = vec!["https://app.example.com".into()];
    let env2 = TestEnv::with_config(env.backend, config).await.unwrap();
    let r = env2.identa.registration_flow();
    r.create(FlowType::Api, &ok("https://app.example.com/after"))
        .await
        .unwrap();
    assert!(
        r.create(FlowType::Api, &ok("https://app.example.com.evil.example/"))
            .await
            .is_err()
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
        env.identa
            .flow(flow.id, &FlowRequest::api())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::SessionInactive
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

on_every_backend!(return_to_must_be_allowed_and_settings_flows_stay_private);
