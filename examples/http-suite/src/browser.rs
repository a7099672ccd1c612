//! Headless Chromium (puppeteer-core, from npm) using the UI like a person.

use crate::Host;

/// A real browser: headless Chromium (Debian's `chromium`, driven by puppeteer-core from
/// npm, in `browser/`) signs up, signs out, signs in and sees the dashboard through the UI.
/// Skipped without Chromium or `npm ci --prefix examples/http-suite/browser`, unless
/// `IDENTA_REQUIRE_BROWSER_TESTS` is set.
pub async fn real_browser(host: &Host) {
    run_browser_script(
        host,
        "signup-login.mjs",
        &["chromium sign-up, sign-out, sign-in: ok"],
    )
    .await;
}

/// The UI's security keys and passkeys in a real browser: Chromium's virtual
/// authenticator (DevTools' WebAuthn domain) answers the ceremonies that the pages' own
/// `webauthn.js` starts. A key is added in settings (and listed with its remove button),
/// used to step up to aal2, and removed; an account is made with a passkey and signed in
/// with it alone (discoverable, then identifier first). Skipped like [`real_browser`].
pub async fn real_browser_webauthn(host: &Host) {
    run_browser_script(
        host,
        "webauthn.mjs",
        &[
            "chromium security key: added, used for aal2, removed: ok",
            "chromium passkey: signed up, signed in without and with identifier: ok",
        ],
    )
    .await;
}

/// Runs `browser/<script>` against the host's public URL and checks that it succeeded and
/// printed each of `expected`. Skips (with a note) when the browser is not installed and
/// not required.
async fn run_browser_script(host: &Host, script: &str, expected: &[&str]) {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/browser"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !dir.join("node_modules/puppeteer-core").exists()
        || !std::path::Path::new(&chromium).exists()
    {
        assert!(
            std::env::var("IDENTA_REQUIRE_BROWSER_TESTS").is_err(),
            "IDENTA_REQUIRE_BROWSER_TESTS is set but Chromium ({chromium}) or puppeteer-core is missing"
        );
        eprintln!("skipped: install chromium and npm ci --prefix examples/http-suite/browser");
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(&host.public)
        .env("CHROMIUM", &chromium)
        .current_dir(dir)
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser check {script} failed:\n{stdout}\n{stderr}"
    );
    for line in expected {
        assert!(
            stdout.contains(line),
            "{script} did not print {line:?}:\n{stdout}"
        );
    }
}
