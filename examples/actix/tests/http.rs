//! The shared HTTP suite against the actix-web host.

use identa::credential::password::PasswordConfig;
use identa_actix::{HostConfig, start};
use identa_http_suite::Host;

async fn start_for_tests() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig {
        database_url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("identa.db").display()
        ),
        public_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        password: PasswordConfig::insecure_fast_for_tests(),
        secrets_file: Some(dir.path().join("identa-secrets.json")),
        ..HostConfig::default()
    };
    let running = start(config).await.unwrap();
    Host {
        public: format!("http://localhost:{}", running.public_addr.port()),
        admin: format!("http://{}", running.admin_addr),
        guard: Box::new((running, dir)),
    }
}

identa_http_suite::http_suite!(start_for_tests);
