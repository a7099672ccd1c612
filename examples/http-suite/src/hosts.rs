//! Starting an example host (one built on `identa-host`, as the axum and actix hosts are)
//! for a case: its SQLite file and development secrets in a temporary directory, fast
//! password hashing, and free loopback ports.

use std::future::Future;
use std::path::Path;

use identa::credential::password::PasswordConfig;
use identa_host::{BoxError, HostConfig, Running};

use crate::Host;

/// A host's configuration for a test: its SQLite file and development secrets in `dir`,
/// fast password hashing, and otherwise the defaults (the addresses among them).
pub fn test_config(dir: &Path) -> HostConfig {
    HostConfig {
        database_url: format!("sqlite://{}?mode=rwc", dir.join("identa.db").display()),
        password: PasswordConfig::insecure_fast_for_tests(),
        secrets_file: Some(dir.join("identa-secrets.json")),
        ..HostConfig::default()
    }
}

/// Starts an example host with its framework's `start` (`identa_axum::start`,
/// `identa_actix::start`): [`test_config`] in a temporary directory, on free loopback
/// ports. The public API is addressed as `localhost`, a domain, as WebAuthn needs.
pub async fn start_example_host<Fut>(start: impl FnOnce(HostConfig) -> Fut) -> Host
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    try_start_example_host(start, |_| {})
        .await
        .expect("the host starts")
}

/// [`start_example_host`] with `adjust` applied to the configuration first; the host's
/// start-up error, if it refuses to start.
pub async fn try_start_example_host<Fut>(
    start: impl FnOnce(HostConfig) -> Fut,
    adjust: impl FnOnce(&mut HostConfig),
) -> Result<Host, BoxError>
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let any_port = "127.0.0.1:0".parse().unwrap();
    let mut config = HostConfig {
        public_addr: any_port,
        admin_addr: any_port,
        ..test_config(dir.path())
    };
    adjust(&mut config);
    let running = start(config).await?;
    Ok(Host {
        public: format!("http://localhost:{}", running.public_addr.port()),
        admin: format!("http://{}", running.admin_addr),
        guard: Box::new((running, dir)),
    })
}
