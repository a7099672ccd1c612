//! Reading requests: the query, cookies, the session token (cookie, `X-Session-Token` or
//! `Authorization: Bearer`), whether the client wants JSON, and bodies in JSON or
//! `application/x-www-form-urlencoded` (dotted names like `traits.email` become nested
//! objects, as Kratos does).

use http::header;
use serde_json::{Map, Value};

use super::{ClientIp, Request};
use crate::session::{Device, SessionToken};

/// A request, read.
#[derive(Debug)]
pub struct Incoming<'a> {
    req: &'a Request,
    query: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
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

    /// Whether the client asked for JSON (`Accept: application/json`) rather than a page.
    pub fn wants_json(&self) -> bool {
        self.header("accept")
            .is_some_and(|a| a.contains("application/json"))
    }

    /// The session token from `X-Session-Token` or `Authorization: Bearer` (not a cookie).
    pub fn session_token_header(&self) -> Option<SessionToken> {
        if let Some(token) = self.header("x-session-token").filter(|t| !t.is_empty()) {
            return Some(SessionToken::from_client(token));
        }
        let auth = self.header("authorization")?;
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))?;
        Some(SessionToken::from_client(token.trim()))
    }

    /// The session token the client presented: `X-Session-Token`, `Authorization: Bearer`,
    /// or the session cookie, in that order.
    pub fn session_token(&self, cookie_name: &str) -> Option<SessionToken> {
        if let Some(token) = self.header("x-session-token").filter(|t| !t.is_empty()) {
            return Some(SessionToken::from_client(token));
        }
        if let Some(auth) = self.header("authorization")
            && let Some(token) = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
        {
            return Some(SessionToken::from_client(token.trim()));
        }
        self.cookie(cookie_name).map(SessionToken::from_client)
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
