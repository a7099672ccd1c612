//! What the example hosts share: their configuration ([`HostConfig`]: defaults, a JSON
//! file, environment variables) and everything a host runs whatever its framework
//! ([`Host`]: the engine, the public and admin APIs, the UI, the courier worker and the
//! hourly housekeeping; the extractor's logic; the `/app/me` example route) and what a
//! started host hands back ([`Running`]). Each framework crate (`identa-axum`,
//! `identa-actix`) keeps only its adapter: converting requests, listening, and its
//! `CurrentSession` extractor over [`Host::current_session`].

pub mod config;
pub mod limits;
pub mod migration;
pub mod oidc;
pub mod proxy;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use identa::Identa;
use identa::courier::CourierWorker;
use identa::http::request::{TokenFrom, session_token};
use identa::http::{AdminApi, PublicApi};
use identa::session::{AuthenticatedSession, SessionError, SessionRefusal};
use identa_ui::Ui;
use serde_json::{Value, json};

pub use config::{HostConfig, StartupWarning, default_schema};
pub use limits::{HostLimits, Throttling};
pub use oidc::{HostProvider, ProviderType};
pub use proxy::TrustedProxies;

/// An error a host's start-up reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How often the hosts run [`Identa::prune`].
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Everything a host serves, built from its configuration. Dropping it stops its
/// background tasks (the courier worker, housekeeping).
#[derive(Debug)]
pub struct Host {
    /// The engine.
    pub identa: Identa,
    /// The public API (port 4433 by convention).
    pub public: Arc<PublicApi>,
    /// The admin API (port 4434): serve it on its own, private listener.
    pub admin: Arc<AdminApi>,
    /// The server-rendered UI under `/ui` (and `/`).
    pub ui: Ui,
    /// The largest request body read by the public API and the UI.
    pub body_limit: usize,
    /// The largest request body read by the admin API (a batch import is large).
    pub admin_body_limit: usize,
    /// The proxies whose `X-Forwarded-For` the public API and the UI believe
    /// ([`Host::client_ip`]).
    pub trusted_proxies: TrustedProxies,
    /// What [`HostConfig::build`] warned about at start-up.
    pub warnings: Vec<StartupWarning>,
    _courier: CourierWorker,
    housekeeping: tokio::task::JoinHandle<()>,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.housekeeping.abort();
    }
}

impl Host {
    /// Builds the engine, the APIs and the UI from `config`, and starts the courier worker
    /// and hourly housekeeping ([`Identa::prune`]). Call it inside a Tokio runtime.
    pub async fn build(config: &HostConfig) -> Result<Self, BoxError> {
        let (identa, http_config, mailer) = config.build().await?;
        let courier = identa.courier().spawn(mailer);
        let housekeeping = {
            let identa = identa.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(PRUNE_EVERY);
                loop {
                    every.tick().await;
                    if let Err(err) = identa.prune().await {
                        tracing::warn!(error = %err, "housekeeping failed; retrying in an hour");
                    }
                }
            })
        };
        let public = Arc::new(PublicApi::new(identa.clone(), http_config.clone()));
        let admin = Arc::new(
            AdminApi::new(identa.clone(), http_config.clone()).with_auth(config.admin_auth()),
        );
        Ok(Self {
            ui: Ui::new(public.clone())
                .allow_form_redirects_to(oidc::origins(&config.oidc_providers)),
            identa,
            public,
            admin,
            body_limit: http_config.max_body_bytes,
            admin_body_limit: http_config.max_admin_body_bytes,
            trusted_proxies: config.trusted_proxies.clone(),
            warnings: config.warnings(),
            _courier: courier,
            housekeeping,
        })
    }

    /// The client address of a public API or UI request from the TCP peer `peer` with
    /// these `X-Forwarded-For` values: see [`TrustedProxies::client_ip`]. (The admin API
    /// uses `peer` as it is.)
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        self.trusted_proxies.client_ip(peer, forwarded_for)
    }

    /// The signed-in user of a request — what a framework's `CurrentSession` extractor
    /// calls: the token from `X-Session-Token`, `Authorization: Bearer` or the session
    /// cookie (read by identa's one reader, [`session_token`]), then `whoami`. Refused
    /// with the response to send: Kratos's 401 `session_inactive`, or 403
    /// `session_aal2_required` with `redirect_browser_to` a second-factor login when the
    /// identity has a second factor the session has not used (the default
    /// `session.whoami_required_aal`).
    ///
    /// `header` gives a header's value by lower-case name; `cookies` every `Cookie`
    /// header's value — whatever `http` crate the framework uses.
    pub async fn current_session<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        cookies: impl IntoIterator<Item = &'a str>,
    ) -> Result<AuthenticatedSession, identa::http::Response> {
        let cookie = TokenFrom::HeadersOrCookie(&self.public.config().cookies.session_name);
        let token = session_token(header, cookies, cookie).ok_or_else(|| {
            identa::http::response::from_error(
                &SessionError::Inactive(SessionRefusal::Unknown).into(),
            )
        })?;
        self.identa
            .whoami(&token)
            .await
            .map_err(|err| self.public.session_refused(&err))
    }
}

/// A host serving its public and admin listeners: where they listen, the engine, and the
/// tasks serving them. Dropping it stops them.
pub struct Running {
    /// Where the public API listens.
    pub public_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The engine.
    pub identa: Identa,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: Option<Box<dyn FnOnce() + Send>>,
    _host: Arc<Host>,
}

impl Running {
    /// `host`, served on `public_addr` and `admin_addr` by `tasks`.
    pub fn new(
        host: Arc<Host>,
        public_addr: SocketAddr,
        admin_addr: SocketAddr,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    ) -> Self {
        Self {
            public_addr,
            admin_addr,
            identa: host.identa.clone(),
            tasks,
            stop: None,
            _host: host,
        }
    }

    /// Also calls `stop` when dropped, before the tasks are aborted: for servers that run
    /// beyond the task awaiting them (actix-web's workers).
    pub fn stopping_with(mut self, stop: impl FnOnce() + Send + 'static) -> Self {
        self.stop = Some(Box::new(stop));
        self
    }

    /// Waits until both listeners stop (they do not, unless they fail).
    pub async fn wait(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the example's `/app/me` route answers: a host's own handler behind
/// `CurrentSession`, in a few lines.
pub fn me(session: &AuthenticatedSession) -> Value {
    json!({
        "identity_id": session.identity.id,
        "email": session.identity.traits.get("email"),
        "session_id": session.session.id,
    })
}

/// Logs to stderr at `RUST_LOG`'s level (default `info`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
}

/// Logs where a started host listens, and where a person opens it.
pub fn announce(framework: &str, public: SocketAddr, admin: SocketAddr) {
    let ui = if public.ip().is_loopback() {
        format!("http://localhost:{}/ui/", public.port())
    } else {
        format!("http://{public}/ui/")
    };
    tracing::info!(
        %ui,
        public = %format!("http://{public}"),
        admin = %format!("http://{admin}"),
        "identa ({framework}) is listening: open the UI in a browser (the admin API stays private)"
    );
}

/// Runs until `serving` ends or Ctrl-C.
pub async fn until_ctrl_c(serving: impl std::future::Future<Output = ()>) {
    tokio::select! {
        () = serving => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
}
