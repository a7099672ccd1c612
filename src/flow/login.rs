//! Login: an identifier and a password issue a session (aal1, method `password`). With
//! [`LoginIntent::Refresh`] the user proves again who they are and the existing session
//! is refreshed in place (its `authenticated_at` moves to now), which is what privileged
//! settings changes ask for. A login flow for a user who already has a valid session is
//! refused unless it is a refresh.
//!
//! States: `choose_method` → `passed_challenge`.

use serde_json::Value;
use uuid::Uuid;

use super::ui::InputType;
use super::{
    ContinueWith, Flow, FlowKind, FlowRequest, FlowState, FlowType, Node, NodeGroup,
    check_for_submit, commit_with_hook, current_session, fetch_flow, method_button, new_flow,
    reject, show_hook_error, show_input_error, text, webauthn,
};
use crate::credential::lookup;
use crate::credential::password::Password;
use crate::credential::totp::{self, TotpSecret};
use crate::credential::webauthn::{self as cred_webauthn, Ceremony, Refusal};
use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::hook::{AfterEvent, BeforeEvent};
use crate::identity::Aal;
use crate::identity::CredentialType;
use crate::session::{AuthenticatedSession, AuthenticationMethod, SessionRefusal, SessionToken};
use crate::store::SessionEvent;
use crate::store::{FlowCommit, FlowWrite};

/// Why a login flow is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginIntent {
    /// Sign in. Refused if the request already has a valid session.
    #[default]
    SignIn,
    /// Re-authenticate the current session (Kratos's `refresh=true`). Without a session
    /// this is an ordinary sign-in.
    Refresh,
    /// Complete the second factor of the current `aal1` session (Kratos's `aal=aal2`):
    /// the session is upgraded to `aal2` in place.
    SecondFactor,
}

/// What a user submits to log in.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginSubmission {
    /// An identifier and a password (Kratos's `method: "password"`).
    Password {
        /// Email, username, … (any password identifier of the schema).
        identifier: String,
        /// The password.
        password: Password,
    },
    /// A code from the authenticator app, in a second-factor flow (Kratos's
    /// `method: "totp"` with `totp_code`).
    Totp {
        /// The code.
        code: String,
    },
    /// A backup code, in a second-factor flow (Kratos's `method: "lookup_secret"` with
    /// `lookup_secret`).
    LookupSecret {
        /// The code.
        code: String,
    },
    /// A security key's answer to the flow's challenge, in a second-factor flow
    /// (Kratos's `method: "webauthn"` with `webauthn_login`, the JSON of the browser's
    /// `PublicKeyCredential`).
    Webauthn {
        /// The answer, as JSON.
        response: String,
    },
    /// A passkey sign-in (Kratos's `method: "passkey"`). A new login flow already holds a
    /// challenge in `passkey_challenge` for any discoverable passkey: answer it in
    /// `response` (`passkey_login`) with an empty `identifier`, and the passkey names its
    /// account. For a passkey that is not discoverable, submit the `identifier` without
    /// `response` first: the flow comes back (as [`Error::FlowInvalid`]) with a challenge
    /// for that account's passkeys, which the answer then signs in with.
    Passkey {
        /// Email, username, … (any identifier the schema marks for passwords or WebAuthn);
        /// empty for a discoverable sign-in.
        identifier: String,
        /// The answer to the challenge, as JSON.
        response: Option<String>,
    },
}

/// A completed login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The flow, now `passed_challenge`.
    pub flow: Flow,
    /// The session (new, or refreshed) with its identity.
    pub session: AuthenticatedSession,
    /// The token of a new session (give it to the client; identa keeps only its hash).
    /// `None` for a refresh: the client keeps the token it has.
    pub token: Option<SessionToken>,
    /// What the client should do next (for API flows: store the session token).
    pub continue_with: Vec<ContinueWith>,
}

/// Login flows of an engine. Get it with [`Identa::login_flow`].
#[derive(Debug, Clone, Copy)]
pub struct Logins<'a> {
    identa: &'a Identa,
}

impl Identa {
    /// Login flows.
    pub fn login_flow(&self) -> Logins<'_> {
        Logins { identa: self }
    }
}

impl Logins<'_> {
    /// Starts a login flow.
    pub async fn create(
        &self,
        flow_type: FlowType,
        req: &FlowRequest,
        intent: LoginIntent,
    ) -> Result<Flow> {
        let identa = self.identa;
        let current = current_session(identa, req).await?;
        if current.is_some() && intent == LoginIntent::SignIn {
            return Err(Error::SessionAlreadyAvailable);
        }
        if intent == LoginIntent::SecondFactor {
            let current = current.ok_or(Error::SessionInactive(SessionRefusal::Unknown))?;
            return self.create_second_factor(flow_type, req, &current).await;
        }
        let mut flow = new_flow(
            identa,
            FlowKind::Login,
            flow_type,
            req,
            identa.config().flows.login.lifespan,
            FlowState::ChooseMethod,
        )?;
        let mut identifier = Node::input(NodeGroup::Default, "identifier", InputType::Text)
            .required()
            .autocomplete("username")
            .label(text::label_id());
        if let Some(current) = &current {
            flow.refresh = true;
            flow.session_id = Some(current.session.id);
            flow.identity_id = Some(current.identity.id);
            flow.ui.messages.push(text::reauth());
            if let Some(first) = current
                .identity
                .credential(CredentialType::Password)
                .and_then(|c| c.identifiers.first())
            {
                identifier = identifier.with_value(first.clone());
            }
        }
        flow.ui.nodes.push(identifier);
        flow.ui.nodes.push(
            Node::input(NodeGroup::Password, "password", InputType::Password)
                .required()
                .autocomplete("current-password")
                .label(text::label_password()),
        );
        flow.ui.nodes.push(method_button(
            NodeGroup::Password,
            "password",
            text::sign_in_with_password(),
        ));
        webauthn::login_prompt_nodes(identa, &mut flow)?;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Insert(flow.to_record()?)],
            ..FlowCommit::default()
        };
        identa.store().commit_flow(&commit, None).await?;
        Ok(flow)
    }

    async fn create_second_factor(
        &self,
        flow_type: FlowType,
        req: &FlowRequest,
        current: &AuthenticatedSession,
    ) -> Result<Flow> {
        let identa = self.identa;
        if current.identity.highest_available_aal() < Aal::Aal2 {
            return Err(Error::InvalidInput(
                "this account has no second factor set up: add one in the settings".into(),
            ));
        }
        if current.session.aal >= Aal::Aal2 {
            return Err(Error::SessionAlreadyAvailable);
        }
        let mut flow = new_flow(
            identa,
            FlowKind::Login,
            flow_type,
            req,
            identa.config().flows.login.lifespan,
            FlowState::ChooseMethod,
        )?;
        flow.requested_aal = Aal::Aal2;
        flow.session_id = Some(current.session.id);
        flow.identity_id = Some(current.identity.id);
        flow.ui.messages.push(text::second_factor());
        if current.identity.credential(CredentialType::Totp).is_some() {
            flow.ui.nodes.push(
                Node::input(NodeGroup::Totp, "totp_code", InputType::Text)
                    .required()
                    .autocomplete("one-time-code")
                    .label(text::totp_login_label()),
            );
            flow.ui.nodes.push(method_button(
                NodeGroup::Totp,
                "totp",
                text::use_authenticator(),
            ));
        }
        if current
            .identity
            .credential(CredentialType::LookupSecret)
            .is_some()
        {
            flow.ui.nodes.push(
                Node::input(NodeGroup::LookupSecret, "lookup_secret", InputType::Text)
                    .required()
                    .label(text::lookup_login_label()),
            );
            flow.ui.nodes.push(method_button(
                NodeGroup::LookupSecret,
                "lookup_secret",
                text::use_lookup(),
            ));
        }
        webauthn::second_factor_nodes(identa, &mut flow, &current.identity)?;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Insert(flow.to_record()?)],
            ..FlowCommit::default()
        };
        identa.store().commit_flow(&commit, None).await?;
        Ok(flow)
    }

    /// Completes a second-factor flow with a TOTP or backup code: the session becomes
    /// `aal2`.
    async fn submit_second_factor(
        &self,
        mut flow: Flow,
        factor: SecondFactor<'_>,
        req: &FlowRequest,
    ) -> Result<LoggedIn> {
        let identa = self.identa;
        let current = current_session(identa, req)
            .await?
            .ok_or(Error::SessionInactive(SessionRefusal::Unknown))?;
        if flow.requested_aal != Aal::Aal2 || flow.session_id != Some(current.session.id) {
            return Err(Error::IdentityMismatch);
        }
        let mut identity = current.identity.clone();
        let now = identa.now();
        let (method, spent, field) = match factor {
            SecondFactor::Totp(code) => {
                let stored = identity
                    .credential(CredentialType::Totp)
                    .and_then(|c| totp::read_config(&c.config));
                let Some((sealed, last_step)) = stored else {
                    flow.ui
                        .add_message(Some("totp_code"), text::no_totp_device());
                    return Err(reject(identa, flow).await);
                };
                let secret = TotpSecret::open(
                    identa.keyring(),
                    &totp::credential_context(identity.id),
                    &sealed,
                )
                .ok_or_else(|| {
                    Error::InvalidInput(
                        "the TOTP secret cannot be opened with the configured cipher secrets"
                            .into(),
                    )
                })?;
                let unix = u64::try_from(now.timestamp()).unwrap_or(0);
                let Some(step) = secret.accept(code, unix, last_step) else {
                    flow.ui.add_message(Some("totp_code"), text::totp_wrong());
                    return Err(reject(identa, flow).await);
                };
                if let Some(credential) = identity.credentials.get_mut(&CredentialType::Totp) {
                    credential.config = totp::credential_config(&sealed, Some(step));
                    credential.updated_at = now;
                }
                (
                    CredentialType::Totp,
                    Some(totp::spent_id(identity.id, step)),
                    "totp_code",
                )
            }
            SecondFactor::SecurityKey(answer) => {
                let mut keys = webauthn::security_keys(&identity);
                let ceremony = Ceremony::from_value(flow.internal.security_key.as_ref());
                let outcome = match identa.webauthn() {
                    Some(rp) => {
                        cred_webauthn::finish_security_key_login(rp, ceremony, answer, &mut keys)
                    }
                    None => Err(Refusal::NoCeremony),
                };
                if let Err(refusal) = outcome {
                    // A fresh challenge for the next try; this one is spent.
                    webauthn::second_factor_nodes(identa, &mut flow, &identity)?;
                    flow.ui
                        .add_message(Some("webauthn_login"), webauthn::refusal_message(&refusal));
                    return Err(reject(identa, flow).await);
                }
                if let Some(credential) = identity.credentials.get_mut(&CredentialType::Webauthn) {
                    credential.config = keys.to_config();
                    credential.updated_at = now;
                }
                flow.internal.security_key = None;
                (CredentialType::Webauthn, None, "webauthn_login")
            }
            SecondFactor::Lookup(code) => {
                let found = identity
                    .credential(CredentialType::LookupSecret)
                    .and_then(|c| {
                        lookup::find_unused(identa.keyring(), identity.id, &c.config, code)
                            .map(|i| (i, lookup::spent_id(identity.id, i, &c.config)))
                    });
                let Some((index, spent)) = found else {
                    flow.ui
                        .add_message(Some("lookup_secret"), text::lookup_invalid());
                    return Err(reject(identa, flow).await);
                };
                if let Some(credential) =
                    identity.credentials.get_mut(&CredentialType::LookupSecret)
                {
                    lookup::mark_used(&mut credential.config, index, now);
                    credential.updated_at = now;
                    let left = lookup::remaining(&credential.config);
                    if left <= lookup::FEW_LEFT {
                        flow.ui.messages.push(text::lookup_few_left(left));
                    }
                }
                (CredentialType::LookupSecret, Some(spent), "lookup_secret")
            }
        };
        let mut session = current.session.clone();
        session.aal = Aal::Aal2;
        session.authentication_methods.push(AuthenticationMethod {
            method: method.as_str().to_owned(),
            aal: Aal::Aal2,
            completed_at: now,
        });
        flow.state = FlowState::PassedChallenge;
        let ceremonies = flow.internal.take_ceremonies();
        flow.version += 1;
        flow.updated_at = now;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Update(flow.to_record()?)],
            replace_identity: Some(&identity),
            update_session: Some(&session),
            spend: spent
                .map(|id| (id, now + chrono::Duration::minutes(5)))
                .into_iter()
                .collect(),
            ..FlowCommit::default()
        };
        let event = AfterEvent::Login {
            flow_id: flow.id,
            identity: &identity,
            session: &session,
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let mut flow = flow.clone();
            flow.version -= 1;
            flow.state = FlowState::ChooseMethod;
            flow.internal.put_back(ceremonies);
            match failure {
                Ok(hook_err) => show_hook_error(&mut flow.ui, hook_err),
                // The step was accepted by a racing request: a replay.
                Err(Error::ConcurrentUpdate {
                    what: "one-time code",
                }) => {
                    let message = match method {
                        CredentialType::LookupSecret => text::lookup_invalid(),
                        _ => text::totp_wrong(),
                    };
                    flow.ui.add_message(Some(field), message);
                }
                Err(err) => return Err(err),
            }
            return Err(reject(identa, flow).await);
        }
        identa.invalidate(SessionEvent::Session(session.id));
        identa.invalidate(SessionEvent::Identity(identity.id));
        Ok(LoggedIn {
            flow,
            session: AuthenticatedSession { session, identity },
            token: None,
            continue_with: Vec::new(),
        })
    }

    /// Submits credentials. A wrong identifier or password comes back as
    /// [`Error::FlowInvalid`] with Kratos's message 4000006 on the flow.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: LoginSubmission,
        req: &FlowRequest,
    ) -> Result<LoggedIn> {
        let flow = fetch_flow(self.identa, flow_id).await?;
        self.submit_loaded(flow, submission, req).await
    }

    /// [`Self::submit`] for a flow the caller has just read (the HTTP layer reads it to
    /// learn its type).
    pub(crate) async fn submit_loaded(
        &self,
        flow: Flow,
        submission: LoginSubmission,
        req: &FlowRequest,
    ) -> Result<LoggedIn> {
        let identa = self.identa;
        let mut flow = check_for_submit(identa, flow, FlowKind::Login, req)?;
        if flow.state != FlowState::ChooseMethod {
            return Err(Error::FlowState {
                kind: flow.kind,
                state: flow.state,
                reason: "the login is already complete; start a new flow",
            });
        }
        let (identifier, factor) = match submission {
            LoginSubmission::Password {
                identifier,
                password,
            } => (identifier, FirstFactor::Password(password)),
            LoginSubmission::Passkey {
                identifier,
                response,
            } => (identifier, FirstFactor::Passkey(response)),
            LoginSubmission::Totp { code } => {
                return self
                    .submit_second_factor(flow, SecondFactor::Totp(&code), req)
                    .await;
            }
            LoginSubmission::LookupSecret { code } => {
                return self
                    .submit_second_factor(flow, SecondFactor::Lookup(&code), req)
                    .await;
            }
            LoginSubmission::Webauthn { response } => {
                return self
                    .submit_second_factor(flow, SecondFactor::SecurityKey(&response), req)
                    .await;
            }
        };
        if flow.requested_aal == Aal::Aal2 {
            return Err(Error::FlowState {
                kind: flow.kind,
                state: flow.state,
                reason: "this flow completes a second factor: submit method `totp`, \
                         `lookup_secret` or `webauthn`",
            });
        }
        let current = current_session(identa, req).await?;
        let refreshing = match (&current, flow.refresh) {
            (Some(_), false) => return Err(Error::SessionAlreadyAvailable),
            (Some(current), true) => {
                if flow.session_id != Some(current.session.id) {
                    return Err(Error::IdentityMismatch);
                }
                Some(current.clone())
            }
            (None, _) => None,
        };
        let typed = Value::from(identifier.clone());
        if super::echoable(&typed) {
            flow.ui.set_value("identifier", typed);
        }

        let before = BeforeEvent::Login {
            flow_id: flow.id,
            identifier: &identifier,
        };
        if let Err(err) = identa.hooks().before(&before).await {
            show_hook_error(&mut flow.ui, err);
            return Err(reject(identa, flow).await);
        }

        let (identity, method, changed) = match factor {
            FirstFactor::Password(password) => {
                match identa.check_password(&identifier, &password).await {
                    Ok(identity) => (identity, CredentialType::Password, false),
                    Err(err) => {
                        show_input_error(&mut flow.ui, err)?;
                        return Err(reject(identa, flow).await);
                    }
                }
            }
            FirstFactor::Passkey(None) => {
                webauthn::passkey_challenge_nodes(identa, &mut flow, named(&identifier)).await?;
                return Err(reject(identa, flow).await);
            }
            FirstFactor::Passkey(Some(answer)) => {
                match self.verify_passkey(&flow, &answer).await? {
                    Ok(identity) => {
                        flow.internal.passkey = None;
                        (identity, CredentialType::Passkey, true)
                    }
                    Err(refusal) => {
                        // A fresh challenge for the next try; this one is spent.
                        webauthn::passkey_challenge_nodes(identa, &mut flow, named(&identifier))
                            .await?;
                        flow.ui.clear_messages();
                        flow.ui.add_message(
                            Some("passkey_login"),
                            webauthn::refusal_message(&refusal),
                        );
                        return Err(reject(identa, flow).await);
                    }
                }
            }
        };
        let now = identa.now();
        let method = AuthenticationMethod {
            method: method.as_str().to_owned(),
            aal: Aal::Aal1,
            completed_at: now,
        };
        flow.state = FlowState::PassedChallenge;
        let ceremonies = flow.internal.take_ceremonies();
        flow.version += 1;
        flow.updated_at = now;

        let (session, token) = match refreshing {
            Some(current) => {
                if current.identity.id != identity.id {
                    return Err(Error::IdentityMismatch);
                }
                let mut session = current.session;
                session.authenticated_at = now;
                session.authentication_methods.push(method);
                if let Some(device) = req.device.clone() {
                    session.devices.push(device);
                }
                (session, None)
            }
            None => {
                let (session, token) =
                    identa.new_session(&identity, vec![method], req.device.clone())?;
                (session, Some(token))
            }
        };
        let mut commit = FlowCommit {
            flows: vec![FlowWrite::Update(flow.to_record()?)],
            replace_identity: changed.then_some(&identity),
            ..FlowCommit::default()
        };
        match &token {
            Some(token) => commit.insert_session = Some((&session, token.hash())),
            None => commit.update_session = Some(&session),
        }
        let event = AfterEvent::Login {
            flow_id: flow.id,
            identity: &identity,
            session: &session,
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let mut flow = flow.clone();
            flow.version -= 1;
            flow.state = FlowState::ChooseMethod;
            flow.internal.put_back(ceremonies);
            match failure {
                Ok(hook_err) => show_hook_error(&mut flow.ui, hook_err),
                Err(err) => show_input_error(&mut flow.ui, err)?,
            }
            return Err(reject(identa, flow).await);
        }
        if token.is_none() {
            identa.invalidate(SessionEvent::Session(session.id));
        }
        if changed {
            identa.invalidate(SessionEvent::Identity(identity.id));
        }
        let mut continue_with = Vec::new();
        if let (Some(token), FlowType::Api) = (&token, flow.flow_type) {
            continue_with.push(ContinueWith::SetOrySessionToken {
                ory_session_token: token.expose().to_owned(),
            });
        }
        Ok(LoggedIn {
            flow,
            session: AuthenticatedSession { session, identity },
            token,
            continue_with,
        })
    }

    /// Checks a passkey's answer to the flow's challenge: the identity it signs in, with
    /// the key's new counter recorded (not yet stored), or why not.
    async fn verify_passkey(
        &self,
        flow: &Flow,
        answer: &str,
    ) -> Result<std::result::Result<crate::identity::Identity, Refusal>> {
        let identa = self.identa;
        let Some(rp) = identa.webauthn() else {
            return Ok(Err(Refusal::NoCeremony));
        };
        let ceremony = Ceremony::from_value(flow.internal.passkey.as_ref());
        let answer = match cred_webauthn::parse_assertion(answer) {
            Ok(answer) => answer,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let account = match cred_webauthn::passkey_login_account(rp, ceremony.as_ref(), &answer) {
            Ok(account) => account,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let Some(mut identity) = identa
            .store()
            .identity(account)
            .await?
            .filter(crate::identity::Identity::is_active)
        else {
            return Ok(Err(Refusal::UnknownKey));
        };
        let mut keys = webauthn::passkeys(&identity);
        if let Err(refusal) = cred_webauthn::finish_passkey_login(rp, ceremony, &answer, &mut keys)
        {
            return Ok(Err(refusal));
        }
        if let Some(credential) = identity.credentials.get_mut(&CredentialType::Passkey) {
            credential.config = keys.to_config();
            credential.updated_at = identa.now();
        }
        Ok(Ok(identity))
    }
}

/// The identifier a passkey submission named, if any (none: a discoverable sign-in).
fn named(identifier: &str) -> Option<&str> {
    Some(identifier).filter(|i| !i.trim().is_empty())
}

/// A first factor submitted to a login flow.
enum FirstFactor {
    Password(Password),
    /// A passkey: without an answer, a request for the challenge.
    Passkey(Option<String>),
}

/// A second factor submitted to an `aal2` flow.
enum SecondFactor<'a> {
    Totp(&'a str),
    Lookup(&'a str),
    SecurityKey(&'a str),
}
