//! Writing responses: JSON bodies, Kratos's generic error shape
//! (`{"error": {"id", "code", "status", "reason", "message"}}`), redirects and cookies.
//! Every engine error maps to a 4xx with a stable id; only failures inside identa or its
//! database become a 500, and those never carry details to the client.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use super::request::BodyError;
use super::{CookieConfig, Response, SameSite};
use crate::error::{Error, ErrorKind};
use crate::flow::Flow;

/// A JSON response.
pub fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    rendered_json(status, Bytes::from(bytes))
}

/// A JSON answer already rendered, with the headers [`json`] sets.
pub(crate) fn rendered_json(status: StatusCode, body: Bytes) -> Response {
    let mut res = http::Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Kratos's generic error, with extra top-level fields (`redirect_browser_to`, …).
pub fn error_with(
    status: StatusCode,
    id: &str,
    reason: &str,
    extra: Map<String, Value>,
) -> Response {
    let mut body = json!({
        "error": {
            "id": id,
            "code": status.as_u16(),
            "status": status.canonical_reason().unwrap_or_default(),
            "reason": reason,
            "message": message_for(status),
        }
    });
    if let Some(map) = body.as_object_mut() {
        map.extend(extra);
    }
    json(status, &body)
}

/// Kratos's generic error.
pub fn error(status: StatusCode, id: &str, reason: &str) -> Response {
    error_with(status, id, reason, Map::new())
}

fn message_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request was malformed or contained invalid parameters",
        401 => "The request could not be authorized",
        403 => "The requested action was forbidden",
        404 => "The requested resource could not be found",
        409 => "The resource could not be created due to a conflict",
        410 => "The requested resource is no longer available",
        413 => "The request body is too large",
        415 => "The request body has an unsupported content type",
        422 => "The request was well-formed but contained semantic errors",
        429 => "Too many requests: wait for the number of seconds in Retry-After, then try again",
        503 => "The service is busy: wait for the number of seconds in Retry-After, then try again",
        _ => "An internal server error occurred, please contact the system administrator",
    }
}

/// The HTTP status of each kind of error: the one table the HTTP layer answers from (the
/// error's id is [`ErrorKind::as_str`]). Exhaustive, so a new kind cannot silently become
/// a 500.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidTraits
        | ErrorKind::InvalidSchema
        | ErrorKind::InvalidInput
        | ErrorKind::PasswordPolicy
        | ErrorKind::InvalidCredentials
        | ErrorKind::AddressNotVerified
        | ErrorKind::ValidationFailed
        | ErrorKind::FlowState
        | ErrorKind::FlowDisabled
        | ErrorKind::SessionAlreadyAvailable
        | ErrorKind::IdentityDisabled
        | ErrorKind::ReturnToForbidden => StatusCode::BAD_REQUEST,
        ErrorKind::SessionInactive => StatusCode::UNAUTHORIZED,
        ErrorKind::CsrfViolation
        | ErrorKind::SessionRefreshRequired
        | ErrorKind::IdentityMismatch
        | ErrorKind::Aal2Required => StatusCode::FORBIDDEN,
        ErrorKind::SchemaNotFound | ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Duplicate | ErrorKind::Conflict | ErrorKind::MessageNotRequeueable => {
            StatusCode::CONFLICT
        }
        ErrorKind::FlowExpired => StatusCode::GONE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        // As Kratos: 502 for a hook that did not answer properly, 500 (its
        // misconfiguration error) for a marked identity without a hook.
        ErrorKind::PasswordMigrationUnavailable => StatusCode::BAD_GATEWAY,
        ErrorKind::PasswordMigrationNotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Messages Kratos answers with 200 and the flow rather than 400: a wrong, expired or
/// spent recovery (4060006) or verification (4070006) code. Kratos's code strategy writes
/// the flow with status 200 when it adds them, and its front ends (Ory Elements, the
/// reference UIs) render such an answer as a flow to show again.
const SHOWN_WITH_200: [u32; 2] = [4_060_006, 4_070_006];

/// The status of a refused submission's flow, handed back for the user to act on: 400
/// (input to fix, as Kratos), or 200 for a refused one-time code ([`SHOWN_WITH_200`]).
pub fn status_of_shown_flow(flow: &Flow) -> StatusCode {
    let refused_code = flow
        .ui
        .messages
        .iter()
        .any(|message| SHOWN_WITH_200.contains(&message.id));
    if refused_code {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// The response for an engine error (a flow's validation errors are answered with the
/// flow itself by the routes). Failures inside identa are logged and answered without
/// their details.
pub fn from_error(err: &Error) -> Response {
    let kind = err.kind();
    let status = status_of(kind);
    if kind == ErrorKind::Internal {
        tracing::error!(error = %err, "request failed inside identa");
        return error(
            status,
            kind.as_str(),
            "identa could not complete the request; the server log has the details",
        );
    }
    let mut res = error(status, kind.as_str(), &err.to_string());
    match (err, kind) {
        (Error::Throttled(throttled), _) => set_retry_after(&mut res, throttled.retry_after),
        (_, ErrorKind::Busy) => set_retry_after(&mut res, std::time::Duration::from_secs(1)),
        _ => {}
    }
    res
}

/// Sets `Retry-After` to `wait`, in whole seconds (at least one).
pub fn set_retry_after(res: &mut Response, wait: std::time::Duration) {
    let secs = wait.as_secs().max(1);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
}

/// The response for a body that could not be read.
pub fn from_body_error(err: &BodyError) -> Response {
    match err {
        BodyError::TooLarge { limit } => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!("the body is larger than {limit} bytes"),
        ),
        BodyError::UnsupportedType(t) => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            &format!(
                "content type `{t}` is not accepted: send application/json or application/x-www-form-urlencoded"
            ),
        ),
        BodyError::Malformed(reason) => error(StatusCode::BAD_REQUEST, "bad_request", reason),
    }
}

/// A 303 to `location`.
pub fn redirect(location: &str) -> Response {
    let mut res = http::Response::new(Bytes::new());
    *res.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// An empty response with `status`.
pub fn empty(status: StatusCode) -> Response {
    let mut res = http::Response::new(Bytes::new());
    *res.status_mut() = status;
    res
}

/// A `Set-Cookie` value. `max_age` `Some(0)` deletes the cookie; `None` makes a
/// browser-session cookie.
pub fn cookie(
    config: &CookieConfig,
    secure: bool,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> String {
    let mut out = format!("{name}={value}; Path={}; HttpOnly", config.path);
    if let Some(domain) = &config.domain {
        out.push_str(&format!("; Domain={domain}"));
    }
    if let Some(age) = max_age {
        out.push_str(&format!("; Max-Age={age}"));
    }
    out.push_str(match config.same_site {
        SameSite::Lax => "; SameSite=Lax",
        SameSite::Strict => "; SameSite=Strict",
    });
    if secure {
        out.push_str("; Secure");
    }
    out
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(res: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Sets `key` on a JSON object (no-op on anything else).
pub fn put(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::CredentialError;
    use crate::credential::password::PasswordError;
    use crate::throttle::Throttled;

    #[test]
    fn a_busy_hasher_is_503_with_retry_after() {
        let err = Error::Credential(CredentialError::Password(PasswordError::Busy));
        let res = from_error(&err);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let body: Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(body["error"]["id"], "service_busy");
        assert!(
            body["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("try again")
        );
    }

    #[test]
    fn a_throttled_attempt_is_429_with_retry_after() {
        let err = Error::Throttled(Throttled {
            retry_after: std::time::Duration::from_secs(42),
        });
        let res = from_error(&err);
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "42");
    }
}
