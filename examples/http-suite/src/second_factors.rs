//! Second factors over the API: backup codes, a step-up to aal2, TOTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Host;
use crate::support::{api_register, app, body, node};
use crate::tools;

fn text_node<'a>(flow: &'a Value, id: &str) -> &'a Value {
    flow["ui"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["attributes"]["id"] == id))
        .map(|n| &n["attributes"]["text"]["text"])
        .unwrap_or(&Value::Null)
}

/// Second factors over HTTP: backup codes made and confirmed in a settings flow, a step-up
/// to aal2 with one of them, then the TOTP secret and QR code shown and a wrong code
/// refused. [`totp_from_oathtool`] enrols with a right code.
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
    // TOTP: the secret and QR code the flow shows; a wrong code is refused.
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
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    let (status, wrong) = submit(
        &flow,
        &token,
        json!({ "method": "totp", "totp_code": "000000" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(node(&wrong, "totp_code")["messages"][0]["id"], 4_000_008);
}

/// TOTP enrolled in a settings flow with a code from `oathtool` (Debian's oath-toolkit),
/// an authenticator that is not identa's own. Needs `oathtool`; fails naming it.
pub async fn totp_from_oathtool(host: &Host) {
    let c = app();
    let token = api_register(host, "oathtool@example.com").await;
    let (status, flow) = body(
        c.get(format!("{}/self-service/settings/api", host.public))
            .header("X-Session-Token", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let secret = text_node(&flow, "totp_secret_key")
        .as_str()
        .unwrap_or_else(|| panic!("a TOTP secret in {flow}"))
        .to_owned();
    let code = tools::oathtool(&secret);
    let (status, enrolled) = body(
        c.post(format!(
            "{}/self-service/settings?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ))
        .header("X-Session-Token", &token)
        .json(&json!({ "method": "totp", "totp_code": code }))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert!(node(&enrolled, "totp_unlink").is_object(), "{enrolled}");
}
