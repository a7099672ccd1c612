//! Credentials: what proves an identity is who it claims. One module per method.

pub mod code;
pub mod lookup;
pub mod password;
pub mod totp;
pub mod webauthn;
