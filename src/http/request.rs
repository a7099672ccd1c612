//! Reading requests: the query, cookies, the session token (cookie, `X-Session-Token` or
//! `Authorization: Bearer`), whether the client wants JSON, and bodies in JSON or
//! `application/x-www-form-urlencoded` (dotted names like `traits.email` become nested
//! objects, as Kratos does).

use http::header;
use serde_json::{Map, Value};

use super::{ClientIp, Request};
use crate::error::Error;
use crate::session::{Device, SessionToken};

/// A request, read.
#[derive(Debug)]
pub struct Incoming<'a> {
    req: &'a Request,
    query: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
}

/// Parses an id a client sent (a flow, session or identity id), with a clear error.
pub fn parse_id(text: &str) -> Result<uuid::Uuid, Error> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        Error::InvalidInput(format!(
            "`{shown}` is not a UUID (expected e.g. 6ba7b810-9dad-11d1-80b4-00c04fd430c8)"
        ))
    })
}

/// Where a session token may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFrom<'a> {
    /// `X-Session-Token` or `Authorization: Bearer` only: what native apps send, and all an
    /// API flow accepts (a cookie a browser attaches to a cross-site request must not act).
    Headers,
    /// A header, else the session cookie of this name: what browsers send.
    HeadersOrCookie(&'a str),
}

/// The session token a request presents: `X-Session-Token`, then `Authorization: Bearer`
/// (the scheme in any case), then — if `from` allows — the session cookie.
///
/// Written over plain accessors so every host uses this one reading, whatever its `http`
/// crate: `header` gives a header's value by (lower-case) name, `cookie_headers` every
/// `Cookie` header's value.
pub fn session_token<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    cookie_headers: impl IntoIterator<Item = &'a str>,
    from: TokenFrom<'_>,
) -> Option<SessionToken> {
    if let Some(token) = header("x-session-token")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(SessionToken::from_client(token));
    }
    if let Some((scheme, token)) = header("authorization").and_then(|a| a.trim().split_once(' '))
        && scheme.eq_ignore_ascii_case("bearer")
        && !token.trim().is_empty()
    {
        return Some(SessionToken::from_client(token.trim()));
    }
    let TokenFrom::HeadersOrCookie(name) = from else {
        return None;
    };
    cookie_headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| key.trim() == name && !value.trim().is_empty())
        .map(|(_, value)| SessionToken::from_client(value.trim().trim_matches('"')))
}

/// [`session_token`] of a request of this crate's `http` types.
pub(crate) fn session_token_of(req: &Request, from: TokenFrom<'_>) -> Option<SessionToken> {
    let headers = req.headers();
    session_token(
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        from,
    )
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the configured limit.
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not JSON or form-encoded.
    UnsupportedType(String),
    /// Malformed.
    Malformed(String),
}

impl<'a> Incoming<'a> {
    /// Reads a request's head.
    pub fn new(req: &'a Request) -> Self {
        let query = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let cookies = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                Some((
                    name.trim().to_owned(),
                    value.trim().trim_matches('"').to_owned(),
                ))
            })
            .collect();
        Self {
            req,
            query,
            cookies,
        }
    }

    /// The request.
    pub fn request(&self) -> &Request {
        self.req
    }

    /// The path, without a trailing slash.
    pub fn path(&self) -> &str {
        let path = self.req.uri().path();
        if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        }
    }

    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable query parameter, under `key` or `key[]`, in order.
    pub fn query_all<'k>(&'k self, key: &'k str) -> impl Iterator<Item = &'k str> + 'k {
        self.query
            .iter()
            .filter(move |(k, _)| k.strip_suffix("[]").unwrap_or(k) == key)
            .map(|(_, v)| v.as_str())
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A header's value, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the body is an HTML form (`application/x-www-form-urlencoded`).
    pub fn is_form(&self) -> bool {
        self.header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    }

    /// Whether the client asked for JSON (`Accept: application/json`) rather than a page.
    pub fn wants_json(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains("application/json"))
    }

    /// The session token the client presented (see [`session_token`]): from a header
    /// only, or from a header or the session cookie named `cookie`.
    pub fn session_token(&self, from: TokenFrom<'_>) -> Option<SessionToken> {
        session_token_of(self.req, from)
    }

    /// The device: the client address (from [`ClientIp`]) and `User-Agent`.
    pub fn device(&self) -> Device {
        let ip = self
            .req
            .extensions()
            .get::<ClientIp>()
            .map(|ip| ip.0.to_string());
        Device::new(ip.as_deref(), self.header("user-agent"))
    }

    /// The body as a JSON object: JSON, or a form with dotted names nested. An empty body
    /// is an empty object.
    pub fn body(&self, limit: usize) -> Result<Value, BodyError> {
        let bytes = self.req.body();
        if bytes.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        let content_type = self
            .header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") || content_type.is_empty() {
            let value: Value = serde_json::from_slice(bytes)
                .map_err(|e| BodyError::Malformed(format!("the body is not valid JSON: {e}")))?;
            if !value.is_object() {
                return Err(BodyError::Malformed(
                    "the body must be a JSON object".into(),
                ));
            }
            Ok(value)
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            Ok(nest_form(form_urlencoded::parse(bytes)))
        } else {
            Err(BodyError::UnsupportedType(content_type))
        }
    }
}

/// `traits.name.first=Ada` → `{"traits": {"name": {"first": "Ada"}}}`. A later value for
/// the same name wins; a name that is both a value and an object keeps the object.
fn nest_form<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Value {
    let mut root = Map::new();
    for (name, value) in pairs {
        let parts: Vec<&str> = name.split('.').filter(|p| !p.is_empty()).collect();
        // No schema nests this deep; a longer name is hostile and is dropped.
        if parts.len() > MAX_FORM_DEPTH {
            continue;
        }
        insert_path(&mut root, &parts, value.into_owned());
    }
    Value::Object(root)
}

/// The deepest dotted form name accepted (`traits.a.b.…`).
const MAX_FORM_DEPTH: usize = 32;

fn insert_path(map: &mut Map<String, Value>, parts: &[&str], value: String) {
    match parts {
        [] => {}
        [last] => {
            if !map.get(*last).is_some_and(Value::is_object) {
                map.insert((*last).to_owned(), Value::String(value));
            }
        }
        [first, rest @ ..] => {
            let entry = map
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of<'a>(headers: &[(&'a str, &'a str)], from: TokenFrom<'_>) -> Option<String> {
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let cookies = headers
            .iter()
            .filter(|(n, _)| *n == "cookie")
            .map(|(_, v)| *v);
        session_token(header, cookies, from).map(|t| t.expose().to_owned())
    }

    #[test]
    fn session_tokens_come_from_headers_then_the_cookie() {
        let cookie = TokenFrom::HeadersOrCookie("identa_session");
        assert_eq!(
            token_of(
                &[("x-session-token", "a"), ("authorization", "Bearer b")],
                cookie
            ),
            Some("a".into())
        );
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let auth = format!("{scheme} b");
            assert_eq!(
                token_of(&[("authorization", &auth)], cookie),
                Some("b".into())
            );
        }
        assert_eq!(token_of(&[("authorization", "Basic b")], cookie), None);
        assert_eq!(
            token_of(&[("cookie", "x=1; identa_session=c; y=2")], cookie),
            Some("c".into())
        );
        assert_eq!(
            token_of(&[("cookie", "x=1"), ("cookie", "identa_session=d")], cookie),
            Some("d".into())
        );
        // API flows never take the cookie.
        assert_eq!(
            token_of(&[("cookie", "identa_session=c")], TokenFrom::Headers),
            None
        );
        assert_eq!(token_of(&[("cookie", "identa_session=")], cookie), None);
    }

    #[test]
    fn forms_nest_dotted_names() {
        let value = nest_form(form_urlencoded::parse(
            b"traits.email=a%40b.c&traits.name.first=Ada&password=p%20w&method=password",
        ));
        assert_eq!(
            value,
            serde_json::json!({
                "traits": { "email": "a@b.c", "name": { "first": "Ada" } },
                "password": "p w",
                "method": "password"
            })
        );
        // A name of 50,000 levels nests nothing and does not exhaust the stack.
        let hostile = format!("{}=x&method=password", "a.".repeat(50_000));
        let value = nest_form(form_urlencoded::parse(hostile.as_bytes()));
        assert_eq!(value, serde_json::json!({ "method": "password" }));
    }
}
