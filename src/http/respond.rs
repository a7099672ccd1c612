//! Turning what a flow did into a Kratos response, in one place for every kind: a
//! success becomes an [`Answer`] (the JSON, a session to hand over, where a browser goes
//! next), and every refusal takes [`PublicApi::refusal`] — a flow with errors answered
//! with the flow (400, or the form again for a browser), an expired flow replaced (410),
//! a needed re-authentication or second factor pointed at its login flow (403), anything
//! else Kratos's error JSON (or, for a browser page, the error UI).

use http::StatusCode;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::request::Incoming;
use super::response::{
    self, cookie, error_with, from_error, json, redirect, set_cookie, status_of_shown_flow,
};
use super::router::PublicApi;
use super::script::fill_script_nodes;
use super::{CSRF_COOKIE, Response};
use crate::error::Error;
use crate::flow::login::{LoggedIn, LoginIntent};
use crate::flow::recovery::RecoveryStep;
use crate::flow::registration::Registered;
use crate::flow::settings::SettingsSaved;
use crate::flow::verification::VerificationStep;
use crate::flow::{Flow, FlowError, FlowKind, FlowRequest, FlowType};
use crate::session::{SessionError, SessionToken};

/// A successful submission, as the HTTP layer answers it.
pub(super) struct Answer {
    /// What API clients (and browsers asking for JSON) get.
    body: Value,
    /// A new session: set as a cookie for browsers (apps find it in the body).
    token: Option<SessionToken>,
    /// Where a browser page goes next.
    next: Next,
}

/// What a refused request was about.
pub(super) struct Refused {
    /// The kind of flow.
    pub(super) kind: FlowKind,
    /// Browser or API.
    pub(super) flow_type: FlowType,
    /// The flow a submission named.
    pub(super) flow_id: Option<Uuid>,
    /// How a replacement for an expired login flow starts (a refresh, a step-up).
    pub(super) intent: LoginIntent,
}

/// Where a browser goes after a submission.
enum Next {
    /// The flow's `return_to`, or the default return URL.
    ReturnTo(Option<String>),
    /// This flow's page of the UI.
    Show(FlowKind, Uuid),
    /// Another flow's page: a browser asking for JSON gets 422
    /// `browser_location_change_required` pointing there.
    Continue(FlowKind, Uuid),
    /// Another site (an OpenID Connect provider): a browser page is redirected there,
    /// anyone else gets 422 `browser_location_change_required` pointing there.
    #[cfg(feature = "oidc")]
    Elsewhere(String),
    /// A new login flow asking for the second factor (this URL starts it): a sign-in
    /// whose session `whoami` would refuse for want of it, as Kratos's login hook sends
    /// the browser on. A browser page is redirected there, a browser asking for JSON gets
    /// 422 `browser_location_change_required`.
    #[cfg(feature = "oidc")]
    SecondFactor(String),
}

impl PublicApi {
    pub(super) fn registered(&self, done: Registered, flow_type: FlowType) -> Answer {
        let mut body = json!({ "identity": done.identity, "continue_with": done.continue_with });
        let token = done.login.map(|login| {
            response::put(&mut body, "session", json!(login.session));
            if flow_type == FlowType::Api {
                response::put(&mut body, "session_token", json!(login.token.expose()));
            }
            login.token
        });
        Answer {
            body,
            token,
            next: Next::ReturnTo(done.flow.return_to),
        }
    }

    pub(super) fn logged_in(&self, done: LoggedIn, flow_type: FlowType) -> Answer {
        let mut body = json!({ "session": done.session, "continue_with": done.continue_with });
        if let (Some(token), FlowType::Api) = (&done.token, flow_type) {
            response::put(&mut body, "session_token", json!(token.expose()));
        }
        // A provider account waiting to be linked goes on to the second-factor flow.
        let next = match done.second_factor_flow {
            Some(id) => Next::Continue(FlowKind::Login, id),
            None => Next::ReturnTo(done.flow.return_to),
        };
        Answer {
            body,
            token: done.token,
            next,
        }
    }

    /// [`Self::logged_in`] for a browser sign-in with a provider: a session that `whoami`
    /// would refuse for want of the identity's second factor (`session.whoami_required_aal
    /// = HighestAvailable`) goes on to a login flow with `aal=aal2` (keeping the flow's
    /// `return_to`), as Kratos's login hook does (`checkAAL` in
    /// selfservice/flow/login/hook.go); the `aal1` session cookie is set all the same.
    #[cfg(feature = "oidc")]
    pub(super) fn logged_in_with_provider(&self, done: LoggedIn) -> Answer {
        let owed = self.identa.owes_second_factor(&done.session)
            // A provider account waiting to be linked already goes on to its own
            // second-factor flow.
            && done.second_factor_flow.is_none();
        let return_to = done.flow.return_to.clone();
        let mut answer = self.logged_in(done, FlowType::Browser);
        if owed {
            let mut to = self.aal2_login_url();
            if let Some(back) = return_to {
                let back: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
                to.push_str(&format!("&return_to={back}"));
            }
            answer.next = Next::SecondFactor(to);
        }
        answer
    }

    pub(super) async fn settings_saved(&self, saved: SettingsSaved) -> Answer {
        let mut body = self.flow_json(&saved.flow).await;
        response::put(&mut body, "continue_with", json!(saved.continue_with));
        Answer {
            body,
            token: None,
            next: Next::Show(FlowKind::Settings, saved.flow.id),
        }
    }

    pub(super) async fn recovery_step(&self, step: RecoveryStep) -> Answer {
        match step {
            RecoveryStep::CodeSent(flow) => Answer {
                body: self.flow_json(&flow).await,
                token: None,
                next: Next::Show(FlowKind::Recovery, flow.id),
            },
            RecoveryStep::Recovered(done) => {
                let mut body = self.flow_json(&done.flow).await;
                response::put(&mut body, "continue_with", json!(done.continue_with));
                Answer {
                    body,
                    token: Some(done.token),
                    next: Next::Continue(FlowKind::Settings, done.settings_flow.id),
                }
            }
        }
    }

    /// A sign-in with a provider started: the browser goes to the provider.
    #[cfg(feature = "oidc")]
    pub(super) fn oidc_redirect(&self, started: crate::flow::oidc::OidcRedirect) -> Answer {
        Answer {
            body: serde_json::json!({ "redirect_browser_to": started.redirect_to }),
            token: None,
            next: Next::Elsewhere(started.redirect_to),
        }
    }

    pub(super) async fn verification_step(&self, step: VerificationStep) -> Answer {
        let flow = match step {
            VerificationStep::CodeSent(flow) | VerificationStep::Verified { flow, .. } => flow,
        };
        Answer {
            body: self.flow_json(&flow).await,
            token: None,
            next: Next::Show(FlowKind::Verification, flow.id),
        }
    }

    /// The response for a successful submission to a flow of `flow_type`.
    pub(super) fn respond(
        &self,
        inc: &Incoming<'_>,
        flow_type: FlowType,
        answer: Answer,
    ) -> Response {
        let browser = flow_type == FlowType::Browser;
        let res = match (answer.next, browser, inc.wants_json()) {
            (Next::ReturnTo(to), true, false) => {
                redirect(&to.unwrap_or_else(|| self.config.default_return_url.clone()))
            }
            (Next::Show(kind, id) | Next::Continue(kind, id), true, false) => {
                self.to_flow_ui(kind, id)
            }
            (Next::Continue(kind, id), true, true) => redirect_browser_to(
                &self.ui(kind, id),
                StatusCode::UNPROCESSABLE_ENTITY,
                "browser_location_change_required",
                "continue in the next flow (after a recovery: the settings flow, to set a new password; \
                 after a sign-in that links a provider account: the second-factor login flow)",
            ),
            #[cfg(feature = "oidc")]
            (Next::Elsewhere(to), true, false) => redirect(&to),
            #[cfg(feature = "oidc")]
            (Next::Elsewhere(to), _, _) => redirect_browser_to(
                &to,
                StatusCode::UNPROCESSABLE_ENTITY,
                "browser_location_change_required",
                "sign in at the provider: send the browser to redirect_browser_to",
            ),
            #[cfg(feature = "oidc")]
            (Next::SecondFactor(to), true, false) => redirect(&to),
            #[cfg(feature = "oidc")]
            (Next::SecondFactor(to), _, _) => redirect_browser_to(
                &to,
                StatusCode::UNPROCESSABLE_ENTITY,
                "browser_location_change_required",
                "this account has a second factor: continue at redirect_browser_to, a login flow with aal=aal2",
            ),
            _ => json(StatusCode::OK, &answer.body),
        };
        match answer.token {
            Some(token) if browser => self.with_session_cookie(res, &token),
            _ => res,
        }
    }

    /// The response for a refused start of, or submission to, a flow.
    pub(super) async fn refusal(
        &self,
        inc: &Incoming<'_>,
        req: &FlowRequest,
        about: Refused,
        err: Error,
    ) -> Response {
        let Refused {
            kind,
            flow_type,
            flow_id,
            intent,
        } = about;
        let browser_page = flow_type == FlowType::Browser && !inc.wants_json();
        match err {
            Error::Flow(FlowError::Invalid(flow)) => {
                if browser_page {
                    self.to_flow_ui(kind, flow.id)
                } else {
                    json(status_of_shown_flow(&flow), &self.flow_json(&flow).await)
                }
            }
            Error::Flow(FlowError::Expired { expired_at, .. }) => {
                // A replacement flow, so the front end can go on at once.
                match self.create(kind, flow_type, req, intent).await {
                    Ok(flow) if browser_page => self.to_flow_ui(kind, flow.id),
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
            Error::Flow(FlowError::SessionAlreadyAvailable) if browser_page => {
                redirect(&self.config.default_return_url)
            }
            Error::Flow(FlowError::RefreshRequired) => {
                let back = flow_id.map(|id| self.ui(kind, id));
                let target = self.login_url(true, back.as_deref());
                if browser_page {
                    return redirect(&target);
                }
                redirect_browser_to(
                    &target,
                    StatusCode::FORBIDDEN,
                    "session_refresh_required",
                    "this change needs a recent sign-in: re-authenticate with a login flow with refresh=true, then submit again",
                )
            }
            Error::Session(SessionError::Inactive(_))
                if browser_page && kind == FlowKind::Settings =>
            {
                redirect(&self.login_url(false, None))
            }
            Error::Flow(FlowError::Aal2Required) => self.aal2_required(browser_page),
            // The flow was saved showing the refusal (message 4900001): show it again.
            Error::Throttled(throttled) if browser_page => match flow_id {
                Some(id) => self.to_flow_ui(kind, id),
                None => {
                    let err = Error::Throttled(throttled);
                    self.error_response(inc, flow_type, &err).await
                }
            },
            other => self.error_response(inc, flow_type, &other).await,
        }
    }

    /// Where a second-factor login flow starts: `/self-service/login/browser?aal=aal2`.
    fn aal2_login_url(&self) -> String {
        format!("{}/self-service/login/browser?aal=aal2", self.public_url())
    }

    /// 403 `session_aal2_required` pointing at a second-factor login flow (or a redirect
    /// there for a browser page).
    pub(super) fn aal2_required(&self, browser_page: bool) -> Response {
        let target = self.aal2_login_url();
        if browser_page {
            return redirect(&target);
        }
        redirect_browser_to(
            &target,
            StatusCode::FORBIDDEN,
            "session_aal2_required",
            "this session must complete its second factor: start a login flow with aal=aal2",
        )
    }

    /// An error as JSON, or, for a browser page, a redirect to the error UI (the error is
    /// recorded in the database, so any instance can show it; `prune` drops it after a
    /// day). If it cannot be recorded, the page gets the JSON error itself.
    pub(super) async fn error_response(
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

    /// A flow in Kratos's JSON, as this API serves it: its form posts to this API, its
    /// script nodes load the WebAuthn script from it, and a settings flow carries its
    /// identity.
    pub(super) async fn flow_json(&self, flow: &Flow) -> Value {
        let mut flow = flow.clone();
        flow.ui.action = format!(
            "{}/self-service/{}?flow={}",
            self.public_url(),
            flow.kind,
            flow.id
        );
        fill_script_nodes(&mut flow, self.public_url());
        let mut out = flow.to_kratos_json();
        if flow.kind == FlowKind::Settings
            && let Some(id) = flow.identity_id
            && let Ok(identity) = self.identa.identity(id).await
        {
            response::put(&mut out, "identity", json!(identity));
        }
        out
    }

    /// The UI page of a flow.
    pub(super) fn ui(&self, kind: FlowKind, flow_id: Uuid) -> String {
        format!(
            "{}/{kind}?flow={flow_id}",
            self.config.ui_url.trim_end_matches('/')
        )
    }

    /// A redirect to the UI page of a flow.
    pub(super) fn to_flow_ui(&self, kind: FlowKind, flow_id: Uuid) -> Response {
        redirect(&self.ui(kind, flow_id))
    }

    /// Where a browser starts a login (to re-authenticate with `refresh`).
    pub(super) fn login_url(&self, refresh: bool, return_to: Option<&str>) -> String {
        let mut url = format!("{}/self-service/login/browser", self.public_url());
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

    /// Sets the browser's new CSRF cookie, if one was made.
    pub(super) fn with_csrf_cookie(
        &self,
        mut res: Response,
        new_cookie: Option<String>,
    ) -> Response {
        if let Some(value) = new_cookie {
            let c = cookie(
                &self.config.cookies,
                self.secure(),
                CSRF_COOKIE,
                &value,
                None,
            );
            set_cookie(&mut res, &c);
        }
        res
    }

    /// Sets the session cookie.
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
}

/// Kratos's error `id` with `status`, pointing a browser's script at `target`
/// (`redirect_browser_to`): what a client asking for JSON gets where a page is redirected.
fn redirect_browser_to(target: &str, status: StatusCode, id: &str, reason: &str) -> Response {
    let mut extra = Map::new();
    extra.insert("redirect_browser_to".into(), json!(target));
    error_with(status, id, reason, extra)
}
