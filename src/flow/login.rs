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
    commit_with_hook, current_session, load_for_submit, method_button, new_flow, reject,
    show_hook_error, show_input_error, text,
};
use crate::credential::password::Password;
use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::hook::{AfterEvent, BeforeEvent};
use crate::identity::CredentialType;
use crate::session::{Aal, AuthenticatedSession, AuthenticationMethod, SessionEvent, SessionToken};
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
        let commit = FlowCommit {
            flows: vec![FlowWrite::Insert(&flow)],
            ..FlowCommit::default()
        };
        identa.store().commit_flow(&commit, None).await?;
        Ok(flow)
    }

    /// Submits credentials. A wrong identifier or password comes back as
    /// [`Error::FlowInvalid`] with Kratos's message 4000006 on the flow.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: LoginSubmission,
        req: &FlowRequest,
    ) -> Result<LoggedIn> {
        let identa = self.identa;
        let mut flow = load_for_submit(identa, flow_id, FlowKind::Login, req).await?;
        if flow.state != FlowState::ChooseMethod {
            return Err(Error::FlowState {
                kind: flow.kind,
                state: flow.state,
                reason: "the login is already complete; start a new flow",
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
        let LoginSubmission::Password {
            identifier,
            password,
        } = submission;
        let typed = Value::from(identifier.clone());
        if super::echoable(&typed) {
            flow.ui.set_value("identifier", typed);
        }

        let before = BeforeEvent::Login {
            flow: &flow,
            identifier: &identifier,
        };
        if let Err(err) = identa.hooks().before(&before).await {
            show_hook_error(&mut flow.ui, err);
            return Err(reject(identa, flow).await);
        }

        let identity = match identa.check_password(&identifier, &password).await {
            Ok(identity) => identity,
            Err(err) => {
                show_input_error(&mut flow.ui, err)?;
                return Err(reject(identa, flow).await);
            }
        };
        let now = identa.now();
        let method = AuthenticationMethod {
            method: CredentialType::Password.as_str().to_owned(),
            aal: Aal::Aal1,
            completed_at: now,
        };
        flow.state = FlowState::PassedChallenge;
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
            flows: vec![FlowWrite::Update(&flow)],
            ..FlowCommit::default()
        };
        match &token {
            Some(token) => commit.insert_session = Some((&session, token.hash())),
            None => commit.update_session = Some(&session),
        }
        let event = AfterEvent::Login {
            flow: &flow,
            identity: &identity,
            session: &session,
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let mut flow = flow.clone();
            flow.version -= 1;
            flow.state = FlowState::ChooseMethod;
            match failure {
                Ok(hook_err) => show_hook_error(&mut flow.ui, hook_err),
                Err(err) => show_input_error(&mut flow.ui, err)?,
            }
            return Err(reject(identa, flow).await);
        }
        if token.is_none() {
            identa.invalidate(SessionEvent::Session(session.id));
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
}
