//! The admin API: identities, imported hashes, sessions, recovery codes, the courier.

use reqwest::StatusCode;
use serde_json::json;

use crate::Host;
use crate::support::{PASSWORD, api_login, api_register, app, body};

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
