//! What some cases need beyond Rust (Node, npm packages, Chromium, oathtool). Those cases
//! are `#[ignore]`d by [`http_suite!`](crate::http_suite) and run with `cargo test --
//! --ignored`; then a missing tool fails the case with a message naming it and how to
//! install it. Nothing here skips.

use std::path::{Path, PathBuf};

/// Fails the case: `what` is missing, `install` says how to get it.
#[track_caller]
fn missing(what: &str, install: &str, detail: &str) -> ! {
    panic!("needs {what}: {install} ({detail})")
}

/// `examples/http-suite/<dir>`, where `npm ci --prefix examples/http-suite/<dir>` must
/// have installed `package`.
#[track_caller]
pub(crate) fn npm_dir(dir: &str, package: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let installed = path.join("node_modules").join(package);
    if !installed.is_dir() {
        missing(
            &format!("the npm package {package}"),
            &format!("npm ci --prefix examples/http-suite/{dir}"),
            &format!("{} does not exist", installed.display()),
        );
    }
    path
}

/// Chromium's executable: `$CHROMIUM`, else Debian's `/usr/bin/chromium`.
#[track_caller]
pub(crate) fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&path).is_file() {
        missing(
            "Chromium",
            "apt-get install chromium, or set CHROMIUM to its executable",
            &format!("{path} does not exist"),
        );
    }
    path
}

/// Runs `node <script> <args…>` in `dir` (with `envs` set) and returns what it printed;
/// fails the case when Node cannot be started or the script fails.
pub(crate) async fn node(dir: &Path, script: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .await
        .unwrap_or_else(|err| {
            missing(
                "Node",
                "apt-get install nodejs npm",
                &format!("`node` could not be started: {err}"),
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// The TOTP code for a base32 secret now, from `oathtool` (Debian's oath-toolkit): an
/// authenticator that is not identa's own.
#[track_caller]
pub(crate) fn oathtool(secret: &str) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", secret])
        .output()
        .unwrap_or_else(|err| {
            missing(
                "oathtool",
                "apt-get install oathtool",
                &format!("`oathtool` could not be started: {err}"),
            )
        });
    assert!(
        out.status.success(),
        "oathtool --totp -b {secret} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
