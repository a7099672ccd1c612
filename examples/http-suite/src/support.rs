//! What the cases share: the two kinds of client, reading responses and flows, and
//! signing up or in through the native API.

use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};

use crate::Host;

/// A client that keeps cookies and does not follow redirects (cases look at them).
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// A client without cookies, as a native app.
pub fn app() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

pub(crate) const PASSWORD: &str = "a long and unusual passphrase";

pub(crate) async fn body(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub(crate) fn message_ids(flow: &Value) -> Vec<i64> {
    flow["ui"]["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_i64()).collect())
        .unwrap_or_default()
}

pub(crate) fn node<'a>(flow: &'a Value, name: &str) -> &'a Value {
    flow["ui"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["attributes"]["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Registers through the native API flow; returns the session token.
pub(crate) async fn api_register(host: &Host, email: &str) -> String {
    let c = app();
    let (status, flow) = body(
        c.get(format!("{}/self-service/registration/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let (status, done) = body(
        c.post(format!("{}/self-service/registration?flow={}", host.public, flow["id"].as_str().unwrap()))
            .json(&json!({ "method": "password", "traits": { "email": email, "name": "Ada" }, "password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    done["session_token"]
        .as_str()
        .expect("a session token")
        .to_owned()
}

pub(crate) async fn api_login(host: &Host, email: &str, password: &str) -> (StatusCode, Value) {
    let c = app();
    let (_, flow) = body(
        c.get(format!("{}/self-service/login/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    body(
        c.post(format!(
            "{}/self-service/login?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ))
        .json(&json!({ "method": "password", "identifier": email, "password": password }))
        .send()
        .await
        .unwrap(),
    )
    .await
}
