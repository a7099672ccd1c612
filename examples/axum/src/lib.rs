//! identa inside an axum application: the public API (with the UI) and the admin API as
//! axum routers on two listeners, and [`CurrentSession`], the extractor a host's own
//! handlers use to require a signed-in user. Everything not axum-specific is
//! [`identa_host`]'s.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use identa::http::ClientIp;
use identa::session::AuthenticatedSession;
use identa_host::{BoxError, Host, TrustedProxies};

pub use identa_host::{HostConfig, Running};

/// identa's response as axum's.
fn into_axum(res: identa::http::Response) -> Response {
    res.map(|b: Bytes| Body::from(b)).into_response()
}

/// Converts an axum request into the `http::Request<Bytes>` identa takes (reading at most
/// `limit` bytes of body; the client address from the connection, or from
/// `X-Forwarded-For` when the peer is one of `proxies`) and identa's response back.
async fn forward<F, Fut>(
    req: Request,
    limit: usize,
    proxies: &TrustedProxies,
    handle: F,
) -> Response
where
    F: FnOnce(identa::http::Request) -> Fut,
    Fut: std::future::Future<Output = identa::http::Response>,
{
    let (mut parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return into_axum(identa::http::response::error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                &format!("the body is larger than {limit} bytes"),
            ));
        }
    };
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied() {
        let forwarded = parts.headers.get_all("x-forwarded-for").iter();
        let client = proxies.client_ip(addr.ip(), forwarded.map(|v| v.as_bytes()));
        parts.extensions.insert(ClientIp(client));
    }
    into_axum(handle(http::Request::from_parts(parts, body)).await)
}

/// The public API (port 4433) with the UI under `/ui` (and at `/`), as an axum router.
/// Merge your own routes into it.
pub fn public_router(host: Arc<Host>) -> Router {
    let ui = {
        let host = host.clone();
        move |req: Request| {
            let host = host.clone();
            async move {
                let proxies = host.trusted_proxies.clone();
                forward(req, host.body_limit, &proxies, |r| async move {
                    match host.ui.handle(r).await {
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
        }
    };
    // `/ui/{*rest}` does not match `/ui/` (an empty rest): that one is routed by itself.
    Router::new()
        .route("/", axum::routing::any(ui.clone()))
        .route("/ui", axum::routing::any(ui.clone()))
        .route("/ui/", axum::routing::any(ui.clone()))
        .route("/ui/{*rest}", axum::routing::any(ui))
        .fallback(move |req: Request| {
            let host = host.clone();
            async move {
                let proxies = host.trusted_proxies.clone();
                forward(req, host.body_limit, &proxies, |r| async move {
                    host.public.handle(r).await
                })
                .await
            }
        })
}

/// The admin API (port 4434) as an axum router. Serve it on its own listener.
pub fn admin_router(host: Arc<Host>) -> Router {
    Router::new().fallback(move |req: Request| {
        let host = host.clone();
        async move {
            // The admin API's loopback check must not follow a header: the peer it is.
            forward(
                req,
                host.admin_body_limit,
                &TrustedProxies::NONE,
                |r| async move { host.admin.handle(r).await },
            )
            .await
        }
    })
}

/// The signed-in user of a request (session cookie, `X-Session-Token` or
/// `Authorization: Bearer`), for a host's own handlers. Rejects with 401 and Kratos's
/// `session_inactive` error when there is none. The router's state must give an
/// `Arc<Host>`.
///
/// ```ignore
/// async fn profile(CurrentSession(me): CurrentSession) -> String {
///     format!("hello {}", me.identity.traits["email"])
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CurrentSession(pub AuthenticatedSession);

impl<S> FromRequestParts<S> for CurrentSession
where
    Arc<Host>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let host = Arc::<Host>::from_ref(state);
        let headers = &parts.headers;
        host.current_session(
            |name| headers.get(name).and_then(|v| v.to_str().ok()),
            headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
        .await
        .map(CurrentSession)
        .map_err(into_axum)
    }
}

/// The example's protected route.
async fn me(CurrentSession(me): CurrentSession) -> impl IntoResponse {
    axum::Json(identa_host::me(&me))
}

/// Builds the host from `config` and serves both APIs.
pub async fn start(mut config: HostConfig) -> Result<Running, BoxError> {
    let public_listener = tokio::net::TcpListener::bind(config.public_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.public_addr))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.admin_addr))?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    // With port 0 the address is known only now.
    config.public_addr = public_addr;
    let host = Arc::new(Host::build(&config).await?);
    let public_app = Router::new()
        .route("/app/me", axum::routing::get(me))
        .with_state(host.clone())
        .merge(public_router(host.clone()));
    let admin_app = admin_router(host.clone());

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
    Ok(Running::new(host, public_addr, admin_addr, tasks))
}
