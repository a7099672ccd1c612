//! identa's integration suite: one binary, every case on SQLite (memory and file) and
//! PostgreSQL. Tests that need something beyond Rust (a PostgreSQL server, the aiosmtpd
//! SMTP server, oathtool, the password-hash tools) are ignored by `cargo test` and run with
//! `cargo test --all-features -- --ignored`, where a missing tool fails them by name
//! (see `common::needs`).

#[cfg(feature = "http")]
mod admin;
mod breached;
#[cfg(feature = "http")]
mod cache_bound;
mod common;
mod courier;
mod flow_guards;
mod hash_tools;
mod hooks;
#[cfg(feature = "http")]
mod http;
mod identities;
#[cfg(feature = "http")]
mod import;
mod known_pairs;
mod login;
mod logout;
mod mfa;
mod migration_hook;
mod migrations;
#[cfg(all(feature = "oidc", feature = "http"))]
mod oidc;
mod password_history;
mod passwords;
mod recovery;
mod registration;
mod revocation;
mod sessions;
mod settings;
mod store;
mod throttle;
mod token_tags;
mod verification;
mod webauthn;
