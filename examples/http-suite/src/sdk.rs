//! The official Kratos SDK (`@ory/kratos-client`, from npm) against the host.

use crate::Host;

/// The official Kratos SDK (`@ory/kratos-client` from npm, in `sdk/`) drives a native
/// round trip and admin calls (`sdk/roundtrip.mjs`). Needs `npm ci --prefix
/// examples/http-suite/sdk`; skipped without it unless `IDENTA_REQUIRE_SDK_TESTS` is set.
pub async fn kratos_sdk_roundtrip(host: &Host) {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/sdk"));
    if !dir.join("node_modules/@ory/kratos-client").exists() {
        assert!(
            std::env::var("IDENTA_REQUIRE_SDK_TESTS").is_err(),
            "IDENTA_REQUIRE_SDK_TESTS is set but the SDK is not installed: npm ci --prefix examples/http-suite/sdk"
        );
        eprintln!("skipped: npm ci --prefix examples/http-suite/sdk to run the Kratos SDK check");
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg("roundtrip.mjs")
        .arg(&host.public)
        .arg(&host.admin)
        .current_dir(dir)
        .output()
        .await
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK round trip failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("kratos sdk round trip: ok"), "{stdout}");
}
