//! Registration: a new user submits traits and a password (or a passkey). On success the
//! identity, its credential and addresses are created; then (by configuration) a session
//! is issued and each new verifiable address is sent a verification code, all in one
//! commit.
//!
//! States: `choose_method` ─(valid traits and first factor)─▶ `passed_challenge`.
//! Effects: insert identity; issue session (unless `AccountOnly`); a verification flow and
//! its mail per new email address. A taken email address, when registration is
//! enumeration-safe, passes too but with other effects (see `flow::duplicate`).

use serde_json::Value;
use uuid::Uuid;

use super::code::verify_new_addresses;
use super::form::{
    PasswordInput, password_nodes, refill_traits, show_hook_error, show_input_error, trait_nodes,
};
use super::lifecycle::new_flow;
use super::text;
use super::ui::{NodeGroup, UiText};
use super::webauthn::{refusal_message, registration_nodes};
use super::{AfterRegistration, Answers, ContinueWith, Effect, Facts, Fallback, Flow, FlowError};
use super::{FlowKind, FlowRequest, FlowState, FlowType, Result, Step, Transition};
use crate::credential::CredentialError;
use crate::credential::breached;
use crate::credential::password::{self, Password};
use crate::credential::webauthn::{
    self as cred_webauthn, Ceremony, Refusal, StoredKeys, sign_in_identifiers,
};
use crate::hook::{AfterEvent, BeforeEvent};
use crate::identity::{Aal, CredentialType, Identity, IdentitySchema, NewIdentity};
use crate::session::{AuthenticatedSession, AuthenticationMethod, Login, Session};

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

/// What a registration transition tells its caller beyond the flow.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) identity: Identity,
    pub(crate) login: Option<Login>,
    pub(crate) continue_with: Vec<ContinueWith>,
    pub(crate) made: Made,
}

/// Whether a registration made its identity, or only answered as if it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Made {
    /// The identity is created by the transition.
    Created,
    /// The identifier already has an account: nothing is created, the owner is told
    /// (see `flow::duplicate`).
    AnsweredAsNew,
}

impl Answers for Outcome {
    type Answer = Registered;

    fn after_event(&self, flow_id: Uuid) -> Option<AfterEvent<'_>> {
        match self.made {
            Made::Created => Some(AfterEvent::Registration {
                flow_id,
                identity: &self.identity,
                session: self.login.as_ref().map(|l| &l.session.session),
            }),
            // No identity was made: the host's hook has nothing to act on.
            Made::AnsweredAsNew => None,
        }
    }

    fn answer(self, _: &dyn Facts, flow: Flow) -> Registered {
        Registered {
            flow,
            identity: self.identity,
            login: self.login,
            continue_with: self.continue_with,
        }
    }
}

/// A new registration flow (not stored). Refused while the request has a valid session.
pub(crate) fn create(
    facts: &dyn Facts,
    flow_type: FlowType,
    req: &FlowRequest,
    current: Option<&AuthenticatedSession>,
) -> Result<Flow> {
    let config = &facts.config().registration;
    if !config.enabled {
        return Err(FlowError::Disabled(FlowKind::Registration));
    }
    if current.is_some() {
        return Err(FlowError::SessionAlreadyAvailable);
    }
    let mut flow = new_flow(
        facts,
        FlowKind::Registration,
        flow_type,
        req,
        config.lifespan,
        FlowState::ChooseMethod,
    )?;
    let schema = default_schema(facts)?;
    flow.ui.nodes.extend(trait_nodes(
        &schema.trait_fields(),
        NodeGroup::Password,
        &Value::Null,
    ));
    flow.ui
        .nodes
        .extend(password_nodes(PasswordInput::New, text::sign_up()));
    registration_nodes(facts, &mut flow, &passkey_name_field(&schema))?;
    #[cfg(feature = "oidc")]
    super::oidc::provider_nodes(facts, &mut flow, req);
    Ok(flow)
}

/// Judges a registration. Input errors come back as [`Step::Reject`] with the flow
/// showing them (values kept, the password never).
pub(crate) async fn submit(
    facts: &dyn Facts,
    mut flow: Flow,
    submission: RegistrationSubmission,
    req: &FlowRequest,
    current: Option<&AuthenticatedSession>,
) -> Result<Step<Outcome>> {
    if flow.state != FlowState::ChooseMethod {
        return Err(FlowError::State {
            kind: flow.kind,
            state: flow.state,
            reason: "the registration is already complete; start a new flow",
        });
    }
    if current.is_some() {
        return Err(FlowError::SessionAlreadyAvailable);
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
    if let Err(err) = facts.before(&before).await {
        show_hook_error(&mut flow.ui, err);
        return Ok(Step::Reject(flow));
    }

    let now = facts.now();
    let schema = default_schema(facts)?;
    let new = NewIdentity {
        traits,
        ..NewIdentity::default()
    };
    let (mut identity, extracted) = match Identity::draft(&schema, new, now) {
        Ok(drafted) => drafted,
        Err(err) => {
            show_input_error(&mut flow.ui, err.into())?;
            return Ok(Step::Reject(flow));
        }
    };
    let method = match factor {
        FirstFactor::Password(password) => {
            let identifiers = extracted.password_identifiers;
            if identifiers.is_empty() {
                flow.ui.messages.push(text::generic(
                    "The identity schema marks no trait as an identifier to sign in with a password by.",
                ));
                return Ok(Step::Reject(flow));
            }
            if let Err(violation) = breached::check_new_password(
                facts.password_config(),
                facts.breached_passwords(),
                &password,
                &identifiers,
            )
            .await
            {
                let err = FlowError::Credential(CredentialError::Policy(violation));
                show_input_error(&mut flow.ui, err)?;
                return Ok(Step::Reject(flow));
            }
            let hash = facts.hash_password(&password).await?;
            identity.credentials.insert(
                CredentialType::Password,
                password::credential(identifiers, hash, now),
            );
            CredentialType::Password
        }
        FirstFactor::Passkey(answer) => {
            let sign_in = sign_in_identifiers(&extracted);
            if let Err(message) = add_passkey(facts, &mut flow, &mut identity, &answer, sign_in) {
                // A fresh challenge for the next try; this one is spent.
                registration_nodes(facts, &mut flow, &passkey_name_field(&schema))?;
                flow.ui.add_message(Some("passkey_register"), message);
                return Ok(Step::Reject(flow));
            }
            CredentialType::Passkey
        }
    };
    if let Some(answer) = super::duplicate::answer_if_taken(facts, &flow, &identity, req).await? {
        return Ok(Step::Advance(answer));
    }
    let fallback = Fallback::to(flow.clone());
    flow.internal.clear_ceremonies();
    let method = AuthenticationMethod {
        method: method.as_str().to_owned(),
        aal: Aal::Aal1,
        completed_at: now,
    };
    let after = facts.config().registration.after;
    created(facts, flow, identity, method, after, req, fallback)
}

/// An accepted registration of `identity` (checked, not yet stored): the identity to
/// insert, a session by `method` when `after` (the rule for `method`) signs new users in,
/// and verification flows for its new addresses. `fallback` is what to show if the commit
/// is refused.
pub(super) fn created(
    facts: &dyn Facts,
    mut flow: Flow,
    identity: Identity,
    method: AuthenticationMethod,
    after: AfterRegistration,
    req: &FlowRequest,
    fallback: Fallback,
) -> Result<Step<Outcome>> {
    let issued = match after {
        AfterRegistration::IssueSession => {
            let now = method.completed_at;
            Some(Session::issue(
                &identity,
                vec![method],
                req.device.clone(),
                now,
                facts.session_lifespan(),
                facts.keyring(),
            )?)
        }
        AfterRegistration::AccountOnly => None,
    };
    let (verification, mut continue_with) =
        verify_new_addresses(facts, &identity, &[], flow.flow_type, req)?;

    flow.state = FlowState::PassedChallenge;
    flow.continue_with = continue_with.clone();

    let mut effects = vec![Effect::InsertIdentity(identity.clone())];
    if let Some((session, token)) = &issued {
        effects.push(Effect::IssueSession {
            session: session.clone(),
            token: token.hash(),
        });
    }
    effects.extend(verification);

    let login = issued.map(|(session, token)| {
        if let Some(item) = ContinueWith::token_for(flow.flow_type, &token) {
            continue_with.insert(0, item);
        }
        Login {
            session: AuthenticatedSession {
                session,
                identity: identity.clone(),
            },
            token,
        }
    });
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: Outcome {
            identity,
            login,
            continue_with,
            made: Made::Created,
        },
        fallback,
    }))
}

/// The schema new identities follow.
fn default_schema(facts: &dyn Facts) -> Result<std::sync::Arc<IdentitySchema>> {
    let schemas = facts.schemas();
    let id = schemas.default_id().unwrap_or_default();
    Ok(schemas.get(id)?)
}

/// A first factor submitted to a registration flow.
enum FirstFactor {
    Password(Password),
    /// The browser's answer to the flow's passkey challenge.
    Passkey(String),
}

/// Checks the passkey answer of a registration and gives the new identity its passkey
/// (and the id the passkey was made for). The error is the message to show.
fn add_passkey(
    facts: &dyn Facts,
    flow: &mut Flow,
    identity: &mut Identity,
    answer: &str,
    sign_in: Vec<String>,
) -> std::result::Result<(), UiText> {
    let ceremony = Ceremony::from_value(flow.internal.passkey.as_ref());
    let finished = match facts.webauthn() {
        Some((rp, _)) => cred_webauthn::finish_passkey_registration(rp, ceremony, answer),
        None => Err(Refusal::NoCeremony),
    };
    let (user_id, key) = finished.map_err(|refusal| refusal_message(&refusal))?;
    let Some(name) = sign_in.first().cloned() else {
        return Err(text::generic(
            "The identity schema marks no trait as an identifier to sign in with a passkey by.",
        ));
    };
    let now = facts.now();
    let mut keys = StoredKeys::default();
    keys.add(key, name, now);
    identity.id = user_id;
    cred_webauthn::store_passkeys(identity, &keys, sign_in, now);
    flow.internal.passkey = None;
    Ok(())
}

/// The form field whose value an authenticator shows for a new passkey: the schema's
/// first text trait.
fn passkey_name_field(schema: &IdentitySchema) -> String {
    schema
        .trait_fields()
        .iter()
        .find(|f| f.json_type == "string")
        .map(|f| format!("traits.{}", f.path))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::courier::TemplateKind;
    use crate::flow::check_submit;
    use crate::flow::testing::{
        PASSWORD, TestFacts, advanced, api, effect_names, message_ids, rejected,
    };
    use crate::hook::HookError;

    fn password(email: &str, password: &str) -> RegistrationSubmission {
        RegistrationSubmission::Password {
            traits: json!({ "email": email }),
            password: Password::new(password),
        }
    }

    #[tokio::test]
    async fn a_valid_sign_up_creates_the_identity_signs_in_and_asks_to_verify() {
        let facts = TestFacts::new();
        let flow = create(&facts, FlowType::Api, &api(), None).unwrap();
        let step = submit(
            &facts,
            flow,
            password("Ada@Example.com", PASSWORD),
            &api(),
            None,
        )
        .await;
        let t = advanced(step.unwrap());

        assert_eq!(t.flow.state, FlowState::PassedChallenge);
        assert_eq!(
            effect_names(&t.effects),
            [
                "insert_identity",
                "issue_session",
                "insert_flow",
                "send_mail"
            ]
        );
        let Effect::InsertIdentity(identity) = &t.effects[0] else {
            unreachable!()
        };
        assert_eq!(identity.traits["email"], "Ada@Example.com");
        let password = identity.credential(CredentialType::Password).unwrap();
        assert_eq!(password.identifiers, ["ada@example.com"]);
        assert!(
            password
                .hashed_password()
                .unwrap()
                .starts_with("$argon2id$")
        );
        assert!(matches!(
            &t.effects[3],
            Effect::SendMail { template: TemplateKind::VerificationCodeValid, vars }
                if vars.to == "ada@example.com"
        ));
        // An API client gets its session token first, then the verification flow.
        let login = t.outcome.login.unwrap();
        assert_eq!(login.session.identity.id, identity.id);
        assert!(matches!(
            &t.outcome.continue_with[..],
            [ContinueWith::SetOrySessionToken { ory_session_token }, ContinueWith::ShowVerificationUi { .. }]
                if ory_session_token == login.token.expose()
        ));
    }

    #[tokio::test]
    async fn bad_input_is_shown_on_the_form_and_changes_nothing() {
        let facts = TestFacts::new();
        let flow = create(&facts, FlowType::Api, &api(), None).unwrap();

        let flow = rejected(
            submit(
                &facts,
                flow,
                password("not an email", PASSWORD),
                &api(),
                None,
            )
            .await
            .unwrap(),
        );
        // Kratos's "not a valid email" id, on the field.
        assert_eq!(message_ids(&flow), [4_000_004]);
        assert_eq!(flow.state, FlowState::ChooseMethod);

        // A new submission starts from a clean form, as the engine's check gives it.
        let flow = check_submit(
            flow,
            FlowKind::Registration,
            &api(),
            facts.keyring(),
            facts.now(),
        )
        .unwrap();
        let flow = rejected(
            submit(
                &facts,
                flow,
                password("ada@example.com", "short"),
                &api(),
                None,
            )
            .await
            .unwrap(),
        );
        assert_eq!(message_ids(&flow), [4_000_032]);
        // What was typed stays; the password never comes back.
        assert_eq!(flow.value("traits.email"), Some(&json!("ada@example.com")));
        assert_eq!(flow.value("password"), None);
    }

    #[tokio::test]
    async fn the_hosts_before_hook_can_refuse() {
        let facts = TestFacts::new();
        *facts.before.lock().unwrap() = Some(HookError::refuse_field(
            "traits.email",
            "sign-ups from this domain are closed",
        ));
        let flow = create(&facts, FlowType::Api, &api(), None).unwrap();
        let step = submit(
            &facts,
            flow,
            password("ada@example.com", PASSWORD),
            &api(),
            None,
        )
        .await;
        let flow = rejected(step.unwrap());
        let node = flow.ui.node("traits.email").unwrap();
        assert_eq!(
            node.messages[0].text,
            "sign-ups from this domain are closed"
        );
    }

    #[tokio::test]
    async fn a_completed_or_signed_in_registration_is_refused() {
        let facts = TestFacts::new();
        let mut flow = create(&facts, FlowType::Api, &api(), None).unwrap();
        flow.state = FlowState::PassedChallenge;
        let err = submit(
            &facts,
            flow,
            password("ada@example.com", PASSWORD),
            &api(),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(
            err,
            FlowError::State {
                state: FlowState::PassedChallenge,
                ..
            }
        ));
    }
}
