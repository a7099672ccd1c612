//! identa inside an actix-web application: the public API (with the UI) and the admin API
//! on two listeners, and [`CurrentSession`], the extractor a host's own handlers use to
//! require a signed-in user. Everything not actix-specific is [`identa_host`]'s.

use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use identa::http::ClientIp;
use identa::session::AuthenticatedSession;
use identa_host::{BoxError, Host, TrustedProxies};

pub use identa_host::{HostConfig, Running};

/// actix-web uses the `http` 0.2 types; identa uses `http` 1. Rebuild the request, with the
/// client address from the connection, or from `X-Forwarded-For` when the peer is one of
/// `proxies`.
fn to_identa(
    req: &HttpRequest,
    body: web::Bytes,
    proxies: &TrustedProxies,
) -> identa::http::Request {
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(req.uri().to_string());
    for (name, value) in req.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let mut out = builder
        .body(bytes::Bytes::from(body.to_vec()))
        .unwrap_or_else(|_| http::Request::new(bytes::Bytes::new()));
    if let Some(addr) = req.peer_addr() {
        let forwarded = req.headers().get_all("x-forwarded-for");
        let client = proxies.client_ip(addr.ip(), forwarded.map(|v| v.as_bytes()));
        out.extensions_mut().insert(ClientIp(client));
    }
    out
}

fn from_identa(res: identa::http::Response) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in res.headers() {
        out.append_header((name.as_str(), value.as_bytes()));
    }
    out.body(res.into_body().to_vec())
}

async fn public(req: HttpRequest, body: web::Bytes, host: web::Data<Arc<Host>>) -> HttpResponse {
    let converted = to_identa(&req, body, &host.trusted_proxies);
    if identa_ui::Ui::serves(req.path()) {
        if let Some(res) = host.ui.handle(converted).await {
            return from_identa(res);
        }
        return HttpResponse::NotFound().finish();
    }
    from_identa(host.public.handle(converted).await)
}

async fn admin(req: HttpRequest, body: web::Bytes, host: web::Data<Arc<Host>>) -> HttpResponse {
    // The admin API's loopback check must not follow a header: the peer it is.
    from_identa(
        host.admin
            .handle(to_identa(&req, body, &TrustedProxies::NONE))
            .await,
    )
}

/// The signed-in user of a request (session cookie, `X-Session-Token` or
/// `Authorization: Bearer`), for a host's own handlers; 401 with Kratos's
/// `session_inactive` error when there is none. Needs `web::Data<Arc<Host>>` as app data.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub AuthenticatedSession);

impl FromRequest for CurrentSession {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let host = req.app_data::<web::Data<Arc<Host>>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let refused = |res: identa::http::Response| {
                let reason = String::from_utf8_lossy(res.body()).into_owned();
                actix_web::error::InternalError::from_response(reason, from_identa(res)).into()
            };
            let Some(host) = host else {
                return Err(actix_web::error::ErrorInternalServerError(
                    "CurrentSession needs web::Data<Arc<Host>> as app data",
                ));
            };
            let headers = req.headers();
            host.current_session(
                |name| headers.get(name).and_then(|v| v.to_str().ok()),
                headers.get_all("cookie").filter_map(|v| v.to_str().ok()),
            )
            .await
            .map(CurrentSession)
            .map_err(refused)
        })
    }
}

/// The example's protected route.
async fn me(CurrentSession(me): CurrentSession) -> HttpResponse {
    HttpResponse::Ok().json(identa_host::me(&me))
}

/// Builds the host from `config` and serves both APIs.
pub async fn start(mut config: HostConfig) -> Result<Running, BoxError> {
    let public_listener = TcpListener::bind(config.public_addr)
        .map_err(|e| format!("cannot listen on {}: {e}", config.public_addr))?;
    let admin_listener = TcpListener::bind(config.admin_addr)
        .map_err(|e| format!("cannot listen on {}: {e}", config.admin_addr))?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    config.public_addr = public_addr;
    let host = Arc::new(Host::build(&config).await?);
    let limit = host.body_limit;
    let admin_limit = host.admin_body_limit;
    let data = web::Data::new(host.clone());
    let public_data = data.clone();
    let public_server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(web::PayloadConfig::new(limit))
            .app_data(public_data.clone())
            .route("/app/me", web::get().to(me))
            .default_service(web::to(public))
    })
    .workers(2)
    .listen(public_listener)?
    .run();
    let admin_server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(web::PayloadConfig::new(admin_limit))
            .app_data(data.clone())
            .default_service(web::to(admin))
    })
    .workers(1)
    .listen(admin_listener)?
    .run();
    let handles = vec![public_server.handle(), admin_server.handle()];
    let spawn = |server: actix_web::dev::Server| {
        tokio::spawn(async move {
            if let Err(err) = server.await {
                tracing::error!(error = %err, "server stopped");
            }
        })
    };
    let tasks = vec![spawn(public_server), spawn(admin_server)];
    let running = Running::new(host, public_addr, admin_addr, tasks).stopping_with(move || {
        for handle in &handles {
            drop(handle.stop(false));
        }
    });
    Ok(running)
}
