//! Second factors as the flow tests use them.

use identa::credential::totp::TotpSecret;

use super::TestEnv;

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
