//! Second factors as the flow tests use them.

use identa::credential::totp::TotpSecret;
use identa::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use identa::flow::settings::SettingsSubmission;
use identa::flow::ui::NodeAttributes;
use identa::flow::{Flow, FlowType};
use identa::identity::Aal;
use identa::session::SessionToken;
use identa::{Error, ErrorKind};

use super::{TestEnv, api_settings_flow, submit_login, submit_settings, with_session};

/// The text a flow shows in its text node `id`; panics if it has none.
fn shown_text(flow: &Flow, id: &str) -> String {
    flow.ui
        .nodes
        .iter()
        .find_map(|n| match &n.attributes {
            NodeAttributes::Text(t) if t.id == id => Some(t.text.text.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a {id} text node"))
}

/// The TOTP secret (base32) a settings flow shows for enrolment.
pub fn shown_secret(flow: &Flow) -> String {
    shown_text(flow, "totp_secret_key")
}

/// The backup codes a settings flow shows after `LookupRegenerate`.
pub fn shown_codes(flow: &Flow) -> Vec<String> {
    shown_text(flow, "lookup_secret_codes")
        .split(", ")
        .map(str::to_owned)
        .collect()
}

/// The assurance level of the session of `token` (which must be active). A session that
/// `whoami` refuses for want of its second factor (the default
/// `session.whoami_required_aal`) is `aal1`.
pub async fn session_aal(env: &TestEnv, token: &SessionToken) -> Aal {
    match env.identa.whoami(token).await {
        Ok(current) => current.session.aal,
        Err(err) if err.kind() == ErrorKind::Aal2Required => Aal::Aal1,
        Err(err) => panic!("the session is not active: {err}"),
    }
}

/// Enrols TOTP for the identity of `token` (an `aal1` session will do while it has no
/// second factor) through a settings flow; the secret, base32. The code comes from
/// [`identa_totp_code`]: callers test what the factor does to flows, not TOTP.
pub async fn enrol_totp(env: &TestEnv, token: &SessionToken) -> String {
    let req = with_session(token);
    let flow = api_settings_flow(env, &req).await;
    let secret = shown_secret(&flow);
    let code = identa_totp_code(env, &secret);
    submit_settings(env, flow.id, SettingsSubmission::Totp { code }, &req)
        .await
        .unwrap();
    secret
}

/// Enrols a set of backup codes for the identity of `token` through a settings flow
/// (regenerate, then confirm); the codes.
pub async fn enrol_backup_codes(env: &TestEnv, token: &SessionToken) -> Vec<String> {
    let req = with_session(token);
    let flow = api_settings_flow(env, &req).await;
    let shown = submit_settings(env, flow.id, SettingsSubmission::LookupRegenerate, &req)
        .await
        .unwrap();
    submit_settings(env, flow.id, SettingsSubmission::LookupConfirm, &req)
        .await
        .unwrap();
    shown_codes(&shown.flow)
}

/// The TOTP code for `secret` (base32) at the test clock's now, from identa's own
/// generator. Only for tests whose point is a flow (enrolment, step-up, replay, races),
/// never the algorithm: identa checked against itself proves nothing about TOTP. The
/// algorithm is pinned by the RFC 6238 vectors (`rfc6238_appendix_b_vectors` in
/// src/credential/totp.rs) and checked against oathtool by the ignored
/// `mfa::oathtool_codes_enrol_and_step_up`.
pub fn identa_totp_code(env: &TestEnv, secret: &str) -> String {
    let bytes: [u8; 20] = base32_decode(secret)
        .try_into()
        .expect("a 160-bit TOTP secret");
    TotpSecret::from_bytes(bytes)
        .code_at(env.clock_now().timestamp() as u64)
        .unwrap()
}

/// RFC 4648 base32 without padding, as a TOTP secret is shown.
fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes() {
        let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// Completes a second-factor login flow (`aal2`) for the session of `token` with
/// `submission`: on success the session is upgraded in place.
pub async fn step_up(
    env: &TestEnv,
    token: &SessionToken,
    submission: LoginSubmission,
) -> Result<LoggedIn, Error> {
    step_up_with(env, token, |_| submission).await
}

/// [`step_up`] with the submission `answer` makes from the new second-factor flow (for a
/// factor that answers the flow's challenge, such as a security key).
pub async fn step_up_with(
    env: &TestEnv,
    token: &SessionToken,
    answer: impl FnOnce(&Flow) -> LoginSubmission,
) -> Result<LoggedIn, Error> {
    let req = with_session(token);
    let flow = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SecondFactor)
        .await?;
    submit_login(env, flow.id, answer(&flow), &req).await
}
