//! The public API (Kratos's port 4433): self-service flows, logout, sessions, schemas,
//! errors and health. Browser requests get cookies and redirects to the UI; API requests
//! and browsers that ask for JSON get Kratos's JSON.

// Handlers return a ready `Response` on their error path; it is built once per request.
#![allow(clippy::result_large_err)]

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::request::Incoming;
use super::response::{
    self, cookie, error, error_with, from_body_error, from_error, json, redirect, set_cookie,
};
use super::{HttpConfig, Request, Response};
use crate::engine::Identa;
use crate::error::Error;
use crate::flow::csrf;
use crate::flow::login::{LoginIntent, LoginSubmission};
use crate::flow::recovery::{RecoveryStep, RecoverySubmission};
use crate::flow::registration::RegistrationSubmission;
use crate::flow::settings::SettingsSubmission;
use crate::flow::verification::{VerificationStep, VerificationSubmission};
use crate::flow::{Flow, FlowKind, FlowRequest, FlowType};
use crate::session::{AuthenticatedSession, SessionToken};
use crate::{Password, parse_id};

/// The public API. Build it once and share it (it is `Send + Sync`).
#[derive(Debug)]
pub struct PublicApi {
    identa: Identa,
    config: HttpConfig,
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
        let inc = Incoming::new(&req);
        let path = inc.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method().clone();
        match (method, segments.as_slice()) {
            (Method::GET, ["health", "alive" | "ready"]) => {
                json(StatusCode::OK, &json!({ "status": "ok" }))
            }
            (Method::GET, [".well-known", "ory", "webauthn.js"]) => http::Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/javascript; charset=utf-8")
                .header("cache-control", "public, max-age=300")
                .body(bytes::Bytes::from_static(
                    crate::flow::webauthn::script().as_bytes(),
                ))
                .unwrap_or_default(),
            (Method::GET, ["schemas"]) => self.schemas(),
            (Method::GET, ["schemas", id]) => self.schema(id),
            (Method::GET, ["self-service", "errors"]) => self.stored_error(&inc).await,
            (Method::GET, ["self-service", "logout", "browser"]) => self.logout_url(&inc).await,
            (Method::GET, ["self-service", "logout"]) => self.logout_browser(&inc).await,
            (Method::DELETE, ["self-service", "logout", "api"]) => self.logout_api(&inc).await,
            (Method::GET, ["self-service", kind, "browser"]) => match flow_kind(kind) {
                Some(kind) => self.init(&inc, kind, FlowType::Browser).await,
                None => not_found(&path),
            },
            (Method::GET, ["self-service", kind, "api"]) => match flow_kind(kind) {
                Some(kind) => self.init(&inc, kind, FlowType::Api).await,
                None => not_found(&path),
            },
            (Method::GET, ["self-service", kind, "flows"]) => match flow_kind(kind) {
                Some(kind) => self.get_flow(&inc, kind).await,
                None => not_found(&path),
            },
            (Method::POST, ["self-service", kind]) => match flow_kind(kind) {
                Some(kind) => self.submit(&inc, kind).await,
                None => not_found(&path),
            },
            (Method::GET, ["sessions", "whoami"]) => self.whoami(&inc).await,
            (Method::GET, ["sessions"]) => self.my_sessions(&inc).await,
            (Method::DELETE, ["sessions"]) => self.revoke_my_other_sessions(&inc).await,
            (Method::DELETE, ["sessions", id]) => self.revoke_my_session(&inc, id).await,
            _ => not_found(&path),
        }
    }

    fn secure(&self) -> bool {
        self.config.cookies.secure.unwrap_or_else(|| {
            self.identa
                .config()
                .flows
                .public_url
                .starts_with("https://")
        })
    }

    fn session_token(&self, inc: &Incoming<'_>) -> Option<SessionToken> {
        inc.session_token(&self.config.cookies.session_name)
    }

    /// The flow request for `inc`; for browsers also the CSRF cookie to set, if new.
    fn flow_request(
        &self,
        inc: &Incoming<'_>,
        flow_type: FlowType,
    ) -> (FlowRequest, Option<String>) {
        let public = self.identa.config().flows.public_url.trim_end_matches('/');
        let url = match inc.request().uri().path_and_query() {
            Some(pq) => format!("{public}{pq}"),
            None => public.to_owned(),
        };
        let (csrf_cookie, new_cookie) = match (flow_type, inc.cookie(csrf::COOKIE_NAME)) {
            (FlowType::Browser, Some(c)) => (Some(c.to_owned()), None),
            (FlowType::Browser, None) => {
                let fresh = csrf::new_cookie_value();
                (Some(fresh.clone()), Some(fresh))
            }
            (FlowType::Api, c) => (c.map(str::to_owned), None),
        };
        // API flows are for native apps: their session comes from a header, never from a
        // cookie a browser would attach to a cross-site request.
        let session = match flow_type {
            FlowType::Browser => self.session_token(inc),
            FlowType::Api => inc.session_token_header(),
        };
        let req = FlowRequest {
            csrf_cookie,
            csrf_token: inc.header("x-csrf-token").map(str::to_owned),
            session,
            device: Some(inc.device()),
            url: Some(url),
            return_to: inc.query("return_to").map(str::to_owned),
        };
        (req, new_cookie)
    }

    fn with_csrf_cookie(&self, mut res: Response, new_cookie: Option<String>) -> Response {
        if let Some(value) = new_cookie {
            let c = cookie(
                &self.config.cookies,
                self.secure(),
                csrf::COOKIE_NAME,
                &value,
                None,
            );
            set_cookie(&mut res, &c);
        }
        res
    }

    fn with_session_cookie(&self, mut res: Response, token: &SessionToken) -> Response {
        let max_age = self.identa.config().session.lifespan.num_seconds();
        let c = cookie(
            &self.config.cookies,
            self.secure(),
            &self.config.cookies.session_name,
            token.expose(),
            Some(max_age),
        );
        set_cookie(&mut res, &c);
        res
    }

    fn ui(&self, kind: FlowKind, flow_id: Uuid) -> String {
        format!(
            "{}/{}?flow={flow_id}",
            self.config.ui_url.trim_end_matches('/'),
            kind
        )
    }

    async fn flow_json(&self, flow: &Flow, req: &FlowRequest) -> Value {
        let mut out = flow.to_kratos_json();
        if flow.kind == FlowKind::Settings
            && let Some(id) = flow.identity_id
            && let Ok(identity) = self.identa.identity(id).await
            && let Some(map) = out.as_object_mut()
        {
            map.insert("identity".into(), json!(identity));
        }
        let _ = req;
        out
    }

    // ---- flows ------------------------------------------------------------------------

    async fn init(&self, inc: &Incoming<'_>, kind: FlowKind, flow_type: FlowType) -> Response {
        let (req, new_cookie) = self.flow_request(inc, flow_type);
        let created = match kind {
            FlowKind::Registration => {
                self.identa
                    .registration_flow()
                    .create(flow_type, &req)
                    .await
            }
            FlowKind::Login => {
                let intent = match (inc.query("aal"), inc.query("refresh")) {
                    (Some("aal2"), _) => LoginIntent::SecondFactor,
                    (_, Some("true")) => LoginIntent::Refresh,
                    _ => LoginIntent::SignIn,
                };
                self.identa
                    .login_flow()
                    .create(flow_type, &req, intent)
                    .await
            }
            FlowKind::Settings => self.identa.settings_flow().create(flow_type, &req).await,
            FlowKind::Recovery => self.identa.recovery_flow().create(flow_type, &req).await,
            FlowKind::Verification => {
                self.identa
                    .verification_flow()
                    .create(flow_type, &req)
                    .await
            }
        };
        let browser_page = flow_type == FlowType::Browser && !inc.wants_json();
        let res = match created {
            Ok(flow) if browser_page => redirect(&self.ui(kind, flow.id)),
            Ok(flow) => json(StatusCode::OK, &self.flow_json(&flow, &req).await),
            Err(Error::SessionAlreadyAvailable) if browser_page => {
                redirect(&self.config.default_return_url)
            }
            Err(Error::Aal2Required) => self.aal2_required(browser_page),
            Err(Error::SessionInactive(_)) if browser_page && kind == FlowKind::Settings => {
                redirect(&self.login_redirect(false, None))
            }
            Err(err) => self.error_response(inc, flow_type, &err).await,
        };
        self.with_csrf_cookie(res, new_cookie)
    }

    /// 403 `session_aal2_required` pointing at a second-factor login flow (or a redirect
    /// there for a browser page).
    fn aal2_required(&self, browser_page: bool) -> Response {
        let public = self.identa.config().flows.public_url.trim_end_matches('/');
        let target = format!("{public}/self-service/login/browser?aal=aal2");
        if browser_page {
            return redirect(&target);
        }
        let mut extra = Map::new();
        extra.insert("redirect_browser_to".into(), json!(target));
        error_with(
            StatusCode::FORBIDDEN,
            "session_aal2_required",
            "this session must complete its second factor: start a login flow with aal=aal2",
            extra,
        )
    }

    fn login_redirect(&self, refresh: bool, return_to: Option<&str>) -> String {
        let public = self.identa.config().flows.public_url.trim_end_matches('/');
        let mut url = format!("{public}/self-service/login/browser");
        let mut query = form_urlencoded::Serializer::new(String::new());
        if refresh {
            query.append_pair("refresh", "true");
        }
        if let Some(r) = return_to {
            query.append_pair("return_to", r);
        }
        let query = query.finish();
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        url
    }

    async fn get_flow(&self, inc: &Incoming<'_>, kind: FlowKind) -> Response {
        let Some(id) = inc.query("id") else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the `id` query parameter is required",
            );
        };
        let id = match parse_id(id) {
            Ok(id) => id,
            Err(err) => return from_error(&err),
        };
        // Reading a flow (a GET whose answer other sites cannot read) may use the cookie.
        let (mut req, _) = self.flow_request(inc, FlowType::Api);
        req.session = self.session_token(inc);
        match self.identa.flow(id, &req).await {
            Ok(flow) if flow.kind == kind => {
                json(StatusCode::OK, &self.flow_json(&flow, &req).await)
            }
            Ok(_) => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no {kind} flow has id {id}"),
            ),
            Err(err) => from_error(&err),
        }
    }

    async fn submit(&self, inc: &Incoming<'_>, kind: FlowKind) -> Response {
        let Some(id) = inc.query("flow") else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the `flow` query parameter is required",
            );
        };
        let flow_id = match parse_id(id) {
            Ok(id) => id,
            Err(err) => return from_error(&err),
        };
        let body = match inc.body(self.config.max_body_bytes) {
            Ok(body) => body,
            Err(err) => return from_body_error(&err),
        };
        // The flow's own type decides how to answer; an unknown flow is a plain 404. The
        // submission below takes this read of it.
        let flow = match crate::flow::fetch_flow(&self.identa, flow_id).await {
            Ok(flow) => flow,
            Err(err) => return from_error(&err),
        };
        let (flow_type, flow_identity) = (flow.flow_type, flow.identity_id);
        // HTML forms send strings: give number and boolean traits their declared types.
        let form = inc
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let mut body = body;
        if form && let Some(traits) = body.get_mut("traits") {
            let schema_id = match flow_identity {
                Some(id) => self.identa.identity(id).await.ok().map(|i| i.schema_id),
                None => self.identa.schemas().default_id().map(str::to_owned),
            };
            if let Some(schema) = schema_id.and_then(|id| self.identa.schemas().get(&id).ok()) {
                schema.coerce_form_traits(traits);
            }
        }
        let body = body;
        let (mut req, _) = self.flow_request(inc, flow_type);
        if let Some(token) = body.get("csrf_token").and_then(Value::as_str) {
            req.csrf_token = Some(token.to_owned());
        }
        let text = |name: &str| {
            body.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        // WebAuthn buttons (remove a key) and scripts may post without `method`: Kratos
        // infers it from the fields, and so do we.
        let method = match body.get("method").and_then(Value::as_str) {
            Some(method) => method,
            None if ["webauthn_remove", "webauthn_register", "webauthn_login"]
                .iter()
                .any(|f| !text(f).is_empty()) =>
            {
                "webauthn"
            }
            None if [
                "passkey_remove",
                "passkey_settings_register",
                "passkey_register",
                "passkey_login",
            ]
            .iter()
            .any(|f| !text(f).is_empty()) =>
            {
                "passkey"
            }
            None => "",
        };
        let flag = |name: &str| body.get(name) == Some(&Value::Bool(true)) || text(name) == "true";
        let browser_page = flow_type == FlowType::Browser && !inc.wants_json();
        let outcome = match kind {
            FlowKind::Registration => {
                let traits = body.get("traits").cloned().unwrap_or_else(|| json!({}));
                let submission = match method {
                    "password" => RegistrationSubmission::Password {
                        traits,
                        password: Password::new(text("password")),
                    },
                    "passkey" => RegistrationSubmission::Passkey {
                        traits,
                        response: text("passkey_register"),
                    },
                    other => return unknown_method(other, "password, passkey"),
                };
                match self
                    .identa
                    .registration_flow()
                    .submit_loaded(flow, submission, &req)
                    .await
                {
                    Ok(done) => {
                        let mut out = json!({ "identity": done.identity, "continue_with": done.continue_with });
                        if let Some(login) = &done.login {
                            super::response::put(&mut out, "session", json!(login.session));
                            if flow_type == FlowType::Api {
                                super::response::put(
                                    &mut out,
                                    "session_token",
                                    json!(login.token.expose()),
                                );
                            }
                        }
                        let target = done
                            .flow
                            .return_to
                            .clone()
                            .unwrap_or_else(|| self.config.default_return_url.clone());
                        let res = if browser_page {
                            redirect(&target)
                        } else {
                            json(StatusCode::OK, &out)
                        };
                        return match (&done.login, flow_type) {
                            (Some(login), FlowType::Browser) => {
                                self.with_session_cookie(res, &login.token)
                            }
                            _ => res,
                        };
                    }
                    Err(err) => err,
                }
            }
            FlowKind::Login => {
                if !matches!(
                    method,
                    "password" | "totp" | "lookup_secret" | "webauthn" | "passkey"
                ) {
                    return unknown_method(
                        method,
                        "password, passkey, totp, lookup_secret, webauthn",
                    );
                }
                let identifier = body
                    .get("identifier")
                    .or_else(|| body.get("password_identifier"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let submission = if method == "webauthn" {
                    LoginSubmission::Webauthn {
                        response: text("webauthn_login"),
                    }
                } else if method == "passkey" {
                    LoginSubmission::Passkey {
                        identifier,
                        response: Some(text("passkey_login")).filter(|r| !r.is_empty()),
                    }
                } else if method == "totp" {
                    LoginSubmission::Totp {
                        code: text("totp_code"),
                    }
                } else if method == "lookup_secret" {
                    LoginSubmission::LookupSecret {
                        code: text("lookup_secret"),
                    }
                } else {
                    LoginSubmission::Password {
                        identifier,
                        password: Password::new(text("password")),
                    }
                };
                match self
                    .identa
                    .login_flow()
                    .submit_loaded(flow, submission, &req)
                    .await
                {
                    Ok(done) => {
                        let mut out =
                            json!({ "session": done.session, "continue_with": done.continue_with });
                        if let (Some(token), FlowType::Api) = (&done.token, flow_type) {
                            super::response::put(&mut out, "session_token", json!(token.expose()));
                        }
                        let target = done
                            .flow
                            .return_to
                            .clone()
                            .unwrap_or_else(|| self.config.default_return_url.clone());
                        let res = if browser_page {
                            redirect(&target)
                        } else {
                            json(StatusCode::OK, &out)
                        };
                        return match (&done.token, flow_type) {
                            (Some(token), FlowType::Browser) => {
                                self.with_session_cookie(res, token)
                            }
                            _ => res,
                        };
                    }
                    Err(err) => err,
                }
            }
            FlowKind::Settings => {
                let submission = match method {
                    "profile" => SettingsSubmission::Profile {
                        traits: body.get("traits").cloned().unwrap_or_else(|| json!({})),
                    },
                    "password" => SettingsSubmission::Password {
                        password: Password::new(text("password")),
                    },
                    "totp"
                        if body.get("totp_unlink") == Some(&Value::Bool(true))
                            || text("totp_unlink") == "true" =>
                    {
                        SettingsSubmission::TotpUnlink
                    }
                    "totp" => SettingsSubmission::Totp {
                        code: text("totp_code"),
                    },
                    "lookup_secret" if flag("lookup_secret_regenerate") => {
                        SettingsSubmission::LookupRegenerate
                    }
                    "lookup_secret" if flag("lookup_secret_confirm") => {
                        SettingsSubmission::LookupConfirm
                    }
                    "lookup_secret" if flag("lookup_secret_disable") => {
                        SettingsSubmission::LookupDisable
                    }
                    "webauthn" if !text("webauthn_remove").is_empty() => {
                        SettingsSubmission::WebauthnRemove {
                            id: text("webauthn_remove"),
                        }
                    }
                    "webauthn" => SettingsSubmission::WebauthnRegister {
                        display_name: text("webauthn_register_displayname"),
                        response: text("webauthn_register"),
                    },
                    "passkey" if !text("passkey_remove").is_empty() => {
                        SettingsSubmission::PasskeyRemove {
                            id: text("passkey_remove"),
                        }
                    }
                    "passkey" => SettingsSubmission::PasskeyRegister {
                        response: text("passkey_settings_register"),
                    },
                    other => {
                        return unknown_method(
                            other,
                            "profile, password, totp, lookup_secret, webauthn, passkey",
                        );
                    }
                };
                match self
                    .identa
                    .settings_flow()
                    .submit_loaded(flow, submission, &req)
                    .await
                {
                    Ok(saved) => {
                        if browser_page {
                            return redirect(&self.ui(kind, flow_id));
                        }
                        let mut out = self.flow_json(&saved.flow, &req).await;
                        super::response::put(&mut out, "continue_with", json!(saved.continue_with));
                        return json(StatusCode::OK, &out);
                    }
                    Err(err) => err,
                }
            }
            FlowKind::Recovery => {
                if method != "code" {
                    return unknown_method(method, "code");
                }
                let submission = match (text("code"), text("email")) {
                    (code, _) if !code.is_empty() => RecoverySubmission::Code(code),
                    (_, email) => RecoverySubmission::Email(email),
                };
                match self
                    .identa
                    .recovery_flow()
                    .submit_loaded(flow, submission, &req)
                    .await
                {
                    Ok(RecoveryStep::CodeSent(flow)) => {
                        return if browser_page {
                            redirect(&self.ui(kind, flow.id))
                        } else {
                            json(StatusCode::OK, &flow.to_kratos_json())
                        };
                    }
                    Ok(RecoveryStep::Recovered(done)) => {
                        let settings_ui = self.ui(FlowKind::Settings, done.settings_flow.id);
                        let res = match flow_type {
                            FlowType::Api => {
                                let mut out = done.flow.to_kratos_json();
                                super::response::put(
                                    &mut out,
                                    "continue_with",
                                    json!(done.continue_with),
                                );
                                json(StatusCode::OK, &out)
                            }
                            FlowType::Browser if browser_page => redirect(&settings_ui),
                            FlowType::Browser => {
                                let mut extra = Map::new();
                                extra.insert("redirect_browser_to".into(), json!(settings_ui));
                                error_with(
                                    StatusCode::UNPROCESSABLE_ENTITY,
                                    "browser_location_change_required",
                                    "the account is recovered: continue in the settings flow to set a new password",
                                    extra,
                                )
                            }
                        };
                        return match flow_type {
                            FlowType::Browser => self.with_session_cookie(res, &done.token),
                            FlowType::Api => res,
                        };
                    }
                    Err(err) => err,
                }
            }
            FlowKind::Verification => {
                if method != "code" {
                    return unknown_method(method, "code");
                }
                let submission = match (text("code"), text("email")) {
                    (code, _) if !code.is_empty() => VerificationSubmission::Code(code),
                    (_, email) => VerificationSubmission::Email(email),
                };
                match self
                    .identa
                    .verification_flow()
                    .submit_loaded(flow, submission, &req)
                    .await
                {
                    Ok(step) => {
                        let flow = match step {
                            VerificationStep::CodeSent(flow) => *flow,
                            VerificationStep::Verified { flow, .. } => *flow,
                        };
                        return if browser_page {
                            redirect(&self.ui(kind, flow.id))
                        } else {
                            json(StatusCode::OK, &flow.to_kratos_json())
                        };
                    }
                    Err(err) => err,
                }
            }
        };
        self.submit_error(inc, &req, kind, flow_type, flow_id, outcome)
            .await
    }

    async fn submit_error(
        &self,
        inc: &Incoming<'_>,
        req: &FlowRequest,
        kind: FlowKind,
        flow_type: FlowType,
        flow_id: Uuid,
        err: Error,
    ) -> Response {
        let browser_page = flow_type == FlowType::Browser && !inc.wants_json();
        match err {
            Error::FlowInvalid(flow) => {
                if browser_page {
                    redirect(&self.ui(kind, flow.id))
                } else {
                    json(StatusCode::BAD_REQUEST, &self.flow_json(&flow, req).await)
                }
            }
            Error::FlowExpired { expired_at, .. } => {
                // A replacement flow, so the front end can go on at once.
                let replacement = match kind {
                    FlowKind::Registration => {
                        self.identa.registration_flow().create(flow_type, req).await
                    }
                    FlowKind::Login => {
                        self.identa
                            .login_flow()
                            .create(flow_type, req, LoginIntent::SignIn)
                            .await
                    }
                    FlowKind::Settings => self.identa.settings_flow().create(flow_type, req).await,
                    FlowKind::Recovery => self.identa.recovery_flow().create(flow_type, req).await,
                    FlowKind::Verification => {
                        self.identa.verification_flow().create(flow_type, req).await
                    }
                };
                match replacement {
                    Ok(flow) if browser_page => redirect(&self.ui(kind, flow.id)),
                    Ok(flow) => {
                        let mut extra = Map::new();
                        extra.insert("use_flow_id".into(), json!(flow.id));
                        extra.insert("expired_at".into(), json!(expired_at));
                        extra.insert(
                            "since".into(),
                            json!((self.identa.now() - expired_at).num_seconds()),
                        );
                        error_with(
                            StatusCode::GONE,
                            "self_service_flow_expired",
                            &format!("the {kind} flow expired; continue with flow {}", flow.id),
                            extra,
                        )
                    }
                    Err(err) => from_error(&err),
                }
            }
            Error::SessionRefreshRequired => {
                let back = self.ui(kind, flow_id);
                let target = self.login_redirect(true, Some(&back));
                if browser_page {
                    return redirect(&target);
                }
                let mut extra = Map::new();
                extra.insert("redirect_browser_to".into(), json!(target));
                error_with(
                    StatusCode::FORBIDDEN,
                    "session_refresh_required",
                    "this change needs a recent sign-in: re-authenticate with a login flow with refresh=true, then submit again",
                    extra,
                )
            }
            Error::SessionInactive(_) if browser_page && kind == FlowKind::Settings => {
                redirect(&self.login_redirect(false, None))
            }
            Error::Aal2Required => self.aal2_required(browser_page),
            other => self.error_response(inc, flow_type, &other).await,
        }
    }

    /// An error as JSON, or, for a browser page, a redirect to the error UI (the error is
    /// recorded in the database, so any instance can show it; `prune` drops it after a
    /// day). If it cannot be recorded, the page gets the JSON error itself.
    async fn error_response(
        &self,
        inc: &Incoming<'_>,
        flow_type: FlowType,
        err: &Error,
    ) -> Response {
        let res = from_error(err);
        if flow_type == FlowType::Browser && !inc.wants_json() && res.status().is_client_error() {
            let id = Uuid::new_v4();
            let body: Value = serde_json::from_slice(res.body()).unwrap_or_default();
            let recorded = self
                .identa
                .store()
                .insert_error(id, &body, self.identa.now())
                .await;
            match recorded {
                Ok(()) => {
                    return redirect(&format!(
                        "{}/error?id={id}",
                        self.config.ui_url.trim_end_matches('/')
                    ));
                }
                Err(store_err) => {
                    tracing::warn!(error = %store_err, "a browser error could not be recorded");
                }
            }
        }
        res
    }

    async fn stored_error(&self, inc: &Incoming<'_>) -> Response {
        let id = match inc.query("id").map(parse_id) {
            Some(Ok(id)) => id,
            Some(Err(err)) => return from_error(&err),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the `id` query parameter is required",
                );
            }
        };
        let found = match self.identa.store().error(id).await {
            Ok(found) => found,
            Err(err) => return from_error(&err.into()),
        };
        match found {
            Some(body) => json(
                StatusCode::OK,
                &json!({ "id": id, "error": body.get("error").cloned().unwrap_or(body) }),
            ),
            None => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no error with id {id}"),
            ),
        }
    }

    // ---- logout -----------------------------------------------------------------------

    async fn logout_url(&self, inc: &Incoming<'_>) -> Response {
        let Some(token) = self.session_token(inc) else {
            return from_error(&Error::SessionInactive(
                crate::session::SessionRefusal::Unknown,
            ));
        };
        match self.identa.logout_url(&token).await {
            Ok(url) => json(
                StatusCode::OK,
                &json!({ "logout_token": url.logout_token, "logout_url": url.logout_url }),
            ),
            Err(err) => from_error(&err),
        }
    }

    async fn logout_browser(&self, inc: &Incoming<'_>) -> Response {
        let (Some(token), Some(logout_token)) = (self.session_token(inc), inc.query("token"))
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "a logout needs the session cookie and the `token` query parameter from /self-service/logout/browser",
            );
        };
        if let Err(err) = self.identa.logout_with_token(&token, logout_token).await {
            return from_error(&err);
        }
        let mut res = if inc.wants_json() {
            response::empty(StatusCode::NO_CONTENT)
        } else {
            redirect(&format!(
                "{}/login",
                self.config.ui_url.trim_end_matches('/')
            ))
        };
        let gone = cookie(
            &self.config.cookies,
            self.secure(),
            &self.config.cookies.session_name,
            "",
            Some(0),
        );
        set_cookie(&mut res, &gone);
        res
    }

    async fn logout_api(&self, inc: &Incoming<'_>) -> Response {
        let body = match inc.body(self.config.max_body_bytes) {
            Ok(body) => body,
            Err(err) => return from_body_error(&err),
        };
        let Some(token) = body.get("session_token").and_then(Value::as_str) else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body needs `session_token`",
            );
        };
        match self.identa.logout(&SessionToken::from_client(token)).await {
            Ok(()) => response::empty(StatusCode::NO_CONTENT),
            Err(err) => from_error(&err),
        }
    }

    // ---- sessions ---------------------------------------------------------------------

    async fn current(&self, inc: &Incoming<'_>) -> Result<AuthenticatedSession, Response> {
        let token = self.session_token(inc).ok_or_else(|| {
            from_error(&Error::SessionInactive(
                crate::session::SessionRefusal::Unknown,
            ))
        })?;
        self.identa.whoami(&token).await.map_err(|e| from_error(&e))
    }

    async fn whoami(&self, inc: &Incoming<'_>) -> Response {
        let Some(token) = self.session_token(inc) else {
            return from_error(&Error::SessionInactive(
                crate::session::SessionRefusal::Unknown,
            ));
        };
        match self.identa.whoami(&token).await {
            Err(Error::Aal2Required) => self.aal2_required(false),
            Err(err) => from_error(&err),
            Ok(me) => {
                let mut res = json(StatusCode::OK, &json!(me));
                if let Ok(v) = http::HeaderValue::from_str(&me.identity.id.to_string()) {
                    res.headers_mut()
                        .insert("x-kratos-authenticated-identity-id", v);
                }
                res
            }
        }
    }

    async fn my_sessions(&self, inc: &Incoming<'_>) -> Response {
        let me = match self.current(inc).await {
            Ok(me) => me,
            Err(res) => return res,
        };
        match self.identa.sessions(me.identity.id).await {
            Ok(sessions) => {
                let others: Vec<_> = sessions
                    .into_iter()
                    .filter(|s| s.id != me.session.id)
                    .collect();
                json(StatusCode::OK, &json!(others))
            }
            Err(err) => from_error(&err),
        }
    }

    async fn revoke_my_other_sessions(&self, inc: &Incoming<'_>) -> Response {
        let me = match self.current(inc).await {
            Ok(me) => me,
            Err(res) => return res,
        };
        match self.identa.revoke_other_sessions(&me).await {
            Ok(count) => json(StatusCode::OK, &json!({ "count": count })),
            Err(err) => from_error(&err),
        }
    }

    async fn revoke_my_session(&self, inc: &Incoming<'_>, id: &str) -> Response {
        let me = match self.current(inc).await {
            Ok(me) => me,
            Err(res) => return res,
        };
        let id = match parse_id(id) {
            Ok(id) => id,
            Err(err) => return from_error(&err),
        };
        if id == me.session.id {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "this is the current session: sign out with the logout endpoints instead",
            );
        }
        match self.identa.revoke_session(me.identity.id, id).await {
            Ok(()) => response::empty(StatusCode::NO_CONTENT),
            Err(err) => from_error(&err),
        }
    }

    // ---- schemas ----------------------------------------------------------------------

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
            Err(err) => from_error(&err.into()),
        }
    }
}

fn flow_kind(segment: &str) -> Option<FlowKind> {
    segment.parse().ok()
}

fn not_found(path: &str) -> Response {
    let shown: String = path.chars().take(200).collect();
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for `{shown}`"),
    )
}

fn unknown_method(method: &str, known: &str) -> Response {
    let shown: String = method.chars().take(50).collect();
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &format!("method `{shown}` is not available here; use one of: {known}"),
    )
}
