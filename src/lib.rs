//! # identa
//!
//! An embeddable identity library for Rust backends: identities described by
//! Kratos-style JSON schemas, argon2id passwords, and sessions whose tokens are stored
//! only as hashes — in-process, on SQLite or PostgreSQL through sea-orm.
//!
//! ```
//! use identa::{Identa, Password, SchemaRegistry, SeaOrmStore, SessionToken};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut schemas = SchemaRegistry::new();
//! schemas.add("default", json!({
//!     "$schema": "http://json-schema.org/draft-07/schema#",
//!     "type": "object",
//!     "properties": { "traits": { "type": "object", "required": ["email"], "properties": {
//!         "email": { "type": "string", "format": "email", "ory.sh/kratos": {
//!             "credentials": { "password": { "identifier": true } } } } } } }
//! }))?;
//! # let mut config = identa::Config::default();
//! # config.password = identa::config::PasswordConfig::insecure_fast_for_tests();
//! let identa = Identa::builder()
//!     .store(SeaOrmStore::connect("sqlite::memory:").await?)
//!     .schemas(schemas)
//! #   .config(config)
//!     .build()?;
//!
//! identa.register(json!({ "email": "ada@example.com" }), &Password::new("correct horse battery")).await?;
//! let login = identa.login("Ada@Example.com", &Password::new("correct horse battery"), None).await?;
//! let me = identa.whoami(&login.token).await?;
//! assert_eq!(me.identity.traits["email"], "ada@example.com");
//! identa.logout(&login.token).await?;
//! assert!(identa.whoami(&SessionToken::from_client(login.token.expose())).await.is_err());
//! # Ok(()) }
//! ```
//!
//! The modules follow the data: [`engine`] holds the rules, [`identity`],
//! [`credential`] and [`session`] the models, and [`store`] the persistence.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod clock;
pub mod config;
pub mod courier;
pub mod credential;
pub mod engine;
pub mod error;
pub mod flow;
pub mod hook;
#[cfg(feature = "http")]
pub mod http;
pub mod identity;
pub mod secret;
pub mod session;
pub mod store;

/// The sea-orm version identa uses, for hooks that write through
/// [`hook::Transaction::sea_orm`].
pub use sea_orm;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, SessionConfig};
pub use credential::password::{Password, PasswordConfig};
pub use engine::{Identa, IdentaBuilder, Login};
pub use error::{Error, ErrorKind, Result};
pub use flow::{Flow, FlowKind, FlowRequest, FlowState, FlowType};
pub use identity::Aal;
pub use identity::{
    CredentialType, Identity, IdentityState, IdentityUpdate, NewIdentity, SchemaRegistry,
};
pub use session::{AuthenticatedSession, Device, Session, SessionToken};
pub use store::{PageRequest, SeaOrmStore, Store};

/// Parses an id a client sent (a session or identity id), with a clear error.
pub fn parse_id(text: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        Error::InvalidInput(format!(
            "`{shown}` is not a UUID (expected e.g. 6ba7b810-9dad-11d1-80b4-00c04fd430c8)"
        ))
    })
}
