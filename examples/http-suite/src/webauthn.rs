//! Security keys and passkeys over HTTP, answered by a software authenticator.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Host;
use crate::support::{api_register, app, body, node};

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
    // The form posts to this API, and its script node loads the script served above.
    assert_eq!(
        flow["ui"]["action"],
        format!(
            "{}/self-service/settings?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        )
    );
    let script = flow["ui"]["nodes"]
        .as_array()
        .and_then(|nodes| {
            nodes
                .iter()
                .find(|n| n["attributes"]["id"] == "webauthn_script")
        })
        .map(|n| &n["attributes"])
        .expect("a script node");
    assert_eq!(
        script["src"],
        format!("{}/.well-known/ory/webauthn.js", host.public)
    );
    assert!(script["integrity"].as_str().unwrap().starts_with("sha512-"));
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
