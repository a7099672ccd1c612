//! Second factors: TOTP enrolment in settings (secret shown as QR and text, confirmed with
//! a code from `oathtool`, stored sealed), step-up to aal2 in a login flow, replay refusal,
//! the aal rules of whoami and settings, and unlinking.

use chrono::Duration;
use identa::config::{RequiredAal, SessionCacheConfig};
use identa::flow::login::{LoginIntent, LoginSubmission};
use identa::flow::settings::SettingsSubmission;
use identa::flow::ui::NodeAttributes;
use identa::flow::{Flow, FlowRequest, FlowType};
use identa::{Aal, Error, ErrorKind, Password, SessionToken};

use crate::common::{PASSWORD, TestEnv, register_with_password as register, stored_documents};
use crate::on_every_backend;

/// The code an authenticator shows for `secret` (base32) at the test clock's now:
/// `oathtool` (Debian's oath-toolkit) when present — required when
/// `IDENTA_REQUIRE_OATHTOOL` is set — else identa's own generator.
fn authenticator_code(env: &TestEnv, secret: &str) -> String {
    let now = env.clock_now();
    let at = now.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    match std::process::Command::new("oathtool")
        .args(["--totp", "-b", "--now", &at, secret])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        _ => {
            assert!(
                std::env::var("IDENTA_REQUIRE_OATHTOOL").is_err(),
                "IDENTA_REQUIRE_OATHTOOL is set but oathtool is missing (apt-get install oathtool)"
            );
            let bytes = base32_decode(secret);
            identa::credential::totp::TotpSecret::from_bytes(bytes.try_into().unwrap())
                .code_at(now.timestamp() as u64)
                .unwrap()
        }
    }
}

fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes() {
        let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn shown_secret(flow: &Flow) -> String {
    flow.ui
        .nodes
        .iter()
        .find_map(|n| match &n.attributes {
            NodeAttributes::Text(t) if t.id == "totp_secret_key" => Some(t.text.text.clone()),
            _ => None,
        })
        .expect("a totp_secret_key node")
}

fn qr_src(flow: &Flow) -> String {
    flow.ui
        .nodes
        .iter()
        .find_map(|n| match &n.attributes {
            NodeAttributes::Img(i) if i.id == "totp_qr" => Some(i.src.clone()),
            _ => None,
        })
        .expect("a totp_qr node")
}

async fn password_login(env: &TestEnv, email: &str) -> SessionToken {
    env.identa
        .login(email, &Password::new(PASSWORD), None)
        .await
        .unwrap()
        .token
}

async fn step_up(
    env: &TestEnv,
    token: &SessionToken,
    code: &str,
) -> Result<identa::flow::login::LoggedIn, Error> {
    let req = FlowRequest::api().with_session(SessionToken::from_client(token.expose()));
    let flow = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SecondFactor)
        .await?;
    env.identa
        .login_flow()
        .submit(flow.id, LoginSubmission::Totp { code: code.into() }, &req)
        .await
}

fn totp_node_ids(err: Error) -> Vec<u32> {
    match err {
        Error::FlowInvalid(flow) => flow
            .ui
            .node("totp_code")
            .map(|n| n.messages.iter().map(|m| m.id).collect())
            .unwrap_or_default(),
        other => panic!("expected a flow with messages, got {other:?}"),
    }
}

async fn totp_enrolment_step_up_and_replay(env: TestEnv) {
    let (identity, token) = register(&env, "totp@example.com").await;
    let req = FlowRequest::api().with_session(SessionToken::from_client(token.expose()));
    let settings = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let secret = shown_secret(&settings);
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert!(qr_src(&settings).starts_with("data:image/png;base64,"));
    // Neither the flow row nor any other row holds the secret in the clear.
    let rows = stored_documents(&env, "identa_flows").await;
    assert!(!rows.is_empty());
    for stored in rows {
        assert!(!stored.contains(&secret), "a stored flow holds the secret");
        assert!(
            !stored.contains("data:image/png"),
            "a stored flow holds the QR code"
        );
    }
    // Fetching the flow again shows the same secret.
    assert_eq!(
        shown_secret(&env.identa.flow(settings.id, &req).await.unwrap()),
        secret
    );

    // A wrong code, then the authenticator's code.
    let wrong = env
        .identa
        .settings_flow()
        .submit(
            settings.id,
            SettingsSubmission::Totp {
                code: "000000".into(),
            },
            &req,
        )
        .await
        .unwrap_err();
    assert_eq!(totp_node_ids(wrong), vec![4_000_008]);
    let code = authenticator_code(&env, &secret);
    let saved = env
        .identa
        .settings_flow()
        .submit(
            settings.id,
            SettingsSubmission::Totp { code: code.clone() },
            &req,
        )
        .await
        .unwrap();
    assert!(
        saved
            .identity
            .credential(identa::CredentialType::Totp)
            .is_some()
    );
    assert!(
        saved.flow.ui.node("totp_unlink").is_some(),
        "now it offers to unlink"
    );
    let stored = env.identa.identity(identity.id).await.unwrap();
    let config = stored
        .credential(identa::CredentialType::Totp)
        .unwrap()
        .config
        .to_string();
    assert!(!config.contains(&secret), "{config}");

    // The enrolment code cannot be replayed for the step-up; the next step's code works.
    assert_eq!(
        totp_node_ids(step_up(&env, &token, &code).await.unwrap_err()),
        vec![4_000_008]
    );
    // Settings now need aal2.
    let err = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aal2Required);
    env.clock.advance(Duration::seconds(30));
    let next = authenticator_code(&env, &secret);
    let upgraded = step_up(&env, &token, &next).await.unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
    assert!(upgraded.token.is_none(), "the session is upgraded in place");
    let me = env.identa.whoami(&token).await.unwrap();
    assert_eq!(me.session.aal, Aal::Aal2);
    assert_eq!(
        me.session.authentication_methods.last().unwrap().method,
        "totp"
    );
    // The same code again, from another session: refused (replay).
    let other = password_login(&env, "totp@example.com").await;
    assert_eq!(
        totp_node_ids(step_up(&env, &other, &next).await.unwrap_err()),
        vec![4_000_008]
    );
    // Two sessions racing with the next code: at most one succeeds.
    env.clock.advance(Duration::seconds(30));
    let third = password_login(&env, "totp@example.com").await;
    let racing = authenticator_code(&env, &secret);
    let (a, b) = tokio::join!(
        step_up(&env, &other, &racing),
        step_up(&env, &third, &racing)
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} / {b:?}"
    );

    // An administrator can remove the factor (a lost device); the password stays.
    let removed = env
        .identa
        .delete_credential(identity.id, identa::CredentialType::Totp)
        .await
        .unwrap();
    assert!(removed.credential(identa::CredentialType::Totp).is_none());
    assert_eq!(
        env.identa
            .delete_credential(identity.id, identa::CredentialType::Password)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        env.identa
            .delete_credential(identity.id, identa::CredentialType::Totp)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    // Without TOTP, an aal1 session may change settings again: enrol once more.
    let fresh = password_login(&env, "totp@example.com").await;
    let fresh_req = FlowRequest::api().with_session(SessionToken::from_client(fresh.expose()));
    let again = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &fresh_req)
        .await
        .unwrap();
    let secret = shown_secret(&again);
    env.clock.advance(Duration::seconds(30));
    let code = authenticator_code(&env, &secret);
    env.identa
        .settings_flow()
        .submit(again.id, SettingsSubmission::Totp { code }, &fresh_req)
        .await
        .unwrap();
    env.clock.advance(Duration::seconds(30));
    let code = authenticator_code(&env, &secret);
    step_up(&env, &token, &code).await.unwrap_err();
    let aal1 = password_login(&env, "totp@example.com").await;
    step_up(&env, &aal1, &code).await.unwrap();
    let req = FlowRequest::api().with_session(aal1);

    // Settings with the aal2 session: unlink.
    let settings = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let done = env
        .identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::TotpUnlink, &req)
        .await
        .unwrap();
    assert!(
        done.identity
            .credential(identa::CredentialType::Totp)
            .is_none()
    );
    assert!(
        done.flow.ui.node("totp_code").is_some(),
        "enrolment is offered again"
    );
}

async fn whoami_can_require_the_highest_available_aal(env: TestEnv) {
    let (_, token) = register(&env, "strict@example.com").await;
    let req = FlowRequest::api().with_session(SessionToken::from_client(token.expose()));
    let settings = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let secret = shown_secret(&settings);
    let code = authenticator_code(&env, &secret);
    env.identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::Totp { code }, &req)
        .await
        .unwrap();
    let aal1 = password_login(&env, "strict@example.com").await;
    // Another instance that demands the highest available level.
    let mut config = env.identa.config().clone();
    config.session.whoami_required_aal = RequiredAal::HighestAvailable;
    config.session.cache = SessionCacheConfig::Disabled;
    let mut schemas = identa::SchemaRegistry::new();
    schemas
        .add("default", crate::common::person_schema())
        .unwrap();
    let strict = identa::Identa::builder()
        .store(env.store.clone())
        .schemas(schemas)
        .config(config)
        .clock(env.clock.clone())
        .build()
        .unwrap();
    assert_eq!(
        strict.whoami(&aal1).await.unwrap_err().kind(),
        ErrorKind::Aal2Required
    );
    env.identa.whoami(&aal1).await.unwrap();
    env.clock.advance(Duration::seconds(30));
    let code = authenticator_code(&env, &secret);
    step_up(&env, &aal1, &code).await.unwrap();
    assert_eq!(strict.whoami(&aal1).await.unwrap().session.aal, Aal::Aal2);
    // An identity without a second factor passes with aal1.
    let (_, plain) = register(&env, "plain@example.com").await;
    strict.whoami(&plain).await.unwrap();
    // A second-factor flow needs a second factor and a session.
    let err = env
        .identa
        .login_flow()
        .create(
            FlowType::Api,
            &FlowRequest::api().with_session(plain),
            LoginIntent::SecondFactor,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = env
        .identa
        .login_flow()
        .create(
            FlowType::Api,
            &FlowRequest::api(),
            LoginIntent::SecondFactor,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SessionInactive);
}

fn shown_codes(flow: &Flow) -> Vec<String> {
    flow.ui
        .nodes
        .iter()
        .find_map(|n| match &n.attributes {
            NodeAttributes::Text(t) if t.id == "lookup_secret_codes" => Some(t.text.text.clone()),
            _ => None,
        })
        .expect("the backup codes")
        .split(", ")
        .map(str::to_owned)
        .collect()
}

async fn lookup_step_up(
    env: &TestEnv,
    token: &SessionToken,
    code: &str,
) -> Result<identa::flow::login::LoggedIn, Error> {
    let req = FlowRequest::api().with_session(SessionToken::from_client(token.expose()));
    let flow = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SecondFactor)
        .await?;
    assert!(flow.ui.node("lookup_secret").is_some());
    env.identa
        .login_flow()
        .submit(
            flow.id,
            LoginSubmission::LookupSecret { code: code.into() },
            &req,
        )
        .await
}

fn lookup_node_ids(err: Error) -> Vec<u32> {
    match err {
        Error::FlowInvalid(flow) => flow
            .ui
            .node("lookup_secret")
            .map(|n| n.messages.iter().map(|m| m.id).collect())
            .unwrap_or_default(),
        other => panic!("expected a flow with messages, got {other:?}"),
    }
}

async fn backup_codes_work_once_and_regenerate_voids_the_old_set(env: TestEnv) {
    let (identity, token) = register(&env, "backup@example.com").await;
    let req = FlowRequest::api().with_session(SessionToken::from_client(token.expose()));
    let settings = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    assert!(settings.ui.node("lookup_secret_regenerate").is_some());
    let shown = env
        .identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::LookupRegenerate, &req)
        .await
        .unwrap();
    let codes = shown_codes(&shown.flow);
    assert_eq!(codes.len(), 12);
    assert!(codes.iter().all(|c| c.len() == 8));
    assert!(
        shown
            .identity
            .credential(identa::CredentialType::LookupSecret)
            .is_none(),
        "not stored before confirmation"
    );
    // Shown once: the stored flow does not hold them.
    for stored in stored_documents(&env, "identa_flows").await {
        assert!(!stored.contains(&codes[0]));
    }
    let confirmed = env
        .identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::LookupConfirm, &req)
        .await
        .unwrap();
    let credential = confirmed
        .identity
        .credential(identa::CredentialType::LookupSecret)
        .unwrap();
    assert!(!credential.config.to_string().contains(&codes[0]));
    assert!(confirmed.flow.ui.node("lookup_secret_disable").is_some());
    // The stored identity row holds no code either.
    let identities = stored_documents(&env, "identa_identities").await;
    assert!(!identities.is_empty());
    for stored in identities {
        assert!(codes.iter().all(|c| !stored.contains(c.as_str())));
    }

    // A code works once, as a second factor.
    let upgraded = lookup_step_up(&env, &token, &codes[0].to_uppercase())
        .await
        .unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
    assert_eq!(
        upgraded
            .session
            .session
            .authentication_methods
            .last()
            .unwrap()
            .method,
        "lookup_secret"
    );
    let other = password_login(&env, "backup@example.com").await;
    assert_eq!(
        lookup_node_ids(lookup_step_up(&env, &other, &codes[0]).await.unwrap_err()),
        vec![4_000_016]
    );
    assert_eq!(
        lookup_node_ids(lookup_step_up(&env, &other, "notacode").await.unwrap_err()),
        vec![4_000_016]
    );
    // Two sessions racing with one code: at most one succeeds.
    let third = password_login(&env, "backup@example.com").await;
    let (a, b) = tokio::join!(
        lookup_step_up(&env, &other, &codes[1]),
        lookup_step_up(&env, &third, &codes[1])
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} / {b:?}"
    );
    // Using codes until few are left brings a warning.
    let mut warned = false;
    for code in &codes[2..9] {
        let session = password_login(&env, "backup@example.com").await;
        let done = lookup_step_up(&env, &session, code).await.unwrap();
        warned |= done.flow.ui.messages.iter().any(|m| m.id == 1_900_001);
    }
    assert!(warned, "3 codes left: the user is told");

    // Regenerating (with the aal2 session) voids the old set.
    let settings = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    env.identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::LookupRegenerate, &req)
        .await
        .unwrap();
    let done = env
        .identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::LookupConfirm, &req)
        .await
        .unwrap();
    assert_eq!(
        done.identity
            .credential(identa::CredentialType::LookupSecret)
            .unwrap()
            .config["codes"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    let session = password_login(&env, "backup@example.com").await;
    assert_eq!(
        lookup_node_ids(
            lookup_step_up(&env, &session, &codes[10])
                .await
                .unwrap_err()
        ),
        vec![4_000_016]
    );
    // Disabling removes them.
    let settings = env
        .identa
        .settings_flow()
        .create(FlowType::Api, &req)
        .await
        .unwrap();
    let off = env
        .identa
        .settings_flow()
        .submit(settings.id, SettingsSubmission::LookupDisable, &req)
        .await
        .unwrap();
    assert!(
        off.identity
            .credential(identa::CredentialType::LookupSecret)
            .is_none()
    );
    let _ = identity;
}

on_every_backend!(
    backup_codes_work_once_and_regenerate_voids_the_old_set,
    totp_enrolment_step_up_and_replay,
    whoami_can_require_the_highest_available_aal,
);
