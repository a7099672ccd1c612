//! The official Kratos SDK (`@ory/kratos-client`, from npm) against the host.

use crate::Host;
use crate::tools;

/// The official Kratos SDK (`@ory/kratos-client` from npm, in `sdk/`) drives a native
/// round trip and admin calls (`sdk/roundtrip.mjs`). Needs Node and `npm ci --prefix
/// examples/http-suite/sdk`; fails naming what is missing.
pub async fn kratos_sdk_roundtrip(host: &Host) {
    let dir = tools::npm_dir("sdk", "@ory/kratos-client");
    let stdout = tools::node(&dir, "roundtrip.mjs", &[&host.public, &host.admin], &[]).await;
    assert!(stdout.contains("kratos sdk round trip: ok"), "{stdout}");
}
