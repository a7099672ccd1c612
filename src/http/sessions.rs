//! The session routes: `whoami`, the signed-in user's own sessions (list, revoke), and
//! logout — for apps by token (`DELETE /self-service/logout/api`), for browsers by a
//! logout URL whose token is bound to their session.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::request::{self, Incoming, TokenFrom, parse_id};
use super::response::{self, cookie, error, from_error, json, redirect, set_cookie};
use super::router::PublicApi;
use super::{Request, Response};
use crate::error::{Error, Result};
use crate::flow::FlowError;
use crate::session::{AuthenticatedSession, SessionError, SessionRefusal, SessionToken};

impl PublicApi {
    /// The session token a browser or an app presented.
    fn presented(&self, inc: &Incoming<'_>) -> Result<SessionToken> {
        inc.session_token(TokenFrom::HeadersOrCookie(
            &self.config.cookies.session_name,
        ))
        .ok_or_else(|| SessionError::Inactive(SessionRefusal::Unknown).into())
    }

    async fn current(&self, inc: &Incoming<'_>) -> Result<AuthenticatedSession> {
        self.identa.whoami(&self.presented(inc)?).await
    }

    /// The answer to a request whose session [`Identa::whoami`](crate::Identa::whoami)
    /// refused: Kratos's 401 `session_inactive`, or 403 `session_aal2_required` with
    /// `redirect_browser_to` a second-factor login flow. What a host's own routes behind
    /// a `CurrentSession` extractor answer too.
    pub fn session_refused(&self, err: &Error) -> Response {
        match err {
            Error::Flow(FlowError::Aal2Required) => self.aal2_required(false),
            other => from_error(other),
        }
    }

    /// `GET /sessions/whoami`, read straight from the request's headers (no [`Incoming`]:
    /// the hot path of every host), answered with the JSON the cache entry keeps rendered.
    pub(super) async fn whoami(&self, req: &Request) -> Response {
        let token = request::session_token_of(
            req,
            TokenFrom::HeadersOrCookie(&self.config.cookies.session_name),
        );
        let Some(token) = token else {
            return self.session_refused(&SessionError::Inactive(SessionRefusal::Unknown).into());
        };
        match self.identa.whoami_shared(&token).await {
            Err(err) => self.session_refused(&err),
            Ok(me) => {
                let mut res = match me.json() {
                    Ok(rendered) => {
                        response::rendered_json(StatusCode::OK, Bytes::from_owner(rendered))
                    }
                    Err(_) => json(StatusCode::OK, &json!(me.value)),
                };
                let mut id = Uuid::encode_buffer();
                let id = me.value.identity.id.hyphenated().encode_lower(&mut id);
                if let Ok(v) = http::HeaderValue::from_str(id) {
                    res.headers_mut()
                        .insert("x-kratos-authenticated-identity-id", v);
                }
                res
            }
        }
    }

    pub(super) async fn my_sessions(&self, inc: &Incoming<'_>) -> Response {
        let listed = match self.current(inc).await {
            Ok(me) => self
                .identa
                .sessions(me.identity.id)
                .await
                .map(|sessions| (me.session.id, sessions)),
            Err(err) => Err(err),
        };
        match listed {
            Ok((current, sessions)) => {
                let others: Vec<_> = sessions.into_iter().filter(|s| s.id != current).collect();
                json(StatusCode::OK, &json!(others))
            }
            Err(err) => from_error(&err),
        }
    }

    pub(super) async fn revoke_my_other_sessions(&self, inc: &Incoming<'_>) -> Response {
        let revoked = match self.current(inc).await {
            Ok(me) => self.identa.revoke_other_sessions(&me).await,
            Err(err) => Err(err),
        };
        match revoked {
            Ok(count) => json(StatusCode::OK, &json!({ "count": count })),
            Err(err) => from_error(&err),
        }
    }

    pub(super) async fn revoke_my_session(&self, inc: &Incoming<'_>, id: &str) -> Response {
        let me = match self.current(inc).await {
            Ok(me) => me,
            Err(err) => return from_error(&err),
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

    /// `GET /self-service/logout/browser`: Kratos's `{logout_url, logout_token}`.
    pub(super) async fn logout_url(&self, inc: &Incoming<'_>) -> Response {
        let token = match self.presented(inc) {
            Ok(token) => token,
            Err(err) => return from_error(&err),
        };
        match self.identa.logout_token(&token).await {
            Ok(logout_token) => json(
                StatusCode::OK,
                &json!({
                    "logout_url": format!(
                        "{}/self-service/logout?token={logout_token}",
                        self.public_url()
                    ),
                    "logout_token": logout_token,
                }),
            ),
            Err(err) => from_error(&err),
        }
    }

    /// `GET /self-service/logout?token=`: ends the browser's session.
    pub(super) async fn logout_browser(&self, inc: &Incoming<'_>) -> Response {
        let (Ok(token), Some(logout_token)) = (self.presented(inc), inc.query("token")) else {
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

    /// `DELETE /self-service/logout/api` with `{"session_token": …}`.
    pub(super) async fn logout_api(&self, inc: &Incoming<'_>) -> Response {
        let body = match inc.body(self.config.max_body_bytes) {
            Ok(body) => body,
            Err(err) => return response::from_body_error(&err),
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
}
