//! What the ignored tests need beyond Rust. A test that needs a PostgreSQL server, the
//! aiosmtpd SMTP server, openssl, oathtool or the password-hash tools is
//! `#[ignore = "needs …"]`, so `cargo test` lists it as ignored, never as passed;
//! `cargo test -- --ignored` runs it, and then a missing tool fails the test with what is
//! missing and how to get it. Nothing is skipped in silence.

use std::process::Command;

/// `IDENTA_TEST_POSTGRES_URL`, in a build with the `postgres` feature.
pub fn postgres_url() -> String {
    if !cfg!(feature = "postgres") {
        panic!(
            "this test needs the `postgres` feature: run `cargo test --all-features -- --ignored`"
        );
    }
    std::env::var("IDENTA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "this test needs PostgreSQL: set IDENTA_TEST_POSTGRES_URL=postgres://user:password@host:5432/database \
             (a database the user may create schemas in; each test makes its own)"
        )
    })
}

/// Python 3 with the aiosmtpd SMTP server (tests/support/smtp_sink.py runs it).
#[cfg(feature = "smtp")]
pub fn aiosmtpd() {
    let importable = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        importable,
        "this test needs the aiosmtpd SMTP server: `python3 -m pip install aiosmtpd` \
         (or `apt-get install python3-aiosmtpd`)"
    );
}

/// The openssl command line tool (to make a throwaway certificate).
#[cfg(feature = "smtp")]
pub fn openssl() {
    let runs = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        runs,
        "this test needs the openssl command: `apt-get install openssl`"
    );
}

/// The TOTP code oathtool (oath-toolkit) computes for `secret` (base32) at `at`.
pub fn oathtool_totp(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let when = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "--now", &when, secret])
        .output()
        .unwrap_or_else(|err| {
            panic!("this test needs oathtool: `apt-get install oathtool` ({err})")
        });
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Password hashes made by other implementations (tests/support/hash_vectors.py): python3
/// with passlib and argon2-cffi, openssl, htpasswd and Debian's argon2 command. Each a
/// JSON object `{format, password, hash, matches}`.
pub fn tool_made_hashes() -> Vec<serde_json::Value> {
    let importable = Command::new("python3")
        .args(["-c", "import passlib, argon2"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        importable,
        "this test needs python3 with passlib and argon2-cffi: \
         `python3 -m pip install passlib argon2-cffi` (or `apt-get install python3-passlib python3-argon2`)"
    );
    for (tool, probe, package) in [
        ("openssl", "version", "openssl"),
        ("htpasswd", "-h", "apache2-utils"),
        ("argon2", "-h", "argon2"),
    ] {
        let found = Command::new(tool).arg(probe).output().is_ok();
        assert!(
            found,
            "this test needs the {tool} command: `apt-get install {package}`"
        );
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hash_vectors.py");
    let out = Command::new("python3")
        .arg(script)
        .output()
        .unwrap_or_else(|err| panic!("python3 {script}: {err}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
