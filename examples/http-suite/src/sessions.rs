//! Settings over the API, and a user's own sessions listed and revoked.

use reqwest::StatusCode;
use serde_json::json;

use crate::Host;
use crate::support::{api_login, api_register, app, body, message_ids};

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
