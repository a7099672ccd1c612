//! Settings over the API, and a user's own sessions listed and revoked.

use reqwest::StatusCode;
use serde_json::json;

use crate::Host;
use crate::support::{Flow, SESSION_TOKEN, api_login, api_register, app, message_ids, send};

/// Settings over the API: a fresh session changes its password; other sessions listed
/// and revoked through the public session routes.
pub async fn settings_and_sessions(host: &Host) {
    let c = app();
    let token = api_register(host, "settings@example.com").await;
    let (status, flow) = Flow::Settings.start(host, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(flow["identity"]["traits"]["email"], "settings@example.com");
    let (status, saved) = Flow::Settings
        .submit(
            host,
            &flow,
            Some(&token),
            json!({ "method": "password", "password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["state"], "success");
    assert_eq!(message_ids(&saved), vec![1_050_001]);
    let (status, _) = api_login(host, "settings@example.com", "a brand new passphrase").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = format!("{}/sessions", host.public);
    let (status, others) = send(c.get(&sessions).header(SESSION_TOKEN, &token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(others.as_array().unwrap().len(), 1);
    let (status, revoked) = send(c.delete(&sessions).header(SESSION_TOKEN, &token)).await;
    assert_eq!(
        (status, revoked["count"].as_i64()),
        (StatusCode::OK, Some(1))
    );
    // Without a session there is no settings flow.
    let (status, err) = Flow::Settings.start(host, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["id"], "session_inactive");
}
