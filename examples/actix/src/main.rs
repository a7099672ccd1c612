//! `cargo run -p identa-actix`: identa's public API (and UI) on 127.0.0.1:4433 and admin
//! API on 127.0.0.1:4434, on a SQLite file in the working directory. The environment
//! variables are the axum host's (see `identa_host::config`).

use identa_actix::{HostConfig, start};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let running = start(HostConfig::from_env()?).await?;
    tracing::info!(
        public = %format!("http://{}", running.public_addr),
        admin = %format!("http://{}", running.admin_addr),
        "identa (actix-web) is listening (admin API: keep it private)"
    );
    tokio::select! {
        _ = running.wait() => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
    Ok(())
}
