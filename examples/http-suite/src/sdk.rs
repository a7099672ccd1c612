//! The official Kratos SDK (`@ory/kratos-client`, from npm) against the host.

use std::future::Future;

use identa_host::{BoxError, HostConfig, Running};

use crate::Host;
use crate::oidc::host_with_provider;
use crate::tools;

/// The official Kratos SDK (`@ory/kratos-client` from npm, in `sdk/`) drives a native
/// round trip and admin calls (`sdk/roundtrip.mjs`). Needs Node and `npm ci --prefix
/// examples/http-suite/sdk`; fails naming what is missing.
pub async fn kratos_sdk_roundtrip(host: &Host) {
    let dir = tools::npm_dir("sdk", "@ory/kratos-client");
    let stdout = tools::node(&dir, "roundtrip.mjs", &[&host.public, &host.admin], &[]).await;
    assert!(stdout.contains("kratos sdk round trip: ok"), "{stdout}");
}

/// What `sdk/oidc.mjs` prints, one line per step it checked.
const SDK_OIDC_STEPS: &[&str] = &[
    "registration flow shows the provider button: ok",
    "registration with the provider answers browser_location_change_required: ok",
    "registration back from the provider at the callback: ok",
    "toSession after the sign-up shows the provider's address, method oidc: ok",
    "login flow shows the provider button: ok",
    "login with the provider answers browser_location_change_required: ok",
    "login back from the provider at the callback: ok",
    "toSession after a fresh login is the same identity: ok",
    "kratos sdk oidc: ok",
];

/// The official Kratos SDK's `FrontendApi`, as a Kratos front end uses it for browser
/// flows (forwarding the browser's cookies), signs up and signs in with a configured
/// OpenID Connect provider (`sdk/oidc.mjs`): the provider's button in the flows' ui nodes
/// (group `oidc`), 422 `browser_location_change_required` at the provider when it is
/// pressed, the provider's pages and the callback, then `toSession` showing the provider's
/// address and method `oidc`, the same identity after a fresh login. Needs Node, `npm ci
/// --prefix examples/http-suite/sdk` and `examples/http-suite/oidc`.
pub async fn sdk_oidc<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let (host, provider) = host_with_provider(start).await;
    let dir = tools::npm_dir("sdk", "@ory/kratos-client");
    let stdout = tools::node(
        &dir,
        "oidc.mjs",
        &[&host.public, &host.admin, &provider.issuer],
        &[],
    )
    .await;
    for step in SDK_OIDC_STEPS {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}
