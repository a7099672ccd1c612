//! identa's integration suite: one binary, every case on SQLite (memory and file) and,
//! when `IDENTA_TEST_POSTGRES_URL` is set, PostgreSQL.

mod common;
mod courier;
mod flows;
#[cfg(feature = "http")]
mod http;
mod identities;
mod mfa;
mod migrations;
mod passwords;
mod sessions;
mod webauthn;
