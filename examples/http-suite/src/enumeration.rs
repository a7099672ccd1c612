//! Enumeration-safe registration, as the example hosts run it: signing up with a taken
//! address answers as signing up with a new one, and so does signing in afterwards.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::Host;
use crate::support::{
    Flow, PASSWORD, api_login, api_register, api_sign_up, app, browser, message_ids, node_value,
    send,
};

/// A JSON value with every scalar replaced by its type's name: what a client can see of
/// an answer besides its values.
pub(crate) fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

/// A sign-up with a taken address gets the status and body shape a new one gets (a
/// browser: the same redirect); one account remains, and its owner is mailed
/// `registration_attempted`. Signing in with the password just signed up with is refused
/// alike for a new and a taken address (the new account is not verified yet).
pub async fn taken_address_looks_new(host: &Host) {
    let (new_status, new) = api_sign_up(host, "first@example.com").await;
    assert_eq!(new_status, StatusCode::OK, "{new}");
    let (taken_status, taken) = api_sign_up(host, "First@Example.com").await;
    assert_eq!(taken_status, new_status, "{taken}");
    assert_eq!(shape(&taken), shape(&new), "{taken}\n{new}");
    assert_ne!(taken["identity"]["id"], new["identity"]["id"]);
    assert_eq!(taken["continue_with"][0]["action"], "show_verification_ui");
    // Its verification flow reads as a new address's.
    let verification = |answer: &Value| {
        let id = answer["continue_with"][0]["flow"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        send(app().get(format!(
            "{}/self-service/verification/flows?id={id}",
            host.public
        )))
    };
    let (status, new_flow) = verification(&new).await;
    assert_eq!(status, StatusCode::OK, "{new_flow}");
    let (status, taken_flow) = verification(&taken).await;
    assert_eq!(status, StatusCode::OK, "{taken_flow}");
    assert_eq!(shape(&taken_flow), shape(&new_flow));
    assert_eq!(taken_flow["state"], "sent_email");
    assert_eq!(taken_flow["ui"]["messages"], new_flow["ui"]["messages"]);

    // One account; the owner got a code, then the notice.
    let c = app();
    let (status, found) = send(c.get(format!(
        "{}/admin/identities?credentials_identifier=first@example.com",
        host.admin
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], new["identity"]["id"]);
    let (status, listed) = send(c.get(format!("{}/admin/courier/messages", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let mut templates: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == "first@example.com")
        .filter_map(|m| m["template_type"].as_str())
        .collect();
    templates.sort_unstable();
    assert_eq!(
        templates,
        ["registration_attempted", "verification_code_valid"]
    );

    // A browser's form post: the same redirect, no session either way.
    let new = browser_sign_up(host, "second@example.com").await;
    let taken = browser_sign_up(host, "second@example.com").await;
    assert_eq!(taken, new);
    assert_eq!(new.0, StatusCode::SEE_OTHER);

    // Signing up with a password of one's own, then signing in with it, tells nothing
    // either: a new address's account is not verified, so it is refused as the taken
    // address's owner's password refuses the stranger's.
    api_register(host, "owner@example.com").await;
    let probe = "the prober's own passphrase";
    let mut answers = Vec::new();
    for email in ["owner@example.com", "fresh@example.com"] {
        let (status, flow) = Flow::Registration.start(host, None).await;
        assert_eq!(status, StatusCode::OK, "{flow}");
        let (status, done) = Flow::Registration
            .submit(
                host,
                &flow,
                None,
                json!({ "method": "password", "traits": { "email": email }, "password": probe }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let (status, refused) = api_login(host, email, probe).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(message_ids(&refused), [4_000_006], "{refused}");
        answers.push((shape(&refused), refused["ui"]["messages"].clone()));
    }
    assert_eq!(answers[0], answers[1]);
}

/// Signs `email` up through a browser registration form: the status, where it redirects,
/// and whether it set a session cookie.
async fn browser_sign_up(host: &Host, email: &str) -> (StatusCode, String, bool) {
    let b = browser();
    let res = b
        .get(format!("{}/self-service/registration/browser", host.public))
        .send()
        .await
        .unwrap();
    let location = res.headers()[LOCATION].to_str().unwrap().to_owned();
    let flow_id = location.rsplit("flow=").next().unwrap().to_owned();
    let (status, flow) = send(
        b.get(format!(
            "{}/self-service/registration/flows?id={flow_id}",
            host.public
        ))
        .header(ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let csrf = node_value(&flow, "csrf_token");
    let res = b
        .post(format!(
            "{}/self-service/registration?flow={flow_id}",
            host.public
        ))
        .form(&[
            ("method", "password"),
            ("traits.email", email),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let signed_in = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("identa_session="));
    let to = res
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status(), to, signed_in)
}
