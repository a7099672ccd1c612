//! The public API (Kratos's port 4433): which route a request takes. Browser requests get
//! cookies and redirects to the UI; API requests and browsers that ask for JSON get
//! Kratos's JSON. What each route does lives in `flows` and `sessions`.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::request::Incoming;
use super::response::{error, from_error, json};
use super::script::{WEBAUTHN_SCRIPT_PATH, webauthn_script};
use super::{HttpConfig, Request, Response};
use crate::engine::Identa;
use crate::error::Error;
use crate::flow::FlowType;

/// The public API. Build it once and share it (it is `Send + Sync`).
#[derive(Debug)]
pub struct PublicApi {
    pub(super) identa: Identa,
    pub(super) config: HttpConfig,
}

impl PublicApi {
    /// The public API of `identa`.
    pub fn new(identa: Identa, config: HttpConfig) -> Self {
        Self { identa, config }
    }

    /// The engine.
    pub fn identa(&self) -> &Identa {
        &self.identa
    }

    /// The HTTP settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        // The route every signed-in request of a host takes: matched before anything
        // else is read from the request.
        if req.method() == Method::GET
            && req.uri().path().trim_end_matches('/') == "/sessions/whoami"
        {
            return self.whoami(&req).await;
        }
        let inc = Incoming::new(&req);
        if req.method() == Method::GET && inc.path() == WEBAUTHN_SCRIPT_PATH {
            return script();
        }
        let path = inc.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method().clone();
        match (method, segments.as_slice()) {
            (Method::GET, ["health", "alive" | "ready"]) => {
                json(StatusCode::OK, &json!({ "status": "ok" }))
            }
            (Method::GET, ["schemas"]) => self.schemas(),
            (Method::GET, ["schemas", id]) => self.schema(id),
            (Method::GET, ["self-service", "errors"]) => self.stored_error(&inc).await,
            (Method::GET, ["self-service", "logout", "browser"]) => self.logout_url(&inc).await,
            (Method::GET, ["self-service", "logout"]) => self.logout_browser(&inc).await,
            (Method::DELETE, ["self-service", "logout", "api"]) => self.logout_api(&inc).await,
            (Method::GET, ["self-service", kind, "browser"]) => match kind.parse() {
                Ok(kind) => self.init(&inc, kind, FlowType::Browser).await,
                Err(_) => not_found(&path),
            },
            (Method::GET, ["self-service", kind, "api"]) => match kind.parse() {
                Ok(kind) => self.init(&inc, kind, FlowType::Api).await,
                Err(_) => not_found(&path),
            },
            (Method::GET, ["self-service", kind, "flows"]) => match kind.parse() {
                Ok(kind) => self.get_flow(&inc, kind).await,
                Err(_) => not_found(&path),
            },
            (Method::POST, ["self-service", kind]) => match kind.parse() {
                Ok(kind) => self.submit(&inc, kind).await,
                Err(_) => not_found(&path),
            },
            #[cfg(feature = "oidc")]
            (Method::GET, ["self-service", "methods", "oidc", "callback", p]) => {
                self.oidc_callback(&inc, p).await
            }
            #[cfg(feature = "oidc")]
            (Method::POST, ["self-service", "methods", "oidc", "callback", p]) => {
                self.oidc_form_post(&inc, p)
            }
            #[cfg(feature = "oidc")]
            (Method::GET, ["sessions", "token-exchange"]) => self.token_exchange(&inc).await,
            (Method::GET, ["sessions"]) => self.my_sessions(&inc).await,
            (Method::DELETE, ["sessions"]) => self.revoke_my_other_sessions(&inc).await,
            (Method::DELETE, ["sessions", id]) => self.revoke_my_session(&inc, id).await,
            _ => not_found(&path),
        }
    }

    /// Whether cookies get `Secure`.
    pub(super) fn secure(&self) -> bool {
        self.config
            .cookies
            .secure
            .unwrap_or_else(|| self.public_url().starts_with("https://"))
    }

    /// The public base URL, without a trailing slash.
    pub(super) fn public_url(&self) -> &str {
        self.identa.config().flows.public_url.trim_end_matches('/')
    }

    fn schemas(&self) -> Response {
        let schemas = self.identa.schemas();
        let list: Vec<Value> = schemas
            .ids()
            .filter_map(|id| {
                schemas
                    .get(id)
                    .ok()
                    .map(|s| json!({ "id": id, "schema": s.raw() }))
            })
            .collect();
        json(StatusCode::OK, &json!(list))
    }

    fn schema(&self, id: &str) -> Response {
        match self.identa.schemas().get(id) {
            Ok(schema) => json(StatusCode::OK, schema.raw()),
            Err(err) => from_error(&Error::from(err)),
        }
    }
}

/// The WebAuthn browser script.
fn script() -> Response {
    let mut res = http::Response::new(Bytes::from_static(webauthn_script().as_bytes()));
    let headers = res.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=300"),
    );
    res
}

pub(super) fn not_found(path: &str) -> Response {
    let shown: String = path.chars().take(200).collect();
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for `{shown}`"),
    )
}
