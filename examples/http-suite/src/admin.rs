//! The admin API: identities, imported hashes, sessions, recovery codes, the courier; and
//! what keeps it for servers: browser pages and forms refused, bearer tokens.

use std::future::Future;

use identa::http::AdminToken;
use identa_host::{BoxError, HostConfig, Running};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{PASSWORD, api_login, api_register, api_verify, app, send, whoami};
use crate::{Host, try_start_example_host};

/// Creates an identity through the admin API with an imported password hash.
async fn import_with_hash(host: &Host, email: &str, hashed_password: &str) -> (StatusCode, Value) {
    send(
        app()
            .post(format!("{}/admin/identities", host.admin))
            .json(&json!({
                "traits": { "email": email },
                "credentials": { "password": { "config": { "hashed_password": hashed_password } } }
            })),
    )
    .await
}

/// Admin: identities (create with a password and with a Kratos hash), get, list, update,
/// patch, sessions, recovery code, courier (list, get, requeue refused), delete; a batch
/// import over the public body limit.
pub async fn admin_identities(host: &Host) {
    let c = app();
    let identities = format!("{}/admin/identities", host.admin);
    let (status, created) = send(c.post(&identities).json(&json!({
        "schema_id": "default",
        "traits": { "email": "admin-made@example.com", "name": "Ann" },
        "metadata_admin": { "plan": "gold" },
        "credentials": { "password": { "config": { "password": PASSWORD } } }
    })))
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
    let (status, _) = send(
        c.post(&identities)
            .json(&json!({ "traits": { "email": "ADMIN-made@example.com" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Imported hashes from Kratos's own hasher tests (password "test"): bcrypt (Kratos's
    // default hasher) and argon2id.
    for (email, hash) in [
        (
            "bcrypt@example.com",
            "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        ),
        (
            "imported@example.com",
            "$argon2id$v=19$m=32,t=2,p=4$cm94YnRVOW5jZzFzcVE4bQ$MNzk5BtR2vUhrp6qQEjRNw",
        ),
    ] {
        let (status, imported) = import_with_hash(host, email, hash).await;
        assert_eq!(status, StatusCode::CREATED, "{imported}");
        api_verify(host, email).await;
        let (status, _) = api_login(host, email, "test").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the hash imported for {email} verifies"
        );
    }
    let (status, bad) = import_with_hash(host, "bad-hash@example.com", "plaintext").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    let identity = format!("{identities}/{id}");
    let (status, got) = send(c.get(&identity)).await;
    assert_eq!(
        (status, got["traits"]["name"].as_str()),
        (StatusCode::OK, Some("Ann"))
    );
    let (status, found) = send(c.get(format!(
        "{identities}?credentials_identifier=Admin-Made@example.com"
    )))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, list) = send(c.get(format!("{identities}?page_size=1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, put) = send(c.put(&identity).json(&json!({ "schema_id": "default", "state": "active", "traits": { "email": "admin-made@example.com", "name": "Anne" } }))).await;
    assert_eq!(
        (status, put["traits"]["name"].as_str()),
        (StatusCode::OK, Some("Anne")),
        "{put}"
    );
    let (status, patched) = send(c.patch(&identity).json(&json!([{ "op": "replace", "path": "/traits/name", "value": "Annie" }, { "op": "add", "path": "/metadata_public", "value": { "a": 1 } }]))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["traits"]["name"], "Annie");
    assert_eq!(patched["metadata_public"]["a"], 1);
    let (status, _) = send(
        c.patch(&identity)
            .json(&json!([{ "op": "remove", "path": "/traits/email" }])),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a patch that breaks the schema is refused"
    );

    // Sessions of the identity (which signs in once its address is verified).
    api_verify(host, "admin-made@example.com").await;
    let (_, login) = api_login(host, "admin-made@example.com", PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_owned();
    let session_id = login["session"]["id"].as_str().unwrap().to_owned();
    let (status, sessions) = send(c.get(format!("{identity}/sessions"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let (status, all) = send(c.get(format!(
        "{}/admin/sessions?active=true&page_size=500",
        host.admin
    )))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == session_id.as_str()),
        "{all}"
    );
    let session = format!("{}/admin/sessions/{session_id}", host.admin);
    let (status, got) = send(c.get(&session)).await;
    assert_eq!(
        (status, got["identity"]["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (status, _) = send(c.patch(format!("{session}/extend"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(c.delete(&session)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = whoami(host, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A recovery code made by the admin works in the public recovery flow.
    let (status, code) = send(
        c.post(format!("{}/admin/recovery/code", host.admin))
            .json(&json!({ "identity_id": id, "expires_in": "15m" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{code}");
    let link = code["recovery_link"].as_str().unwrap();
    let flow_id = link.rsplit("flow=").next().unwrap();
    let (status, recovered) = send(
        c.post(format!(
            "{}/self-service/recovery?flow={flow_id}",
            host.public
        ))
        .json(&json!({ "method": "code", "code": code["recovery_code"] })),
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
    let messages = format!("{}/admin/courier/messages", host.admin);
    let (status, listed) = send(c.get(&messages)).await;
    assert_eq!(status, StatusCode::OK);
    let message = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["recipient"] == "mail@example.com")
        .expect("a message")
        .clone();
    assert_eq!(message["template_type"], "verification_code_valid");
    let (status, one) =
        send(c.get(format!("{messages}/{}", message["id"].as_str().unwrap()))).await;
    assert_eq!(
        (status, one["recipient"].as_str()),
        (StatusCode::OK, Some("mail@example.com"))
    );
    // identa's requeue (Kratos has none) takes abandoned messages only: this one is
    // queued or sent, so it is refused with a conflict that says why.
    let (status, refused) = send(c.post(format!(
        "{messages}/{}/requeue",
        message["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["id"], "courier_message_not_requeueable");
    assert!(
        refused["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("only abandoned messages can be requeued"),
        "{refused}"
    );
    let (status, missing) = send(c.post(format!(
        "{messages}/01939a3c-0000-7000-8000-000000000000/requeue"
    )))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    // Delete.
    let (status, _) = send(c.delete(&identity)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(c.get(&identity)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A batch import larger than the public API's 64 KiB body limit: the admin listener
    // reads up to the admin limit (8 MiB).
    let items: Vec<Value> = (0..300)
        .map(|n| {
            json!({ "create": {
                "traits": { "email": format!("batch-{n}@example.com") },
                "metadata_admin": { "note": "x".repeat(300) },
            } })
        })
        .collect();
    let body = json!({ "identities": items });
    assert!(body.to_string().len() > 64 * 1024);
    let (status, answer) = send(c.patch(&identities).json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["identities"][299]["action"], "create", "{answer}");
}

/// Whether the admin API knows an identity with this email.
async fn admin_knows(host: &Host, email: &str) -> bool {
    let (status, found) = send(app().get(format!(
        "{}/admin/identities?credentials_identifier={email}",
        host.admin
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    !found.as_array().unwrap().is_empty()
}

/// Admin: a page a user opens cannot create identities or read the outbox through the
/// admin API (its `Origin` / `Sec-Fetch-Site` give it away, and a form is not JSON).
pub async fn admin_refuses_browser_pages(host: &Host) {
    let c = app();
    let identities = format!("{}/admin/identities", host.admin);
    let (status, refused) = send(
        c.post(&identities)
            .header("origin", "https://evil.example")
            .json(&json!({ "traits": { "email": "page@example.com" } })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["id"], "cross_site_request");
    let (status, refused) = send(
        c.post(&identities)
            .header("sec-fetch-site", "cross-site")
            .form(&[("traits.email", "form@example.com")]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, refused) = send(
        c.post(&identities)
            .form(&[("traits.email", "form@example.com")]),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{refused}");
    assert_eq!(refused["error"]["id"], "unsupported_media_type");
    assert!(
        !admin_knows(host, "page@example.com").await,
        "nothing created"
    );
    assert!(
        !admin_knows(host, "form@example.com").await,
        "nothing created"
    );

    api_register(host, "outbox@example.com").await;
    let messages = format!("{}/admin/courier/messages", host.admin);
    let (status, refused) = send(c.get(&messages).header("sec-fetch-site", "cross-site")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(!refused.to_string().contains("outbox@example.com"));
    let (status, listed) = send(c.get(&messages)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed.to_string().contains("outbox@example.com"));
}

const TOKEN: &str = "suite-admin-token-0123456789abcdef0123456789";
const NEXT_TOKEN: &str = "suite-admin-token-next-0123456789abcdef01234";

/// Admin: with `admin_tokens` the host's admin API wants `Authorization: Bearer` with one
/// of them (two while rotating); without a token, the host refuses to start with the admin
/// API on a non-loopback address.
pub async fn admin_tokens<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let host = try_start_example_host(&start, |config| {
        config.admin_tokens = vec![
            AdminToken::new(TOKEN).unwrap(),
            AdminToken::new(NEXT_TOKEN).unwrap(),
        ];
    })
    .await
    .expect("the host starts with admin tokens");
    let c = app();
    let identities = format!("{}/admin/identities", host.admin);
    let res = c.get(&identities).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let (status, refused) = send(
        c.post(&identities)
            .bearer_auth(format!("{TOKEN}-wrong"))
            .json(&json!({ "traits": { "email": "nobody@example.com" } })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"]["id"], "unauthorized");
    for token in [TOKEN, NEXT_TOKEN] {
        let (status, listed) = send(c.get(&identities).bearer_auth(token)).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed, json!([]), "the wrong token created nothing");
    }
    drop(host);

    let Err(err) = try_start_example_host(&start, |config| {
        config.admin_addr = "0.0.0.0:0".parse().unwrap();
    })
    .await
    else {
        panic!("the host started with its admin API on 0.0.0.0 and no token");
    };
    assert!(err.to_string().contains("IDENTA_ADMIN_TOKEN"), "{err}");
}
