//! Second factors: TOTP enrolment in settings (secret shown as QR and text, stored
//! sealed), step-up to aal2 in a login flow, replay refusal, the aal rules of whoami and
//! settings, unlinking, and backup codes.
//!
//! The flow tests take TOTP codes from identa's own generator ([`identa_totp_code`]):
//! their point is the flow, not the algorithm. The algorithm is checked against a real
//! authenticator implementation in [`oathtool_codes_enrol_and_step_up`], which needs
//! oathtool and is therefore ignored unless asked for (`cargo test -- --ignored`).

use chrono::Duration;
use identa::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use identa::flow::settings::SettingsSubmission;
use identa::flow::ui::NodeAttributes;
use identa::flow::{Flow, FlowRequest, FlowType};
use identa::identity::{Aal, CredentialType};
use identa::session::SessionRefusal;
use identa::session::SessionToken;
use identa::{Error, ErrorKind};
use identa::{RequiredAal, SessionCacheConfig};

use crate::common::race::{ROUNDS, TASKS, released_together};
use crate::common::{
    Backend, TestEnv, api_login_flow, api_settings_flow, change_settings, enrol_backup_codes,
    enrol_totp, identa_totp_code, invalid_flow, needs, node_message_ids,
    register_with_password as register, shown_codes, shown_secret, sign_in, step_up,
    stored_documents, submit_settings, with_session,
};
use crate::common::{session_refusal, whoami_refusal};
use crate::{on_every_backend, on_pooled_backends};

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

/// A step-up with a TOTP code.
async fn totp_step_up(env: &TestEnv, token: &SessionToken, code: &str) -> Result<LoggedIn, Error> {
    step_up(env, token, LoginSubmission::Totp { code: code.into() }).await
}

fn totp_node_ids(err: Error) -> Vec<u32> {
    node_message_ids(&invalid_flow(err), "totp_code")
}

async fn totp_enrolment_step_up_and_replay(env: TestEnv) {
    let (identity, token) = register(&env, "totp@example.com").await;
    let req = with_session(&token);
    let settings = api_settings_flow(&env, &req).await;
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
    let enrol = |code: &str| SettingsSubmission::Totp { code: code.into() };
    let wrong = submit_settings(&env, settings.id, enrol("000000"), &req)
        .await
        .unwrap_err();
    assert_eq!(totp_node_ids(wrong), vec![4_000_008]);
    let code = identa_totp_code(&env, &secret);
    let saved = submit_settings(&env, settings.id, enrol(&code), &req)
        .await
        .unwrap();
    assert!(saved.identity.credential(CredentialType::Totp).is_some());
    assert!(
        saved.flow.ui.node("totp_unlink").is_some(),
        "now it offers to unlink"
    );
    let stored = env.identa.identity(identity.id).await.unwrap();
    let config = stored
        .credential(CredentialType::Totp)
        .unwrap()
        .config
        .to_string();
    assert!(!config.contains(&secret), "{config}");

    // The enrolment code cannot be replayed for the step-up; the next step's code works.
    assert_eq!(
        totp_node_ids(totp_step_up(&env, &token, &code).await.unwrap_err()),
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
    let next = identa_totp_code(&env, &secret);
    let upgraded = totp_step_up(&env, &token, &next).await.unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
    assert!(upgraded.token.is_none(), "the session is upgraded in place");
    let me = env.identa.whoami(&token).await.unwrap();
    assert_eq!(me.session.aal, Aal::Aal2);
    assert_eq!(
        me.session.authentication_methods.last().unwrap().method,
        "totp"
    );
    // The same code again, from another session: refused (replay).
    let other = sign_in(&env, "totp@example.com").await.token;
    assert_eq!(
        totp_node_ids(totp_step_up(&env, &other, &next).await.unwrap_err()),
        vec![4_000_008]
    );
    // An administrator can remove the factor (a lost device); the password stays.
    let delete = |kind| env.identa.delete_credential(identity.id, kind);
    let removed = delete(CredentialType::Totp).await.unwrap();
    assert!(removed.credential(CredentialType::Totp).is_none());
    for left in [CredentialType::Password, CredentialType::Totp] {
        let refused = delete(left).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{left:?}");
    }
    // Without TOTP, an aal1 session may change settings again: enrol once more.
    let fresh = sign_in(&env, "totp@example.com").await.token;
    env.clock.advance(Duration::seconds(30));
    let secret = enrol_totp(&env, &fresh).await;
    env.clock.advance(Duration::seconds(30));
    let code = identa_totp_code(&env, &secret);
    // The first session is aal2 already: it has nothing to step up (and spends no code).
    let err = totp_step_up(&env, &token, &code).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Flow(identa::flow::FlowError::SessionAlreadyAvailable)
        ),
        "{err:?}"
    );
    let aal1 = sign_in(&env, "totp@example.com").await.token;
    totp_step_up(&env, &aal1, &code).await.unwrap();

    // Settings with the aal2 session: unlink.
    let done = change_settings(&env, &aal1, SettingsSubmission::TotpUnlink)
        .await
        .unwrap();
    assert!(done.identity.credential(CredentialType::Totp).is_none());
    assert!(
        done.flow.ui.node("totp_code").is_some(),
        "enrolment is offered again"
    );
}

async fn whoami_requires_the_highest_available_aal_by_default(env: TestEnv) {
    let (_, token) = register(&env, "strict@example.com").await;
    let secret = enrol_totp(&env, &token).await;
    let aal1 = sign_in(&env, "strict@example.com").await.token;
    // By default (as Kratos's `session.whoami.required_aal`), a password-only session of
    // an identity with a second factor is refused until it steps up.
    assert_eq!(
        env.identa.whoami(&aal1).await.unwrap_err().kind(),
        ErrorKind::Aal2Required
    );
    // Another instance that says `Aal1` explicitly accepts it.
    let mut config = env.identa.config().clone();
    config.session.whoami_required_aal = RequiredAal::Aal1;
    config.session.cache = SessionCacheConfig::Disabled;
    let lenient = env.another_engine(config).build().unwrap();
    assert_eq!(lenient.whoami(&aal1).await.unwrap().session.aal, Aal::Aal1);
    // A session that has yet to complete its second factor can still sign out.
    let leaving = sign_in(&env, "strict@example.com").await.token;
    env.identa.logout_token(&leaving).await.unwrap();
    env.identa.logout(&leaving).await.unwrap();
    assert_eq!(
        whoami_refusal(&lenient, &leaving).await,
        SessionRefusal::Revoked
    );
    env.clock.advance(Duration::seconds(30));
    let code = identa_totp_code(&env, &secret);
    totp_step_up(&env, &aal1, &code).await.unwrap();
    assert_eq!(
        env.identa.whoami(&aal1).await.unwrap().session.aal,
        Aal::Aal2
    );
    // An identity without a second factor passes with aal1.
    let (_, plain) = register(&env, "plain@example.com").await;
    env.identa.whoami(&plain).await.unwrap();
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
    assert_eq!(session_refusal(err), SessionRefusal::Unknown);
}

/// A step-up with a backup code.
async fn lookup_step_up(
    env: &TestEnv,
    token: &SessionToken,
    code: &str,
) -> Result<LoggedIn, Error> {
    let code = code.into();
    step_up(env, token, LoginSubmission::LookupSecret { code }).await
}

fn lookup_node_ids(err: Error) -> Vec<u32> {
    node_message_ids(&invalid_flow(err), "lookup_secret")
}

async fn backup_codes_work_once_and_regenerate_voids_the_old_set(env: TestEnv) {
    let (identity, token) = register(&env, "backup@example.com").await;
    let req = with_session(&token);
    let settings = api_settings_flow(&env, &req).await;
    assert!(settings.ui.node("lookup_secret_regenerate").is_some());
    let shown = submit_settings(
        &env,
        settings.id,
        SettingsSubmission::LookupRegenerate,
        &req,
    )
    .await
    .unwrap();
    let codes = shown_codes(&shown.flow);
    assert_eq!(codes.len(), 12);
    assert!(codes.iter().all(|c| c.len() == 8));
    assert!(
        shown
            .identity
            .credential(CredentialType::LookupSecret)
            .is_none(),
        "not stored before confirmation"
    );
    // Shown once: the stored flow does not hold them.
    for stored in stored_documents(&env, "identa_flows").await {
        assert!(!stored.contains(&codes[0]));
    }
    let confirmed = submit_settings(&env, settings.id, SettingsSubmission::LookupConfirm, &req)
        .await
        .unwrap();
    let credential = confirmed
        .identity
        .credential(CredentialType::LookupSecret)
        .unwrap();
    assert!(!credential.config.to_string().contains(&codes[0]));
    assert!(confirmed.flow.ui.node("lookup_secret_disable").is_some());
    // The stored identity row holds no code either.
    let identities = stored_documents(&env, "identa_identities").await;
    assert!(!identities.is_empty());
    for stored in identities {
        assert!(codes.iter().all(|c| !stored.contains(c.as_str())));
    }

    // A second-factor flow now asks for a backup code; a code works once.
    let offered = api_login_flow(&env, &req, LoginIntent::SecondFactor).await;
    assert!(offered.ui.node("lookup_secret").is_some());
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
    let other = sign_in(&env, "backup@example.com").await.token;
    assert_eq!(
        lookup_node_ids(lookup_step_up(&env, &other, &codes[0]).await.unwrap_err()),
        vec![4_000_016]
    );
    assert_eq!(
        lookup_node_ids(lookup_step_up(&env, &other, "notacode").await.unwrap_err()),
        vec![4_000_016]
    );
    // Using codes until few are left brings a warning.
    let mut warned = false;
    for code in &codes[1..9] {
        let session = sign_in(&env, "backup@example.com").await.token;
        let done = lookup_step_up(&env, &session, code).await.unwrap();
        warned |= done.flow.ui.messages.iter().any(|m| m.id == 1_900_001);
    }
    assert!(warned, "3 codes left: the user is told");

    // Regenerating (with the aal2 session) voids the old set.
    let settings = api_settings_flow(&env, &req).await;
    submit_settings(
        &env,
        settings.id,
        SettingsSubmission::LookupRegenerate,
        &req,
    )
    .await
    .unwrap();
    let done = submit_settings(&env, settings.id, SettingsSubmission::LookupConfirm, &req)
        .await
        .unwrap();
    assert_eq!(
        done.identity
            .credential(CredentialType::LookupSecret)
            .unwrap()
            .config["codes"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    let session = sign_in(&env, "backup@example.com").await.token;
    assert_eq!(
        lookup_node_ids(
            lookup_step_up(&env, &session, &codes[10])
                .await
                .unwrap_err()
        ),
        vec![4_000_016]
    );
    // Disabling removes them.
    let off = change_settings(&env, &token, SettingsSubmission::LookupDisable)
        .await
        .unwrap();
    assert!(
        off.identity
            .credential(CredentialType::LookupSecret)
            .is_none()
    );
    let _ = identity;
}

on_every_backend!(
    backup_codes_work_once_and_regenerate_voids_the_old_set,
    totp_enrolment_step_up_and_replay,
    whoami_requires_the_highest_available_aal_by_default,
);

/// A second-factor login flow for each of `TASKS` new password sign-ins of `email`, made
/// before a race starts: the flow's id and the request presenting its session.
async fn second_factor_flows(env: &TestEnv, email: &str) -> Vec<(uuid::Uuid, FlowRequest)> {
    let mut flows = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let req = with_session(&sign_in(env, email).await.token);
        let flow = api_login_flow(env, &req, LoginIntent::SecondFactor).await;
        flows.push((flow.id, req));
    }
    flows
}

/// Submits `submission()` to every flow of `flows` at once.
async fn submit_together(
    env: &TestEnv,
    flows: &[(uuid::Uuid, FlowRequest)],
    submission: impl Fn() -> LoginSubmission,
) -> Vec<Result<LoggedIn, Error>> {
    released_together(|i| {
        let identa = env.identa.clone();
        let (flow_id, req) = flows[i].clone();
        let submission = submission();
        async move { identa.login_flow().submit(flow_id, submission, &req).await }
    })
    .await
}

/// Exactly one of `results` (round `round` of a race) upgraded its session; `check_refusal`
/// checks each of the others' errors.
fn assert_one_upgraded(
    round: usize,
    results: Vec<Result<LoggedIn, Error>>,
    check_refusal: impl Fn(Error),
) {
    let upgraded = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(upgraded, 1, "round {round}: {results:#?}");
    results
        .into_iter()
        .filter_map(Result::err)
        .for_each(check_refusal);
}

/// The sessions of `identity` that completed a second factor.
async fn aal2_sessions(env: &TestEnv, identity: uuid::Uuid) -> usize {
    env.identa
        .sessions(identity)
        .await
        .unwrap()
        .iter()
        .filter(|s| s.aal == Aal::Aal2)
        .count()
}

/// One TOTP code, submitted at once from `TASKS` sessions (each with its own second-factor
/// flow), upgrades exactly one of them; the others are refused as a replay (4000008),
/// whether they read the credential before the winner wrote it (then the spent marker
/// refuses their commit) or after (then the step it records refuses the code). The codes
/// come from identa's generator: the point is single use, not the algorithm.
async fn totp_code_is_accepted_once_under_a_race(env: TestEnv) {
    // More racers than the second-factor limit (5 failures per identity) allows.
    let env = env.without_throttling();
    let (identity, token) = register(&env, "race@example.com").await;
    let secret = enrol_totp(&env, &token).await;
    for round in 0..ROUNDS {
        env.clock.advance(Duration::seconds(30));
        let flows = second_factor_flows(&env, "race@example.com").await;
        let code = identa_totp_code(&env, &secret);
        let results = submit_together(&env, &flows, || LoginSubmission::Totp {
            code: code.clone(),
        })
        .await;
        assert_one_upgraded(round, results, |err| {
            assert_eq!(totp_node_ids(err), vec![4_000_008], "round {round}");
        });
        assert_eq!(aal2_sessions(&env, identity.id).await, round + 1);
    }
}

/// One backup code, submitted at once from `TASKS` sessions, upgrades exactly one of them;
/// the others are refused (4000016), by the spent marker or by the code's stored "used"
/// mark, whichever they meet first.
async fn backup_code_is_accepted_once_under_a_race(env: TestEnv) {
    // More racers than the second-factor limit (5 failures per identity) allows.
    let env = env.without_throttling();
    let (identity, token) = register(&env, "race@example.com").await;
    let codes = enrol_backup_codes(&env, &token).await;
    for (round, code) in codes.iter().take(ROUNDS).enumerate() {
        let flows = second_factor_flows(&env, "race@example.com").await;
        let results = submit_together(&env, &flows, || LoginSubmission::LookupSecret {
            code: code.clone(),
        })
        .await;
        assert_one_upgraded(round, results, |err| {
            assert_eq!(lookup_node_ids(err), vec![4_000_016], "round {round}");
        });
        assert_eq!(aal2_sessions(&env, identity.id).await, round + 1);
    }
}

on_pooled_backends!(
    totp_code_is_accepted_once_under_a_race,
    backup_code_is_accepted_once_under_a_race,
);

/// identa's TOTP against oathtool (oath-toolkit), an independent implementation: the
/// secret identa shows, entered into oathtool, gives codes that enrol the factor and step
/// a session up; and identa's own generator, which the flow tests use, agrees with
/// oathtool step after step. The backend does not matter here: SQLite in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs oathtool: `apt-get install oathtool`; run with `cargo test -- --ignored`"]
async fn oathtool_codes_enrol_and_step_up() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let (_, token) = register(&env, "oath@example.com").await;
    let req = with_session(&token);
    let settings = api_settings_flow(&env, &req).await;
    let secret = shown_secret(&settings);
    let code = needs::oathtool_totp(&secret, env.clock_now());
    let saved = submit_settings(&env, settings.id, SettingsSubmission::Totp { code }, &req)
        .await
        .unwrap();
    assert!(saved.identity.credential(CredentialType::Totp).is_some());
    env.clock.advance(Duration::seconds(30));
    let code = needs::oathtool_totp(&secret, env.clock_now());
    let upgraded = totp_step_up(&env, &token, &code).await.unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
    for _ in 0..40 {
        env.clock.advance(Duration::seconds(17));
        assert_eq!(
            identa_totp_code(&env, &secret),
            needs::oathtool_totp(&secret, env.clock_now()),
            "at {}",
            env.clock_now()
        );
    }
}
