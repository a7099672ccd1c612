//! Security keys and passkeys through real WebAuthn ceremonies, answered by the software
//! authenticators of `webauthn-authenticator-rs` (`SoftPasskey`, `SoftToken`): adding a
//! security key in settings and using it as the second factor, signing up and signing in
//! with a passkey alone, and the refusals — another origin, a cloned authenticator whose
//! counter went backwards, an answer replayed to a new challenge, removing the last way
//! to sign in.

use identa::Error;
use identa::credential::webauthn::RelyingParty;
use identa::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use identa::flow::registration::{Registered, RegistrationSubmission};
use identa::flow::settings::{SettingsSaved, SettingsSubmission};
use identa::flow::{Flow, FlowRequest, FlowState};
use identa::identity::{Aal, CredentialType};
use identa::session::{Device, SessionToken};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::error::WebauthnCError;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};
use webauthn_rs_proto::AuthenticatorTransport;

use crate::common::{
    Backend, PASSWORD, TestEnv, all_message_ids, api_login_flow, api_registration_flow,
    api_settings_flow, change_settings, form_message_ids, invalid_flow, node_message_ids, node_str,
    password_login, password_registration, register_with_password, session_aal, sign_in,
    step_up_with, stored_flow_document, submit_login, submit_registration, submit_settings,
    test_config, with_session,
};
use crate::on_every_backend;

/// The message ids a refused submission shows (on its nodes and on the form).
fn message_ids(err: Error) -> Vec<u32> {
    all_message_ids(&invalid_flow(err))
}

const ORIGIN: &str = "http://localhost:4455";

async fn webauthn_env(backend: Backend) -> TestEnv {
    let mut config = test_config();
    config.flows.webauthn = Some(RelyingParty::localhost(ORIGIN));
    TestEnv::with_config(backend, config).await
}

fn origin(url: &str) -> Url {
    Url::parse(url).unwrap()
}

fn creation_options(flow: &Flow, name: &str) -> CreationChallengeResponse {
    let value: Value = serde_json::from_str(&node_str(flow, name)).unwrap();
    let options = value.get("credentialOptions").cloned().unwrap_or(value);
    serde_json::from_value(options).unwrap()
}

fn request_options(flow: &Flow, name: &str) -> RequestChallengeResponse {
    serde_json::from_str(&node_str(flow, name)).unwrap()
}

/// The credential ids a request challenge (node `name`) allows.
fn allowed_ids(flow: &Flow, name: &str) -> Vec<Vec<u8>> {
    request_options(flow, name)
        .public_key
        .allow_credentials
        .iter()
        .map(|c| c.id.to_vec())
        .collect()
}

/// What the software authenticator answers to a challenge naming none of its credentials.
fn has_no_allowed_credential(answer: Result<impl std::fmt::Debug, WebauthnCError>) -> bool {
    matches!(answer, Err(WebauthnCError::Internal))
}

/// The authenticator's answer, from a page on `from`, to the request challenge in node
/// `name` of `flow`.
fn answer(
    authenticator: &mut impl WebauthnAuthenticator,
    from: &str,
    flow: &Flow,
    name: &str,
) -> Result<PublicKeyCredential, WebauthnCError> {
    authenticator.do_authentication(origin(from), request_options(flow, name))
}

/// A new passkey: the authenticator's answer, from [`ORIGIN`], to the creation challenge a
/// registration or settings flow shows (`passkey_create_data`).
fn create_passkey(authenticator: &mut SoftPasskey, flow: &Flow) -> RegisterPublicKeyCredential {
    authenticator
        .do_registration(
            origin(ORIGIN),
            creation_options(flow, "passkey_create_data"),
        )
        .unwrap()
}

/// An authenticator's answer as a browser posts it: JSON.
fn posted(answer: &impl serde::Serialize) -> String {
    serde_json::to_string(answer).unwrap()
}

/// Adds a security key through a settings flow, answering from `from`.
async fn add_security_key(
    env: &TestEnv,
    token: &SessionToken,
    authenticator: &mut impl WebauthnAuthenticator,
    from: &str,
) -> Result<SettingsSaved, Error> {
    let req = with_session(token);
    let settings = api_settings_flow(env, &req).await;
    let options = creation_options(&settings, "webauthn_register_trigger");
    // Browsers that check it (Chromium) refuse credProtect "user verification required"
    // unless user verification is required too; a second factor only prefers it.
    let shown = serde_json::to_value(&options).unwrap();
    assert_eq!(
        shown["publicKey"]["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    assert!(
        shown["publicKey"]["extensions"]
            .get("credentialProtectionPolicy")
            .is_none(),
        "{shown}"
    );
    let answer = authenticator
        .do_registration(origin(from), options)
        .unwrap();
    let submission = SettingsSubmission::WebauthnRegister {
        display_name: "  Blue key  ".into(),
        response: posted(&answer),
    };
    submit_settings(env, settings.id, submission, &req).await
}

/// Completes a second-factor flow with a security key answering from `from`.
async fn key_step_up(
    env: &TestEnv,
    token: &SessionToken,
    authenticator: &mut impl WebauthnAuthenticator,
    from: &str,
) -> Result<LoggedIn, Error> {
    step_up_with(env, token, |flow| {
        let answer = answer(authenticator, from, flow, "webauthn_login_trigger").unwrap();
        LoginSubmission::Webauthn {
            response: posted(&answer),
        }
    })
    .await
}

async fn security_key_as_second_factor(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let (identity, token) = register_with_password(&env, "key@example.com").await;
    assert_eq!(identity.highest_available_aal(), Aal::Aal1);
    let mut key = SoftPasskey::new(true);

    let saved = add_security_key(&env, &token, &mut key, ORIGIN)
        .await
        .unwrap();
    assert_eq!(saved.identity.highest_available_aal(), Aal::Aal2);
    let remove = saved
        .flow
        .ui
        .node("webauthn_remove")
        .expect("a remove button");
    let label = remove.meta.label.as_ref().unwrap();
    assert_eq!(label.id, 1_050_018);
    assert_eq!(label.text, "Remove security key \"Blue key\"");
    let key_id = remove.value().and_then(Value::as_str).unwrap().to_owned();
    // The settings flow offers a fresh ceremony for another key, with its script node
    // (where the script is served, the HTTP layer fills in).
    assert!(saved.flow.ui.node("webauthn_register_trigger").is_some());
    assert!(saved.flow.ui.nodes.iter().any(|n| matches!(
        &n.attributes,
        identa::flow::ui::NodeAttributes::Script(s) if s.id == "webauthn_script"
    )));

    // Step up with the key: the same session becomes aal2, by method webauthn.
    let upgraded = key_step_up(&env, &token, &mut key, ORIGIN).await.unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
    assert!(
        upgraded
            .session
            .session
            .authentication_methods
            .iter()
            .any(|m| m.method == "webauthn" && m.aal == Aal::Aal2)
    );
    assert_eq!(session_aal(&env, &token).await, Aal::Aal2);

    // A second sign-in needs the key again; an answer for an old challenge is refused.
    let second = sign_in(&env, "key@example.com").await.token;
    let req = with_session(&second);
    let first_flow = api_login_flow(&env, &req, LoginIntent::SecondFactor).await;
    let old_answer = answer(&mut key, ORIGIN, &first_flow, "webauthn_login_trigger").unwrap();
    let other_flow = api_login_flow(&env, &req, LoginIntent::SecondFactor).await;
    let replay = LoginSubmission::Webauthn {
        response: posted(&old_answer),
    };
    let replayed = submit_login(&env, other_flow.id, replay, &req)
        .await
        .unwrap_err();
    assert_eq!(message_ids(replayed), vec![4_000_001]);
    assert_eq!(session_aal(&env, &second).await, Aal::Aal1);

    // Removing the key (from the aal2 session) drops the second factor.
    let remove = SettingsSubmission::WebauthnRemove { id: key_id };
    let removed = change_settings(&env, &token, remove).await.unwrap();
    assert!(
        removed
            .identity
            .credential(CredentialType::Webauthn)
            .is_none()
    );
    assert!(removed.flow.ui.node("webauthn_remove").is_none());
    assert_eq!(removed.identity.highest_available_aal(), Aal::Aal1);
}

async fn another_origin_is_refused(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let (_, token) = register_with_password(&env, "origin@example.com").await;
    let mut key = SoftPasskey::new(true);
    // Registration from a page on another origin (same host, other port).
    let err = add_security_key(&env, &token, &mut key, "http://localhost:9999")
        .await
        .unwrap_err();
    assert_eq!(
        node_message_ids(&invalid_flow(err), "webauthn_register"),
        vec![4_000_001]
    );
    let identity = env.identa.whoami(&token).await.unwrap().identity;
    assert!(identity.credential(CredentialType::Webauthn).is_none());

    // Registered properly, the key's answer from another origin still fails.
    add_security_key(&env, &token, &mut key, ORIGIN)
        .await
        .unwrap();
    let err = key_step_up(&env, &token, &mut key, "http://localhost:9999")
        .await
        .unwrap_err();
    assert_eq!(message_ids(err), vec![4_000_001]);
    assert_eq!(session_aal(&env, &token).await, Aal::Aal1);
}

async fn cloned_authenticator_is_refused(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let (_, token) = register_with_password(&env, "clone@example.com").await;
    let (mut original, _ca) = SoftToken::new(true).unwrap();
    add_security_key(&env, &token, &mut original, ORIGIN)
        .await
        .unwrap();
    // A copy of the authenticator as it was before its first use.
    let mut clone = SoftToken::from_cbor(&original.to_cbor().unwrap()).unwrap();
    key_step_up(&env, &token, &mut original, ORIGIN)
        .await
        .unwrap();

    let second = sign_in(&env, "clone@example.com").await.token;
    // The copy's counter is behind the one identa stored: refused.
    let err = key_step_up(&env, &second, &mut clone, ORIGIN)
        .await
        .unwrap_err();
    assert_eq!(message_ids(err), vec![4_000_001]);
    assert_eq!(session_aal(&env, &second).await, Aal::Aal1);
    // The original, whose counter moves on, still works.
    let ok = key_step_up(&env, &second, &mut original, ORIGIN)
        .await
        .unwrap();
    assert_eq!(ok.session.session.aal, Aal::Aal2);
}

/// A login flow showing the passkey challenge for `identifier`.
async fn passkey_challenge(env: &TestEnv, identifier: &str) -> Flow {
    let req = FlowRequest::api();
    let flow = api_login_flow(env, &req, LoginIntent::SignIn).await;
    assert!(
        flow.ui
            .nodes
            .iter()
            .any(|n| n.value() == Some(&json!("passkey")))
    );
    let ask = LoginSubmission::Passkey {
        identifier: identifier.into(),
        response: None,
    };
    invalid_flow(submit_login(env, flow.id, ask, &req).await.unwrap_err())
}

/// Signs in with a passkey: asks for the challenge, then answers it.
async fn passkey_login(
    env: &TestEnv,
    identifier: &str,
    authenticator: &mut impl WebauthnAuthenticator,
) -> Result<LoggedIn, Error> {
    let challenged = passkey_challenge(env, identifier).await;
    let answer = answer(authenticator, ORIGIN, &challenged, "passkey_challenge").unwrap();
    let submission = LoginSubmission::Passkey {
        identifier: identifier.into(),
        response: Some(posted(&answer)),
    };
    submit_login(env, challenged.id, submission, &FlowRequest::api()).await
}

/// How far a flow got, for what its row keeps of the passkey ceremony it offered.
enum Stage {
    /// Open: the row keeps the ceremony.
    Open,
    /// Completed (`passed_challenge`): the row keeps none.
    Completed,
}

/// Checks what the row of flow `id` keeps of its passkey ceremony at `stage`.
async fn check_stored_ceremony(env: &TestEnv, id: uuid::Uuid, stage: Stage) {
    let row = stored_flow_document(env, id).await;
    let internal = &row["internal"];
    match stage {
        Stage::Open => assert!(internal["passkey"].is_object(), "{internal}"),
        Stage::Completed => {
            assert_eq!(row["state"], "passed_challenge");
            assert!(internal["passkey"].is_null(), "{internal}");
        }
    }
}

/// Flows completed without WebAuthn (a password) keep none of the ceremonies they
/// offered: registration's passkey ceremony and login's discoverable challenge go.
async fn completed_flows_hold_no_ceremony(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let req = FlowRequest::api();
    let flow = api_registration_flow(&env).await;
    check_stored_ceremony(&env, flow.id, Stage::Open).await;
    let sign_up = password_registration(json!({ "email": "plain@example.com" }), PASSWORD);
    let registered = submit_registration(&env, flow.id, sign_up, &req)
        .await
        .unwrap();
    check_stored_ceremony(&env, registered.flow.id, Stage::Completed).await;

    let login = api_login_flow(&env, &req, LoginIntent::SignIn).await;
    check_stored_ceremony(&env, login.id, Stage::Open).await;
    let sign_in = password_login("plain@example.com", PASSWORD);
    submit_login(&env, login.id, sign_in, &req).await.unwrap();
    check_stored_ceremony(&env, login.id, Stage::Completed).await;
}

async fn passkey_sign_up_and_sign_in(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let mut passkey = SoftPasskey::new(true);
    let (done, credential_id) = passkey_account(&env, "Pass@Example.com", &mut passkey).await;
    let identity = done.identity;
    assert!(identity.credential(CredentialType::Password).is_none());
    let credential = identity.credential(CredentialType::Passkey).unwrap();
    assert!(
        credential
            .identifiers
            .contains(&"pass@example.com".to_owned())
    );
    let login = done.login.expect("registration signs in");
    assert_eq!(
        login.session.session.authentication_methods[0].method,
        "passkey"
    );

    // Sign in with the passkey alone: aal1, method passkey.
    let signed_in = passkey_login(&env, "pass@example.com", &mut passkey)
        .await
        .unwrap();
    assert_eq!(signed_in.session.identity.id, identity.id);
    assert_eq!(signed_in.session.session.aal, Aal::Aal1);
    assert_eq!(
        signed_in.session.session.authentication_methods[0].method,
        "passkey"
    );
    // The ceremony state is gone from the completed flow's row.
    check_stored_ceremony(&env, signed_in.flow.id, Stage::Completed).await;

    // Another authenticator cannot answer for this account.
    let mut stranger = SoftPasskey::new(true);
    let strangers = create_passkey(&mut stranger, &api_registration_flow(&env).await).raw_id;
    let challenged = passkey_challenge(&env, "pass@example.com").await;
    assert_eq!(
        allowed_ids(&challenged, "passkey_challenge"),
        vec![credential_id.to_vec()],
        "the challenge names only this account's passkey"
    );
    assert_ne!(strangers.to_vec(), credential_id.to_vec());
    assert!(has_no_allowed_credential(answer(
        &mut stranger,
        ORIGIN,
        &challenged,
        "passkey_challenge"
    )));

    // An unknown identifier's challenge: see
    // `unknown_passkey_identifiers_get_a_challenge_like_a_real_one`.

    // The only passkey of an account without a password cannot be removed.
    let req = with_session(&login.token);
    let settings = api_settings_flow(&env, &req).await;
    let remove = settings.ui.node("passkey_remove").unwrap();
    let disabled = matches!(
        &remove.attributes,
        identa::flow::ui::NodeAttributes::Input(i) if i.disabled
    );
    assert!(disabled, "the button is disabled");
    let id = remove.value().and_then(Value::as_str).unwrap().to_owned();
    let err = submit_settings(
        &env,
        settings.id,
        SettingsSubmission::PasskeyRemove { id },
        &req,
    )
    .await
    .unwrap_err();
    assert_eq!(message_ids(err), vec![4_000_001]);
    assert!(
        env.identa
            .identity(identity.id)
            .await
            .unwrap()
            .credential(CredentialType::Passkey)
            .is_some()
    );
}

/// Requiring a verified address covers passkey sign-in too: an account that signed up
/// with a passkey and has not verified its address is refused (4000010; disguised, as a
/// key the server does not know, on the passkey button), with a fresh challenge to answer
/// once it has.
async fn an_unverified_passkey_account_signs_in_as_configured(env: TestEnv) {
    use identa::flow::UnverifiedSignIn;
    for (unverified, form, on_button) in [
        (UnverifiedSignIn::Refuse, vec![4_000_010], vec![]),
        (
            UnverifiedSignIn::RefuseAsWrongCredentials,
            vec![],
            vec![4_000_001],
        ),
    ] {
        let mut config = test_config();
        config.flows.webauthn = Some(RelyingParty::localhost(ORIGIN));
        config.flows.login.unverified = unverified;
        let env = TestEnv::with_config(env.backend, config).await;
        let mut passkey = SoftPasskey::new(true);
        passkey_account(&env, "pass@example.com", &mut passkey).await;
        let err = passkey_login(&env, "pass@example.com", &mut passkey)
            .await
            .unwrap_err();
        let flow = invalid_flow(err);
        assert_eq!(form_message_ids(&flow), form, "{unverified:?}");
        assert_eq!(
            node_message_ids(&flow, "passkey_login"),
            on_button,
            "{unverified:?}"
        );
        assert!(
            !allowed_ids(&flow, "passkey_challenge").is_empty(),
            "a fresh challenge"
        );
    }
}

/// Every message a flow shows, where (the form, or a node's name), id and text.
fn shown(flow: &Flow) -> Vec<(String, u32, String)> {
    let form = flow
        .ui
        .messages
        .iter()
        .map(|m| ("form".to_owned(), m.id, m.text.clone()));
    let nodes = flow.ui.nodes.iter().flat_map(|n| {
        n.messages
            .iter()
            .map(move |m| (format!("{:?}", n.name()), m.id, m.text.clone()))
    });
    form.chain(nodes).collect()
}

/// The probe of a taken address with one's own passkey: sign up with it (a taken address
/// is answered as new and nothing is stored), then sign in with it. Disguised
/// (`RefuseAsWrongCredentials`), the new address's unverified account is refused exactly
/// as the taken address's unknown key.
async fn passkey_sign_in_after_sign_up_tells_no_taken_address(env: TestEnv) {
    use identa::flow::UnverifiedSignIn;
    use identa::flow::{AfterRegistration, DuplicateRegistration};
    let mut config = test_config();
    config.flows.webauthn = Some(RelyingParty::localhost(ORIGIN));
    config.flows.registration.duplicate = DuplicateRegistration::AnswerAsNew;
    config.flows.registration.after = AfterRegistration::AccountOnly;
    config.flows.login.unverified = UnverifiedSignIn::RefuseAsWrongCredentials;
    let env = TestEnv::with_config(env.backend, config).await;
    passkey_account(&env, "taken@example.com", &mut SoftPasskey::new(true)).await;

    let mut answers = Vec::new();
    for email in ["taken@example.com", "new@example.com"] {
        let mut probe = SoftPasskey::new(true);
        let (_, credential_id) = passkey_account(&env, email, &mut probe).await;
        let challenged = passkey_challenge(&env, email).await;
        // The probe answers with its own key whatever the challenge names.
        let response = discoverable_answer(&mut probe, &challenged, &credential_id, None);
        let submission = LoginSubmission::Passkey {
            identifier: email.into(),
            response: Some(response),
        };
        let err = submit_login(&env, challenged.id, submission, &FlowRequest::api())
            .await
            .unwrap_err();
        let flow = invalid_flow(err);
        answers.push((shown(&flow), node_shape(&flow)));
    }
    assert_eq!(answers[0], answers[1]);
    assert!(
        answers[0]
            .0
            .iter()
            .any(|(_, _, text)| text.contains("could not be verified")),
        "{:?}",
        answers[0].0
    );
}

/// What an authenticator holding a discoverable (resident) passkey answers to a challenge
/// that names no credential: it picks its own credential for the relying party, signs,
/// and returns the user handle it was registered with. `SoftPasskey` keeps no resident
/// keys, so the test names the credential and adds the handle (which the signature does
/// not cover); the browser suite runs the same sign-in with Chromium's authenticator.
fn discoverable_answer(
    authenticator: &mut SoftPasskey,
    challenged: &Flow,
    credential_id: &[u8],
    user_handle: Option<&[u8]>,
) -> String {
    let mut options = request_options(challenged, "passkey_challenge");
    options.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
        type_: "public-key".into(),
        id: credential_id.to_vec(),
        transports: None,
    }];
    let mut answer = authenticator
        .do_authentication(origin(ORIGIN), options)
        .unwrap();
    answer.response.user_handle = user_handle.map(<[u8]>::to_vec);
    posted(&answer)
}

/// Signs up with a passkey: the registration and the authenticator's credential id.
async fn passkey_account(
    env: &TestEnv,
    email: &str,
    authenticator: &mut SoftPasskey,
) -> (Registered, Vec<u8>) {
    let flow = api_registration_flow(env).await;
    let answer = create_passkey(authenticator, &flow);
    let sign_up = RegistrationSubmission::Passkey {
        traits: json!({ "email": email }),
        response: posted(&answer),
    };
    let done = submit_registration(env, flow.id, sign_up, &FlowRequest::api())
        .await
        .unwrap();
    (done, answer.raw_id)
}

async fn passkey_discoverable_sign_in(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let req = FlowRequest::api();
    // Registration prefers a discoverable passkey (and still takes one that is not).
    let flow = api_registration_flow(&env).await;
    let create_data: Value = serde_json::from_str(&node_str(&flow, "passkey_create_data")).unwrap();
    assert_eq!(create_data["displayNameFieldName"], "traits.email");
    let selection = &create_data["credentialOptions"]["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "preferred", "{selection}");
    assert_eq!(selection["requireResidentKey"], false, "{selection}");
    assert_eq!(selection["userVerification"], "required", "{selection}");

    let mut ada_key = SoftPasskey::new(true);
    let (ada, ada_credential) = passkey_account(&env, "ada@example.com", &mut ada_key).await;
    let ada = ada.identity;
    let mut bob_key = SoftPasskey::new(true);
    let bob = passkey_account(&env, "bob@example.com", &mut bob_key)
        .await
        .0
        .identity;
    let bob_sessions = env.identa.sessions(bob.id).await.unwrap().len();

    // A new login flow already carries a challenge for any passkey, naming none.
    let login = async || api_login_flow(&env, &req, LoginIntent::SignIn).await;
    let flow = login().await;
    let challenge: Value = serde_json::from_str(&node_str(&flow, "passkey_challenge")).unwrap();
    let listed = challenge["publicKey"]["allowCredentials"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(listed, 0, "{challenge}");
    assert_eq!(challenge["publicKey"]["userVerification"], "required");
    assert!(challenge.get("mediation").is_none(), "{challenge}");
    let trigger = flow.ui.node("passkey_login_trigger").unwrap();
    assert_eq!(
        serde_json::to_value(trigger).unwrap()["attributes"]["onclickTrigger"],
        "oryPasskeyLogin"
    );
    let submit = async |flow: uuid::Uuid, answer: String| {
        let discoverable = LoginSubmission::Passkey {
            identifier: String::new(),
            response: Some(answer),
        };
        submit_login(&env, flow, discoverable, &req).await
    };

    // The answer's user handle names the account; no identifier was typed.
    let answer = discoverable_answer(
        &mut ada_key,
        &flow,
        &ada_credential,
        Some(ada.id.as_bytes()),
    );
    let signed_in = submit(flow.id, answer.clone()).await.unwrap();
    assert_eq!(signed_in.session.identity.id, ada.id);
    assert_eq!(signed_in.session.session.aal, Aal::Aal1);
    assert_eq!(
        signed_in.session.session.authentication_methods[0].method,
        "passkey"
    );
    assert!(signed_in.token.is_some());
    // The same answer cannot sign in again, in this flow (it is complete) or another.
    let err = submit(flow.id, answer.clone()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Flow(identa::flow::FlowError::State {
                state: FlowState::PassedChallenge,
                ..
            })
        ),
        "{err:?}"
    );
    let other = login().await;
    let err = submit(other.id, answer).await.unwrap_err();
    assert_eq!(message_ids(err), vec![4_000_001]);

    // Ada's key claiming to be Bob's, a handle naming nobody, and no handle: refused,
    // each time with a fresh challenge for the next try.
    for handle in [
        Some(bob.id.as_bytes().to_vec()),
        Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
        None,
    ] {
        let flow = login().await;
        let answer = discoverable_answer(&mut ada_key, &flow, &ada_credential, handle.as_deref());
        let refused = invalid_flow(submit(flow.id, answer).await.unwrap_err());
        let ids: Vec<u32> = refused
            .ui
            .nodes
            .iter()
            .flat_map(|n| n.messages.iter())
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, vec![4_000_001], "handle {handle:?}");
        assert_ne!(
            node_str(&refused, "passkey_challenge"),
            node_str(&flow, "passkey_challenge"),
            "a fresh challenge"
        );
    }
    assert_eq!(
        env.identa.sessions(bob.id).await.unwrap().len(),
        bob_sessions,
        "nobody signed in as Bob"
    );
}

async fn passkey_added_in_settings_signs_in(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let (identity, token) = register_with_password(&env, "both@example.com").await;
    let req = with_session(&token);
    let settings = api_settings_flow(&env, &req).await;
    let mut passkey = SoftPasskey::new(true);
    let created = create_passkey(&mut passkey, &settings);
    let add = SettingsSubmission::PasskeyRegister {
        response: posted(&created),
    };
    let saved = submit_settings(&env, settings.id, add, &req).await.unwrap();
    assert!(saved.flow.ui.node("passkey_remove").is_some());
    let signed_in = passkey_login(&env, "both@example.com", &mut passkey)
        .await
        .unwrap();
    assert_eq!(signed_in.session.identity.id, identity.id);

    // With a password as well, the passkey can be removed; then it no longer signs in.
    let settings = api_settings_flow(&env, &req).await;
    let id = node_str(&settings, "passkey_remove");
    let remove = SettingsSubmission::PasskeyRemove { id };
    let removed = submit_settings(&env, settings.id, remove, &req)
        .await
        .unwrap();
    assert!(
        removed
            .identity
            .credential(CredentialType::Passkey)
            .is_none()
    );
    let challenged = passkey_challenge(&env, "both@example.com").await;
    assert!(
        !allowed_ids(&challenged, "passkey_challenge").contains(&created.raw_id.to_vec()),
        "the removed passkey is no longer asked for"
    );
    assert!(has_no_allowed_credential(answer(
        &mut passkey,
        ORIGIN,
        &challenged,
        "passkey_challenge"
    )));
}

/// A lost key: the admin deletes the identity's security keys, the second factor is gone,
/// and the user enrols a new key that works.
async fn lost_security_key_deleted_by_admin(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let (identity, token) = register_with_password(&env, "lost@example.com").await;
    let mut lost = SoftPasskey::new(true);
    add_security_key(&env, &token, &mut lost, ORIGIN)
        .await
        .unwrap();
    assert_eq!(
        env.identa
            .identity(identity.id)
            .await
            .unwrap()
            .highest_available_aal(),
        Aal::Aal2
    );

    let after = env
        .identa
        .delete_credential(identity.id, CredentialType::Webauthn)
        .await
        .unwrap();
    assert!(after.credential(CredentialType::Webauthn).is_none());
    assert!(after.credential(CredentialType::Password).is_some());
    assert_eq!(after.highest_available_aal(), Aal::Aal1);
    let err = env
        .identa
        .delete_credential(identity.id, CredentialType::Webauthn)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("no webauthn credential")),
        "{err:?}"
    );

    // A new key, enrolled from the aal1 session that is left, steps up.
    let mut new = SoftPasskey::new(true);
    add_security_key(&env, &token, &mut new, ORIGIN)
        .await
        .unwrap();
    let stepped = key_step_up(&env, &token, &mut new, ORIGIN).await.unwrap();
    assert_eq!(stepped.session.session.aal, Aal::Aal2);
}

/// An identifier no account can have (a NUL, which PostgreSQL would refuse in a query;
/// longer than any identifier) gets a challenge like an unknown one, not an error.
async fn hostile_passkey_identifiers_get_a_challenge(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let long = "x".repeat(5_000);
    for identifier in ["ada\0@example.com", long.as_str(), "nobody@example.com"] {
        let flow = passkey_challenge(&env, identifier).await;
        let ids = allowed_ids(&flow, "passkey_challenge");
        assert!(
            !ids.is_empty(),
            "a believable challenge for {identifier:.20}"
        );
    }
}

on_every_backend!(
    hostile_passkey_identifiers_get_a_challenge,
    lost_security_key_deleted_by_admin,
    security_key_as_second_factor,
    another_origin_is_refused,
    cloned_authenticator_is_refused,
    passkey_sign_up_and_sign_in,
    passkey_discoverable_sign_in,
    completed_flows_hold_no_ceremony,
    passkey_added_in_settings_signs_in,
    an_unverified_passkey_account_signs_in_as_configured,
    passkey_sign_in_after_sign_up_tells_no_taken_address,
);

/// The passkey challenge JSON of `flow` exactly as sent, with its random parts — the
/// challenge and each allowed credential id — replaced by placeholders of the same
/// length, the rest byte for byte.
fn challenge_template(flow: &Flow) -> String {
    let raw = node_str(flow, "passkey_challenge");
    let options = request_options(flow, "passkey_challenge");
    let b64 = |bytes: &[u8]| {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(bytes)
    };
    let mut template = raw.clone();
    let mut random = vec![b64(&options.public_key.challenge)];
    random.extend(
        options
            .public_key
            .allow_credentials
            .iter()
            .map(|c| b64(&c.id)),
    );
    for (i, part) in random.iter().enumerate() {
        let quoted = format!("\"{part}\"");
        assert_eq!(template.matches(&quoted).count(), 1, "{raw}");
        let filler = char::from(b'A' + u8::try_from(i).unwrap());
        let placeholder = format!("\"{}\"", filler.to_string().repeat(part.len()));
        template = template.replace(&quoted, &placeholder);
    }
    template
}

/// What a login form shows, node by node (group, type, name), without values.
fn node_shape(flow: &Flow) -> Vec<String> {
    flow.ui
        .nodes
        .iter()
        .map(|n| format!("{:?}/{:?}/{:?}", n.group, n.node_type, n.name()))
        .collect()
}

/// A passkey challenge for an unknown identifier is byte for byte the challenge of an
/// account with one passkey, but for its random parts, with ids of the same length, and
/// the same for every probe of that identifier.
async fn unknown_passkey_identifiers_get_a_challenge_like_a_real_one(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    // A platform passkey, with the transports a browser reports for one.
    let flow = api_registration_flow(&env).await;
    let mut answer = create_passkey(&mut SoftPasskey::new(true), &flow);
    answer.response.transports = Some(vec![
        AuthenticatorTransport::Internal,
        AuthenticatorTransport::Hybrid,
    ]);
    let sign_up = RegistrationSubmission::Passkey {
        traits: json!({ "email": "real@example.com" }),
        response: posted(&answer),
    };
    submit_registration(&env, flow.id, sign_up, &FlowRequest::api())
        .await
        .unwrap();
    let real = passkey_challenge(&env, "real@example.com").await;
    let fake = passkey_challenge(&env, "fake@example.com").await;
    assert_eq!(challenge_template(&real), challenge_template(&fake));
    assert_eq!(node_shape(&real), node_shape(&fake));
    assert_eq!(all_message_ids(&real), all_message_ids(&fake));
    // The same credential ids on every probe of the unknown identifier; other ones for
    // another identifier.
    let again = passkey_challenge(&env, "fake@example.com").await;
    assert_eq!(
        allowed_ids(&fake, "passkey_challenge"),
        allowed_ids(&again, "passkey_challenge")
    );
    let other = passkey_challenge(&env, "other@example.com").await;
    assert_ne!(
        allowed_ids(&fake, "passkey_challenge"),
        allowed_ids(&other, "passkey_challenge")
    );
}

on_every_backend!(unknown_passkey_identifiers_get_a_challenge_like_a_real_one);

/// A passkey submission (`identifier` empty: discoverable) to a new API login flow from
/// client address `ip`.
async fn passkey_from(
    env: &TestEnv,
    ip: &str,
    identifier: &str,
    response: Option<String>,
) -> Result<LoggedIn, Error> {
    let req = FlowRequest::api().with_device(Device::new(Some(ip), None));
    let flow = api_login_flow(env, &req, LoginIntent::SignIn).await;
    let submission = LoginSubmission::Passkey {
        identifier: identifier.into(),
        response,
    };
    submit_login(env, flow.id, submission, &req).await
}

/// The wait a throttled attempt is told; panics on any other answer.
fn throttled(result: Result<LoggedIn, Error>) -> std::time::Duration {
    match result {
        Err(Error::Throttled(throttled)) => throttled.retry_after,
        other => panic!("expected a throttled attempt, got {other:?}"),
    }
}

/// Refused passkey answers for a named identifier count like wrong passwords: 5 from one
/// address in 15 minutes, then refused unread — on counters of their own, so the owner's
/// passkey from elsewhere, and the address's other sign-ins, still work.
async fn passkey_failures_are_throttled_like_password_failures(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let mut passkey = SoftPasskey::new(true);
    passkey_account(&env, "pass@example.com", &mut passkey).await;
    for _ in 0..5 {
        let refused = passkey_from(&env, "192.0.2.1", "pass@example.com", Some("{}".into()));
        let flow = invalid_flow(refused.await.unwrap_err());
        let texts: Vec<&str> = flow
            .ui
            .nodes
            .iter()
            .flat_map(|n| n.messages.iter())
            .chain(flow.ui.messages.iter())
            .map(|m| m.text.as_str())
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("could not be verified")),
            "{texts:?}"
        );
    }
    let wait =
        throttled(passkey_from(&env, "192.0.2.1", "Pass@Example.com", Some("{}".into())).await);
    assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_secs(900));
    // Even the challenge is refused to that address for that identifier.
    throttled(passkey_from(&env, "192.0.2.1", "pass@example.com", None).await);
    // Another identifier from the same address is still answered.
    let other = passkey_from(&env, "192.0.2.1", "other@example.com", None).await;
    assert!(matches!(other, Err(Error::Flow(_))), "{other:?}");
    // The owner signs in with the passkey from another address.
    let req = FlowRequest::api().with_device(Device::new(Some("192.0.2.2"), None));
    let flow = api_login_flow(&env, &req, LoginIntent::SignIn).await;
    let ask = LoginSubmission::Passkey {
        identifier: "pass@example.com".into(),
        response: None,
    };
    let challenged = invalid_flow(submit_login(&env, flow.id, ask, &req).await.unwrap_err());
    let signed = answer(&mut passkey, ORIGIN, &challenged, "passkey_challenge").unwrap();
    let submission = LoginSubmission::Passkey {
        identifier: "pass@example.com".into(),
        response: Some(posted(&signed)),
    };
    submit_login(&env, challenged.id, submission, &req)
        .await
        .unwrap();
}

/// Refused passkey answers for one identifier from many addresses lock nothing: anyone
/// may ask a challenge for any identifier and answer junk, and a passkey cannot be
/// guessed, so there is no count per identifier from all addresses. After 60 refusals
/// from 15 addresses (4 each, under the per-address limit) the owner signs in with the
/// passkey from another address.
async fn refused_passkey_answers_from_many_addresses_lock_nothing(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    let mut passkey = SoftPasskey::new(true);
    passkey_account(&env, "pass@example.com", &mut passkey).await;
    for address in 1..=15 {
        let ip = format!("198.51.100.{address}");
        for _ in 0..4 {
            let refused = passkey_from(&env, &ip, "pass@example.com", Some("{}".into())).await;
            assert!(matches!(refused, Err(Error::Flow(_))), "{refused:?}");
        }
    }
    let req = FlowRequest::api().with_device(Device::new(Some("192.0.2.2"), None));
    let flow = api_login_flow(&env, &req, LoginIntent::SignIn).await;
    let ask = LoginSubmission::Passkey {
        identifier: "pass@example.com".into(),
        response: None,
    };
    let challenged = invalid_flow(submit_login(&env, flow.id, ask, &req).await.unwrap_err());
    let signed = answer(&mut passkey, ORIGIN, &challenged, "passkey_challenge").unwrap();
    let submission = LoginSubmission::Passkey {
        identifier: "pass@example.com".into(),
        response: Some(posted(&signed)),
    };
    submit_login(&env, challenged.id, submission, &req)
        .await
        .unwrap();
}

/// Passkey challenges and answers, discoverable or not, count against their client
/// address's 100 login attempts a minute, which password logins share.
async fn passkey_attempts_count_against_the_login_limit_of_their_address(env: TestEnv) {
    let env = webauthn_env(env.backend).await;
    for i in 0..50 {
        let asked = passkey_from(&env, "192.0.2.1", &format!("user{i}@example.com"), None).await;
        assert!(matches!(asked, Err(Error::Flow(_))), "{asked:?}");
        let answered = passkey_from(&env, "192.0.2.1", "", Some("{}".into())).await;
        assert!(matches!(answered, Err(Error::Flow(_))), "{answered:?}");
    }
    let wait = throttled(passkey_from(&env, "192.0.2.1", "", Some("{}".into())).await);
    assert!(wait <= std::time::Duration::from_secs(60));
    // A password login from that address is over the same limit.
    let req = FlowRequest::api().with_device(Device::new(Some("192.0.2.1"), None));
    let flow = api_login_flow(&env, &req, LoginIntent::SignIn).await;
    throttled(
        submit_login(
            &env,
            flow.id,
            password_login("someone@example.com", "guess"),
            &req,
        )
        .await,
    );
    // Another address is not.
    let other = passkey_from(&env, "192.0.2.2", "", Some("{}".into())).await;
    assert!(matches!(other, Err(Error::Flow(_))), "{other:?}");
}

on_every_backend!(
    passkey_failures_are_throttled_like_password_failures,
    refused_passkey_answers_from_many_addresses_lock_nothing,
    passkey_attempts_count_against_the_login_limit_of_their_address,
);
