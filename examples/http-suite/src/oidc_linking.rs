//! Linking and unlinking provider accounts through a host's UI in headless Chromium
//! (`browser/oidc-link.mjs`): after Kratos's 1010016 prompt on the sign-in page, and with
//! the settings page's `link` and `unlink` buttons.

use std::future::Future;

use identa_host::{BoxError, HostConfig, HostProvider, Running};

use crate::oidc::{OpenIdProvider, PROVIDER, free_port, provider_entry};
use crate::try_start_example_host;

/// The second provider the linking case configures, at the same OpenID provider.
const OTHER: &str = "other";

/// Headless Chromium links and unlinks provider accounts through the host's UI, with two
/// providers configured (`test` and `other`, at one OpenID provider): a password
/// account's owner is shown 1010016 on the sign-in page, signs in with the password and
/// so links the provider account, which then signs in alone to that identity; settings
/// link the other provider (its unlink button shows) and unlink it (it no longer signs in
/// to the identity); and a provider-only account's last way to sign in is not unlinked
/// (the page shows 4000001). Needs what [`oidc_real_browser`](crate::oidc_real_browser)
/// needs.
pub async fn oidc_link_real_browser<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let host = try_start_example_host(&start, |config| {
        config.oidc_providers = vec![
            provider_entry(&issuer),
            HostProvider {
                id: OTHER.into(),
                label: Some("Other ID".into()),
                ..provider_entry(&issuer)
            },
        ];
    })
    .await
    .expect("the host starts with two OpenID Connect providers");
    let callbacks = [PROVIDER, OTHER]
        .map(|id| format!("{}/self-service/methods/oidc/callback/{id}", host.public));
    let _provider = OpenIdProvider::start(port, &callbacks);
    crate::run_browser_script(
        &host.public,
        &host.admin,
        "oidc-link.mjs",
        &[
            "chromium OpenID Connect link after signing in with the password: ok",
            "chromium OpenID Connect link and unlink in settings: ok",
            "chromium OpenID Connect the last way to sign in is not unlinked: ok",
        ],
    )
    .await;
}
