//! Headless Chromium (puppeteer-core, from npm) using the UI like a person.

use crate::Host;
use crate::tools;

/// A real browser: headless Chromium (Debian's `chromium`, driven by puppeteer-core from
/// npm, in `browser/`) signs up, signs out, signs in and sees the dashboard through the UI.
/// Needs Chromium, Node and `npm ci --prefix examples/http-suite/browser`; fails naming
/// what is missing.
pub async fn real_browser(host: &Host) {
    run_browser_script(
        &host.public,
        &host.admin,
        "signup-login.mjs",
        &["chromium sign-up, sign-out, sign-in: ok"],
    )
    .await;
}

/// The UI's security keys and passkeys in a real browser: Chromium's virtual
/// authenticator (DevTools' WebAuthn domain) answers the ceremonies that the pages' own
/// `webauthn.js` starts. A key is added in settings (and listed with its remove button),
/// used to step up to aal2, and removed; an account is made with a passkey and signed in
/// with it alone (discoverable, then identifier first). Needs what [`real_browser`] needs.
pub async fn real_browser_webauthn(host: &Host) {
    run_browser_script(
        &host.public,
        &host.admin,
        "webauthn.mjs",
        &[
            "chromium security key: added, used for aal2, removed: ok",
            "chromium passkey: signed up, signed in without and with identifier: ok",
        ],
    )
    .await;
}

/// Runs `browser/<script>` with `url` (a host's public base URL, or for `first-run.mjs`
/// the address to open) and `admin` (the host's admin base URL, where the scripts read
/// the codes mailed) as its arguments, and checks that it succeeded and printed each of
/// `expected`. Fails naming Chromium, Node or puppeteer-core when one is missing.
pub async fn run_browser_script(url: &str, admin: &str, script: &str, expected: &[&str]) {
    let chromium = tools::chromium();
    let dir = tools::npm_dir("browser", "puppeteer-core");
    let stdout = tools::node(&dir, script, &[url, admin], &[("CHROMIUM", &chromium)]).await;
    for line in expected {
        assert!(
            stdout.contains(line),
            "{script} did not print {line:?}:\n{stdout}"
        );
    }
}
