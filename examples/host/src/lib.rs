//! What the example hosts share: their configuration ([`HostConfig`]: defaults, a JSON
//! file, environment variables) and building the engine, HTTP settings and mailer from it.
//! Each host (`identa-axum`, `identa-actix`) adds only its framework's glue.

pub mod config;

pub use config::{HostConfig, default_schema};
