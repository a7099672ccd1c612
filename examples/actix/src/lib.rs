//! identa inside an actix-web application: the public API (with the UI under `/ui` and at
//! `/`) and the admin API on two listeners, and [`CurrentSession`], the extractor a host's
//! own handlers use to require a signed-in user.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use identa::http::{AdminApi, ClientIp, PublicApi};
use identa::{AuthenticatedSession, Identa, SessionToken};

pub use identa_host::HostConfig;

/// actix-web uses the `http` 0.2 types; identa uses `http` 1. Rebuild the request.
fn to_identa(req: &HttpRequest, body: web::Bytes) -> identa::http::Request {
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
        out.extensions_mut().insert(ClientIp(addr.ip()));
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

async fn public(
    req: HttpRequest,
    body: web::Bytes,
    api: web::Data<Arc<PublicApi>>,
    ui: web::Data<identa_ui::Ui>,
) -> HttpResponse {
    let converted = to_identa(&req, body);
    if identa_ui::Ui::serves(req.path()) {
        if let Some(res) = ui.handle(converted).await {
            return from_identa(res);
        }
        return HttpResponse::NotFound().finish();
    }
    from_identa(api.handle(converted).await)
}

async fn admin(req: HttpRequest, body: web::Bytes, api: web::Data<Arc<AdminApi>>) -> HttpResponse {
    from_identa(api.handle(to_identa(&req, body)).await)
}

/// The signed-in user of a request (session cookie, `X-Session-Token` or
/// `Authorization: Bearer`), for a host's own handlers; 401 with Kratos's
/// `session_inactive` error when there is none.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub AuthenticatedSession);

/// What [`CurrentSession`] needs, as app data.
#[derive(Clone)]
pub struct SessionState {
    /// The engine.
    pub identa: Identa,
    /// The session cookie's name.
    pub cookie_name: String,
}

impl FromRequest for CurrentSession {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<SessionState>>().cloned();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let token = header("x-session-token")
            .filter(|t| !t.is_empty())
            .or_else(|| {
                header("authorization")
                    .and_then(|a| a.strip_prefix("Bearer ").map(|t| t.trim().to_owned()))
            })
            .or_else(|| {
                let name = state
                    .as_ref()
                    .map(|s| s.cookie_name.clone())
                    .unwrap_or_default();
                req.headers()
                    .get_all("cookie")
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(n, v)| *n == name && !v.is_empty())
                    .map(|(_, v)| v.to_owned())
            });
        Box::pin(async move {
            let refused = |err: &identa::Error| {
                actix_web::error::InternalError::from_response(
                    err.to_string(),
                    from_identa(identa::http::response::from_error(err)),
                )
                .into()
            };
            let inactive = identa::Error::SessionInactive(identa::session::SessionRefusal::Unknown);
            let (Some(state), Some(token)) = (state, token) else {
                return Err(refused(&inactive));
            };
            state
                .identa
                .whoami(&SessionToken::from_client(token))
                .await
                .map(CurrentSession)
                .map_err(|e| refused(&e))
        })
    }
}

/// A tiny protected route: what a host's own handler using [`CurrentSession`] looks like.
async fn me(CurrentSession(me): CurrentSession) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "identity_id": me.identity.id,
        "email": me.identity.traits.get("email"),
        "session_id": me.session.id,
    }))
}

/// A running host.
pub struct Running {
    /// Where the public API listens.
    pub public_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The engine.
    pub identa: Identa,
    handles: Vec<actix_web::dev::ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _courier: identa::courier::CourierWorker,
}

impl Running {
    /// Waits until both servers stop.
    pub async fn wait(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for handle in &self.handles {
            drop(handle.stop(false));
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Builds the engine from `config` and serves both APIs (and the courier worker).
pub async fn start(
    mut config: HostConfig,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let public_listener = TcpListener::bind(config.public_addr)?;
    let admin_listener = TcpListener::bind(config.admin_addr)?;
    let public_addr = public_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    config.public_addr = public_addr;
    let (identa, http_config, mailer) = config.build().await?;
    let courier = identa.courier().spawn(mailer);
    let limit = http_config.max_body_bytes;
    let public_api = Arc::new(PublicApi::new(identa.clone(), http_config.clone()));
    let admin_api = Arc::new(AdminApi::new(identa.clone(), http_config.clone()));
    let ui = identa_ui::Ui::new(public_api.clone());
    let session_state = SessionState {
        identa: identa.clone(),
        cookie_name: http_config.cookies.session_name.clone(),
    };
    let public_server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::Data::new(public_api.clone()))
            .app_data(web::Data::new(ui.clone()))
            .app_data(web::Data::new(session_state.clone()))
            .route("/app/me", web::get().to(me))
            .default_service(web::to(public))
    })
    .workers(2)
    .listen(public_listener)?
    .run();
    let admin_server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::Data::new(admin_api.clone()))
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
    Ok(Running {
        public_addr,
        admin_addr,
        identa,
        handles,
        tasks,
        _courier: courier,
    })
}
