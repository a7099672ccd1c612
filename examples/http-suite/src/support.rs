//! What the cases share: the two kinds of client, sending a request and reading its
//! answer, reading flows, and running native (API) flows as an app does, signing up and
//! in among them.

use reqwest::{Client, RequestBuilder, StatusCode, redirect};
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

/// The header a native app sends its session token in.
pub(crate) const SESSION_TOKEN: &str = "X-Session-Token";

/// A response's status, and its body as JSON (a JSON string when it is not JSON).
pub(crate) async fn body(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Sends `req` and reads the answer as [`body`] does.
pub(crate) async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    body(req.send().await.expect("the host answers")).await
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

/// The value of the flow's input `name` (a CSRF token, a challenge); fails the case
/// naming it when the flow has none.
#[track_caller]
pub(crate) fn node_value(flow: &Value, name: &str) -> String {
    node(flow, name)["attributes"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no `{name}` in {flow}"))
        .to_owned()
}

/// A self-service flow, by what it is for. [`Flow::start`] and [`Flow::submit`] run it as
/// a native app does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Flow {
    Registration,
    Login,
    /// A login that raises a signed-in session to aal2.
    StepUp,
    Settings,
}

impl Flow {
    /// Its name in the URLs: `/self-service/<name>…`.
    fn name(self) -> &'static str {
        match self {
            Flow::Registration => "registration",
            Flow::Login | Flow::StepUp => "login",
            Flow::Settings => "settings",
        }
    }

    /// Where a native app starts it.
    fn start_url(self, host: &Host) -> String {
        let aal = if matches!(self, Flow::StepUp) {
            "?aal=aal2"
        } else {
            ""
        };
        format!("{}/self-service/{}/api{aal}", host.public, self.name())
    }

    /// Where `flow` (one of this kind) is submitted: `/self-service/<name>?flow=<id>`.
    pub(crate) fn submit_url(self, host: &Host, flow: &Value) -> String {
        let id = flow["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {flow}"));
        format!("{}/self-service/{}?flow={id}", host.public, self.name())
    }

    /// Starts this flow as a native app, signed in with `token` if given.
    pub(crate) async fn start(self, host: &Host, token: Option<&str>) -> (StatusCode, Value) {
        send(signed_in(app().get(self.start_url(host)), token)).await
    }

    /// Submits `payload` as JSON to `flow` (one of this kind), signed in with `token` if
    /// given.
    pub(crate) async fn submit(
        self,
        host: &Host,
        flow: &Value,
        token: Option<&str>,
        payload: Value,
    ) -> (StatusCode, Value) {
        let req = app().post(self.submit_url(host, flow)).json(&payload);
        send(signed_in(req, token)).await
    }
}

/// `req` with the session token, if there is one.
fn signed_in(req: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => req.header(SESSION_TOKEN, token),
        None => req,
    }
}

/// `GET /sessions/whoami` with a session token.
pub(crate) async fn whoami(host: &Host, token: &str) -> (StatusCode, Value) {
    send(
        app()
            .get(format!("{}/sessions/whoami", host.public))
            .header(SESSION_TOKEN, token),
    )
    .await
}

/// Signs `email` up through the native API flow: the answer.
pub(crate) async fn api_sign_up(host: &Host, email: &str) -> (StatusCode, Value) {
    let (status, flow) = Flow::Registration.start(host, None).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    Flow::Registration
        .submit(
            host,
            &flow,
            None,
            json!({ "method": "password", "traits": { "email": email, "name": "Ada" }, "password": PASSWORD }),
        )
        .await
}

/// Registers through the native API flow, verifies the address with the code mailed to it,
/// then signs in (the example hosts' registration is enumeration-safe, so it signs no one
/// in, and sign-in waits for a verified address); returns the session token.
pub(crate) async fn api_register(host: &Host, email: &str) -> String {
    let (status, done) = api_sign_up(host, email).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.get("session_token").is_none(), "{done}");
    let flow = &done["continue_with"][0]["flow"];
    submit_verification_code(host, flow, email).await;
    let (status, login) = api_login(host, email, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    login["session_token"]
        .as_str()
        .expect("a session token")
        .to_owned()
}

/// Signs in through the native API flow; returns the submission's answer.
pub(crate) async fn api_login(host: &Host, email: &str, password: &str) -> (StatusCode, Value) {
    let (_, flow) = Flow::Login.start(host, None).await;
    Flow::Login
        .submit(
            host,
            &flow,
            None,
            json!({ "method": "password", "identifier": email, "password": password }),
        )
        .await
}

/// The code in the newest mail to `email`, read from the host's outbox (admin API).
pub(crate) async fn mailed_code(host: &Host, email: &str) -> String {
    let (status, listed) = send(app().get(format!("{}/admin/courier/messages", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let body = listed
        .as_array()
        .and_then(|all| all.iter().find(|m| m["recipient"] == email))
        .and_then(|m| m["body"].as_str())
        .unwrap_or_else(|| panic!("no mail to {email} in {listed}"))
        .to_owned();
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_owned()
}

/// Submits the code mailed to `email` to verification flow `flow` (its JSON, or the
/// `flow` of a `show_verification_ui` item) as a native app does.
async fn submit_verification_code(host: &Host, flow: &Value, email: &str) {
    let id = flow["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {flow}"));
    let code = mailed_code(host, email).await;
    let (status, done) = send(
        app()
            .post(format!(
                "{}/self-service/verification?flow={id}",
                host.public
            ))
            .json(&json!({ "method": "code", "code": code })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "passed_challenge", "{done}");
}

/// Verifies `email` through a new native verification flow (an account the admin API
/// made, say): asks for a code, then submits the one mailed.
pub(crate) async fn api_verify(host: &Host, email: &str) {
    let (status, flow) =
        send(app().get(format!("{}/self-service/verification/api", host.public))).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let (status, sent) = send(
        app()
            .post(format!(
                "{}/self-service/verification?flow={}",
                host.public,
                flow["id"].as_str().unwrap()
            ))
            .json(&json!({ "method": "code", "email": email })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    submit_verification_code(host, &flow, email).await;
}
