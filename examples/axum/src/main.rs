//! `cargo run -p identa-axum`: identa's public API and UI on 127.0.0.1:4433 (open
//! <http://localhost:4433/ui/>) and its admin API on 127.0.0.1:4434, on a SQLite file in
//! the working directory. See `identa_host::config` for the environment variables.

use identa_axum::{HostConfig, start};

#[tokio::main]
async fn main() -> Result<(), identa_host::BoxError> {
    identa_host::init_logging();
    let running = start(HostConfig::from_env()?).await?;
    identa_host::announce("axum", running.public_addr, running.admin_addr);
    identa_host::until_ctrl_c(running.wait()).await;
    Ok(())
}
