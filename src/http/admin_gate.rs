//! Who may call the admin API, and how: [`AdminAuth`] (a loopback-only API, or bearer
//! tokens compared in constant time), and the checks every admin request passes before a
//! route sees it — no browser page (`Sec-Fetch-Site`, `Origin`), then the caller
//! ([`AdminAuth`]), then a JSON body.
//!
//! The admin API is for servers. A page a user opens can still reach `127.0.0.1:4434`: a
//! form post or a `fetch` in `no-cors` mode is sent without asking anyone. Such requests
//! carry marks only a browser adds (`Sec-Fetch-Site`, `Origin`) or a body type only a
//! browser sends unasked (a form, multipart, `text/plain`); they are refused before any
//! route runs, so nothing is created and nothing is read.

use http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::response::error;
use super::{ClientIp, Request, Response};

/// The shortest admin token accepted, in bytes: 32 (e.g. `openssl rand -hex 32` gives 64).
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// One accepted admin token. Only its SHA-256 digest is kept, so neither `Debug` nor a
/// memory dump of the configuration shows the token; presented tokens are hashed the same
/// way and the digests compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Why a token was refused as an admin token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    /// Shorter than [`MIN_ADMIN_TOKEN_BYTES`].
    #[error(
        "an admin token must be at least {min} bytes long (this one has {len}); generate one with `openssl rand -hex 32`"
    )]
    TooShort {
        /// The length of the refused token.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// Contains whitespace or a comma (which separates tokens in lists).
    #[error(
        "an admin token must not contain whitespace or commas; generate one with `openssl rand -hex 32`"
    )]
    BadCharacter,
}

impl AdminToken {
    /// A token to accept. At least [`MIN_ADMIN_TOKEN_BYTES`] bytes, without whitespace or
    /// commas (so it can be sent as `Authorization: Bearer <token>` and listed in one
    /// variable).
    pub fn new(token: &str) -> Result<Self, AdminTokenError> {
        if token.chars().any(|c| c.is_whitespace() || c == ',') {
            return Err(AdminTokenError::BadCharacter);
        }
        if token.len() < MIN_ADMIN_TOKEN_BYTES {
            return Err(AdminTokenError::TooShort {
                len: token.len(),
                min: MIN_ADMIN_TOKEN_BYTES,
            });
        }
        Ok(Self {
            digest: digest(token),
        })
    }

    fn matches(&self, presented: &[u8; 32]) -> subtle::Choice {
        self.digest.ct_eq(presented)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Who may call the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AdminAuth {
    /// No token: only clients on the same machine. A request whose [`ClientIp`] is not a
    /// loopback address is refused (403 `admin_loopback_only`). The host MUST bind the
    /// admin listener to a loopback address. The default.
    #[default]
    LoopbackOnly,
    /// `Authorization: Bearer <token>` with one of these tokens, from any address. Several
    /// tokens let you rotate: add the new one, move the callers, drop the old one. An
    /// empty list accepts no one.
    Tokens(Vec<AdminToken>),
}

/// Refuses what the admin API must not answer: a request from a browser page, a caller
/// `auth` does not accept, a body that is not JSON. `None`: go on to the route.
pub(super) fn check(req: &Request, auth: &AdminAuth, open_route: bool) -> Option<Response> {
    if let Some(refusal) = browser_page(req) {
        return Some(refusal);
    }
    if !open_route && let Some(refusal) = caller(req, auth) {
        return Some(refusal);
    }
    json_body(req)
}

/// The host the request was addressed to (`Host`, or the URI's authority over HTTP/2),
/// without its port.
fn host_name(req: &Request) -> Option<&str> {
    let authority =
        header_str(req, header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    Some(match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:4434`.
        Some(rest) => rest.split_once(']').map_or(rest, |(ip, _)| ip),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    })
}

/// An IP address or `localhost`: names only this machine's own servers use.
fn is_local_name(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost")
}

fn header_str(req: &Request, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A request a browser made for a page: `Sec-Fetch-Site` anything but `none` (`none` is
/// a user typing the URL), or an `Origin` other than the admin API's own.
fn browser_page(req: &Request) -> Option<Response> {
    let cross_site = |what: &str| {
        error(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            &format!(
                "the admin API is for servers, and this request came from a web page ({what}); call it from your backend, without a browser"
            ),
        )
    };
    let fetch_site = req.headers().get("sec-fetch-site");
    if let Some(site) = fetch_site
        && !site.as_bytes().eq_ignore_ascii_case(b"none")
    {
        let shown: String = String::from_utf8_lossy(site.as_bytes())
            .chars()
            .take(20)
            .collect();
        return Some(cross_site(&format!("Sec-Fetch-Site: {shown}")));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let own = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| authority)
            // HTTP/2 names the authority in the URI instead of `Host`.
            .zip(
                header_str(req, header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str())),
            )
            .is_some_and(|(authority, host)| authority.eq_ignore_ascii_case(host));
        if !own {
            return Some(cross_site("its Origin is not the admin API's own"));
        }
    }
    None
}

/// The caller `auth` accepts, or the refusal.
fn caller(req: &Request, auth: &AdminAuth) -> Option<Response> {
    match auth {
        AdminAuth::LoopbackOnly => {
            let refuse = |why: String| {
                Some(error(
                    StatusCode::FORBIDDEN,
                    "admin_loopback_only",
                    &format!(
                        "the admin API has no tokens configured, so it answers only this machine; {why}; configure admin tokens (AdminAuth::Tokens, IDENTA_ADMIN_TOKEN in the example hosts) to call it over the network"
                    ),
                ))
            };
            match req.extensions().get::<ClientIp>() {
                // Without the peer address nothing says the caller is on this machine:
                // fail closed rather than answer the network.
                None => {
                    return refuse(
                        "this request carries no client address (the host must insert http::ClientIp with the connection's peer address)".into(),
                    );
                }
                Some(ip) if !ip.0.is_loopback() => {
                    return refuse(format!("not {}", ip.0));
                }
                Some(_) => {}
            }
            // A page whose domain was re-pointed at 127.0.0.1 (DNS rebinding) names its
            // own domain in `Host`; a server on this machine names an address or localhost.
            match host_name(req) {
                Some(host) if is_local_name(host) => None,
                Some(host) => refuse(format!(
                    "it was addressed as `{}`, not as an IP address or localhost",
                    host.chars().take(64).collect::<String>()
                )),
                None => refuse("it names no host (`Host`)".into()),
            }
        }
        AdminAuth::Tokens(tokens) => {
            let presented = header_str(req, header::AUTHORIZATION)
                .and_then(|a| a.trim().split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .filter(|t| !t.is_empty());
            let Some(presented) = presented else {
                return Some(unauthorized(
                    "Bearer realm=\"identa-admin\"",
                    "the admin API needs `Authorization: Bearer <admin token>`",
                ));
            };
            let presented = digest(presented);
            // Every token is compared, whichever matches: the time taken says nothing.
            let accepted = tokens.iter().fold(subtle::Choice::from(0), |any, t| {
                any | t.matches(&presented)
            });
            if bool::from(accepted) {
                None
            } else {
                Some(unauthorized(
                    "Bearer realm=\"identa-admin\", error=\"invalid_token\"",
                    "the admin token is not one this API accepts; check the token your server sends",
                ))
            }
        }
    }
}

fn unauthorized(challenge: &'static str, reason: &str) -> Response {
    let mut res = error(StatusCode::UNAUTHORIZED, "unauthorized", reason);
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    res
}

/// A request with a body (or a declared body type) must send JSON: `application/json` or
/// `application/json-patch+json`, parameters allowed. Forms, multipart and untyped
/// bodies are what a page can send without asking; they get 415.
fn json_body(req: &Request) -> Option<Response> {
    let content_type = req.headers().get(header::CONTENT_TYPE);
    if req.body().is_empty() && content_type.is_none() {
        return None;
    }
    let media_type = content_type
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .unwrap_or_default();
    let json = media_type.eq_ignore_ascii_case("application/json")
        || media_type.eq_ignore_ascii_case("application/json-patch+json");
    if json {
        return None;
    }
    let shown: String = if media_type.is_empty() {
        "none".into()
    } else {
        format!("`{}`", media_type.chars().take(60).collect::<String>())
    };
    Some(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        &format!(
            "the admin API takes JSON bodies only (this one's content type: {shown}); send `Content-Type: application/json`"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_never_shown() {
        assert!(matches!(
            AdminToken::new("short"),
            Err(AdminTokenError::TooShort { len: 5, min: 32 })
        ));
        assert_eq!(
            AdminToken::new(&format!("{} x", "a".repeat(40))),
            Err(AdminTokenError::BadCharacter)
        );
        let secret = "s".repeat(40);
        let token = AdminToken::new(&secret).unwrap();
        assert!(!format!("{token:?}").contains("sss"));
        assert!(bool::from(token.matches(&digest(&secret))));
        assert!(!bool::from(token.matches(&digest(&"s".repeat(41)))));
    }
}
