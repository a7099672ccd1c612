//! Registration flows: the form a schema makes, a password sign-up that issues a session
//! and queues verification, and submissions refused with messages on their nodes.

use identa::ErrorKind;
use identa::courier::TemplateKind;
use identa::flow::{ContinueWith, FlowRequest, FlowState, FlowType};
use serde_json::json;

use crate::common::{
    PASSWORD, TestEnv, api_registration_flow, code_sent_to, form_message_ids, has_account,
    invalid_flow, mail_to, node_message_ids, node_value, password_registration, register,
    stored_documents, stored_flow_document, submit_registration, verification_flow_of,
};
use crate::on_every_backend;

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

on_every_backend!(
    registration_creates_identity_session_and_verification,
    registration_errors_land_on_their_nodes,
);
