//! Registration: a new user submits traits and a password. On success the identity, its
//! credential and addresses are created; then (by configuration) a session is issued and
//! each new verifiable address is sent a verification code, all in one commit.
//!
//! States: `choose_method` → `passed_challenge`.

use serde_json::Value;

use super::ui::InputType;
use super::{
    AfterRegistration, ContinueWith, Flow, FlowKind, FlowRequest, FlowState, FlowType, Node,
    NodeGroup, check_for_submit, commit_with_hook, current_session, fetch_flow, method_button,
    new_flow, refill_traits, reject, show_hook_error, show_input_error, text, trait_nodes,
    verification, webauthn,
};
use crate::credential::password::Password;
use crate::credential::webauthn::{self as cred_webauthn, Ceremony, Refusal, StoredKeys};
use crate::engine::{Identa, Login};
use crate::error::{Error, Result};
use crate::hook::{AfterEvent, BeforeEvent};
use crate::identity::Aal;
use crate::identity::{CredentialType, Identity, NewIdentity};
use crate::session::{AuthenticatedSession, AuthenticationMethod};
use crate::store::{FlowCommit, FlowWrite};

/// What a user submits to register.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistrationSubmission {
    /// Traits and a password (Kratos's `method: "password"`).
    Password {
        /// The traits, as the identity schema describes them.
        traits: Value,
        /// The password.
        password: Password,
    },
    /// Traits and a passkey that answered the flow's challenge (Kratos's
    /// `method: "passkey"` with `passkey_register`, the JSON of the browser's
    /// credential). The account signs in with the passkey; it has no password.
    Passkey {
        /// The traits, as the identity schema describes them.
        traits: Value,
        /// The answer, as JSON.
        response: String,
    },
}

/// A completed registration.
#[derive(Debug)]
pub struct Registered {
    /// The flow, now `passed_challenge`.
    pub flow: Flow,
    /// The new identity.
    pub identity: Identity,
    /// The session issued, if registration signs the user in.
    pub login: Option<Login>,
    /// What the client should do next (verification flows; the session token for API
    /// flows).
    pub continue_with: Vec<ContinueWith>,
}

/// Registration flows of an engine. Get it with [`Identa::registration_flow`].
#[derive(Debug, Clone, Copy)]
pub struct Registrations<'a> {
    identa: &'a Identa,
}

impl Identa {
    /// Registration flows.
    pub fn registration_flow(&self) -> Registrations<'_> {
        Registrations { identa: self }
    }
}

impl Registrations<'_> {
    /// Starts a registration flow. Refused when the request already has a valid session.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        let identa = self.identa;
        let config = &identa.config().flows.registration;
        if !config.enabled {
            return Err(Error::FlowDisabled(FlowKind::Registration));
        }
        if current_session(identa, req).await?.is_some() {
            return Err(Error::SessionAlreadyAvailable);
        }
        let mut flow = new_flow(
            identa,
            FlowKind::Registration,
            flow_type,
            req,
            config.lifespan,
            FlowState::ChooseMethod,
        )?;
        let schema = identa.schemas().get(&default_schema(identa)?)?;
        flow.ui.nodes.extend(trait_nodes(
            &schema.trait_fields(),
            NodeGroup::Password,
            &Value::Null,
        ));
        flow.ui.nodes.push(
            Node::input(NodeGroup::Password, "password", InputType::Password)
                .required()
                .autocomplete("new-password")
                .label(text::label_password()),
        );
        flow.ui.nodes.push(method_button(
            NodeGroup::Password,
            "password",
            text::sign_up(),
        ));
        webauthn::registration_nodes(identa, &mut flow, &passkey_name_field(identa)?)?;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Insert(flow.to_record()?)],
            ..FlowCommit::default()
        };
        identa.store().commit_flow(&commit, None).await?;
        Ok(flow)
    }

    /// Submits a registration. Input errors come back as [`Error::FlowInvalid`] with the
    /// flow showing them (values kept, password never).
    pub async fn submit(
        &self,
        flow_id: uuid::Uuid,
        submission: RegistrationSubmission,
        req: &FlowRequest,
    ) -> Result<Registered> {
        let flow = fetch_flow(self.identa, flow_id).await?;
        self.submit_loaded(flow, submission, req).await
    }

    /// [`Self::submit`] for a flow the caller has just read (the HTTP layer reads it to
    /// learn its type).
    pub(crate) async fn submit_loaded(
        &self,
        flow: Flow,
        submission: RegistrationSubmission,
        req: &FlowRequest,
    ) -> Result<Registered> {
        let identa = self.identa;
        let mut flow = check_for_submit(identa, flow, FlowKind::Registration, req)?;
        if flow.state != FlowState::ChooseMethod {
            return Err(Error::FlowState {
                kind: flow.kind,
                state: flow.state,
                reason: "the registration is already complete; start a new flow",
            });
        }
        if current_session(identa, req).await?.is_some() {
            return Err(Error::SessionAlreadyAvailable);
        }
        let (traits, factor) = match submission {
            RegistrationSubmission::Password { traits, password } => {
                (traits, FirstFactor::Password(password))
            }
            RegistrationSubmission::Passkey { traits, response } => {
                (traits, FirstFactor::Passkey(response))
            }
        };
        refill_traits(&mut flow.ui, &traits);

        let before = BeforeEvent::Registration {
            flow_id: flow.id,
            traits: &traits,
        };
        if let Err(err) = identa.hooks().before(&before).await {
            show_hook_error(&mut flow.ui, err);
            return Err(reject(identa, flow).await);
        }

        let new = NewIdentity {
            traits,
            ..NewIdentity::default()
        };
        let password = match &factor {
            FirstFactor::Password(password) => Some(password),
            FirstFactor::Passkey(_) => None,
        };
        let mut identity = match identa.prepare_identity(new, password).await {
            Ok(identity) => identity,
            Err(err) => {
                show_input_error(&mut flow.ui, err)?;
                return Err(reject(identa, flow).await);
            }
        };
        let method = match &factor {
            FirstFactor::Password(_) => CredentialType::Password,
            FirstFactor::Passkey(answer) => {
                if let Err(message) = add_passkey(identa, &mut flow, &mut identity, answer)? {
                    // A fresh challenge for the next try; this one is spent.
                    webauthn::registration_nodes(identa, &mut flow, &passkey_name_field(identa)?)?;
                    flow.ui.add_message(Some("passkey_register"), message);
                    return Err(reject(identa, flow).await);
                }
                CredentialType::Passkey
            }
        };

        let config = &identa.config().flows;
        let issued = match config.registration.after {
            AfterRegistration::IssueSession => {
                let method = AuthenticationMethod {
                    method: method.as_str().to_owned(),
                    aal: Aal::Aal1,
                    completed_at: identa.now(),
                };
                Some(identa.new_session(&identity, vec![method], req.device.clone())?)
            }
            AfterRegistration::AccountOnly => None,
        };

        let sends =
            verification::codes_for_new_addresses(identa, &identity, &[], flow.flow_type, req)?;

        flow.state = FlowState::PassedChallenge;
        let ceremonies = flow.internal.take_ceremonies();
        flow.version += 1;
        flow.updated_at = identa.now();
        flow.continue_with = sends.continue_with.clone();

        let mut commit = FlowCommit {
            flows: vec![FlowWrite::Update(flow.to_record()?)],
            insert_identity: Some(&identity),
            messages: sends.messages,
            ..FlowCommit::default()
        };
        commit.flows.extend(
            sends
                .flows
                .iter()
                .map(|f| f.to_record().map(FlowWrite::Insert))
                .collect::<std::result::Result<Vec<_>, _>>()?,
        );
        if let Some((session, token)) = &issued {
            commit.insert_session = Some((session, token.hash()));
        }
        let event = AfterEvent::Registration {
            flow_id: flow.id,
            identity: &identity,
            session: issued.as_ref().map(|(s, _)| s),
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let mut flow = flow.clone();
            flow.state = FlowState::ChooseMethod;
            flow.version -= 1;
            flow.continue_with.clear();
            flow.internal.put_back(ceremonies);
            match failure {
                Ok(hook_err) => show_hook_error(&mut flow.ui, hook_err),
                Err(err) => show_input_error(&mut flow.ui, err)?,
            }
            return Err(reject(identa, flow).await);
        }

        let mut continue_with = flow.continue_with.clone();
        let login = issued.map(|(session, token)| {
            if flow.flow_type == FlowType::Api {
                continue_with.insert(
                    0,
                    ContinueWith::SetOrySessionToken {
                        ory_session_token: token.expose().to_owned(),
                    },
                );
            }
            Login {
                session: AuthenticatedSession {
                    session,
                    identity: identity.clone(),
                },
                token,
            }
        });
        Ok(Registered {
            flow,
            identity,
            login,
            continue_with,
        })
    }
}

fn default_schema(identa: &Identa) -> Result<String> {
    identa
        .schemas()
        .default_id()
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidInput("no identity schema registered".into()))
}

/// A first factor submitted to a registration flow.
enum FirstFactor {
    Password(Password),
    /// The browser's answer to the flow's passkey challenge.
    Passkey(String),
}

/// Checks the passkey answer of a registration and gives the new identity its passkey
/// (and the id the passkey was made for). The inner error is the message to show.
fn add_passkey(
    identa: &Identa,
    flow: &mut Flow,
    identity: &mut Identity,
    answer: &str,
) -> Result<std::result::Result<(), super::UiText>> {
    let ceremony = Ceremony::from_value(flow.internal.passkey.as_ref());
    let finished = match identa.webauthn() {
        Some(rp) => cred_webauthn::finish_passkey_registration(rp, ceremony, answer),
        None => Err(Refusal::NoCeremony),
    };
    let (user_id, key) = match finished {
        Ok(done) => done,
        Err(refusal) => return Ok(Err(webauthn::refusal_message(&refusal))),
    };
    let sign_in = identa.passkey_sign_in_identifiers(identity)?;
    let Some(name) = sign_in.first().cloned() else {
        return Ok(Err(text::generic(
            "The identity schema marks no trait as an identifier to sign in with a passkey by.",
        )));
    };
    let now = identa.now();
    let mut keys = StoredKeys::default();
    keys.add(key, name, now);
    identity.id = user_id;
    webauthn::store_passkeys(identa, identity, &keys, sign_in);
    flow.internal.passkey = None;
    Ok(Ok(()))
}

/// The form field whose value an authenticator shows for a new passkey: the schema's
/// first text trait.
fn passkey_name_field(identa: &Identa) -> Result<String> {
    let schema = identa.schemas().get(&default_schema(identa)?)?;
    Ok(schema
        .trait_fields()
        .iter()
        .find(|f| f.json_type == "string")
        .map(|f| format!("traits.{}", f.path))
        .unwrap_or_default())
}
