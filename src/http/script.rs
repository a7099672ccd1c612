//! The browser half of the WebAuthn ceremonies (Kratos's `webauthn.js`): served by the
//! public API at [`WEBAUTHN_SCRIPT_PATH`], and named by the script node of every WebAuthn
//! form, which this module fills in when a flow is answered.

use std::sync::LazyLock;

use crate::flow::Flow;
use crate::flow::ui::NodeAttributes;

/// Where the public API serves [`webauthn_script`] (Kratos's path).
pub const WEBAUTHN_SCRIPT_PATH: &str = "/.well-known/ory/webauthn.js";

const SCRIPT: &str = include_str!("webauthn.js");

/// The script: `window.oryWebAuthnRegistration`, `oryWebAuthnLogin`,
/// `oryPasskeyRegistration`, `oryPasskeySettingsRegistration` and `oryPasskeyLogin`, the
/// functions the flows' `onclickTrigger`s name.
pub fn webauthn_script() -> &'static str {
    SCRIPT
}

/// Subresource integrity of the script.
static INTEGRITY: LazyLock<String> = LazyLock::new(|| {
    use base64ct::{Base64, Encoding};
    use sha2::{Digest, Sha512};
    format!(
        "sha512-{}",
        Base64::encode_string(&Sha512::digest(SCRIPT.as_bytes()))
    )
});

/// Points every script node of `flow` at the script under `public_url`, with its
/// integrity.
pub(crate) fn fill_script_nodes(flow: &mut Flow, public_url: &str) {
    let src = format!("{}{WEBAUTHN_SCRIPT_PATH}", public_url.trim_end_matches('/'));
    for node in &mut flow.ui.nodes {
        if let NodeAttributes::Script(script) = &mut node.attributes {
            script.src.clone_from(&src);
            script.integrity.clone_from(&INTEGRITY);
        }
    }
}
