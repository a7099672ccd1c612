//! identa inside an axum application: configuration from the environment (and an
//! optional JSON file), the engine, the public and admin routers, and [`CurrentSession`],
//! the extractor a host's own handlers use to require a signed-in user.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use identa::http::{AdminApi, ClientIp, PublicApi};
use identa::{AuthenticatedSession, Identa, SessionToken};

pub use identa_host::HostConfig;

/// Converts an axum request into the `http::Request<Bytes>` identa takes (reading at most
/// `limit` bytes of body) and identa's response back.
async fn forward<F, Fut>(req: Request, limit: usize, handle: F) -> Response
where
    F: FnOnce(identa::http::Request) -> Fut,
    Fut: std::future::Future<Output = identa::http::Response>,
{
    let (mut parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return identa::http::response::error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                &format!("the body is larger than {limit} bytes"),
            )
            .map(Body::from)
            .into_response();
        }
    };
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied() {
        parts.extensions.insert(ClientIp(addr.ip()));
    }
    let res = handle(http::Request::from_parts(parts, body)).await;
    res.map(|b: Bytes| Body::from(b)).into_response()
}

/// The public API (port 4433) as an axum router: every route goes to identa. Merge your
/// own routes into it, or nest it.
pub fn public_router(api: Arc<PublicApi>) -> Router {
    Router::new().fallback(move |req: Request| {
        let api = api.clone();
        async move {
            let limit = api.config().max_body_bytes;
            forward(req, limit, |r| async move { api.handle(r).await }).await
        }
    })
}

/// The server-rendered UI under `/ui` (and at `/`, which leads to it), as an axum router.
pub fn ui_router(ui: identa_ui::Ui, limit: usize) -> Router {
    let handler = move |req: Request| {
        let ui = ui.clone();
        async move {
            forward(req, limit, |r| async move {
                match ui.handle(r).await {
                    Some(res) => res,
                    None => identa::http::response::error(
                        http::StatusCode::NOT_FOUND,
                        "not_found",
                        "no such page",
                    ),
                }
            })
            .await
        }
    };
    // `/ui/{*rest}` does not match `/ui/` (an empty rest): that one is routed by itself.
    Router::new()
        .route("/", axum::routing::any(handler.clone()))
        .route("/ui", axum::routing::any(handler.clone()))
        .route("/ui/", axum::routing::any(handler.clone()))
        .route("/ui/{*rest}", axum::routing::any(handler))
}

/// The admin API (port 4434) as an axum router. Serve it on its own listener.
pub fn admin_router(api: Arc<AdminApi>, limit: usize) -> Router {
    Router::new().fallback(move |req: Request| {
        let api = api.clone();
        async move { forward(req, limit, |r| async move { api.handle(r).await }).await }
    })
}

/// The signed-in user of a request (session cookie, `X-Session-Token` or
/// `Authorization: Bearer`), for a host's own handlers. Rejects with 401 and Kratos's
/// `session_inactive` error when there is none.
///
/// ```ignore
/// async fn profile(CurrentSession(me): CurrentSession) -> String {
///     format!("hello {}", me.identity.traits["email"])
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentSession(pub AuthenticatedSession);

/// What [`CurrentSession`] needs from the router's state.
#[derive(Clone)]
pub struct SessionState {
    /// The engine.
    pub identa: Identa,
    /// The session cookie's name.
    pub cookie_name: String,
}

impl<S> FromRequestParts<S> for CurrentSession
where
    SessionState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = SessionState::from_ref(state);
        let token = session_token(parts, &state.cookie_name);
        let refused = |err: &identa::Error| {
            identa::http::response::from_error(err)
                .map(Body::from)
                .into_response()
        };
        let Some(token) = token else {
            return Err(refused(&identa::Error::SessionInactive(
                identa::session::SessionRefusal::Unknown,
            )));
        };
        state
            .identa
            .whoami(&token)
            .await
            .map(CurrentSession)
            .map_err(|e| refused(&e))
    }
}

fn session_token(parts: &Parts, cookie_name: &str) -> Option<SessionToken> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(t) = header("x-session-token").filter(|t| !t.is_empty()) {
        return Some(SessionToken::from_client(t));
    }
    if let Some(t) = header("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
        return Some(SessionToken::from_client(t.trim()));
    }
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == cookie_name && !value.is_empty())
        .map(|(_, value)| SessionToken::from_client(value))
}

/// A running host: the two listeners' addresses and the tasks serving them.
pub struct Running {
    /// Where the public API listens.
    pub public_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The engine.
    pub identa: Identa,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _courier: identa::courier::CourierWorker,
}

impl Running {
    /// Waits until both listeners stop (they do not, unless they fail).
    pub async fn wait(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A tiny protected page: what a host's own handler using [`CurrentSession`] looks like.
async fn me(CurrentSession(me): CurrentSession) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "identity_id": me.identity.id,
        "email": me.identity.traits.get("email"),
        "session_id": me.session.id,
    }))
}

/// Builds the engine from `config` and serves both APIs (and the courier worker).
pub async fn start(
    mut config: HostConfig,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let public_listener = tokio::net::TcpListener::bind(config.public_addr).await?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin_addr).await?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    // With port 0 the address is known only now.
    config.public_addr = public_addr;
    let (identa, http_config, mailer) = config.build().await?;
    let courier = identa.courier().spawn(mailer);
    let public = Arc::new(PublicApi::new(identa.clone(), http_config.clone()));
    let admin = Arc::new(AdminApi::new(identa.clone(), http_config.clone()));
    let session_state = SessionState {
        identa: identa.clone(),
        cookie_name: http_config.cookies.session_name.clone(),
    };
    let app_routes = Router::new()
        .route("/app/me", axum::routing::get(me))
        .with_state(session_state);
    let ui = identa_ui::Ui::new(public.clone());
    let public_app = app_routes
        .merge(ui_router(ui, http_config.max_body_bytes))
        .merge(public_router(public));
    let admin_app = admin_router(admin, http_config.max_body_bytes);

    let serve = |listener: tokio::net::TcpListener, app: Router| {
        tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(err) = axum::serve(listener, service).await {
                tracing::error!(error = %err, "listener stopped");
            }
        })
    };
    let tasks = vec![
        serve(public_listener, public_app),
        serve(admin_listener, admin_app),
    ];
    Ok(Running {
        public_addr,
        admin_addr,
        identa,
        tasks,
        _courier: courier,
    })
}
