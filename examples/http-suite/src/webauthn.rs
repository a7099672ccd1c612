//! Security keys and passkeys over HTTP, answered by a software authenticator.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Host;
use crate::support::{Flow, api_register, api_verify, app, node, node_value, send};

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
    let (status, flow) = Flow::Settings.start(host, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    // The form posts to this API, and its script node loads the script served above.
    assert_eq!(flow["ui"]["action"], Flow::Settings.submit_url(host, &flow));
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
        serde_json::from_str(&node_value(&flow, "webauthn_register_trigger")).unwrap();
    assert_eq!(
        node(&flow, "webauthn_register_trigger")["attributes"]["onclickTrigger"],
        "oryWebAuthnRegistration"
    );
    let answer = key.do_registration(origin.clone(), options).unwrap();
    let (status, saved) = Flow::Settings
        .submit(
            host,
            &flow,
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
    let (status, login) = Flow::StepUp.start(host, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let options: RequestChallengeResponse =
        serde_json::from_str(&node_value(&login, "webauthn_login_trigger")).unwrap();
    let answer = key.do_authentication(origin.clone(), options).unwrap();
    let (status, done) = Flow::StepUp
        .submit(
            host,
            &login,
            Some(&token),
            json!({
                "method": "webauthn",
                "webauthn_login": serde_json::to_string(&answer).unwrap(),
            }),
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
    let (status, _) = send(c.delete(&keys)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, identity) = send(c.get(format!("{}/admin/identities/{id}", host.admin))).await;
    assert!(
        identity["credentials"].get("webauthn").is_none(),
        "{identity}"
    );
    assert!(
        identity["credentials"].get("password").is_some(),
        "{identity}"
    );
    let (status, gone) = send(c.delete(&keys)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    let (status, bad) = send(c.delete(format!(
        "{}/admin/identities/{id}/credentials/fingerprint",
        host.admin
    )))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");

    // An account made with a passkey, no password.
    let (status, flow) = Flow::Registration.start(host, None).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let data: Value = serde_json::from_str(&node_value(&flow, "passkey_create_data")).unwrap();
    let options: CreationChallengeResponse =
        serde_json::from_value(data["credentialOptions"].clone()).unwrap();
    let mut passkey = SoftPasskey::new(true);
    let answer = passkey.do_registration(origin.clone(), options).unwrap();
    let (status, made) = Flow::Registration
        .submit(
            host,
            &flow,
            None,
            json!({
                "method": "passkey",
                "traits": { "email": "passkey@example.com" },
                "passkey_register": serde_json::to_string(&answer).unwrap(),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{made}");
    // Registration signs no one in on the example hosts (it is enumeration-safe).
    assert!(made.get("session_token").is_none(), "{made}");
    assert_eq!(made["identity"]["traits"]["email"], "passkey@example.com");
    // Sign-in waits for a verified address.
    api_verify(host, "passkey@example.com").await;

    // Sign in with it alone: ask for the challenge, answer it.
    let (_, flow) = Flow::Login.start(host, None).await;
    let (status, challenged) = Flow::Login
        .submit(
            host,
            &flow,
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
        serde_json::from_str(&node_value(&challenged, "passkey_challenge")).unwrap();
    let answer = passkey.do_authentication(origin, options).unwrap();
    let (status, signed_in) = Flow::Login
        .submit(
            host,
            &flow,
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
