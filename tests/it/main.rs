//! identa's integration suite: one binary, every case on SQLite (memory and file) and,
//! when `IDENTA_TEST_POSTGRES_URL` is set, PostgreSQL.

mod common;
mod courier;
mod flow_guards;
mod hooks;
#[cfg(feature = "http")]
mod http;
mod identities;
mod login;
mod logout;
mod mfa;
mod passwords;
mod recovery;
mod registration;
mod sessions;
mod settings;
mod verification;
mod webauthn;
