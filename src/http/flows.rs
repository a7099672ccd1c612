//! The self-service flow routes: start a flow (`GET /self-service/<kind>/browser|api`),
//! show one (`GET /self-service/<kind>/flows?id=`), and submit to one
//! (`POST /self-service/<kind>?flow=`), reading each kind's form into its submission.
//! How outcomes are answered is `respond`'s.

// Form readers return a ready `Response` on their error path; it is built once per request.
#![allow(clippy::result_large_err)]

use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::CSRF_COOKIE;
use super::Response;
use super::request::{Incoming, TokenFrom, parse_id};
use super::respond::{Answer, Refused};
use super::response::{error, from_body_error, from_error, json};
use super::router::PublicApi;
use crate::credential::password::Password;
use crate::engine::kind;
use crate::error::{Error, Result};
use crate::flow::login::{LoginIntent, LoginSubmission};
use crate::flow::registration::RegistrationSubmission;
use crate::flow::settings::SettingsSubmission;
use crate::flow::{CodeSubmission, Flow, FlowKind, FlowRequest, FlowType, csrf};
use crate::identity::Aal;

impl PublicApi {
    /// The flow request for `inc`; for browsers also the CSRF cookie to set, if new.
    pub(super) fn flow_request(
        &self,
        inc: &Incoming<'_>,
        flow_type: FlowType,
    ) -> (FlowRequest, Option<String>) {
        let url = match inc.request().uri().path_and_query() {
            Some(pq) => format!("{}{pq}", self.public_url()),
            None => self.public_url().to_owned(),
        };
        let (csrf_cookie, new_cookie) = match (flow_type, inc.cookie(CSRF_COOKIE)) {
            (FlowType::Browser, Some(c)) => (Some(c.to_owned()), None),
            (FlowType::Browser, None) => {
                let fresh = csrf::new_cookie_value();
                (Some(fresh.clone()), Some(fresh))
            }
            (FlowType::Api, c) => (c.map(str::to_owned), None),
        };
        // API flows are for native apps: their session comes from a header, never from a
        // cookie a browser would attach to a cross-site request.
        let session = inc.session_token(match flow_type {
            FlowType::Browser => TokenFrom::HeadersOrCookie(&self.config.cookies.session_name),
            FlowType::Api => TokenFrom::Headers,
        });
        let req = FlowRequest {
            csrf_cookie,
            csrf_token: inc.header("x-csrf-token").map(str::to_owned),
            session,
            device: Some(inc.device()),
            url: Some(url),
            return_to: inc.query("return_to").map(str::to_owned),
            #[cfg(feature = "oidc")]
            session_token_exchange: inc.query("return_session_token_exchange_code") == Some("true"),
        };
        (req, new_cookie)
    }

    /// Starts a flow of `kind` (the login intent from `aal=aal2` / `refresh=true`).
    pub(super) async fn init(
        &self,
        inc: &Incoming<'_>,
        kind: FlowKind,
        flow_type: FlowType,
    ) -> Response {
        let (req, new_cookie) = self.flow_request(inc, flow_type);
        let intent = match (inc.query("aal"), inc.query("refresh")) {
            (Some("aal2"), _) => LoginIntent::SecondFactor,
            (_, Some("true")) => LoginIntent::Refresh,
            _ => LoginIntent::SignIn,
        };
        let created = self.create(kind, flow_type, &req, intent).await;
        let browser_page = flow_type == FlowType::Browser && !inc.wants_json();
        let res = match created {
            Ok(flow) if browser_page => self.to_flow_ui(kind, flow.id),
            Ok(flow) => json(StatusCode::OK, &self.flow_json(&flow).await),
            Err(err) => {
                let about = Refused {
                    kind,
                    flow_type,
                    flow_id: None,
                    intent,
                };
                self.refusal(inc, &req, about, err).await
            }
        };
        self.with_csrf_cookie(res, new_cookie)
    }

    /// A new flow of `kind`.
    pub(super) async fn create(
        &self,
        kind: FlowKind,
        flow_type: FlowType,
        req: &FlowRequest,
        intent: LoginIntent,
    ) -> Result<Flow> {
        let identa = &self.identa;
        match kind {
            FlowKind::Registration => identa.registration_flow().create(flow_type, req).await,
            FlowKind::Login => identa.login_flow().create(flow_type, req, intent).await,
            FlowKind::Settings => identa.settings_flow().create(flow_type, req).await,
            FlowKind::Recovery => identa.recovery_flow().create(flow_type, req).await,
            FlowKind::Verification => identa.verification_flow().create(flow_type, req).await,
        }
    }

    /// Shows a flow of `kind`.
    pub(super) async fn get_flow(&self, inc: &Incoming<'_>, kind: FlowKind) -> Response {
        let id = match required_id(inc, "id") {
            Ok(id) => id,
            Err(res) => return res,
        };
        // Reading a flow (a GET whose answer other sites cannot read) may use the cookie.
        let (mut req, _) = self.flow_request(inc, FlowType::Api);
        req.session = inc.session_token(TokenFrom::HeadersOrCookie(
            &self.config.cookies.session_name,
        ));
        match self.identa.flow(id, &req).await {
            Ok(flow) if flow.kind == kind => json(StatusCode::OK, &self.flow_json(&flow).await),
            Ok(_) => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no {kind} flow has id {id}"),
            ),
            Err(err) => from_error(&err),
        }
    }

    /// Submits to a flow of `kind`.
    pub(super) async fn submit(&self, inc: &Incoming<'_>, kind: FlowKind) -> Response {
        let flow_id = match required_id(inc, "flow") {
            Ok(id) => id,
            Err(res) => return res,
        };
        let mut body = match inc.body(self.config.max_body_bytes) {
            Ok(body) => body,
            Err(err) => return from_body_error(&err),
        };
        // The flow's own type decides how to answer; an unknown flow is a plain 404. The
        // submission below takes this read of it.
        let flow = match self.identa.load_flow(flow_id).await {
            Ok(flow) => flow,
            Err(err) => return from_error(&err),
        };
        let flow_type = flow.flow_type;
        // An expired login flow is replaced by one that does what it did.
        let intent = match (flow.requested_aal, flow.refresh) {
            (Aal::Aal2, _) => LoginIntent::SecondFactor,
            (Aal::Aal1, true) => LoginIntent::Refresh,
            (Aal::Aal1, false) => LoginIntent::SignIn,
        };
        if inc.is_form() {
            self.coerce_form(&flow, &mut body).await;
        }
        let (mut req, _) = self.flow_request(inc, flow_type);
        if let Some(token) = body.get("csrf_token").and_then(Value::as_str) {
            req.csrf_token = Some(token.to_owned());
        }
        let form = Form(&body);
        let identa = &self.identa;
        #[cfg(feature = "oidc")]
        let oidc =
            matches!(kind, FlowKind::Login | FlowKind::Registration) && form.method() == "oidc";
        // A settings flow's `link` button goes to the provider (`unlink` is a submission).
        #[cfg(feature = "oidc")]
        let link =
            kind == FlowKind::Settings && form.method() == "oidc" && !form.text("link").is_empty();
        let outcome: Result<Answer> = match kind {
            #[cfg(feature = "oidc")]
            FlowKind::Login | FlowKind::Registration
                if oidc && !form.text("id_token").is_empty() =>
            {
                let (provider, id_token) = (form.text("provider"), form.text("id_token"));
                let nonce = form.text("id_token_nonce");
                self.oidc_id_token(flow.id, [&provider, &id_token, &nonce], flow_type, &req)
                    .await
            }
            #[cfg(feature = "oidc")]
            FlowKind::Login | FlowKind::Registration if oidc => {
                self.oidc_start(flow.id, &form.text("provider"), &req).await
            }
            #[cfg(feature = "oidc")]
            FlowKind::Settings if link => self.oidc_start(flow.id, &form.text("link"), &req).await,
            FlowKind::Registration => match form.registration() {
                Ok(s) => identa
                    .submit_loaded::<kind::Registration>(flow, s, &req)
                    .await
                    .map(|done| self.registered(done, flow_type)),
                Err(res) => return res,
            },
            FlowKind::Login => match form.login() {
                Ok(s) => identa
                    .submit_loaded::<kind::Login>(flow, s, &req)
                    .await
                    .map(|done| self.logged_in(done, flow_type)),
                Err(res) => return res,
            },
            FlowKind::Settings => match form.settings() {
                Ok(s) => match identa.submit_loaded::<kind::Settings>(flow, s, &req).await {
                    Ok(saved) => Ok(self.settings_saved(saved).await),
                    Err(err) => Err(err),
                },
                Err(res) => return res,
            },
            FlowKind::Recovery => match form.code() {
                Ok(s) => match identa.submit_loaded::<kind::Recovery>(flow, s, &req).await {
                    Ok(step) => Ok(self.recovery_step(step).await),
                    Err(err) => Err(err),
                },
                Err(res) => return res,
            },
            FlowKind::Verification => match form.code() {
                Ok(s) => match identa
                    .submit_loaded::<kind::Verification>(flow, s, &req)
                    .await
                {
                    Ok(step) => Ok(self.verification_step(step).await),
                    Err(err) => Err(err),
                },
                Err(res) => return res,
            },
        };
        match outcome {
            Ok(answer) => self.respond(inc, flow_type, answer),
            Err(err) => {
                let about = Refused {
                    kind,
                    flow_type,
                    flow_id: Some(flow_id),
                    intent,
                };
                self.refusal(inc, &req, about, err).await
            }
        }
    }

    /// HTML forms send strings: gives number and boolean traits the types the flow's
    /// schema declares.
    async fn coerce_form(&self, flow: &Flow, body: &mut Value) {
        let Some(traits) = body.get_mut("traits") else {
            return;
        };
        let schema_id = match flow.identity_id {
            Some(id) => self.identa.identity(id).await.ok().map(|i| i.schema_id),
            None => self.identa.schemas().default_id().map(str::to_owned),
        };
        if let Some(schema) = schema_id.and_then(|id| self.identa.schemas().get(&id).ok()) {
            schema.coerce_form_traits(traits);
        }
    }

    /// `GET /self-service/errors?id=`: an error a browser was sent to the error UI for.
    pub(super) async fn stored_error(&self, inc: &Incoming<'_>) -> Response {
        let id = match required_id(inc, "id") {
            Ok(id) => id,
            Err(res) => return res,
        };
        match self.identa.store().error(id).await {
            Ok(Some(body)) => json(
                StatusCode::OK,
                &json!({ "id": id, "error": body.get("error").cloned().unwrap_or(body) }),
            ),
            Ok(None) => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no error with id {id}"),
            ),
            Err(err) => from_error(&Error::from(err)),
        }
    }
}

/// A required id in the query.
fn required_id(inc: &Incoming<'_>, name: &str) -> std::result::Result<Uuid, Response> {
    let Some(raw) = inc.query(name) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("the `{name}` query parameter is required"),
        ));
    };
    parse_id(raw).map_err(|err| from_error(&err))
}

/// A submitted form (JSON, or form-encoded with dotted names nested), read into each
/// kind's submission. Kratos's field names.
struct Form<'a>(&'a Value);

impl Form<'_> {
    /// A text field; empty when absent.
    fn text(&self, name: &str) -> String {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// A flag field (`true`, as JSON or as text).
    fn flag(&self, name: &str) -> bool {
        self.0.get(name) == Some(&Value::Bool(true)) || self.text(name) == "true"
    }

    fn traits(&self) -> Value {
        self.0.get("traits").cloned().unwrap_or_else(|| json!({}))
    }

    /// The `method`. WebAuthn buttons (remove a key) and scripts may post without one:
    /// Kratos infers it from the fields, and so does this.
    fn method(&self) -> String {
        if let Some(method) = self.0.get("method").and_then(Value::as_str) {
            return method.to_owned();
        }
        let any = |fields: &[&str]| fields.iter().any(|f| !self.text(f).is_empty());
        if any(&["provider", "link", "unlink"]) {
            "oidc".into()
        } else if any(&["webauthn_remove", "webauthn_register", "webauthn_login"]) {
            "webauthn".into()
        } else if any(&[
            "passkey_remove",
            "passkey_settings_register",
            "passkey_register",
            "passkey_login",
        ]) {
            "passkey".into()
        } else {
            String::new()
        }
    }

    fn registration(&self) -> std::result::Result<RegistrationSubmission, Response> {
        match self.method().as_str() {
            "password" => Ok(RegistrationSubmission::Password {
                traits: self.traits(),
                password: Password::new(self.text("password")),
            }),
            "passkey" => Ok(RegistrationSubmission::Passkey {
                traits: self.traits(),
                response: self.text("passkey_register"),
            }),
            other => Err(unknown_method(other, "password, passkey")),
        }
    }

    fn login(&self) -> std::result::Result<LoginSubmission, Response> {
        let identifier = self
            .0
            .get("identifier")
            .or_else(|| self.0.get("password_identifier"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match self.method().as_str() {
            "password" => Ok(LoginSubmission::Password {
                identifier,
                password: Password::new(self.text("password")),
            }),
            "passkey" => Ok(LoginSubmission::Passkey {
                identifier,
                response: Some(self.text("passkey_login")).filter(|r| !r.is_empty()),
            }),
            "totp" => Ok(LoginSubmission::Totp {
                code: self.text("totp_code"),
            }),
            "lookup_secret" => Ok(LoginSubmission::LookupSecret {
                code: self.text("lookup_secret"),
            }),
            "webauthn" => Ok(LoginSubmission::Webauthn {
                response: self.text("webauthn_login"),
            }),
            other => Err(unknown_method(
                other,
                "password, passkey, totp, lookup_secret, webauthn",
            )),
        }
    }

    fn settings(&self) -> std::result::Result<SettingsSubmission, Response> {
        Ok(match self.method().as_str() {
            "profile" => SettingsSubmission::Profile {
                traits: self.traits(),
            },
            "password" => SettingsSubmission::Password {
                password: Password::new(self.text("password")),
            },
            "totp" if self.flag("totp_unlink") => SettingsSubmission::TotpUnlink,
            "totp" => SettingsSubmission::Totp {
                code: self.text("totp_code"),
            },
            "lookup_secret" if self.flag("lookup_secret_regenerate") => {
                SettingsSubmission::LookupRegenerate
            }
            "lookup_secret" if self.flag("lookup_secret_confirm") => {
                SettingsSubmission::LookupConfirm
            }
            "lookup_secret" if self.flag("lookup_secret_disable") => {
                SettingsSubmission::LookupDisable
            }
            "webauthn" if !self.text("webauthn_remove").is_empty() => {
                SettingsSubmission::WebauthnRemove {
                    id: self.text("webauthn_remove"),
                }
            }
            "webauthn" => SettingsSubmission::WebauthnRegister {
                display_name: self.text("webauthn_register_displayname"),
                response: self.text("webauthn_register"),
            },
            "passkey" if !self.text("passkey_remove").is_empty() => {
                SettingsSubmission::PasskeyRemove {
                    id: self.text("passkey_remove"),
                }
            }
            "passkey" => SettingsSubmission::PasskeyRegister {
                response: self.text("passkey_settings_register"),
            },
            #[cfg(feature = "oidc")]
            "oidc" => SettingsSubmission::OidcUnlink {
                provider: self.text("unlink"),
            },
            other => {
                return Err(unknown_method(
                    other,
                    "profile, password, totp, lookup_secret, webauthn, passkey",
                ));
            }
        })
    }

    /// A recovery or verification submission: a code when one is given, else an address.
    fn code(&self) -> std::result::Result<CodeSubmission, Response> {
        match self.method().as_str() {
            "code" => Ok(match (self.text("code"), self.text("email")) {
                (code, _) if !code.is_empty() => CodeSubmission::Code(code),
                (_, email) => CodeSubmission::Email(email),
            }),
            other => Err(unknown_method(other, "code")),
        }
    }
}

fn unknown_method(method: &str, known: &str) -> Response {
    let shown: String = method.chars().take(50).collect();
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        &format!("method `{shown}` is not available here; use one of: {known}"),
    )
}
