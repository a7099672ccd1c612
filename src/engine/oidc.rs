//! Sign-in with OpenID Connect providers (feature `oidc`): the engine's part is the I/O
//! the flows cannot do — discovery and the authorization URL when a `provider` button is
//! submitted, the code exchange and ID-token check at the callback — around the flow's
//! decisions (`flow::oidc`), applied like any submission in one transaction.

use uuid::Uuid;

use super::Identa;
use super::flows::Committed;
use crate::credential::oidc::Prompt;
use crate::error::{Error, Result};
use crate::flow::oidc::{
    self, Decided, Exchanged, OidcCallback, OidcRedirect, OidcSignedIn, Reauthenticated,
};
use crate::flow::{
    Answers, Flow, FlowError, FlowKind, FlowRequest, FlowType, Step, check_submit, check_view,
};
use crate::session::{Login, SessionToken};
use crate::store::{Commit, Write};

/// Sign-in with OpenID Connect providers: `Identa::oidc()` gives it.
#[derive(Debug, Clone, Copy)]
pub struct OidcFlows<'a> {
    identa: &'a Identa,
}

impl Identa {
    /// Sign-in with OpenID Connect providers (feature `oidc`).
    pub fn oidc(&self) -> OidcFlows<'_> {
        OidcFlows { identa: self }
    }
}

impl OidcFlows<'_> {
    /// The URL the provider `provider` sends the browser back to (Kratos's
    /// `<public_url>/self-service/methods/oidc/callback/<provider>`): register it as the
    /// client's redirect URI at the provider.
    pub fn callback_url(&self, provider: &str) -> String {
        format!(
            "{}/self-service/methods/oidc/callback/{provider}",
            self.identa.config().flows.public_url.trim_end_matches('/')
        )
    }

    /// Starts a sign-in with `provider` from the login or registration flow `flow_id`
    /// (the user pressed its button): the provider's authorization URL to send the browser
    /// to. A provider that cannot be reached comes back as [`FlowError::Invalid`], the flow
    /// saying so.
    pub async fn start(
        &self,
        flow_id: Uuid,
        provider: &str,
        req: &FlowRequest,
    ) -> Result<OidcRedirect> {
        let identa = self.identa;
        let flow = identa.load_flow(flow_id).await?;
        let kind = flow.kind;
        let mut flow = check_submit(flow, kind, req, identa.keyring(), identa.now())?;
        let current = identa.current_session(req).await?;
        oidc::check_start(identa, &flow, current.as_ref())?;
        if let Some(reason) = oidc::refresh_refusal(identa, &flow, provider) {
            return Err(identa.reject(oidc::refused(flow, reason)).await);
        }
        let prefix = oidc::state_prefix(&flow);
        // A re-authentication asks the provider for the user's credentials again.
        let prompt = match flow.refresh {
            true => Prompt::Login,
            false => Prompt::AsProviderDecides,
        };
        let begun = match identa
            .inner
            .oidc
            .begin(provider, &self.callback_url(provider), &prefix, prompt)
            .await
        {
            Ok(begun) => begun,
            Err(err) => return Err(identa.reject(oidc::refused(flow, err.to_string())).await),
        };
        oidc::remember(
            identa,
            &mut flow,
            provider,
            &begun.state,
            &begun.nonce,
            &begun.pkce_verifier,
        )?;
        self.save(&mut flow).await?;
        Ok(OidcRedirect {
            flow,
            redirect_to: begun.url,
        })
    }

    /// Finishes a sign-in at the provider's callback: checks the state against the flow it
    /// names (and the browser: the CSRF cookie must match that flow), exchanges the code,
    /// verifies the ID token, then signs in the identity that has this provider account or
    /// registers a new one. A provider's refusal (`error=access_denied`), a failed
    /// exchange or a taken address come back as [`FlowError::Invalid`] with the flow
    /// showing why; a state that does not match is [`FlowError::OidcState`].
    ///
    /// A native app's API flow (with a session-token exchange) that fails so is kept and
    /// answered as [`OidcSignedIn::ErrorHeld`]: the browser goes back to the app with a
    /// code, and the exchange answers with the flow (Kratos's `WriteFlowError` for the
    /// oidc group of an API flow with an exchanger).
    pub async fn callback(
        &self,
        provider: &str,
        callback: OidcCallback,
        req: &FlowRequest,
    ) -> Result<OidcSignedIn> {
        match self.finish_callback(provider, callback, req).await {
            Err(Error::Flow(FlowError::Invalid(mut shown))) => {
                let Some(code) = oidc::hold_error(self.identa, &mut shown) else {
                    return Err(FlowError::Invalid(shown).into());
                };
                self.save(&mut shown).await?;
                Ok(OidcSignedIn::ErrorHeld {
                    flow: *shown,
                    return_to_code: code,
                })
            }
            done => done,
        }
    }

    /// [`Self::callback`], up to the answer.
    async fn finish_callback(
        &self,
        provider: &str,
        callback: OidcCallback,
        req: &FlowRequest,
    ) -> Result<OidcSignedIn> {
        let identa = self.identa;
        let flow_id = oidc::flow_of_state(callback.state.as_deref())?;
        let flow = match identa.load_flow(flow_id).await {
            Ok(flow) => flow,
            Err(Error::Flow(FlowError::NotFound(_))) => return Err(FlowError::OidcState.into()),
            Err(err) => return Err(err),
        };
        check_view(&flow, req, identa.keyring())?;
        if flow.is_expired(identa.now()) {
            return Err(FlowError::Expired {
                flow_id: flow.id,
                kind: flow.kind,
                expired_at: flow.expires_at,
            }
            .into());
        }
        // Counted before anything is asked of the provider; a refusal keeps the pending
        // sign-in for a later try.
        let mut flow = identa.admit_provider_callback(flow, req).await?;
        let state = callback.state.unwrap_or_default();
        // Spent here: whatever happens next, this state is not accepted again.
        let resumed = oidc::resume(identa, &mut flow, provider, &state)?;
        let current = identa.current_session(req).await?;
        oidc::check_start(identa, &flow, current.as_ref())?;
        flow.ui.clear_messages();
        if let Some(error) = callback.error {
            let shown: String = error.chars().take(100).collect();
            let description: String = callback
                .error_description
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            let reason = match description.is_empty() {
                true => format!("{provider} did not sign you in ({shown}); try again"),
                false => {
                    format!("{provider} did not sign you in ({shown}: {description}); try again")
                }
            };
            return Err(identa.reject(oidc::refused(flow, reason)).await);
        }
        let Some(code) = callback.code.filter(|c| !c.is_empty()) else {
            let reason = format!("{provider} sent no authorization code; try again");
            return Err(identa.reject(oidc::refused(flow, reason)).await);
        };
        let providers = &identa.inner.oidc;
        let (claims, tokens) = match providers
            .finish(
                provider,
                &self.callback_url(provider),
                &code,
                &resumed.pkce_verifier,
                &resumed.nonce,
                identa.now(),
            )
            .await
        {
            Ok(finished) => finished,
            Err(err) => return Err(identa.reject(oidc::refused(flow, err.to_string())).await),
        };
        let tokens = tokens.as_ref();
        if let (FlowKind::Settings, Some(current)) = (flow.kind, current.as_ref()) {
            return match oidc::link_in_settings(identa, flow, &claims, tokens, current, req).await?
            {
                Step::Reject(flow) => Err(identa.reject_shown(flow, Some(current)).await),
                step => self.commit(step).await.map(OidcSignedIn::Linked),
            };
        }
        if let (true, Some(current)) = (flow.refresh, current.as_ref()) {
            return match oidc::reauthenticate(identa, flow, &claims, current, req).await? {
                Reauthenticated::Step(step) => self.commit(step).await.map(OidcSignedIn::LoggedIn),
                Reauthenticated::OtherIdentity(mut flow) => {
                    // The pending sign-in stays spent; the session is not touched.
                    self.save(&mut flow).await?;
                    Err(FlowError::IdentityMismatch.into())
                }
            };
        }
        let schemas = identa.schemas();
        let schema = schemas.get(schemas.default_id().unwrap_or_default())?;
        let traits = providers.claims_mapper().traits(&claims, &schema);
        let api = flow.flow_type == FlowType::Api;
        match oidc::decide(identa, flow, &claims, tokens, traits, req).await? {
            Decided::SignIn(Step::Advance(mut t)) if api => {
                let held = self.hold(&mut t.flow, t.outcome.token.take())?;
                let done = self.commit(Step::Advance(t)).await?;
                Ok(self.held(done.flow, held))
            }
            Decided::Register(Step::Advance(mut t)) if api => {
                let token = t.outcome.login.as_ref().map(|l| l.token.clone());
                t.outcome.continue_with.clear();
                let held = self.hold(&mut t.flow, token)?;
                let done = self.commit(Step::Advance(t)).await?;
                Ok(self.held(done.flow, held))
            }
            Decided::SignIn(step) => self.commit(step).await.map(OidcSignedIn::LoggedIn),
            Decided::Register(step) => self.commit(step).await.map(OidcSignedIn::Registered),
            Decided::Link { spent, login } => Err(self.offer_link(spent, login).await),
        }
    }

    /// Signs in (or registers) with an ID token a native app got from `provider`'s SDK
    /// (Kratos's `id_token` and `id_token_nonce` on a login or registration API flow, for
    /// Apple and Google): the token is verified against the provider's JWKS (signature,
    /// issuer, audience = the client id, expiry by identa's clock) and must carry
    /// `nonce`; then the provider account signs in or registers as at a callback, and the
    /// app gets its session token in the answer. A browser flow is refused (it signs in
    /// through the provider's page); so is a provider whose ID tokens are not taken
    /// (Kratos's "does not support id_token verification", on the flow), and a token that
    /// fails a check (on the flow, 4000001).
    pub async fn sign_in_with_id_token(
        &self,
        flow_id: Uuid,
        provider: &str,
        id_token: &str,
        nonce: &str,
        req: &FlowRequest,
    ) -> Result<OidcSignedIn> {
        let identa = self.identa;
        let flow = identa.load_flow(flow_id).await?;
        let kind = flow.kind;
        let flow = check_submit(flow, kind, req, identa.keyring(), identa.now())?;
        let current = identa.current_session(req).await?;
        oidc::check_native_start(&flow, current.as_ref())?;
        let mut flow = identa.admit_provider_callback(flow, req).await?;
        flow.ui.clear_messages();
        let providers = &identa.inner.oidc;
        match providers.takes_native_id_tokens(provider) {
            Ok(true) => {}
            Ok(false) => {
                let reason = format!(
                    "The provider {provider} does not support id_token verification; sign in through the provider's page (submit `provider` without `id_token`)"
                );
                return Err(identa.reject(oidc::refused(flow, reason)).await);
            }
            Err(err) => return Err(identa.reject(oidc::refused(flow, err.to_string())).await),
        }
        let claims = match providers
            .verify_native_id_token(provider, id_token, nonce, identa.now())
            .await
        {
            Ok(claims) => claims,
            Err(err) => return Err(identa.reject(oidc::refused(flow, err.to_string())).await),
        };
        let schemas = identa.schemas();
        let schema = schemas.get(schemas.default_id().unwrap_or_default())?;
        let traits = providers.claims_mapper().traits(&claims, &schema);
        match oidc::decide(identa, flow, &claims, None, traits, req).await? {
            Decided::SignIn(step) => self.commit(step).await.map(OidcSignedIn::LoggedIn),
            Decided::Register(step) => self.commit(step).await.map(OidcSignedIn::Registered),
            Decided::Link { spent, login } => Err(self.offer_link(spent, login).await),
        }
    }

    /// Saves the login flow now holding a provider account to link (and the registration
    /// flow whose sign-in was spent, if the callback came to one) in one commit: the
    /// error that shows the login flow.
    async fn offer_link(&self, spent: Option<Flow>, mut login: Flow) -> Error {
        let Some(mut spent) = spent else {
            return self.identa.reject(login).await;
        };
        let now = self.identa.now();
        spent.version += 1;
        spent.updated_at = now;
        login.updated_at = now;
        let writes = match (spent.to_record(), login.to_record()) {
            (Ok(spent), Ok(login)) => vec![Write::UpdateFlow(spent), Write::InsertFlow(login)],
            (Err(err), _) | (_, Err(err)) => return err.into(),
        };
        match self
            .identa
            .inner
            .store
            .commit(&Commit { writes }, None)
            .await
        {
            Ok(()) => FlowError::Invalid(Box::new(login)).into(),
            Err(err) => err.into(),
        }
    }

    /// Keeps an API flow's new session token on the flow: the `return_to_code`.
    fn hold(&self, flow: &mut Flow, token: Option<SessionToken>) -> Result<Option<String>> {
        match token {
            Some(token) => Ok(Some(oidc::hold_token(self.identa, flow, token.expose())?)),
            None => Ok(None),
        }
    }

    fn held(&self, flow: Flow, return_to_code: Option<String>) -> OidcSignedIn {
        OidcSignedIn::TokenHeld {
            flow,
            return_to_code: return_to_code.unwrap_or_default(),
        }
    }

    /// Hands a native app the session its API flow's sign-in with a provider made
    /// (Kratos's `GET /sessions/token-exchange`): `init_code` is the flow's
    /// `session_token_exchange_code`, `return_to_code` the `code` the browser brought
    /// back. Once: the token is dropped from the flow. A sign-in that failed
    /// ([`OidcSignedIn::ErrorHeld`]) is [`FlowError::Invalid`] with the flow showing why.
    pub async fn exchange(&self, init_code: &str, return_to_code: &str) -> Result<Login> {
        let identa = self.identa;
        let not_yet = |id| Error::NotFound {
            what: "session for these exchange codes (none yet, or already fetched)",
            id,
        };
        let Some(flow_id) = oidc::flow_of_code(init_code) else {
            return Err(not_yet(Uuid::nil()));
        };
        let mut flow = match identa.load_flow(flow_id).await {
            Ok(flow) => flow,
            Err(Error::Flow(FlowError::NotFound(_))) => return Err(not_yet(flow_id)),
            Err(err) => return Err(err),
        };
        let token = match oidc::take_token(identa, &mut flow, init_code, return_to_code) {
            Some(Exchanged::Token(token)) => token,
            Some(Exchanged::Failed) => return Err(FlowError::Invalid(Box::new(flow)).into()),
            None => return Err(not_yet(flow_id)),
        };
        // Spent before it is handed over: a second exchange finds nothing.
        self.save(&mut flow).await?;
        let token = SessionToken::from_client(token);
        let session = identa.authenticate(&token).await?;
        Ok(Login { session, token })
    }

    /// Applies a decided step: its answer, or the flow showing why not.
    async fn commit<O: Answers + Send + Sync>(&self, step: Step<O>) -> Result<O::Answer> {
        let identa = self.identa;
        let transition = match step {
            Step::Reject(flow) => return Err(identa.reject(flow).await),
            Step::Advance(transition) => transition,
        };
        match identa.commit_transition(transition).await {
            Committed::Done(answer) => Ok(answer),
            Committed::Failed(err) => Err(err),
            Committed::Refused(refusal, fallback, _) => {
                Err(identa.reject(fallback.showing(refusal)).await)
            }
        }
    }

    /// Saves `flow` (the version it replaces must still be the stored one).
    async fn save(&self, flow: &mut Flow) -> Result<()> {
        let identa = self.identa;
        flow.version += 1;
        flow.updated_at = identa.now();
        let commit = Commit {
            writes: vec![Write::UpdateFlow(flow.to_record()?)],
        };
        Ok(identa.inner.store.commit(&commit, None).await?)
    }
}
