//! Login: an identifier and a password (or a passkey) issue a session (aal1). With
//! [`LoginIntent::Refresh`] the user proves again who they are and the existing session
//! is refreshed in place (its `authenticated_at` moves to now), which is what privileged
//! settings changes ask for. With [`LoginIntent::SecondFactor`] a TOTP code, a backup code
//! or a security key steps the current session up to `aal2` in place. A login flow for a
//! user who already has a valid session is refused unless it is one of those.
//!
//! States: `choose_method` ─(valid first or second factor)─▶ `passed_challenge`.
//! Effects: issue a session, or update the current one; re-hash an outdated password;
//! record a key's counter or a TOTP step; spend a TOTP step or backup code; link the
//! provider account waiting on the flow (feature `oidc`, [`super::oidc`]).

use serde_json::Value;
use uuid::Uuid;

use super::FlowRequest;
use super::form::{
    PasswordInput, echoable, method_button, password_nodes, show_hook_error, show_input_error,
};
use super::lifecycle::new_flow;
use super::text;
use super::ui::{InputType, Node, NodeGroup};
use super::webauthn::{
    login_prompt_nodes, passkey_challenge_nodes, refusal_message, second_factor_nodes,
};
use super::{Answers, ContinueWith, Effect, Facts, Fallback, Flow, FlowError, FlowKind};
use super::{FlowState, FlowType, Result, Step, Transition};
use crate::credential::lookup;
use crate::credential::password::migration::Verdict;
use crate::credential::password::{Lane, Password, PasswordError};
use crate::credential::totp::{self, TotpSecret};
use crate::credential::webauthn::{self as cred_webauthn, Ceremony, Refusal};
use crate::credential::{CredentialError, webauthn::passkeys, webauthn::security_keys};
use crate::hook::{AfterEvent, BeforeEvent};
use crate::identity::{Aal, Credential, CredentialType, Identity, StoredPassword, normalize};
use crate::session::{
    AuthenticatedSession, AuthenticationMethod, Session, SessionError, SessionRefusal, SessionToken,
};

/// How long a spent TOTP step or backup code is remembered (longer than any step is
/// accepted).
const SPENT_KEPT: chrono::Duration = chrono::Duration::minutes(5);

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

/// What a user submits to log in. Its `Debug` hides passwords and codes.
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
    /// `response` first: the flow comes back (as [`FlowError::Invalid`]) with a challenge
    /// for that account's passkeys, which the answer then signs in with.
    Passkey {
        /// Email, username, … (any identifier the schema marks for passwords or WebAuthn);
        /// empty for a discoverable sign-in.
        identifier: String,
        /// The answer to the challenge, as JSON.
        response: Option<String>,
    },
}

impl std::fmt::Debug for LoginSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = &"<redacted>";
        match self {
            Self::Password { identifier, .. } => f
                .debug_struct("Password")
                .field("identifier", identifier)
                .field("password", hidden)
                .finish(),
            Self::Totp { .. } => f.debug_struct("Totp").field("code", hidden).finish(),
            Self::LookupSecret { .. } => f
                .debug_struct("LookupSecret")
                .field("code", hidden)
                .finish(),
            Self::Webauthn { .. } => f.debug_struct("Webauthn").finish_non_exhaustive(),
            Self::Passkey { identifier, .. } => f
                .debug_struct("Passkey")
                .field("identifier", identifier)
                .finish_non_exhaustive(),
        }
    }
}

/// A completed login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The flow, now `passed_challenge`.
    pub flow: Flow,
    /// The session (new, or refreshed) with its identity.
    pub session: AuthenticatedSession,
    /// The token of a new session (give it to the client; identa keeps only its hash).
    /// `None` for a refresh or a step-up: the client keeps the token it has.
    pub token: Option<SessionToken>,
    /// What the client should do next (for API flows: store the session token).
    pub continue_with: Vec<ContinueWith>,
    /// The second-factor login flow to continue in: a provider account was waiting on this
    /// flow to be linked, and the identity's second factor links it there.
    pub second_factor_flow: Option<Uuid>,
}

/// What a login transition tells its caller beyond the flow.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) session: AuthenticatedSession,
    pub(crate) token: Option<SessionToken>,
    pub(crate) continue_with: Vec<ContinueWith>,
    pub(crate) second_factor_flow: Option<Uuid>,
}

impl Answers for Outcome {
    type Answer = LoggedIn;

    fn after_event(&self, flow_id: Uuid) -> Option<AfterEvent<'_>> {
        Some(AfterEvent::Login {
            flow_id,
            identity: &self.session.identity,
            session: &self.session.session,
        })
    }

    fn answer(self, _: &dyn Facts, flow: Flow) -> LoggedIn {
        LoggedIn {
            flow,
            session: self.session,
            token: self.token,
            continue_with: self.continue_with,
            second_factor_flow: self.second_factor_flow,
        }
    }
}

/// A new login flow (not stored).
pub(crate) fn create(
    facts: &dyn Facts,
    flow_type: FlowType,
    req: &FlowRequest,
    intent: LoginIntent,
    current: Option<&AuthenticatedSession>,
) -> Result<Flow> {
    let second_factor = match (intent, current) {
        (LoginIntent::SignIn, Some(_)) => return Err(FlowError::SessionAlreadyAvailable),
        (LoginIntent::SecondFactor, None) => {
            return Err(SessionError::Inactive(SessionRefusal::Unknown).into());
        }
        (LoginIntent::SecondFactor, Some(current)) => Some(current),
        (LoginIntent::SignIn | LoginIntent::Refresh, _) => None,
    };
    let lifespan = facts.config().login.lifespan;
    let mut flow = new_flow(
        facts,
        FlowKind::Login,
        flow_type,
        req,
        lifespan,
        FlowState::ChooseMethod,
    )?;
    if let Some(current) = second_factor {
        second_factor_form(facts, &mut flow, current)?;
        return Ok(flow);
    }
    if let Some(current) = current {
        flow.refresh = true;
        flow.session_id = Some(current.session.id);
        flow.identity_id = Some(current.identity.id);
        flow.ui.messages.push(text::reauth());
    }
    let mut identifier = Node::input(NodeGroup::Default, "identifier", InputType::Text)
        .required()
        .autocomplete("username")
        .label(text::label_id());
    if let Some(first) = current
        .filter(|_| flow.refresh)
        .and_then(|c| c.identity.credential(CredentialType::Password))
        .and_then(|c| c.identifiers.first())
    {
        identifier = identifier.with_value(first.clone());
    }
    flow.ui.nodes.push(identifier);
    flow.ui.nodes.extend(password_nodes(
        PasswordInput::Current,
        text::sign_in_with_password(),
    ));
    login_prompt_nodes(facts, &mut flow)?;
    #[cfg(feature = "oidc")]
    match current.filter(|_| flow.refresh) {
        Some(current) => super::oidc::refresh_nodes(facts, &mut flow, &current.identity),
        None => super::oidc::provider_nodes(facts, &mut flow, req),
    }
    Ok(flow)
}

/// The form of a second-factor flow: the factors the identity has.
fn second_factor_form(
    facts: &dyn Facts,
    flow: &mut Flow,
    current: &AuthenticatedSession,
) -> Result<()> {
    if current.identity.highest_available_aal() < Aal::Aal2 {
        return Err(FlowError::NoSecondFactor);
    }
    if current.session.aal >= Aal::Aal2 {
        return Err(FlowError::SessionAlreadyAvailable);
    }
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
    second_factor_nodes(facts, flow, &current.identity)
}

/// Judges a login. A wrong identifier or password comes back as [`Step::Reject`] with
/// Kratos's message 4000006 on the flow.
pub(crate) async fn submit(
    facts: &dyn Facts,
    mut flow: Flow,
    submission: LoginSubmission,
    req: &FlowRequest,
    current: Option<&AuthenticatedSession>,
) -> Result<Step<Outcome>> {
    if flow.state != FlowState::ChooseMethod {
        return Err(FlowError::State {
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
            return submit_second_factor(facts, flow, SecondFactor::Totp(&code), current).await;
        }
        LoginSubmission::LookupSecret { code } => {
            return submit_second_factor(facts, flow, SecondFactor::Lookup(&code), current).await;
        }
        LoginSubmission::Webauthn { response } => {
            return submit_second_factor(
                facts,
                flow,
                SecondFactor::SecurityKey(&response),
                current,
            )
            .await;
        }
    };
    if flow.requested_aal == Aal::Aal2 {
        return Err(FlowError::State {
            kind: flow.kind,
            state: flow.state,
            reason: "this flow completes a second factor: submit method `totp`, \
                     `lookup_secret` or `webauthn`",
        });
    }
    let refreshing = match (current, flow.refresh) {
        (Some(_), false) => return Err(FlowError::SessionAlreadyAvailable),
        (Some(current), true) => {
            if flow.session_id != Some(current.session.id) {
                return Err(FlowError::IdentityMismatch);
            }
            Some(current)
        }
        (None, _) => None,
    };
    let typed = Value::from(identifier.clone());
    if echoable(&typed) {
        flow.ui.set_value("identifier", typed);
    }

    let before = BeforeEvent::Login {
        flow_id: flow.id,
        identifier: &identifier,
    };
    if let Err(err) = facts.before(&before).await {
        show_hook_error(&mut flow.ui, err);
        return Ok(Step::Reject(flow));
    }

    let mut effects = Vec::new();
    let (identity, method) = match factor {
        FirstFactor::Password(password) => {
            let lane = facts.password_lane(&identifier, req).await?;
            match check_password(facts, &identifier, &password, lane).await {
                Ok(checked) => {
                    if let Some(rehashed) = checked.rehashed {
                        effects.push(Effect::RehashPassword(rehashed));
                    }
                    (checked.identity, CredentialType::Password)
                }
                Err(err) => {
                    show_input_error(&mut flow.ui, err)?;
                    return Ok(Step::Reject(flow));
                }
            }
        }
        FirstFactor::Passkey(None) => {
            passkey_challenge_nodes(facts, &mut flow, named(&identifier)).await?;
            return Ok(Step::Reject(flow));
        }
        FirstFactor::Passkey(Some(answer)) => match verify_passkey(facts, &flow, &answer).await? {
            Ok(identity) => {
                if let Err(err) = may_sign_in_unverified(facts, &identity) {
                    // As a refused key: a fresh challenge, this one is spent.
                    passkey_challenge_nodes(facts, &mut flow, named(&identifier)).await?;
                    flow.ui.clear_messages();
                    match err {
                        // Disguised: exactly what a key the server does not know gets, the
                        // answer a probe's own key gets for a taken address.
                        FlowError::InvalidCredentials => flow.ui.add_message(
                            Some("passkey_login"),
                            refusal_message(&Refusal::UnknownKey),
                        ),
                        err => show_input_error(&mut flow.ui, err)?,
                    }
                    return Ok(Step::Reject(flow));
                }
                flow.internal.passkey = None;
                effects.push(Effect::UpdateIdentity(identity.clone()));
                (identity, CredentialType::Passkey)
            }
            Err(refusal) => {
                // A fresh challenge for the next try; this one is spent.
                passkey_challenge_nodes(facts, &mut flow, named(&identifier)).await?;
                flow.ui.clear_messages();
                flow.ui
                    .add_message(Some("passkey_login"), refusal_message(&refusal));
                return Ok(Step::Reject(flow));
            }
        },
    };
    // A provider account waiting on this flow is linked in the same commit as the session,
    // or, when a second factor is owed, carried to the second-factor flow.
    #[cfg(feature = "oidc")]
    let aal = refreshing.map_or(Aal::Aal1, |c| c.session.aal);
    #[cfg(feature = "oidc")]
    let (mut flow, identity, waiting) =
        match super::oidc::link_on_sign_in(facts, flow, identity, aal, &mut effects).await? {
            Ok(signed) => (signed.flow, signed.identity, signed.waiting),
            Err(refused) => return Ok(Step::Reject(refused)),
        };
    let fallback = Fallback::to(flow.clone());
    let now = facts.now();
    let method = AuthenticationMethod {
        method: method.as_str().to_owned(),
        aal: Aal::Aal1,
        completed_at: now,
    };
    let (session, token) = match refreshing {
        Some(current) => {
            if current.identity.id != identity.id {
                return Err(FlowError::IdentityMismatch);
            }
            let session = refresh_in_place(&mut flow, &current.session, method, req);
            effects.push(Effect::UpdateSession(session.clone()));
            (session, None)
        }
        None => {
            pass(&mut flow);
            let (session, token) = Session::issue(
                &identity,
                vec![method],
                req.device.clone(),
                now,
                facts.session_lifespan(),
                facts.keyring(),
            )?;
            effects.push(Effect::IssueSession {
                session: session.clone(),
                token: token.hash(),
            });
            (session, Some(token))
        }
    };
    let continue_with = token
        .as_ref()
        .and_then(|token| ContinueWith::token_for(flow.flow_type, token))
        .into_iter()
        .collect();
    let session = AuthenticatedSession { session, identity };
    #[cfg(feature = "oidc")]
    let second_factor_flow = match waiting {
        Some(link) => {
            let next = super::oidc::carry_link(facts, link, &flow, req, &session)?;
            let id = next.id;
            effects.push(Effect::InsertFlow(next));
            Some(id)
        }
        None => None,
    };
    #[cfg(not(feature = "oidc"))]
    let second_factor_flow = None;
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: Outcome {
            session,
            token,
            continue_with,
            second_factor_flow,
        },
        fallback,
    }))
}

/// Whether `identity`, whose first factor checked out, may sign in although none of its
/// addresses is verified ([`super::UnverifiedSignIn`]). An identity with no verifiable
/// address has none verified.
fn may_sign_in_unverified(facts: &dyn Facts, identity: &Identity) -> Result<()> {
    let verified = identity.verifiable_addresses.iter().any(|a| a.verified);
    match facts.config().login.unverified {
        super::UnverifiedSignIn::Allow => Ok(()),
        _ if verified => Ok(()),
        super::UnverifiedSignIn::Refuse => Err(FlowError::AddressNotVerified),
        super::UnverifiedSignIn::RefuseAsWrongCredentials => Err(FlowError::InvalidCredentials),
    }
}

/// An identity whose password checked out, and, if its hash was outdated, the identity
/// with the password re-hashed at the current parameters (to be stored).
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) identity: Identity,
    pub(crate) rehashed: Option<Identity>,
}

/// Checks an identifier and password.
///
/// A wrong password and an unknown identifier fail alike ([`FlowError::InvalidCredentials`])
/// and take the same time: an unknown identifier, or one too long to exist, is verified
/// against a dummy hash. A password longer than the policy allows is refused before any
/// hashing, whatever the account.
pub(crate) async fn check_password(
    facts: &dyn Facts,
    identifier: &str,
    password: &Password,
    lane: Lane,
) -> Result<Checked> {
    if password.expose().len() > facts.password_config().max_length {
        return Err(FlowError::InvalidCredentials);
    }
    let identity = match normalize::lookup_identifier(identifier) {
        Some(normalized) => {
            facts
                .identity_by_identifier(CredentialType::Password, &normalized)
                .await?
        }
        None => None,
    };
    if let Some(identity) = &identity
        && identity
            .credential(CredentialType::Password)
            .and_then(Credential::stored_password)
            == Some(StoredPassword::AwaitingMigration)
    {
        return migrate_password(facts, identifier, password, identity.clone()).await;
    }
    let stored = identity
        .as_ref()
        .and_then(|i| i.credential(CredentialType::Password))
        .and_then(Credential::hashed_password)
        .map(str::to_owned);
    let verified = match facts
        .verify_password_in(lane, password, stored.as_deref())
        .await
    {
        Ok(ok) => ok,
        // The hashing queue is full: nothing was checked, for any account.
        Err(PasswordError::Busy) => return Err(CredentialError::from(PasswordError::Busy).into()),
        Err(err) => {
            // An unusable stored hash fails before any hashing; do the same work as a
            // verification anyway, so timing does not single this account out.
            tracing::warn!(error = %err, "stored password hash could not be verified");
            let _ = facts.verify_password(password, None).await;
            false
        }
    };
    let Some(identity) = identity.filter(|_| verified) else {
        return Err(FlowError::InvalidCredentials);
    };
    if !identity.is_active() {
        return Err(SessionError::IdentityDisabled.into());
    }
    // Before the re-hash, so a refusal disguised as a wrong password costs what one does.
    may_sign_in_unverified(facts, &identity)?;
    let outdated = stored.as_deref().is_some_and(|s| facts.needs_rehash(s));
    let rehashed = if outdated {
        match facts.hash_password(password).await {
            Ok(hash) => {
                let mut updated = identity.clone();
                if let Some(cred) = updated.credentials.get_mut(&CredentialType::Password) {
                    cred.config = serde_json::json!({ "hashed_password": hash });
                    cred.updated_at = facts.now();
                }
                Some(updated)
            }
            Err(err) => {
                tracing::warn!(error = %err, identity = %identity.id, "password rehash failed; login goes on");
                None
            }
        }
    } else {
        None
    };
    Ok(Checked { identity, rehashed })
}

/// Checks the first password sign-in of `identity`, whose password awaits migration,
/// through the host's hook ([`Facts::migrate_password`]; only ever for such an identity,
/// never for an unknown identifier). A match stores a fresh argon2id hash with the
/// session (as a re-hash), so the hook is not asked again; no match is a wrong password;
/// a hook that gave no verdict is an error, and nothing changes.
async fn migrate_password(
    facts: &dyn Facts,
    identifier: &str,
    password: &Password,
    identity: Identity,
) -> Result<Checked> {
    let verdict = facts
        .migrate_password(identity.id, identifier, password)
        .await
        .map_err(CredentialError::from)?;
    if verdict == Verdict::NoMatch {
        return Err(FlowError::InvalidCredentials);
    }
    if !identity.is_active() {
        return Err(SessionError::IdentityDisabled.into());
    }
    may_sign_in_unverified(facts, &identity)?;
    let hash = facts
        .hash_password(password)
        .await
        .map_err(CredentialError::from)?;
    let mut migrated = identity.clone();
    if let Some(cred) = migrated.credentials.get_mut(&CredentialType::Password) {
        cred.config = serde_json::json!({ "hashed_password": hash });
        cred.updated_at = facts.now();
    }
    Ok(Checked {
        identity,
        rehashed: Some(migrated),
    })
}

/// Completes a second-factor flow: the current session becomes `aal2`.
async fn submit_second_factor(
    facts: &dyn Facts,
    mut flow: Flow,
    factor: SecondFactor<'_>,
    current: Option<&AuthenticatedSession>,
) -> Result<Step<Outcome>> {
    let current = current.ok_or(SessionError::Inactive(SessionRefusal::Unknown))?;
    if flow.requested_aal != Aal::Aal2 || flow.session_id != Some(current.session.id) {
        return Err(FlowError::IdentityMismatch);
    }
    let mut identity = current.identity.clone();
    let now = facts.now();
    let mut effects = Vec::new();
    let (method, replay) = match factor {
        SecondFactor::Totp(code) => {
            let stored = identity
                .credential(CredentialType::Totp)
                .and_then(|c| totp::read_config(&c.config));
            let Some((sealed, last_step)) = stored else {
                flow.ui
                    .add_message(Some("totp_code"), text::no_totp_device());
                return Ok(Step::Reject(flow));
            };
            let secret = TotpSecret::open(
                facts.keyring(),
                &totp::credential_context(identity.id),
                &sealed,
            )
            .ok_or(CredentialError::Sealing("TOTP secret"))?;
            let unix = u64::try_from(now.timestamp()).unwrap_or(0);
            let Some(step) = secret.accept(code, unix, last_step) else {
                flow.ui.add_message(Some("totp_code"), text::totp_wrong());
                return Ok(Step::Reject(flow));
            };
            if let Some(credential) = identity.credentials.get_mut(&CredentialType::Totp) {
                credential.config = totp::credential_config(&sealed, Some(step));
                credential.updated_at = now;
            }
            effects.push(Effect::SpendCode {
                marker: totp::spent_id(identity.id, step),
                until: now + SPENT_KEPT,
            });
            (
                CredentialType::Totp,
                Some(("totp_code", text::totp_wrong())),
            )
        }
        SecondFactor::SecurityKey(answer) => {
            let mut keys = security_keys(&identity);
            let ceremony = Ceremony::from_value(flow.internal.security_key.as_ref());
            let outcome = match facts.webauthn() {
                Some((rp, _)) => {
                    cred_webauthn::finish_security_key_login(rp, ceremony, answer, &mut keys)
                }
                None => Err(Refusal::NoCeremony),
            };
            if let Err(refusal) = outcome {
                // A fresh challenge for the next try; this one is spent.
                second_factor_nodes(facts, &mut flow, &identity)?;
                flow.ui
                    .add_message(Some("webauthn_login"), refusal_message(&refusal));
                return Ok(Step::Reject(flow));
            }
            if let Some(credential) = identity.credentials.get_mut(&CredentialType::Webauthn) {
                credential.config = keys.to_config();
                credential.updated_at = now;
            }
            flow.internal.security_key = None;
            (CredentialType::Webauthn, None)
        }
        SecondFactor::Lookup(code) => {
            let found = identity
                .credential(CredentialType::LookupSecret)
                .and_then(|c| {
                    lookup::find_unused(facts.keyring(), identity.id, &c.config, code)
                        .map(|i| (i, lookup::spent_id(identity.id, i, &c.config)))
                });
            let Some((index, marker)) = found else {
                flow.ui
                    .add_message(Some("lookup_secret"), text::lookup_invalid());
                return Ok(Step::Reject(flow));
            };
            if let Some(credential) = identity.credentials.get_mut(&CredentialType::LookupSecret) {
                lookup::mark_used(&mut credential.config, index, now);
                credential.updated_at = now;
                let left = lookup::remaining(&credential.config);
                if left <= lookup::FEW_LEFT {
                    flow.ui.messages.push(text::lookup_few_left(left));
                }
            }
            effects.push(Effect::SpendCode {
                marker,
                until: now + SPENT_KEPT,
            });
            (
                CredentialType::LookupSecret,
                Some(("lookup_secret", text::lookup_invalid())),
            )
        }
    };
    let mut fallback = Fallback::to(flow.clone());
    if let Some((field, message)) = replay {
        fallback = fallback.with_replay(field, message);
    }
    let mut session = current.session.clone();
    session.aal = Aal::Aal2;
    session.authentication_methods.push(AuthenticationMethod {
        method: method.as_str().to_owned(),
        aal: Aal::Aal2,
        completed_at: now,
    });
    pass(&mut flow);
    effects.push(Effect::UpdateIdentity(identity.clone()));
    effects.push(Effect::UpdateSession(session.clone()));
    // A provider account carried here from the first factor is linked in this commit.
    #[cfg(feature = "oidc")]
    let (flow, identity) =
        match super::oidc::link_on_sign_in(facts, flow, identity, session.aal, &mut effects).await?
        {
            Ok(signed) => (signed.flow, signed.identity),
            Err(refused) => return Ok(Step::Reject(refused)),
        };
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: Outcome {
            session: AuthenticatedSession { session, identity },
            token: None,
            continue_with: Vec::new(),
            second_factor_flow: None,
        },
        fallback,
    }))
}

/// Checks a passkey's answer to the flow's challenge: the identity it signs in, with the
/// key's new counter recorded (not yet stored), or why not.
async fn verify_passkey(
    facts: &dyn Facts,
    flow: &Flow,
    answer: &str,
) -> Result<std::result::Result<Identity, Refusal>> {
    let Some((rp, _)) = facts.webauthn() else {
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
    let Some(mut identity) = facts.identity(account).await?.filter(Identity::is_active) else {
        return Ok(Err(Refusal::UnknownKey));
    };
    let mut keys = passkeys(&identity);
    if let Err(refusal) = cred_webauthn::finish_passkey_login(rp, ceremony, &answer, &mut keys) {
        return Ok(Err(refusal));
    }
    if let Some(credential) = identity.credentials.get_mut(&CredentialType::Passkey) {
        credential.config = keys.to_config();
        credential.updated_at = facts.now();
    }
    Ok(Ok(identity))
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

/// The flow's challenge is passed: its WebAuthn ceremonies are dropped (a completed flow
/// answers none, so a key's answer to a challenge shown before cannot arrive late).
fn pass(flow: &mut Flow) {
    flow.state = FlowState::PassedChallenge;
    flow.internal.clear_ceremonies();
}

/// A re-authentication (`refresh=true`) with `method` succeeded: the flow passes (as
/// [`pass`]) and the current session is refreshed in place — authenticated now (the
/// method's `completed_at`), the method and the request's device added, its level and
/// token unchanged. The one refresh for every first factor (password, passkey, a
/// provider); the caller saves the returned session ([`Effect::UpdateSession`]).
pub(super) fn refresh_in_place(
    flow: &mut Flow,
    current: &Session,
    method: AuthenticationMethod,
    req: &FlowRequest,
) -> Session {
    pass(flow);
    let mut session = current.clone();
    session.authenticated_at = method.completed_at;
    session.authentication_methods.push(method);
    if let Some(device) = req.device.clone() {
        session.devices.push(device);
    }
    session
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::testing::{
        PASSWORD, TestFacts, advanced, api, effect_names, message_ids, rejected,
    };

    fn password(identifier: &str, password: &str) -> LoginSubmission {
        LoginSubmission::Password {
            identifier: identifier.into(),
            password: Password::new(password),
        }
    }

    async fn login(facts: &TestFacts, submission: LoginSubmission) -> Step<Outcome> {
        let flow = create(facts, FlowType::Api, &api(), LoginIntent::SignIn, None).unwrap();
        submit(facts, flow, submission, &api(), None).await.unwrap()
    }

    #[tokio::test]
    async fn the_right_password_issues_a_session() {
        let facts = TestFacts::new();
        let ada = facts.add_identity("ada@example.com").await;
        let t = advanced(login(&facts, password(" ADA@example.com ", PASSWORD)).await);
        assert_eq!(t.flow.state, FlowState::PassedChallenge);
        assert_eq!(effect_names(&t.effects), ["issue_session"]);
        let Effect::IssueSession { session, token } = &t.effects[0] else {
            unreachable!()
        };
        assert_eq!(session.identity_id, ada.id);
        assert_eq!(session.aal, Aal::Aal1);
        assert_eq!(session.authentication_methods[0].method, "password");
        let issued = t.outcome.token.unwrap();
        assert_eq!(
            issued.hash(),
            *token,
            "the effect stores the hash of the token handed out"
        );
        assert_eq!(t.outcome.session.identity.id, ada.id);
    }

    #[tokio::test]
    async fn the_password_is_checked_in_the_lane_the_facts_name_and_answered_alike() {
        let facts = TestFacts::new();
        facts.add_identity("ada@example.com").await;
        let ordinary = rejected(login(&facts, password("ada@example.com", "not it")).await);
        *facts.lane.lock().unwrap() = Lane::Priority;
        let priority = rejected(login(&facts, password("ada@example.com", "not it")).await);
        assert_eq!(message_ids(&ordinary), [4_000_006]);
        assert_eq!(message_ids(&priority), [4_000_006]);
        let t = advanced(login(&facts, password("ada@example.com", PASSWORD)).await);
        assert_eq!(effect_names(&t.effects), ["issue_session"]);
        assert_eq!(
            *facts.verified_in.lock().unwrap(),
            [Lane::Ordinary, Lane::Priority, Lane::Priority]
        );
    }

    #[tokio::test]
    async fn a_wrong_password_and_an_unknown_account_look_the_same() {
        let facts = TestFacts::new();
        facts.add_identity("ada@example.com").await;
        let wrong = rejected(login(&facts, password("ada@example.com", "not it at all")).await);
        let unknown = rejected(login(&facts, password("bob@example.com", PASSWORD)).await);
        assert_eq!(message_ids(&wrong), [4_000_006]);
        assert_eq!(message_ids(&unknown), [4_000_006]);
        assert_eq!(wrong.state, FlowState::ChooseMethod);
    }

    #[tokio::test]
    async fn an_outdated_hash_is_rehashed_with_the_session() {
        let facts = TestFacts::new();
        let ada = facts.add_identity("ada@example.com").await;
        // A bcrypt hash (an import) of the same password.
        let bcrypt = bcrypt::hash(PASSWORD, 4).unwrap();
        facts.identities.lock().unwrap()[0]
            .credentials
            .get_mut(&CredentialType::Password)
            .unwrap()
            .config = serde_json::json!({ "hashed_password": bcrypt });
        let t = advanced(login(&facts, password("ada@example.com", PASSWORD)).await);
        assert_eq!(
            effect_names(&t.effects),
            ["rehash_password", "issue_session"]
        );
        let Effect::RehashPassword(rehashed) = &t.effects[0] else {
            unreachable!()
        };
        assert_eq!(rehashed.id, ada.id);
        let hash = rehashed
            .credential(CredentialType::Password)
            .and_then(Credential::hashed_password)
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
    }

    #[tokio::test]
    async fn a_signed_in_user_is_refused_a_new_sign_in_but_may_refresh() {
        let facts = TestFacts::new();
        facts.add_identity("ada@example.com").await;
        let t = advanced(login(&facts, password("ada@example.com", PASSWORD)).await);
        let current = t.outcome.session;
        let err = create(
            &facts,
            FlowType::Api,
            &api(),
            LoginIntent::SignIn,
            Some(&current),
        )
        .unwrap_err();
        assert!(matches!(err, FlowError::SessionAlreadyAvailable));

        facts.advance(chrono::Duration::hours(1));
        let flow = create(
            &facts,
            FlowType::Api,
            &api(),
            LoginIntent::Refresh,
            Some(&current),
        )
        .unwrap();
        assert!(flow.refresh);
        let step = submit(
            &facts,
            flow,
            password("ada@example.com", PASSWORD),
            &api(),
            Some(&current),
        )
        .await;
        let t = advanced(step.unwrap());
        // The session is refreshed in place: no new token, authenticated now.
        assert_eq!(effect_names(&t.effects), ["update_session"]);
        assert!(t.outcome.token.is_none());
        assert_eq!(t.outcome.session.session.id, current.session.id);
        assert_eq!(t.outcome.session.session.authenticated_at, facts.now());
    }

    #[test]
    fn debug_output_hides_passwords_codes_and_tokens() {
        let shown = format!(
            "{:?} {:?} {:?} {:?} {:?}",
            password("ada@example.com", "hunter2 hunter2"),
            LoginSubmission::Totp {
                code: "424242".into()
            },
            LoginSubmission::LookupSecret {
                code: "abcd2345".into()
            },
            crate::flow::CodeSubmission::Code("987654".into()),
            ContinueWith::SetOrySessionToken {
                ory_session_token: "secret-token".into()
            },
        );
        for secret in ["hunter2", "424242", "abcd2345", "987654", "secret-token"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("ada@example.com"), "{shown}");
    }

    #[tokio::test]
    async fn a_second_factor_flow_needs_a_second_factor() {
        let facts = TestFacts::new();
        facts.add_identity("ada@example.com").await;
        let t = advanced(login(&facts, password("ada@example.com", PASSWORD)).await);
        let err = create(
            &facts,
            FlowType::Api,
            &api(),
            LoginIntent::SecondFactor,
            Some(&t.outcome.session),
        )
        .unwrap_err();
        assert!(matches!(err, FlowError::NoSecondFactor));
    }
}
