//! The `oidc` method's routes (feature `oidc`): a `provider` button submitted to a login
//! or registration flow sends the browser to the provider, and Kratos's callback route
//! `GET /self-service/methods/oidc/callback/{provider}` finishes the sign-in.
//!
//! A provider answering with `response_mode=form_post` (Apple, when it shares the email
//! or name) POSTs the callback cross-site, and a cross-site POST carries no `SameSite=Lax`
//! cookie, so the flow's CSRF cookie would be missing. As Kratos does, that POST is only
//! turned around: a 303 to the same callback as a GET with the posted parameters in its
//! query, which the browser follows top-level, with its cookies, into the usual checks.

use uuid::Uuid;

use http::StatusCode;

use super::Response;
use super::request::BodyError;
use super::request::Incoming;
use super::respond::{Answer, Refused};
use super::response::{error, from_body_error, from_error, json, redirect};
use super::router::PublicApi;
use crate::error::Result;
use crate::flow::login::LoginIntent;
use crate::flow::oidc::{OidcCallback, OidcSignedIn};
use crate::flow::{FlowKind, FlowRequest, FlowType};

/// The most of a provider's form post that is read: a code, a state, an error
/// description and Apple's `user` fit many times over.
pub(crate) const MAX_FORM_POST_BYTES: usize = 16 * 1024;

/// The parameters of a form post carried on to the callback's GET, in this order. Anything
/// else (Apple's `user` with the name it shares once, an `id_token`) is dropped: identa
/// reads the account from the verified ID token only.
const FORM_POST_PARAMS: [&str; 4] = ["code", "state", "error", "error_description"];

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

    /// A native app's `id_token` (and `id_token_nonce`) from the provider's SDK, submitted
    /// with `provider` to a login or registration API flow: answered as that flow's
    /// completed submission (the session token in it).
    pub(super) async fn oidc_id_token(
        &self,
        flow_id: Uuid,
        [provider, id_token, nonce]: [&str; 3],
        flow_type: FlowType,
        req: &FlowRequest,
    ) -> Result<Answer> {
        let signed_in = self
            .identa
            .oidc()
            .sign_in_with_id_token(flow_id, provider, id_token, nonce, req)
            .await?;
        Ok(match signed_in {
            OidcSignedIn::LoggedIn(done) => self.logged_in(done, flow_type),
            OidcSignedIn::Registered(done) => self.registered(done, flow_type),
            OidcSignedIn::Linked(saved) => self.settings_saved(saved).await,
            OidcSignedIn::TokenHeld { flow, .. } | OidcSignedIn::ErrorHeld { flow, .. } => {
                return Err(crate::flow::FlowError::State {
                    kind: flow.kind,
                    state: flow.state,
                    reason: "an ID token sign-in answers with the session itself",
                }
                .into());
            }
        })
    }

    /// `GET /sessions/token-exchange?init_code=&return_to_code=`: a native app fetches
    /// the session its API flow's sign-in with a provider made, or (422) the flow showing
    /// why the sign-in failed.
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
            // The sign-in failed: the flow, so the app can show why (Kratos: 422).
            Err(crate::error::Error::Flow(crate::flow::FlowError::Invalid(flow))) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &self.flow_json(&flow).await,
            ),
            Err(err) => from_error(&err),
        }
    }

    /// `POST /self-service/methods/oidc/callback/{provider}` (`response_mode=form_post`):
    /// a 303 to the same callback as a GET carrying the known parameters of the posted
    /// form (at most [`MAX_FORM_POST_BYTES`]), so that the browser's follow-up request is a
    /// top-level GET with the `SameSite=Lax` cookies. Nothing is checked or spent here:
    /// the GET does it all (state, CSRF cookie, PKCE, nonce).
    pub(super) fn oidc_form_post(&self, inc: &Incoming<'_>, provider: &str) -> Response {
        if !crate::credential::oidc::is_provider_id(provider) {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no OpenID Connect provider has this id; use the callback URL of a configured provider",
            );
        }
        if !inc.is_form() {
            let sent = inc.header("content-type").unwrap_or_default().to_owned();
            return from_body_error(&BodyError::UnsupportedType(sent));
        }
        let body = inc.request().body();
        if body.len() > MAX_FORM_POST_BYTES {
            return from_body_error(&BodyError::TooLarge {
                limit: MAX_FORM_POST_BYTES,
            });
        }
        let posted: Vec<_> = form_urlencoded::parse(body).collect();
        let mut query = form_urlencoded::Serializer::new(String::new());
        for name in FORM_POST_PARAMS {
            // The first value of each: a repeated parameter does not add to the query.
            if let Some((_, value)) = posted.iter().find(|(k, _)| k == name) {
                query.append_pair(name, value);
            }
        }
        let query = query.finish();
        let to = self.identa.oidc().callback_url(provider);
        if query.is_empty() {
            redirect(&to)
        } else {
            redirect(&format!("{to}?{query}"))
        }
    }

    /// The provider's callback.
    pub(super) async fn oidc_callback(&self, inc: &Incoming<'_>, provider: &str) -> Response {
        // The provider's answer is in the query (a form post was turned into this GET).
        let param = |name: &str| inc.query(name).map(str::to_owned);
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
                let answer = self.logged_in_with_provider(done);
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
            Ok(
                OidcSignedIn::TokenHeld {
                    flow,
                    return_to_code,
                }
                | OidcSignedIn::ErrorHeld {
                    flow,
                    return_to_code,
                },
            ) => {
                // The system browser goes back to the app with the code; the token (or
                // the flow showing why there is none) waits.
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
