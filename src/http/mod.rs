//! The Kratos-compatible HTTP API, framework-agnostic: it maps an
//! `http::Request<Bytes>` to an `http::Response<Bytes>`, so a host mounts it in axum,
//! actix-web or anything else with a few lines of glue (see `examples/axum`).
//!
//! Two separate APIs, as in Kratos: [`PublicApi`] (self-service flows, sessions, schemas,
//! health; port 4433 by convention) and [`AdminApi`] (identities, sessions, recovery codes,
//! courier messages; port 4434). Mount them on **separate listeners**: nothing of the admin
//! API is reachable through the public one.
//!
//! - [`request`]: reading requests (cookies, the session token, bodies in JSON or form
//!   encoding) — [`request::session_token`] is the one place a token is read.
//! - [`response`]: Kratos's JSON shapes, the error table (`ErrorKind` → status), cookies.
//! - `router`: the public routes; `flows`, `sessions`: what they do; `respond`: every
//!   flow outcome turned into a Kratos response; `oidc` (feature `oidc`): the provider
//!   buttons' submissions and the providers' callback.
//! - `admin`: the admin routes; `admin_gate`: who may call them ([`AdminAuth`]) and the
//!   checks every admin request passes first. `script`: the WebAuthn browser script.

mod admin;
mod admin_gate;
mod flows;
#[cfg(feature = "oidc")]
mod oidc;
pub mod request;
mod respond;
pub mod response;
mod router;
mod script;
mod sessions;

use std::net::IpAddr;

use bytes::Bytes;

pub use admin::AdminApi;
pub use admin_gate::{AdminAuth, AdminToken, AdminTokenError, MIN_ADMIN_TOKEN_BYTES};
pub use router::PublicApi;
pub use script::{WEBAUTHN_SCRIPT_PATH, webauthn_script};

/// The name of the cookie holding a browser's CSRF value (Kratos names its own
/// `csrf_token_<hash>`).
pub const CSRF_COOKIE: &str = "identa_csrf";

/// The request type the APIs take.
pub type Request = http::Request<Bytes>;
/// The response type the APIs give.
pub type Response = http::Response<Bytes>;

/// The client's address as the host saw it. Insert it into the request's extensions
/// (`request.extensions_mut().insert(ClientIp(addr))`) and sessions record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The `SameSite` attribute of identa's cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites (the default; what Kratos uses).
    Lax,
    /// Never sent from other sites.
    Strict,
}

/// How identa's cookies (session and CSRF) are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// The session cookie's name. Default: `identa_session`.
    pub session_name: String,
    /// `Domain`, if the cookie must be shared with subdomains. Default: none (host only).
    pub domain: Option<String>,
    /// `Path`. Default: `/`.
    pub path: String,
    /// `Secure`: only over HTTPS. Default: true when `flows.public_url` is `https://`.
    pub secure: Option<bool>,
    /// `SameSite`. Default: [`SameSite::Lax`].
    pub same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            session_name: "identa_session".into(),
            domain: None,
            path: "/".into(),
            secure: None,
            same_site: SameSite::Lax,
        }
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where the browser UI lives: browser flows redirect to `<ui_url>/<flow>?flow=<id>`
    /// (`login`, `registration`, `settings`, `recovery`, `verification`) and errors to
    /// `<ui_url>/error?id=<id>`. Default: `http://127.0.0.1:4433/ui`.
    pub ui_url: String,
    /// Where a browser goes after a flow without `return_to`. Default:
    /// `http://127.0.0.1:4433/ui/dashboard`.
    pub default_return_url: String,
    /// Cookies.
    pub cookies: CookieConfig,
    /// The largest request body the public API accepts, in bytes. Default: 64 KiB.
    pub max_body_bytes: usize,
    /// The largest request body the admin API accepts, in bytes. Default: 8 MiB — room
    /// for a batch import of 1,000 identities (`PATCH /admin/identities`, about 500 bytes
    /// an item with a password hash), which the public limit would refuse with 413.
    pub max_admin_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            ui_url: "http://127.0.0.1:4433/ui".into(),
            default_return_url: "http://127.0.0.1:4433/ui/dashboard".into(),
            cookies: CookieConfig::default(),
            max_body_bytes: 64 * 1024,
            max_admin_body_bytes: 8 * 1024 * 1024,
        }
    }
}
