//! The `oidc` method's routes (feature `oidc`): a `provider` button submitted to a login
//! or registration flow sends the browser to the provider, and Kratos's callback route
//! `GET|POST /self-service/methods/oidc/callback/{provider}` finishes the sign-in.

use serde_json::Value;
use uuid::Uuid;

use http::StatusCode;

use super::Response;
use super::request::Incoming;
use super::respond::{Answer, Refused};
use super::response::{error, from_error, json, redirect};
use super::router::PublicApi;
use crate::error::Result;
use crate::flow::login::LoginIntent;
use crate::flow::oidc::{OidcCallback, OidcSignedIn};
use crate::flow::{FlowKind, FlowRequest, FlowType};

impl PublicApi {
    /// A `provider` button submitted to the flow `flow_id`: the provider's authorization
    /// URL, as a redirect (browser) or 422 `browser_location_change_required`.
    pub(super) async fn oidc_start(
        &self,
        flow_id: Uuid,
        provider: &str,
        req: &FlowRequest,
    ) -> Result<Answer> {
        let started = self.identa.oidc().start(flow_id, provider, req).await?;
        Ok(self.oidc_redirect(started))
    }

    /// `GET /sessions/token-exchange?init_code=&return_to_code=`: a native app fetches
    /// the session its API flow's sign-in with a provider made.
    pub(super) async fn token_exchange(&self, inc: &Incoming<'_>) -> Response {
        let (Some(init), Some(back)) = (inc.query("init_code"), inc.query("return_to_code")) else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the `init_code` and `return_to_code` query parameters must be set",
            );
        };
        match self.identa.oidc().exchange(init, back).await {
            Ok(login) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "session": login.session,
                    "session_token": login.token.expose(),
                }),
            ),
            Err(err) => from_error(&err),
        }
    }

    /// The provider's callback.
    pub(super) async fn oidc_callback(&self, inc: &Incoming<'_>, provider: &str) -> Response {
        // A provider answers in the query, or (response_mode=form_post) in a form.
        let body = inc.body(self.config.max_body_bytes).unwrap_or(Value::Null);
        let param = |name: &str| {
            inc.query(name)
                .map(str::to_owned)
                .or_else(|| body.get(name).and_then(Value::as_str).map(str::to_owned))
        };
        let callback = OidcCallback {
            state: param("state"),
            code: param("code"),
            error: param("error"),
            error_description: param("error_description"),
        };
        let (req, _) = self.flow_request(inc, FlowType::Browser);
        // The flow the state names, to answer in its kind's UI.
        let flow_id = crate::flow::oidc::flow_of_state(callback.state.as_deref()).ok();
        let kind = match flow_id {
            Some(id) => match self.identa.load_flow(id).await {
                Ok(flow) => flow.kind,
                Err(_) => FlowKind::Login,
            },
            None => FlowKind::Login,
        };
        match self.identa.oidc().callback(provider, callback, &req).await {
            Ok(OidcSignedIn::LoggedIn(done)) => {
                let answer = self.logged_in(done, FlowType::Browser);
                self.respond(inc, FlowType::Browser, answer)
            }
            Ok(OidcSignedIn::Registered(done)) => {
                let answer = self.registered(done, FlowType::Browser);
                self.respond(inc, FlowType::Browser, answer)
            }
            Ok(OidcSignedIn::Linked(saved)) => {
                let answer = self.settings_saved(saved).await;
                self.respond(inc, FlowType::Browser, answer)
            }
            Ok(OidcSignedIn::TokenHeld {
                flow,
                return_to_code,
            }) => {
                // The system browser goes back to the app with the code; the token waits.
                let to = flow
                    .return_to
                    .unwrap_or_else(|| self.config.default_return_url.clone());
                let sep = if to.contains('?') { '&' } else { '?' };
                let code: String =
                    form_urlencoded::byte_serialize(return_to_code.as_bytes()).collect();
                redirect(&format!("{to}{sep}code={code}"))
            }
            Err(err) => {
                // A link offered after a registration is shown on a new login flow.
                let kind = match &err {
                    crate::error::Error::Flow(crate::flow::FlowError::Invalid(shown)) => shown.kind,
                    _ => kind,
                };
                let about = Refused {
                    kind,
                    flow_type: FlowType::Browser,
                    flow_id,
                    intent: LoginIntent::SignIn,
                };
                self.refusal(inc, &req, about, err).await
            }
        }
    }
}
