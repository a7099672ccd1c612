//! Registration flows: the form a schema makes, a password sign-up that issues a session
//! and queues verification, submissions refused with messages on their nodes, and
//! enumeration-safe registration (a taken address answered as a new one).

use identa::courier::TemplateKind;
use identa::flow::registration::Registered;
use identa::flow::{
    AfterRegistration, ContinueWith, DuplicateRegistration, FlowRequest, FlowState, FlowType,
};
use identa::store::PageRequest;
use identa::{Error, ErrorKind, Identa};
use serde_json::{Value, json};

use crate::common::race::{ROUNDS, TASKS, released_together};
use crate::common::{
    PASSWORD, TestEnv, api_registration_flow, code_sent_to, create_account, form_message_ids,
    has_account, invalid_flow, is_invalid_credentials, mail_to, node_message_ids, node_value,
    password_registration, register, sign_in, sign_in_with, stored_documents, stored_flow_document,
    submit_registration, verification_flow_of,
};
use crate::{on_every_backend, on_pooled_backends};

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
    // Flows know no routes: the HTTP layer sets where the form posts when it answers.
    assert_eq!(json["ui"]["action"], "");
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

    let sign_up = |email: &str| password_registration(json!({ "email": email }), PASSWORD);
    let done = submit_registration(&env, flow.id, sign_up("Ada@Example.com"), &req)
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
    let verification_flow = verification_flow_of(&done.continue_with);
    let stored = env.identa.flow(verification_flow, &req).await.unwrap();
    assert_eq!(stored.state, FlowState::SentEmail);
    // The token never rests in a stored flow: not in the registration flow's row (its
    // internal part included), nor in the verification flow's.
    let registration_row = stored_flow_document(&env, flow.id).await;
    assert_eq!(registration_row["state"], "passed_challenge");
    let rows = stored_documents(&env, "identa_flows").await;
    assert_eq!(rows.len(), 2, "registration and verification");
    for row in &rows {
        assert!(!row.contains(login.token.expose()), "{row}");
    }
    // The verification email was queued in the same commit.
    let code = code_sent_to(&env, "ada@example.com", TemplateKind::VerificationCodeValid).await;
    assert_eq!(code.len(), 6);
    // A second submission of the finished flow is refused with a typed error.
    let again = submit_registration(&env, flow.id, sign_up("other@example.com"), &req)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::FlowState);
}

async fn registration_errors_land_on_their_nodes(env: TestEnv) {
    let req = FlowRequest::api();
    let reg = env.identa.registration_flow();
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    // Missing email.
    let no_email = password_registration(json!({ "name": { "first": "Ada" } }), PASSWORD);
    let err = reg.submit(flow.id, no_email, &req).await.unwrap_err();
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
    let short = password_registration(json!({ "email": "ada@example.com" }), "short");
    let shown = invalid_flow(reg.submit(flow.id, short, &req).await.unwrap_err());
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
    let address = "ada.lovelace@example.com";
    let similar = password_registration(json!({ "email": address }), address);
    let shown = invalid_flow(reg.submit(flow.id, similar, &req).await.unwrap_err());
    assert_eq!(node_message_ids(&shown, "password"), vec![4_000_031]);
    assert!(!has_account(&env, "ada@example.com").await);
    assert!(mail_to(&env, "ada@example.com").await.is_empty());

    // Duplicate account.
    register(&env, "taken@example.com").await;
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    let taken = password_registration(json!({ "email": "TAKEN@example.com" }), PASSWORD);
    let shown = invalid_flow(reg.submit(flow.id, taken, &req).await.unwrap_err());
    assert_eq!(form_message_ids(&shown), vec![4_000_007]);
    assert_eq!(shown.state, FlowState::ChooseMethod);
    // Exactly one verification email for the taken address: the failed commit queued none.
    assert_eq!(mail_to(&env, "taken@example.com").await.len(), 1);
}

/// An engine on `env`'s store, clock and secrets (so `env`'s courier reads its mail) whose
/// registration answers taken addresses as new ones.
fn enumeration_safe(env: &TestEnv) -> Identa {
    let mut config = env.identa.config().clone();
    config.flows.registration.duplicate = DuplicateRegistration::AnswerAsNew;
    config.flows.registration.after = AfterRegistration::AccountOnly;
    env.another_engine(config).build().unwrap()
}

/// Signs `email` up through a new API registration flow of `identa`, with `password`.
async fn sign_up_on(identa: &Identa, email: &str, password: &str) -> Result<Registered, Error> {
    let req = FlowRequest::api();
    let reg = identa.registration_flow();
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    let submission = password_registration(json!({ "email": email }), password);
    reg.submit(flow.id, submission, &req).await
}

/// A JSON value with every scalar replaced by its type's name: what a client can see of
/// an answer besides its values.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// What a client is answered for a registration (the HTTP layer's body), and the
/// verification flow it is sent on to, as it would fetch it.
async fn seen_by_client(identa: &Identa, done: &Registered) -> (Value, Value) {
    let body = json!({ "identity": done.identity, "continue_with": done.continue_with });
    let verification = verification_flow_of(&done.continue_with);
    let flow = identa
        .flow(verification, &FlowRequest::api())
        .await
        .unwrap();
    assert_eq!(flow.state, FlowState::SentEmail);
    (body, flow.to_kratos_json())
}

async fn identity_count(env: &TestEnv) -> usize {
    let page = env.identa.list_identities(PageRequest::default()).await;
    page.unwrap().items.len()
}

async fn taken_address_is_answered_as_new(env: TestEnv) {
    // Answering as new with a session for new accounts only would give it away.
    let mut signs_in = env.identa.config().clone();
    signs_in.flows.registration.duplicate = DuplicateRegistration::AnswerAsNew;
    let err = env.another_engine(signs_in).build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("AccountOnly"), "{err}");

    let safe = enumeration_safe(&env);
    let owner = create_account(&env, "ada@example.com").await;
    let fresh = sign_up_on(&safe, "bob@example.com", "another long passphrase")
        .await
        .unwrap();
    let before = identity_count(&env).await;
    let taken = sign_up_on(&safe, "Ada@Example.com", "another long passphrase")
        .await
        .unwrap();

    // Answered as a new sign-up: passed, no session, a fresh identity with the traits as
    // submitted, one verification flow for the address.
    assert_eq!(taken.flow.state, FlowState::PassedChallenge);
    assert!(taken.login.is_none() && fresh.login.is_none());
    assert_ne!(taken.identity.id, owner.id);
    assert_eq!(taken.identity.traits["email"], "Ada@Example.com");
    let (fresh_body, fresh_verification) = seen_by_client(&safe, &fresh).await;
    let (taken_body, taken_verification) = seen_by_client(&safe, &taken).await;
    assert_eq!(shape(&taken_body), shape(&fresh_body));
    assert_eq!(shape(&taken_verification), shape(&fresh_verification));
    assert_eq!(
        shape(&taken.flow.to_kratos_json()),
        shape(&fresh.flow.to_kratos_json())
    );
    assert_eq!(
        taken_verification["ui"]["messages"],
        fresh_verification["ui"]["messages"]
    );

    // Nothing created, the owner untouched: same traits, same password.
    assert_eq!(identity_count(&env).await, before);
    assert_eq!(
        env.identa
            .identity(taken.identity.id)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let now = env.identa.identity(owner.id).await.unwrap();
    assert_eq!(json!(now), json!(owner));
    sign_in(&env, "ada@example.com").await;
    assert!(is_invalid_credentials(
        &sign_in_with(&env, "ada@example.com", "another long passphrase")
            .await
            .unwrap_err()
    ));

    // The owner is told, with no code; the new address got its code.
    let mail = mail_to(&env, "ada@example.com").await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].template, TemplateKind::RegistrationAttempted);
    assert!(
        mail[0].email.text.contains("recover"),
        "{}",
        mail[0].email.text
    );
    assert!(!mail[0].email.text.chars().any(|c| c.is_ascii_digit()));
    code_sent_to(&env, "bob@example.com", TemplateKind::VerificationCodeValid).await;
}

async fn racing_sign_ups_of_one_address_all_look_new(env: TestEnv) {
    let safe = enumeration_safe(&env);
    for round in 0..ROUNDS {
        let email = format!("race{round}@example.com");
        let results = released_together(|_| {
            let safe = safe.clone();
            let email = email.clone();
            async move { sign_up_on(&safe, &email, PASSWORD).await }
        })
        .await;
        for result in &results {
            let done = result.as_ref().unwrap_or_else(|err| panic!("{err:?}"));
            assert_eq!(done.flow.state, FlowState::PassedChallenge);
            assert_eq!(done.continue_with.len(), 1);
        }
        // One account; one verification code and a notice for every other sign-up.
        assert!(has_account(&env, &email).await);
        let mail = mail_to(&env, &email).await;
        let count = |kind| mail.iter().filter(|m| m.template == kind).count();
        assert_eq!(count(TemplateKind::VerificationCodeValid), 1);
        assert_eq!(count(TemplateKind::RegistrationAttempted), TASKS - 1);
    }
    assert_eq!(identity_count(&env).await, ROUNDS);
}

on_every_backend!(
    registration_creates_identity_session_and_verification,
    registration_errors_land_on_their_nodes,
    taken_address_is_answered_as_new,
);

on_pooled_backends!(racing_sign_ups_of_one_address_all_look_new);

/// Duplicate sign-ups mail the owner a `registration_attempted` notice each, up to the
/// address's mail cap (10 an hour, shared with codes); beyond it none is queued, and the
/// answer is still a new sign-up's.
async fn duplicate_sign_ups_beyond_the_mail_cap_queue_no_notice(env: TestEnv) {
    let safe = enumeration_safe(&env);
    create_account(&env, "ada@example.com").await;
    let fresh = sign_up_on(&safe, "bob@example.com", "another long passphrase")
        .await
        .unwrap();
    let (fresh_body, fresh_verification) = seen_by_client(&safe, &fresh).await;
    for _ in 0..11 {
        let taken = sign_up_on(&safe, "ada@example.com", "another long passphrase")
            .await
            .unwrap();
        assert_eq!(taken.flow.state, FlowState::PassedChallenge);
        assert!(taken.login.is_none());
        let (body, verification) = seen_by_client(&safe, &taken).await;
        assert_eq!(shape(&body), shape(&fresh_body));
        assert_eq!(shape(&verification), shape(&fresh_verification));
        assert_eq!(
            shape(&taken.flow.to_kratos_json()),
            shape(&fresh.flow.to_kratos_json())
        );
    }
    let mail = mail_to(&env, "ada@example.com").await;
    assert_eq!(mail.len(), 10);
    assert!(
        mail.iter()
            .all(|m| m.template == TemplateKind::RegistrationAttempted)
    );
}

on_every_backend!(duplicate_sign_ups_beyond_the_mail_cap_queue_no_notice);

/// Renames table `from` to `to` (to make writes to it fail, then work again).
async fn rename_table(env: &TestEnv, from: &str, to: &str) {
    use identa::sea_orm::ConnectionTrait;
    env.store
        .connection()
        .execute_unprepared(&format!("ALTER TABLE {from} RENAME TO {to}"))
        .await
        .unwrap();
}

/// A duplicate sign-up whose commit fails queues no notice and spends none of the
/// address's mail cap: after 10 such failures (the cap), the next duplicate sign-up
/// still mails the owner.
async fn a_notice_whose_commit_failed_spends_no_mail_cap(env: TestEnv) {
    let safe = enumeration_safe(&env);
    create_account(&env, "ada@example.com").await;
    rename_table(
        &env,
        "identa_courier_messages",
        "identa_courier_messages_away",
    )
    .await;
    for _ in 0..10 {
        sign_up_on(&safe, "ada@example.com", "another long passphrase")
            .await
            .unwrap_err();
    }
    rename_table(
        &env,
        "identa_courier_messages_away",
        "identa_courier_messages",
    )
    .await;
    sign_up_on(&safe, "ada@example.com", "another long passphrase")
        .await
        .unwrap();
    let mail = mail_to(&env, "ada@example.com").await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].template, TemplateKind::RegistrationAttempted);
}

on_every_backend!(a_notice_whose_commit_failed_spends_no_mail_cap);
