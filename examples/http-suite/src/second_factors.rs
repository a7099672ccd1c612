//! Second factors over the API: backup codes, a step-up to aal2, TOTP.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::Host;
use crate::support::{Flow, SESSION_TOKEN, api_register, app, node, send, whoami};
use crate::tools;

fn text_node<'a>(flow: &'a Value, id: &str) -> &'a Value {
    flow["ui"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["attributes"]["id"] == id))
        .map(|n| &n["attributes"]["text"]["text"])
        .unwrap_or(&Value::Null)
}

/// The host's own `/app/me` with a session token.
async fn app_me(host: &Host, token: &str) -> (StatusCode, Value) {
    send(
        app()
            .get(format!("{}/app/me", host.public))
            .header(SESSION_TOKEN, token),
    )
    .await
}

/// Second factors over HTTP: backup codes made and confirmed in a settings flow, whoami
/// and the host's `/app/me` refusing the `aal1` session until a step-up to aal2 with one
/// of them, then the TOTP secret and QR code shown and a wrong code
/// refused. [`totp_from_oathtool`] enrols with a right code.
pub async fn second_factors(host: &Host) {
    let token = api_register(host, "mfa@example.com").await;
    let session = Some(token.as_str());
    // Backup codes: shown once, then confirmed.
    let (status, flow) = Flow::Settings.start(host, session).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let (status, shown) = Flow::Settings
        .submit(
            host,
            &flow,
            session,
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
    let (status, confirmed) = Flow::Settings
        .submit(
            host,
            &flow,
            session,
            json!({ "method": "lookup_secret", "lookup_secret_confirm": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    // Now settings need aal2: the API says where to go.
    let (status, err) = Flow::Settings.start(host, session).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"]["id"], "session_aal2_required");
    assert!(
        err["redirect_browser_to"]
            .as_str()
            .unwrap()
            .contains("aal=aal2")
    );
    // So do whoami and the host's own route behind its `CurrentSession` extractor (the
    // default `session.whoami_required_aal`, as Kratos's): Kratos's 403 and where to go.
    let refused_aal1 = |(status, err): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
        assert_eq!(err["error"]["id"], "session_aal2_required");
        assert!(
            err["redirect_browser_to"]
                .as_str()
                .unwrap()
                .ends_with("/self-service/login/browser?aal=aal2"),
            "{err}"
        );
    };
    refused_aal1(whoami(host, &token).await);
    refused_aal1(app_me(host, &token).await);
    // Step up with a backup code.
    let (status, login) = Flow::StepUp.start(host, session).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["requested_aal"], "aal2");
    let (status, done) = Flow::StepUp
        .submit(
            host,
            &login,
            session,
            json!({ "method": "lookup_secret", "lookup_secret": codes[0] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");
    let (status, me) = whoami(host, &token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, mine) = app_me(host, &token).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["email"], "mfa@example.com");
    // TOTP: the secret and QR code the flow shows; a wrong code is refused.
    let (status, flow) = Flow::Settings.start(host, session).await;
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
    let (status, wrong) = Flow::Settings
        .submit(
            host,
            &flow,
            session,
            json!({ "method": "totp", "totp_code": "000000" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(node(&wrong, "totp_code")["messages"][0]["id"], 4_000_008);
}

/// TOTP enrolled in a settings flow with a code from `oathtool` (Debian's oath-toolkit),
/// an authenticator that is not identa's own. Needs `oathtool`; fails naming it.
pub async fn totp_from_oathtool(host: &Host) {
    let token = api_register(host, "oathtool@example.com").await;
    let (status, flow) = Flow::Settings.start(host, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let secret = text_node(&flow, "totp_secret_key")
        .as_str()
        .unwrap_or_else(|| panic!("a TOTP secret in {flow}"))
        .to_owned();
    let code = tools::oathtool(&secret);
    let (status, enrolled) = Flow::Settings
        .submit(
            host,
            &flow,
            Some(&token),
            json!({ "method": "totp", "totp_code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert!(node(&enrolled, "totp_unlink").is_object(), "{enrolled}");
}
