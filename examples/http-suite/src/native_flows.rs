//! Native (API) flows as an app uses them: sign-up, whoami, logout, sign-in, and the
//! refusals of bad input and foreign `return_to` URLs.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::Host;
use crate::support::{
    Flow, PASSWORD, api_login, api_register, app, message_ids, node, send, whoami,
};

/// The native round trip: register, whoami, logout, login, wrong password.
pub async fn native_flows(host: &Host) {
    let c = app();
    let token = api_register(host, "native@example.com").await;
    let (status, me) = whoami(host, &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["identity"]["traits"]["email"], "native@example.com");
    assert_eq!(me["authenticator_assurance_level"], "aal1");
    let (status, _) = send(
        c.get(format!("{}/sessions/whoami", host.public))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        c.delete(format!("{}/self-service/logout/api", host.public))
            .json(&json!({ "session_token": token })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = whoami(host, &token).await;
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

    // Registration errors come back as the flow with messages on the nodes. (A taken
    // address is not one on the example hosts: see `taken_address_looks_new`.)
    let (_, flow) = Flow::Registration.start(host, None).await;
    let (status, shown) = Flow::Registration
        .submit(
            host,
            &flow,
            None,
            json!({ "method": "password", "traits": { "email": "short@example.com" }, "password": "short" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(node(&shown, "password")["messages"][0]["id"], 4_000_032);
    assert_eq!(
        node(&shown, "traits.email")["attributes"]["value"],
        "short@example.com"
    );
}

/// `return_to` must be allowed; bad input gets 4xx JSON, never a 500.
pub async fn return_to_and_bad_input(host: &Host) {
    let c = app();
    let (status, err) = send(c.get(format!(
        "{}/self-service/login/api?return_to=https://evil.example/",
        host.public
    )))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["id"], "self_service_flow_return_to_forbidden");
    let (_, flow) = Flow::Login.start(host, None).await;
    let submit = Flow::Login.submit_url(host, &flow);
    let (status, err) = send(
        c.post(&submit)
            .header(CONTENT_TYPE, "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = send(
        c.post(&submit)
            .header(CONTENT_TYPE, "text/plain")
            .body("hello"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = send(c.post(&submit).json(&json!({ "method": "carrier-pigeon" }))).await;
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
    // A flow id that is not a UUID is bad input; a UUID no flow has is not found. The same
    // for identities on the admin API.
    let unknown = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    for (id, expected) in [
        ("not-a-uuid", StatusCode::BAD_REQUEST),
        (unknown, StatusCode::NOT_FOUND),
    ] {
        let login = format!("{}/self-service/login?flow={id}", host.public);
        let (status, _) = send(c.post(login).json(&json!({}))).await;
        assert_eq!(status, expected, "login flow {id}");
        let (status, _) = send(c.get(format!("{}/admin/identities/{id}", host.admin))).await;
        assert_eq!(status, expected, "identity {id}");
    }
    let (status, _) = send(
        c.post(format!("{}/admin/identities", host.admin))
            .json(&json!({ "traits": {} })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
