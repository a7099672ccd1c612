//! What the HTTP login benches share: the axum host on loopback with one account, a
//! legitimate login over the API, and percentiles.

use std::time::{Duration, Instant};

use identa::flow::DuplicateRegistration;
use identa_axum::{HostConfig, start};
use identa_host::{HostLimits, Running, Throttling};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The bench account's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// The axum host on loopback (SQLite file in a temporary directory, default argon2
/// parameters, throttling off: every bench client is 127.0.0.1), with the account
/// `bench@example.com` registered.
pub struct BenchHost {
    pub base: String,
    pub client: reqwest::Client,
    _running: Running,
    _dir: tempfile::TempDir,
}

impl BenchHost {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = HostConfig {
            database_url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("identa.db").display()
            ),
            public_addr: "127.0.0.1:0".parse().unwrap(),
            admin_addr: "127.0.0.1:0".parse().unwrap(),
            secrets_file: None,
            limits: HostLimits {
                throttling: Throttling::Off,
                ..HostLimits::default()
            },
            // Sign-up signs in and needs no verified address: what is measured is the
            // sign-in, not the mail round trip the enumeration-safe default adds.
            duplicate_registration: DuplicateRegistration::Refuse,
            ..HostConfig::default()
        };
        let running = start(config).await.unwrap();
        let base = format!("http://{}", running.public_addr);
        let client = reqwest::Client::new();
        let flow: Value = client
            .get(format!("{base}/self-service/registration/api"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let res = client
            .post(format!("{base}/self-service/registration?flow={}", flow["id"].as_str().unwrap()))
            .json(&json!({ "method": "password", "traits": { "email": "bench@example.com" }, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        Self {
            base,
            client,
            _running: running,
            _dir: dir,
        }
    }
}

/// One login of the bench account (create a native login flow, submit the password):
/// the submission's latency and its status, or `None` if the request failed.
pub async fn login(client: &reqwest::Client, base: &str) -> Option<(Duration, StatusCode)> {
    let flow: Value = client
        .get(format!("{base}/self-service/login/api"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let started = Instant::now();
    let res = client
        .post(format!("{base}/self-service/login?flow={}", flow["id"].as_str()?))
        .json(&json!({ "method": "password", "identifier": "bench@example.com", "password": PASSWORD }))
        .send()
        .await
        .ok()?;
    let status = res.status();
    let _ = res.bytes().await;
    Some((started.elapsed(), status))
}

/// The `p` quantile of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}
