//! The HTTP-level test suite every identa host runs: the same cases against the axum and
//! the actix host, through a real HTTP client with a cookie jar. A host's test file starts
//! its server and calls [`http_suite!`]:
//!
//! ```ignore
//! identa_http_suite::http_suite!(crate::start_for_tests);
//! ```
//!
//! where `start_for_tests()` is an `async fn() -> identa_http_suite::Host`.

use std::any::Any;

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};

pub use tokio;

/// A running host under test.
pub struct Host {
    /// Base URL of the public API (`http://127.0.0.1:port`).
    pub public: String,
    /// Base URL of the admin API.
    pub admin: String,
    /// Keeps the server alive while the case runs.
    pub guard: Box<dyn Any + Send>,
}

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

const PASSWORD: &str = "a long and unusual passphrase";

async fn body(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn message_ids(flow: &Value) -> Vec<i64> {
    flow["ui"]["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_i64()).collect())
        .unwrap_or_default()
}

fn node<'a>(flow: &'a Value, name: &str) -> &'a Value {
    flow["ui"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["attributes"]["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Registers through the native API flow; returns the session token.
async fn api_register(host: &Host, email: &str) -> String {
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

async fn api_login(host: &Host, email: &str, password: &str) -> (StatusCode, Value) {
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

/// Health, schemas, and the admin API's absence from the public listener.
pub async fn health_schemas_and_separate_admin(host: &Host) {
    let c = app();
    for base in [&host.public, &host.admin] {
        let (status, v) = body(c.get(format!("{base}/health/alive")).send().await.unwrap()).await;
        assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    }
    let (status, schemas) = body(
        c.get(format!("{}/schemas", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schemas[0]["id"], "default");
    let (status, schema) = body(
        c.get(format!("{}/schemas/default", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(schema["properties"]["traits"]["properties"]["email"].is_object());
    let (status, _) = body(
        c.get(format!("{}/schemas/nope", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The admin API is not reachable through the public listener, and the other way round.
    let (status, err) = body(
        c.get(format!("{}/admin/identities", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, _) = body(
        c.get(format!("{}/admin/identities", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = body(
        c.get(format!("{}/self-service/login/api", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The native round trip: register, whoami, logout, login, wrong password.
pub async fn native_flows(host: &Host) {
    let c = app();
    let token = api_register(host, "native@example.com").await;
    let (status, me) = body(
        c.get(format!("{}/sessions/whoami", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["identity"]["traits"]["email"], "native@example.com");
    assert_eq!(me["authenticator_assurance_level"], "aal1");
    let (status, _) = body(
        c.get(format!("{}/sessions/whoami", host.public))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let res = c
        .delete(format!("{}/self-service/logout/api", host.public))
        .json(&json!({ "session_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, err) = body(
        c.get(format!("{}/sessions/whoami", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["id"], "session_inactive");

    let (status, done) = api_login(host, "native@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["session_token"].as_str().is_some());
    assert_eq!(
        done["session"]["identity"]["traits"]["email"],
        "native@example.com"
    );
    let (status, flow) = api_login(host, "native@example.com", "wrong password!").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message_ids(&flow), vec![4_000_006]);
    assert_eq!(
        node(&flow, "identifier")["attributes"]["value"],
        "native@example.com"
    );
    assert!(node(&flow, "password")["attributes"].get("value").is_none());

    // Registration errors come back as the flow with messages on the nodes.
    let (_, flow) = body(
        c.get(format!("{}/self-service/registration/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (status, shown) = body(
        c.post(format!("{}/self-service/registration?flow={}", host.public, flow["id"].as_str().unwrap()))
            .json(&json!({ "method": "password", "traits": { "email": "native@example.com" }, "password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message_ids(&shown), vec![4_000_007]);
}

/// A browser: redirects to the UI, cookies, CSRF, form posts, logout.
pub async fn browser_flows(host: &Host) {
    let b = browser();
    let res = b
        .get(format!("{}/self-service/registration/browser", host.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("/registration?flow="), "{location}");
    assert!(
        res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().contains("HttpOnly"))
    );
    let flow_id = location.rsplit("flow=").next().unwrap().to_owned();
    let (status, flow) = body(
        b.get(format!(
            "{}/self-service/registration/flows?id={flow_id}",
            host.public
        ))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(flow["type"], "browser");
    let csrf = node(&flow, "csrf_token")["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another browser (no cookie) cannot read or submit it.
    let (status, _) = body(
        app()
            .get(format!(
                "{}/self-service/registration/flows?id={flow_id}",
                host.public
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = [
        ("method", "password"),
        ("traits.email", "browser@example.com"),
        ("traits.name", "Bea"),
        ("password", PASSWORD),
    ];
    let (status, err) = body(
        b.post(format!(
            "{}/self-service/registration?flow={flow_id}",
            host.public
        ))
        .header(ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["id"], "security_csrf_violation");
    // The form post with the token: 303 to the default return URL, a session cookie.
    let mut with_token = form.to_vec();
    with_token.push(("csrf_token", &csrf));
    let res = b
        .post(format!(
            "{}/self-service/registration?flow={flow_id}",
            host.public
        ))
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session_cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("identa_session="))
        .expect("a session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    let (status, me) = body(
        b.get(format!("{}/sessions/whoami", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["identity"]["traits"]["name"], "Bea");
    // The host's own protected route sees the same session.
    let (status, mine) = body(
        b.get(format!("{}/app/me", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["email"], "browser@example.com");
    let (status, _) = body(
        app()
            .get(format!("{}/app/me", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logged in: a new login flow goes to the default return URL instead.
    let res = b
        .get(format!("{}/self-service/login/browser", host.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("/dashboard")
    );
    // Logout through the logout URL.
    let (status, logout) = body(
        b.get(format!("{}/self-service/logout/browser", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{logout}");
    let url = logout["logout_url"].as_str().unwrap();
    assert!(url.contains("/self-service/logout?token="));
    let res = b.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = body(
        b.get(format!("{}/sessions/whoami", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A login through the browser form.
    let res = b
        .get(format!("{}/self-service/login/browser", host.public))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let (status, flow) = body(res).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = node(&flow, "csrf_token")["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = b
        .post(format!(
            "{}/self-service/login?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ))
        .form(&[
            ("method", "password"),
            ("identifier", "browser@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = body(
        b.get(format!("{}/sessions/whoami", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// `return_to` must be allowed; bad input gets 4xx JSON, never a 500.
pub async fn return_to_and_bad_input(host: &Host) {
    let c = app();
    let (status, err) = body(
        c.get(format!(
            "{}/self-service/login/api?return_to=https://evil.example/",
            host.public
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["id"], "self_service_flow_return_to_forbidden");
    let (_, flow) = body(
        c.get(format!("{}/self-service/login/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let submit = format!(
        "{}/self-service/login?flow={}",
        host.public,
        flow["id"].as_str().unwrap()
    );
    let (status, err) = body(
        c.post(&submit)
            .header(CONTENT_TYPE, "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = body(
        c.post(&submit)
            .header(CONTENT_TYPE, "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = body(
        c.post(&submit)
            .json(&json!({ "method": "carrier-pigeon" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let big = "x".repeat(200_000);
    // Its own client: the server may close the connection before reading such a body, and
    // a pooled connection must not be reused after that.
    let res = app()
        .post(&submit)
        .json(&json!({ "method": "password", "identifier": big, "password": "p" }))
        .send()
        .await;
    match res {
        Ok(res) => assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE),
        // The host refused the body and closed while the client was still sending it:
        // a reset mid-request, not a refused connection or a hang.
        Err(err) => assert!(
            err.is_request() && !err.is_connect() && !err.is_timeout(),
            "an oversized body should be refused, not fail like this: {err:?}"
        ),
    }
    let (status, _) = body(
        c.post(format!(
            "{}/self-service/login?flow=not-a-uuid",
            host.public
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = body(
        c.post(format!(
            "{}/self-service/login?flow=6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            host.public
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = body(
        c.get(format!("{}/admin/identities/not-a-uuid", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = body(
        c.get(format!(
            "{}/admin/identities/6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            host.admin
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = body(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({ "traits": {} }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Admin: identities (create with a password and with a Kratos hash), get, list, update,
/// patch, sessions, recovery code, courier, delete.
pub async fn admin_identities(host: &Host) {
    let c = app();
    let (status, created) = body(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({
                "schema_id": "default",
                "traits": { "email": "admin-made@example.com", "name": "Ann" },
                "metadata_admin": { "plan": "gold" },
                "credentials": { "password": { "config": { "password": PASSWORD } } }
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["metadata_admin"]["plan"], "gold");
    assert_eq!(
        created["credentials"]["password"]["identifiers"][0],
        "admin-made@example.com"
    );
    assert!(
        created["credentials"]["password"].get("config").is_none(),
        "no hash leaves the server"
    );
    // Duplicates are a conflict.
    let (status, _) = body(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({ "traits": { "email": "ADMIN-made@example.com" } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Import with bcrypt (Kratos's default hasher), from Kratos's own hasher tests.
    let (status, imported) = body(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({
                "traits": { "email": "bcrypt@example.com" },
                "credentials": { "password": { "config": { "hashed_password": "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6" } } }
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    let (status, _) = api_login(host, "bcrypt@example.com", "test").await;
    assert_eq!(status, StatusCode::OK, "the imported bcrypt hash verifies");
    // Import with an argon2id hash from Kratos's own hasher tests (password "test").
    let (status, imported) = body(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({
                "traits": { "email": "imported@example.com" },
                "credentials": { "password": { "config": { "hashed_password": "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw" } } }
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    let (status, _) = api_login(host, "imported@example.com", "test").await;
    assert_eq!(status, StatusCode::OK, "the imported hash verifies");
    let (status, bad) = body(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({ "traits": { "email": "bad-hash@example.com" }, "credentials": { "password": { "config": { "hashed_password": "plaintext" } } } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let (status, got) = body(
        c.get(format!("{}/admin/identities/{id}", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, got["traits"]["name"].as_str()),
        (StatusCode::OK, Some("Ann"))
    );
    let (status, found) = body(
        c.get(format!(
            "{}/admin/identities?credentials_identifier=Admin-Made@example.com",
            host.admin
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, list) = body(
        c.get(format!("{}/admin/identities?page_size=1", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, put) = body(
        c.put(format!("{}/admin/identities/{id}", host.admin))
            .json(&json!({ "schema_id": "default", "state": "active", "traits": { "email": "admin-made@example.com", "name": "Anne" } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, put["traits"]["name"].as_str()),
        (StatusCode::OK, Some("Anne")),
        "{put}"
    );
    let (status, patched) = body(
        c.patch(format!("{}/admin/identities/{id}", host.admin))
            .json(&json!([{ "op": "replace", "path": "/traits/name", "value": "Annie" }, { "op": "add", "path": "/metadata_public", "value": { "a": 1 } }]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["traits"]["name"], "Annie");
    assert_eq!(patched["metadata_public"]["a"], 1);
    let (status, _) = body(
        c.patch(format!("{}/admin/identities/{id}", host.admin))
            .json(&json!([{ "op": "remove", "path": "/traits/email" }]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a patch that breaks the schema is refused"
    );

    // Sessions of the identity.
    let (_, login) = api_login(host, "admin-made@example.com", PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_owned();
    let session_id = login["session"]["id"].as_str().unwrap().to_owned();
    let (status, sessions) = body(
        c.get(format!("{}/admin/identities/{id}/sessions", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let (status, all) = body(
        c.get(format!(
            "{}/admin/sessions?active=true&page_size=500",
            host.admin
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == session_id.as_str()),
        "{all}"
    );
    let (status, session) = body(
        c.get(format!("{}/admin/sessions/{session_id}", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, session["identity"]["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (status, _) = body(
        c.patch(format!("{}/admin/sessions/{session_id}/extend", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let res = c
        .delete(format!("{}/admin/sessions/{session_id}", host.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = body(
        c.get(format!("{}/sessions/whoami", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A recovery code made by the admin works in the public recovery flow.
    let (status, code) = body(
        c.post(format!("{}/admin/recovery/code", host.admin))
            .json(&json!({ "identity_id": id, "expires_in": "15m" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{code}");
    let link = code["recovery_link"].as_str().unwrap();
    let flow_id = link.rsplit("flow=").next().unwrap();
    let (status, recovered) = body(
        c.post(format!(
            "{}/self-service/recovery?flow={flow_id}",
            host.public
        ))
        .json(&json!({ "method": "code", "code": code["recovery_code"] }))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{recovered}");
    let actions: Vec<&str> = recovered["continue_with"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["set_ory_session_token", "show_settings_ui"]);

    // Courier messages are listed (registration of a new user queues a verification mail).
    api_register(host, "mail@example.com").await;
    let (status, messages) = body(
        c.get(format!("{}/admin/courier/messages", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let message = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["recipient"] == "mail@example.com")
        .expect("a message")
        .clone();
    assert_eq!(message["template_type"], "verification_code_valid");
    let (status, one) = body(
        c.get(format!(
            "{}/admin/courier/messages/{}",
            host.admin,
            message["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, one["recipient"].as_str()),
        (StatusCode::OK, Some("mail@example.com"))
    );

    // Delete.
    let res = c
        .delete(format!("{}/admin/identities/{id}", host.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (status, _) = body(
        c.get(format!("{}/admin/identities/{id}", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Settings over the API: a fresh session changes its password; other sessions listed
/// and revoked through the public session routes.
pub async fn settings_and_sessions(host: &Host) {
    let c = app();
    let token = api_register(host, "settings@example.com").await;
    let (status, flow) = body(
        c.get(format!("{}/self-service/settings/api", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(flow["identity"]["traits"]["email"], "settings@example.com");
    let (status, saved) = body(
        c.post(format!(
            "{}/self-service/settings?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ))
        .header("X-Session-Token", &token)
        .json(&json!({ "method": "password", "password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["state"], "success");
    assert_eq!(message_ids(&saved), vec![1_050_001]);
    let (status, _) = api_login(host, "settings@example.com", "a brand new passphrase").await;
    assert_eq!(status, StatusCode::OK);
    let (status, others) = body(
        c.get(format!("{}/sessions", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(others.as_array().unwrap().len(), 1);
    let (status, revoked) = body(
        c.delete(format!("{}/sessions", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, revoked["count"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    // Without a session there is no settings flow.
    let (status, err) = body(
        c.get(format!("{}/self-service/settings/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["id"], "session_inactive");
}

/// The value of the first `<input … name="<name>" value="…">` in a page.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

fn form_action(html: &str) -> Option<String> {
    let needle = "<form method=\"post\" action=\"";
    let at = html.find(needle)?;
    let rest = &html[at + needle.len()..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// Follows redirects by hand (so cookies set on each hop are kept and checked).
async fn follow(b: &Client, url: &str) -> (String, StatusCode, String) {
    let mut url = url.to_owned();
    for _ in 0..5 {
        let res = b.get(&url).send().await.unwrap();
        if res.status() == StatusCode::SEE_OTHER {
            url = res.headers()[LOCATION].to_str().unwrap().to_owned();
            if url.starts_with('/') {
                let origin: String = url_origin(&url_from_res(&res));
                url = format!("{origin}{url}");
            }
            continue;
        }
        let status = res.status();
        return (url, status, res.text().await.unwrap());
    }
    panic!("too many redirects from {url}");
}

fn url_from_res(res: &reqwest::Response) -> String {
    res.url().to_string()
}

fn url_origin(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(url.len());
    url[..end].to_owned()
}

/// The server-rendered UI: sign up through the form, see the dashboard, revoke a session,
/// and see a wrong password's message on the login page.
pub async fn ui_pages(host: &Host) {
    let b = browser();
    let (url, status, html) = follow(&b, &format!("{}/ui/registration", host.public)).await;
    assert_eq!(status, StatusCode::OK, "{url}");
    assert!(url.contains("/ui/registration?flow="), "{url}");
    assert!(html.contains("name=\"traits.email\""), "{html}");
    let csrf = input_value(&html, "csrf_token").expect("a CSRF token in the form");
    let action = form_action(&html).expect("a form");
    let res = b
        .post(&action)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("traits.email", "ui@example.com"),
            ("traits.name", "Uma"),
            ("password", PASSWORD),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (url, status, html) = follow(&b, res.headers()[LOCATION].to_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/ui/dashboard"), "{url}");
    assert!(
        html.contains("ui@example.com") && html.contains("this session"),
        "{html}"
    );

    // Another session shows up with a revoke button that works (and needs this site's form).
    let (_, login) = api_login(host, "ui@example.com", PASSWORD).await;
    let other = login["session_token"].as_str().unwrap().to_owned();
    let (_, _, html) = follow(&b, &format!("{}/ui/dashboard", host.public)).await;
    let session_id = input_value(&html, "session_id").expect("a revoke button");
    let csrf = input_value(&html, "csrf").unwrap();
    let res = b
        .post(format!("{}/ui/sessions/revoke", host.public))
        .form(&[("csrf", "forged"), ("session_id", session_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = b
        .post(format!("{}/ui/sessions/revoke", host.public))
        .form(&[("csrf", csrf.as_str()), ("session_id", session_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = body(
        app()
            .get(format!("{}/sessions/whoami", host.public))
            .header("X-Session-Token", &other)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Sign out, then a wrong password shows Kratos's message on the login page.
    let logout = html
        .find("Sign out")
        .and_then(|end| {
            html[..end]
                .rfind("href=\"")
                .map(|start| html[start + 6..end - 2].replace("&amp;", "&"))
        })
        .expect("a sign-out link");
    let (url, _, _) = follow(&b, &logout).await;
    assert!(url.contains("/ui/login"), "{url}");
    let (_, status, html) = follow(&b, &format!("{}/ui/login", host.public)).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = input_value(&html, "csrf_token").unwrap();
    let action = form_action(&html).unwrap();
    let res = b
        .post(&action)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("identifier", "ui@example.com"),
            ("password", "not it at all"),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    let (_, status, html) = follow(&b, res.headers()[LOCATION].to_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-id=\"4000006\""), "{html}");
    assert!(
        html.contains("value=\"ui@example.com\""),
        "the identifier is kept"
    );
    // Signed out, the dashboard sends the browser to sign in.
    let (url, _, _) = follow(&b, &format!("{}/ui/dashboard", host.public)).await;
    assert!(url.contains("/ui/login?flow="), "{url}");
}

/// A TOTP code for a base32 secret now, from `oathtool` (Debian's oath-toolkit).
fn oathtool(secret: &str) -> Option<String> {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", secret])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn text_node<'a>(flow: &'a Value, id: &str) -> &'a Value {
    flow["ui"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["attributes"]["id"] == id))
        .map(|n| &n["attributes"]["text"]["text"])
        .unwrap_or(&Value::Null)
}

/// Second factors over HTTP: backup codes made and confirmed in a settings flow, a step-up
/// to aal2 with one of them, then TOTP enrolled with a code from `oathtool` (skipped
/// without it, unless `IDENTA_REQUIRE_OATHTOOL` is set).
pub async fn second_factors(host: &Host) {
    let c = app();
    let token = api_register(host, "mfa@example.com").await;
    let settings_flow = |token: String| {
        let c = c.clone();
        let base = host.public.clone();
        async move {
            body(
                c.get(format!("{base}/self-service/settings/api"))
                    .header("X-Session-Token", token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let submit = |flow: &Value, token: &str, payload: Value| {
        let c = c.clone();
        let url = format!(
            "{}/self-service/settings?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        );
        let token = token.to_owned();
        async move {
            body(
                c.post(url)
                    .header("X-Session-Token", token)
                    .json(&payload)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // Backup codes: shown once, then confirmed.
    let (status, flow) = settings_flow(token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let (status, shown) = submit(
        &flow,
        &token,
        json!({ "method": "lookup_secret", "lookup_secret_regenerate": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let codes: Vec<String> = text_node(&shown, "lookup_secret_codes")
        .as_str()
        .unwrap()
        .split(", ")
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 12);
    let (status, confirmed) = submit(
        &flow,
        &token,
        json!({ "method": "lookup_secret", "lookup_secret_confirm": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    // Now settings need aal2: the API says where to go.
    let (status, err) = settings_flow(token.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"]["id"], "session_aal2_required");
    assert!(
        err["redirect_browser_to"]
            .as_str()
            .unwrap()
            .contains("aal=aal2")
    );
    // Step up with a backup code.
    let (status, login) = body(
        c.get(format!("{}/self-service/login/api?aal=aal2", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["requested_aal"], "aal2");
    let (status, done) = body(
        c.post(format!(
            "{}/self-service/login?flow={}",
            host.public,
            login["id"].as_str().unwrap()
        ))
        .header("X-Session-Token", &token)
        .json(&json!({ "method": "lookup_secret", "lookup_secret": codes[0] }))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");
    // TOTP: the secret the flow shows, a code from oathtool.
    let (status, flow) = settings_flow(token.clone()).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let qr = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["id"] == "totp_qr")
        .unwrap();
    assert!(
        qr["attributes"]["src"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let secret = text_node(&flow, "totp_secret_key")
        .as_str()
        .unwrap()
        .to_owned();
    let Some(code) = oathtool(&secret) else {
        assert!(
            std::env::var("IDENTA_REQUIRE_OATHTOOL").is_err(),
            "IDENTA_REQUIRE_OATHTOOL is set but oathtool is missing"
        );
        eprintln!("skipped the TOTP part: install oathtool");
        return;
    };
    let (status, wrong) = submit(
        &flow,
        &token,
        json!({ "method": "totp", "totp_code": "000000" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(node(&wrong, "totp_code")["messages"][0]["id"], 4_000_008);
    let (status, enrolled) = submit(
        &flow,
        &token,
        json!({ "method": "totp", "totp_code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert!(node(&enrolled, "totp_unlink").is_object());
}

/// The official Kratos SDK (`@ory/kratos-client` from npm, in `sdk/`) drives a native
/// round trip and admin calls (`sdk/roundtrip.mjs`). Needs `npm ci --prefix
/// examples/http-suite/sdk`; skipped without it unless `IDENTA_REQUIRE_SDK_TESTS` is set.
pub async fn kratos_sdk_roundtrip(host: &Host) {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/sdk"));
    if !dir.join("node_modules/@ory/kratos-client").exists() {
        assert!(
            std::env::var("IDENTA_REQUIRE_SDK_TESTS").is_err(),
            "IDENTA_REQUIRE_SDK_TESTS is set but the SDK is not installed: npm ci --prefix examples/http-suite/sdk"
        );
        eprintln!("skipped: npm ci --prefix examples/http-suite/sdk to run the Kratos SDK check");
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg("roundtrip.mjs")
        .arg(&host.public)
        .arg(&host.admin)
        .current_dir(dir)
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK round trip failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("kratos sdk round trip: ok"), "{stdout}");
}

/// A real browser: headless Chromium (Debian's `chromium`, driven by puppeteer-core from
/// npm, in `browser/`) signs up, signs out, signs in and sees the dashboard through the UI.
/// Skipped without Chromium or `npm ci --prefix examples/http-suite/browser`, unless
/// `IDENTA_REQUIRE_BROWSER_TESTS` is set.
pub async fn real_browser(host: &Host) {
    run_browser_script(
        host,
        "signup-login.mjs",
        &["chromium sign-up, sign-out, sign-in: ok"],
    )
    .await;
}

/// The UI's security keys and passkeys in a real browser: Chromium's virtual
/// authenticator (DevTools' WebAuthn domain) answers the ceremonies that the pages' own
/// `webauthn.js` starts. A key is added in settings (and listed with its remove button),
/// used to step up to aal2, and removed; an account is made with a passkey and signed in
/// with it alone (discoverable, then identifier first). Skipped like [`real_browser`].
pub async fn real_browser_webauthn(host: &Host) {
    run_browser_script(
        host,
        "webauthn.mjs",
        &[
            "chromium security key: added, used for aal2, removed: ok",
            "chromium passkey: signed up, signed in without and with identifier: ok",
        ],
    )
    .await;
}

/// Runs `browser/<script>` against the host's public URL and checks that it succeeded and
/// printed each of `expected`. Skips (with a note) when the browser is not installed and
/// not required.
async fn run_browser_script(host: &Host, script: &str, expected: &[&str]) {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/browser"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !dir.join("node_modules/puppeteer-core").exists()
        || !std::path::Path::new(&chromium).exists()
    {
        assert!(
            std::env::var("IDENTA_REQUIRE_BROWSER_TESTS").is_err(),
            "IDENTA_REQUIRE_BROWSER_TESTS is set but Chromium ({chromium}) or puppeteer-core is missing"
        );
        eprintln!("skipped: install chromium and npm ci --prefix examples/http-suite/browser");
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(&host.public)
        .env("CHROMIUM", &chromium)
        .current_dir(dir)
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser check {script} failed:\n{stdout}\n{stderr}"
    );
    for line in expected {
        assert!(
            stdout.contains(line),
            "{script} did not print {line:?}:\n{stdout}"
        );
    }
}

/// Security keys and passkeys over HTTP, answered by a software authenticator on the
/// host's own origin: the script Kratos front ends load, a security key added in settings
/// and used to step up to aal2, then an account made with a passkey that signs in with
/// it alone.
pub async fn security_keys_and_passkeys(host: &Host) {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
    let c = app();
    let origin = Url::parse(&host.public).unwrap();
    let value_of = |flow: &Value, name: &str| -> String {
        node(flow, name)["attributes"]["value"]
            .as_str()
            .unwrap_or_else(|| panic!("no `{name}` in {flow}"))
            .to_owned()
    };
    let post = |url: String, token: Option<&str>, payload: Value| {
        let mut req = c.post(url).json(&payload);
        if let Some(token) = token {
            req = req.header("X-Session-Token", token);
        }
        async move { body(req.send().await.unwrap()).await }
    };

    let res = c
        .get(format!("{}/.well-known/ory/webauthn.js", host.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("oryWebAuthnRegistration")
    );

    // A security key, added in settings.
    let token = api_register(host, "keys@example.com").await;
    let (status, flow) = body(
        c.get(format!("{}/self-service/settings/api", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let mut key = SoftPasskey::new(true);
    let options: CreationChallengeResponse =
        serde_json::from_str(&value_of(&flow, "webauthn_register_trigger")).unwrap();
    assert_eq!(
        node(&flow, "webauthn_register_trigger")["attributes"]["onclickTrigger"],
        "oryWebAuthnRegistration"
    );
    let answer = key.do_registration(origin.clone(), options).unwrap();
    let (status, saved) = post(
        format!(
            "{}/self-service/settings?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ),
        Some(&token),
        json!({
            "method": "webauthn",
            "webauthn_register_displayname": "Desk key",
            "webauthn_register": serde_json::to_string(&answer).unwrap(),
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(
        node(&saved, "webauthn_remove")["meta"]["label"]["text"],
        "Remove security key \"Desk key\""
    );

    // The key as second factor: the session becomes aal2.
    let (status, login) = body(
        c.get(format!("{}/self-service/login/api?aal=aal2", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let options: RequestChallengeResponse =
        serde_json::from_str(&value_of(&login, "webauthn_login_trigger")).unwrap();
    let answer = key.do_authentication(origin.clone(), options).unwrap();
    let (status, done) = post(
        format!(
            "{}/self-service/login?flow={}",
            host.public,
            login["id"].as_str().unwrap()
        ),
        Some(&token),
        json!({ "method": "webauthn", "webauthn_login": serde_json::to_string(&answer).unwrap() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");

    // The key is lost: an admin deletes the identity's security keys.
    let id = done["session"]["identity"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = format!("{}/admin/identities/{id}/credentials/webauthn", host.admin);
    let res = c.delete(&keys).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, identity) = body(
        c.get(format!("{}/admin/identities/{id}", host.admin))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        identity["credentials"].get("webauthn").is_none(),
        "{identity}"
    );
    assert!(
        identity["credentials"].get("password").is_some(),
        "{identity}"
    );
    let (status, gone) = body(c.delete(&keys).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    let (status, bad) = body(
        c.delete(format!(
            "{}/admin/identities/{id}/credentials/fingerprint",
            host.admin
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // An account made with a passkey, no password.
    let (status, flow) = body(
        c.get(format!("{}/self-service/registration/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let data: Value = serde_json::from_str(&value_of(&flow, "passkey_create_data")).unwrap();
    let options: CreationChallengeResponse =
        serde_json::from_value(data["credentialOptions"].clone()).unwrap();
    let mut passkey = SoftPasskey::new(true);
    let answer = passkey.do_registration(origin.clone(), options).unwrap();
    let (status, made) = post(
        format!(
            "{}/self-service/registration?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ),
        None,
        json!({
            "method": "passkey",
            "traits": { "email": "passkey@example.com" },
            "passkey_register": serde_json::to_string(&answer).unwrap(),
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert!(made["session_token"].is_string());

    // Sign in with it alone: ask for the challenge, answer it.
    let (_, flow) = body(
        c.get(format!("{}/self-service/login/api", host.public))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let url = format!(
        "{}/self-service/login?flow={}",
        host.public,
        flow["id"].as_str().unwrap()
    );
    let (status, challenged) = post(
        url.clone(),
        None,
        json!({ "method": "passkey", "identifier": "passkey@example.com" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{challenged}");
    assert_eq!(
        node(&challenged, "passkey_login_trigger")["attributes"]["onclickTrigger"],
        "oryPasskeyLogin"
    );
    let options: RequestChallengeResponse =
        serde_json::from_str(&value_of(&challenged, "passkey_challenge")).unwrap();
    let answer = passkey.do_authentication(origin, options).unwrap();
    let (status, signed_in) = post(
        url,
        None,
        json!({
            "method": "passkey",
            "identifier": "passkey@example.com",
            "passkey_login": serde_json::to_string(&answer).unwrap(),
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    assert!(signed_in["session_token"].is_string());
    assert_eq!(
        signed_in["session"]["authentication_methods"][0]["method"],
        "passkey"
    );
}

/// Every case, as `#[tokio::test]`s in the calling crate, each against a fresh host from
/// `$start` (an `async fn() -> Host`).
#[macro_export]
macro_rules! http_suite {
    ($start:path) => {
        $crate::http_suite!(@cases $start;
            health_schemas_and_separate_admin,
            native_flows,
            browser_flows,
            return_to_and_bad_input,
            admin_identities,
            settings_and_sessions,
            ui_pages,
            kratos_sdk_roundtrip,
            real_browser,
            real_browser_webauthn,
            second_factors,
            security_keys_and_passkeys,
        );
    };
    (@cases $start:path; $($case:ident),* $(,)?) => {
        $(
            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let host = $start().await;
                $crate::$case(&host).await;
            }
        )*
    };
}
