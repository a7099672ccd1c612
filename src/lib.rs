//! # identa
//!
//! An embeddable identity library for Rust backends: identities described by
//! Kratos-style JSON schemas, argon2id passwords, and sessions whose tokens are stored
//! only as hashes — in-process, on SQLite or PostgreSQL through sea-orm.
//!
//! ```
//! use identa::Identa;
//! use identa::credential::password::Password;
//! use identa::identity::SchemaRegistry;
//! use identa::session::SessionToken;
//! use identa::store::SeaOrmStore;
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
//! # config.password = identa::credential::password::PasswordConfig::insecure_fast_for_tests();
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
//! The modules are layers, each using only those below it (docs/architecture.md has the
//! map, and a test keeps it true): [`identity`]; [`credential`] and [`session`]; [`store`]
//! (persistence); [`courier`] and [`hook`]; [`flow`] (the flows' state machines); the
//! engine ([`Identa`], which applies what flows decide); and [`http`] (Kratos's routes).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod clock;
mod config;
pub mod courier;
pub mod credential;
mod engine;
mod error;
pub mod flow;
pub mod hook;
#[cfg(feature = "http")]
pub mod http;
pub mod identity;
mod secret;
pub mod session;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;

/// The guides' Rust blocks, compiled (and most of them run) as doctests so they cannot rot.
/// They use the default features (SQLite, the HTTP API); blocks that need `smtp` or
/// `testing` say so with a hidden `#[cfg(feature = …)]`.
#[cfg(all(doctest, feature = "sqlite", feature = "http"))]
mod guides {
    #[doc = include_str!("../README.md")]
    mod readme {}
    #[doc = include_str!("../docs/getting-started.md")]
    mod getting_started {}
    #[doc = include_str!("../docs/concepts.md")]
    mod concepts {}
    #[doc = include_str!("../docs/flows.md")]
    mod flows {}
    #[doc = include_str!("../docs/http-api.md")]
    mod http_api {}
    #[doc = include_str!("../docs/configuration.md")]
    mod configuration {}
    #[doc = include_str!("../docs/courier.md")]
    mod courier {}
    #[doc = include_str!("../docs/mfa.md")]
    mod mfa {}
    #[doc = include_str!("../docs/migrating-from-kratos.md")]
    mod migrating_from_kratos {}
    #[cfg(feature = "oidc")]
    #[doc = include_str!("../docs/oidc.md")]
    mod oidc {}
}

/// The sea-orm version identa uses, for hooks that write through
/// [`store::Transaction::sea_orm`].
pub use sea_orm;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, RequiredAal, SessionCacheConfig, SessionConfig};
#[cfg(feature = "oidc")]
pub use engine::OidcFlows;
pub use engine::{
    Identa, IdentaBuilder, IdentityImport, LoginFlows, MAX_IMPORT_BATCH, PasswordImport,
    RecoveryFlows, RegistrationFlows, SettingsFlows, VerificationFlows,
};
pub use error::{Error, ErrorKind, Result};
pub use secret::{MIN_SECRET_BYTES, Secret, SecretError, Secrets};
