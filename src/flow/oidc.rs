//! The `oidc` method of login and registration flows (feature `oidc`): one `provider`
//! button per configured provider, the sign-in with a provider waiting on the flow, and
//! what its verified claims decide.
//!
//! ```text
//! choose_method ─(provider button)─▶ choose_method + pending {provider, MAC(state), nonce, sealed PKCE verifier}
//!      ▲                                   │ browser goes to the provider and comes back to the callback
//!      │ refusal shown (pending spent)     ▼
//!      └──────────────────────────── callback: state checked and spent ─▶ claims
//!                                            ├─ known `<provider>:<subject>` ─▶ passed_challenge, session issued
//!                                            ├─ new subject, address free  ─▶ passed_challenge, identity (+ session)
//!                                            └─ new subject, address taken ─▶ refused (4000027), nothing linked
//! ```
//!
//! The state names the flow (`<flow id>.<random>`) and is kept only as a MAC on it, so a
//! replayed state (the pending sign-in is spent on first use), a forged one, or one from
//! another browser (the CSRF cookie must match the flow) is refused.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::form::show_hook_error;
use super::login::LoggedIn;
use super::registration::Registered;
use super::text;
use super::ui::{InputType, Node, NodeGroup, UiText};
use super::{ContinueWith, Effect, Facts, Fallback, Flow, FlowError};
use super::{FlowKind, FlowRequest, FlowState, Result, Step, Transition, login, registration};
use crate::credential::oidc::Claims;
use crate::hook::BeforeEvent;
use crate::identity::{
    Aal, AddressVia, Credential, CredentialType, Identity, NewIdentity, VerificationStatus,
};
use crate::secret::{MacPurpose, hex, unhex};
use crate::session::{AuthenticatedSession, AuthenticationMethod, Session};
use crate::store::AddressKind;

/// Where to send the browser to sign in with the provider.
#[derive(Debug)]
pub struct OidcRedirect {
    /// The flow, now waiting for the provider's answer.
    pub flow: Flow,
    /// The provider's authorization URL.
    pub redirect_to: String,
}

/// What a provider sent back to the callback (its query or form).
#[derive(Debug, Clone, Default)]
pub struct OidcCallback {
    /// `state`.
    pub state: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `error` (e.g. `access_denied`).
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// A completed sign-in with a provider.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum OidcSignedIn {
    /// The provider account was known: its identity signed in.
    LoggedIn(LoggedIn),
    /// The provider account was new: an identity was made for it (and signed in, unless
    /// registration is configured to make accounts only).
    Registered(Registered),
    /// An API flow signed in: its session token waits, sealed on the flow, for the app
    /// to fetch it with its `session_token_exchange_code` and this `return_to_code` (the
    /// browser brings it back to the app as `code` on `return_to`).
    TokenHeld {
        /// The flow, now `passed_challenge`.
        flow: Flow,
        /// The code the browser takes back to the app.
        return_to_code: String,
    },
}

/// A pending sign-in, as kept in the flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    provider: String,
    /// MAC of the state (with the flow id).
    state: String,
    nonce: String,
    /// The PKCE verifier, sealed to the flow.
    verifier: String,
}

/// What the callback needs to finish a sign-in.
pub(crate) struct Resumed {
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
}

/// An API flow's session-token exchange, as kept in the flow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Exchange {
    /// MAC of the init code (handed to the app with the new flow).
    init: String,
    /// MAC of the code the browser brings back to the app, once signed in.
    #[serde(default)]
    return_to: Option<String>,
    /// The session token, sealed to the flow, until the app fetches it.
    #[serde(default)]
    token: Option<String>,
}

/// The buttons of a sign-in or sign-up form: one per provider (Kratos's node shape). A
/// new API flow asked for it also gets its session-token exchange code.
pub(crate) fn provider_nodes(facts: &dyn Facts, flow: &mut Flow, req: &FlowRequest) {
    if flow.flow_type == super::FlowType::Api && req.session_token_exchange {
        let init = format!("{}.{}", flow.id, random_code());
        let exchange = Exchange {
            init: hex(&exchange_mac(facts, flow.id, "init", &init)),
            ..Exchange::default()
        };
        flow.internal.exchange = serde_json::to_value(exchange).ok();
        flow.session_token_exchange_code = Some(init);
    }
    for (id, label) in facts.oidc_providers() {
        let text = match flow.kind {
            FlowKind::Registration => UiText::info(1_040_002, format!("Sign up with {label}")),
            _ => UiText::info(1_010_002, format!("Sign in with {label}")),
        }
        .with_context(json!({ "provider": label, "provider_id": id }));
        flow.ui.nodes.push(
            Node::input(NodeGroup::Oidc, "provider", InputType::Submit)
                .with_value(id)
                .label(text),
        );
    }
}

/// Checks that `flow` may start a sign-in with a provider.
pub(crate) fn check_start(flow: &Flow, current: Option<&AuthenticatedSession>) -> Result<()> {
    let refuse = |reason| FlowError::State {
        kind: flow.kind,
        state: flow.state,
        reason,
    };
    if !matches!(flow.kind, FlowKind::Login | FlowKind::Registration) {
        return Err(refuse(
            "a provider signs in through a login or registration flow",
        ));
    }
    if flow.state != FlowState::ChooseMethod {
        return Err(refuse("the flow is already complete; start a new flow"));
    }
    if flow.flow_type != super::FlowType::Browser && flow.internal.exchange.is_none() {
        return Err(refuse(
            "an API flow signs in with a provider only if it was started with \
             return_session_token_exchange_code=true (to fetch the session token afterwards)",
        ));
    }
    if flow.refresh || flow.requested_aal == Aal::Aal2 {
        return Err(refuse(
            "a provider cannot re-authenticate or complete a second factor yet; use another method",
        ));
    }
    if current.is_some() {
        return Err(FlowError::SessionAlreadyAvailable);
    }
    Ok(())
}

/// The state to send the provider for `flow` (it names the flow).
pub(crate) fn state_prefix(flow: &Flow) -> String {
    flow.id.to_string()
}

/// The flow a callback's state names, if it names one.
pub(crate) fn flow_of_state(state: Option<&str>) -> Result<Uuid> {
    state
        .and_then(|s| s.split_once('.'))
        .and_then(|(id, _)| Uuid::parse_str(id).ok())
        .ok_or(FlowError::OidcState)
}

/// Keeps a started sign-in on the flow: the state as a MAC, the PKCE verifier sealed.
pub(crate) fn remember(
    facts: &dyn Facts,
    flow: &mut Flow,
    provider: &str,
    state: &str,
    nonce: &str,
    pkce_verifier: &str,
) -> Result<()> {
    let keyring = facts.keyring();
    let tag = keyring.mac(
        MacPurpose::OidcState,
        &[flow.id.as_bytes(), state.as_bytes()],
    );
    let sealed = keyring
        .seal(&seal_context(flow.id), pkce_verifier.as_bytes())
        .map_err(|_| crate::credential::CredentialError::Sealing("PKCE verifier"))?;
    let pending = Pending {
        provider: provider.to_owned(),
        state: hex(&tag),
        nonce: nonce.to_owned(),
        verifier: hex(&sealed),
    };
    flow.internal.oidc = Some(serde_json::to_value(pending).map_err(|e| {
        crate::store::StoreError::Corrupt(format!("flow {}: pending sign-in: {e}", flow.id))
    })?);
    Ok(())
}

fn random_code() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

fn exchange_mac(facts: &dyn Facts, flow_id: Uuid, which: &str, code: &str) -> [u8; 32] {
    let label = format!("exchange/{which}");
    facts.keyring().mac(
        MacPurpose::OidcState,
        &[label.as_bytes(), flow_id.as_bytes(), code.as_bytes()],
    )
}

/// Whether `tag` (hex) is the MAC of `code` as [`exchange_mac`] makes it (constant time).
fn exchange_mac_ok(facts: &dyn Facts, flow_id: Uuid, which: &str, code: &str, tag: &str) -> bool {
    let label = format!("exchange/{which}");
    facts.keyring().verify(
        MacPurpose::OidcState,
        &[label.as_bytes(), flow_id.as_bytes(), code.as_bytes()],
        &unhex(tag).unwrap_or_default(),
    )
}

fn exchange_context(flow_id: Uuid) -> Vec<u8> {
    [b"identa/v1/oidc-exchange/".as_slice(), flow_id.as_bytes()].concat()
}

fn read_exchange(flow: &Flow) -> Option<Exchange> {
    flow.internal
        .exchange
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// An API flow that signed in: keeps `token` sealed on the flow for the app to fetch,
/// and gives the code the browser takes back to the app (Kratos's `return_to_code`).
pub(crate) fn hold_token(facts: &dyn Facts, flow: &mut Flow, token: &str) -> Result<String> {
    let mut exchange = read_exchange(flow).ok_or(FlowError::OidcState)?;
    let code = random_code();
    exchange.return_to = Some(hex(&exchange_mac(facts, flow.id, "return_to", &code)));
    let sealed = facts
        .keyring()
        .seal(&exchange_context(flow.id), token.as_bytes())
        .map_err(|_| crate::credential::CredentialError::Sealing("session token"))?;
    exchange.token = Some(hex(&sealed));
    flow.internal.exchange = serde_json::to_value(exchange).ok();
    Ok(code)
}

/// The flow an init code names, if it names one.
pub(crate) fn flow_of_code(init_code: &str) -> Option<Uuid> {
    init_code
        .split_once('.')
        .and_then(|(id, _)| Uuid::parse_str(id).ok())
}

/// Hands over the session token held on `flow` if both codes are its own, once (it is
/// dropped from the flow). `None`: no token for these codes.
pub(crate) fn take_token(
    facts: &dyn Facts,
    flow: &mut Flow,
    init_code: &str,
    return_to_code: &str,
) -> Option<String> {
    let mut exchange = read_exchange(flow)?;
    let init_ok = exchange_mac_ok(facts, flow.id, "init", init_code, &exchange.init);
    let return_tag = exchange.return_to.clone().unwrap_or_default();
    let return_ok = exchange_mac_ok(facts, flow.id, "return_to", return_to_code, &return_tag);
    if !(init_ok & return_ok) {
        return None;
    }
    let sealed = unhex(&exchange.token.take()?)?;
    exchange.return_to = None;
    flow.internal.exchange = serde_json::to_value(exchange).ok();
    let token = facts
        .keyring()
        .open(&exchange_context(flow.id), &sealed)
        .ok()?;
    String::from_utf8(token).ok()
}

fn seal_context(flow_id: Uuid) -> Vec<u8> {
    [b"identa/v1/oidc-pkce/".as_slice(), flow_id.as_bytes()].concat()
}

/// Spends the flow's pending sign-in if `state` and `provider` are its own: the nonce and
/// verifier to finish it. Anything else (none pending, spent, another provider, a state
/// that does not match) is [`FlowError::OidcState`].
pub(crate) fn resume(
    facts: &dyn Facts,
    flow: &mut Flow,
    provider: &str,
    state: &str,
) -> Result<Resumed> {
    let pending: Pending = flow
        .internal
        .oidc
        .take()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or(FlowError::OidcState)?;
    let keyring = facts.keyring();
    let tag = unhex(&pending.state).unwrap_or_default();
    let matches = keyring.verify(
        MacPurpose::OidcState,
        &[flow.id.as_bytes(), state.as_bytes()],
        &tag,
    );
    if !matches || pending.provider != provider {
        return Err(FlowError::OidcState);
    }
    let verifier = unhex(&pending.verifier)
        .and_then(|sealed| keyring.open(&seal_context(flow.id), &sealed).ok())
        .and_then(|plain| String::from_utf8(plain).ok())
        .ok_or(crate::credential::CredentialError::Sealing("PKCE verifier"))?;
    Ok(Resumed {
        nonce: pending.nonce,
        pkce_verifier: verifier,
    })
}

/// Shows why a sign-in with a provider did not complete (the flow stays usable).
pub(crate) fn refused(mut flow: Flow, reason: impl Into<String>) -> Flow {
    flow.ui.messages.push(text::generic(reason));
    flow
}

/// What a callback's verified claims decide.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decided {
    /// A known provider account: sign its identity in.
    SignIn(Step<login::Outcome>),
    /// A new provider account: make an identity for it.
    Register(Step<registration::Outcome>),
}

/// The identifier of a provider account (Kratos's `<provider>:<subject>`).
pub(crate) fn identifier(claims: &Claims) -> String {
    format!("{}:{}", claims.provider, claims.subject)
}

/// Decides what verified `claims` do on `flow`: sign in the identity that has this
/// provider account, else register a new one with the traits the mapper made.
pub(crate) async fn decide(
    facts: &dyn Facts,
    mut flow: Flow,
    claims: &Claims,
    traits: std::result::Result<Value, String>,
    req: &FlowRequest,
) -> Result<Decided> {
    let identifier = identifier(claims);
    if let Some(identity) = facts
        .identity_by_identifier(CredentialType::Oidc, &identifier)
        .await?
    {
        return sign_in(facts, flow, identity, &identifier, req)
            .await
            .map(Decided::SignIn);
    }
    if !facts.config().registration.enabled {
        let reason = format!(
            "No account here signs in with this {} account, and sign-up is disabled.",
            claims.provider
        );
        return Ok(Decided::Register(Step::Reject(refused(flow, reason))));
    }
    let traits = match traits {
        Ok(traits) => traits,
        Err(reason) => return Ok(Decided::Register(Step::Reject(refused(flow, reason)))),
    };
    let before = BeforeEvent::Registration {
        flow_id: flow.id,
        traits: &traits,
    };
    if let Err(err) = facts.before(&before).await {
        show_hook_error(&mut flow.ui, err);
        return Ok(Decided::Register(Step::Reject(flow)));
    }
    let now = facts.now();
    let schemas = facts.schemas();
    let schema = schemas.get(schemas.default_id().unwrap_or_default())?;
    let new = NewIdentity {
        traits,
        ..NewIdentity::default()
    };
    let mut identity = match Identity::draft(&schema, new, now) {
        Ok((identity, _)) => identity,
        Err(err) => {
            let reason = format!(
                "The account at {} does not fit this site's profile: {err}",
                claims.provider
            );
            return Ok(Decided::Register(Step::Reject(refused(flow, reason))));
        }
    };
    // An address already in use is never linked silently: the owner signs in with the
    // method they have (linking from settings is a later step).
    for address in &identity.verifiable_addresses {
        if facts
            .identity_by_address(AddressKind::Verifiable, address.via, &address.value)
            .await?
            .is_some()
        {
            flow.ui.messages.push(text::duplicate_on_oidc_link());
            return Ok(Decided::Register(Step::Reject(flow)));
        }
    }
    if let (true, Some(email)) = (claims.email_verified, &claims.email) {
        let email = crate::identity::normalize::address(email, AddressVia::Email);
        for address in &mut identity.verifiable_addresses {
            if address.via == AddressVia::Email && address.value == email {
                address.verified = true;
                address.status = VerificationStatus::Completed;
                address.verified_at = Some(now);
            }
        }
    }
    identity.credentials.insert(
        CredentialType::Oidc,
        Credential {
            id: Uuid::now_v7(),
            credential_type: CredentialType::Oidc,
            identifiers: vec![identifier],
            config: json!({ "providers": [{
                "provider": claims.provider,
                "subject": claims.subject,
            }] }),
            version: 0,
            created_at: now,
            updated_at: now,
        },
    );
    let fallback = Fallback::to(flow.clone());
    Ok(Decided::Register(registration::created(
        facts,
        flow,
        identity,
        method(now),
        req,
        fallback,
    )?))
}

/// Signs in `identity`, which has the provider account `identifier`.
async fn sign_in(
    facts: &dyn Facts,
    mut flow: Flow,
    identity: Identity,
    identifier: &str,
    req: &FlowRequest,
) -> Result<Step<login::Outcome>> {
    let before = BeforeEvent::Login {
        flow_id: flow.id,
        identifier,
    };
    if let Err(err) = facts.before(&before).await {
        show_hook_error(&mut flow.ui, err);
        return Ok(Step::Reject(flow));
    }
    let fallback = Fallback::to(flow.clone());
    let now = facts.now();
    let (session, token) = Session::issue(
        &identity,
        vec![method(now)],
        req.device.clone(),
        now,
        facts.session_lifespan(),
        facts.keyring(),
    )?;
    flow.state = FlowState::PassedChallenge;
    let effects = vec![Effect::IssueSession {
        session: session.clone(),
        token: token.hash(),
    }];
    let continue_with = ContinueWith::token_for(flow.flow_type, &token)
        .into_iter()
        .collect();
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: login::Outcome {
            session: AuthenticatedSession { session, identity },
            token: Some(token),
            continue_with,
        },
        fallback,
    }))
}

fn method(now: chrono::DateTime<chrono::Utc>) -> AuthenticationMethod {
    AuthenticationMethod {
        method: CredentialType::Oidc.as_str().to_owned(),
        aal: Aal::Aal1,
        completed_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::login::LoginIntent;
    use crate::flow::testing::{TestFacts, advanced, api, effect_names, message_ids, rejected};

    fn login_flow(facts: &TestFacts) -> Flow {
        login::create(
            facts,
            super::super::FlowType::Api,
            &api(),
            LoginIntent::SignIn,
            None,
        )
        .unwrap()
    }

    fn claims(subject: &str, email: &str, verified: bool) -> Claims {
        Claims {
            provider: "example".into(),
            subject: subject.into(),
            email: Some(email.into()),
            email_verified: verified,
            name: None,
            raw: json!({}),
        }
    }

    #[test]
    fn a_pending_sign_in_resumes_once_with_its_own_state_and_provider() {
        let facts = TestFacts::new();
        let mut flow = login_flow(&facts);
        let state = format!("{}.random", flow.id);
        remember(&facts, &mut flow, "example", &state, "n0nce", "pkce-secret").unwrap();
        let stored = serde_json::to_string(&flow.internal.oidc).unwrap();
        assert!(!stored.contains("pkce-secret") && !stored.contains(&state));

        let mut forged = flow.clone();
        let refused = resume(
            &facts,
            &mut forged,
            "example",
            &format!("{}.other", flow.id),
        );
        assert!(matches!(refused, Err(FlowError::OidcState)));
        let mut other_provider = flow.clone();
        let refused = resume(&facts, &mut other_provider, "another", &state);
        assert!(matches!(refused, Err(FlowError::OidcState)));

        let resumed = resume(&facts, &mut flow, "example", &state).unwrap();
        assert_eq!(resumed.pkce_verifier, "pkce-secret");
        assert_eq!(resumed.nonce, "n0nce");
        let replayed = resume(&facts, &mut flow, "example", &state);
        assert!(matches!(replayed, Err(FlowError::OidcState)), "spent");
        assert_eq!(flow_of_state(Some(&state)).unwrap(), flow.id);
        assert!(flow_of_state(Some("no-flow-here")).is_err());
        assert!(flow_of_state(None).is_err());
    }

    #[test]
    fn a_held_token_is_handed_over_once_and_only_for_both_codes() {
        let facts = TestFacts::new();
        let mut flow = login_flow(&facts);
        let mut req = api();
        req.session_token_exchange = true;
        provider_nodes(&facts, &mut flow, &req);
        let init = flow.session_token_exchange_code.clone().unwrap();
        assert_eq!(flow_of_code(&init), Some(flow.id));
        assert!(
            take_token(&facts, &mut flow, &init, "").is_none(),
            "nothing held yet"
        );

        let back = hold_token(&facts, &mut flow, "the-session-token").unwrap();
        let stored = serde_json::to_string(&flow.internal.exchange).unwrap();
        assert!(!stored.contains("the-session-token") && !stored.contains(&back));
        assert!(take_token(&facts, &mut flow.clone(), &init, "wrong").is_none());
        assert!(take_token(&facts, &mut flow.clone(), "wrong", &back).is_none());
        let token = take_token(&facts, &mut flow, &init, &back);
        assert_eq!(token.as_deref(), Some("the-session-token"));
        assert!(
            take_token(&facts, &mut flow, &init, &back).is_none(),
            "once"
        );
    }

    #[tokio::test]
    async fn a_new_account_registers_with_its_vouched_address_verified() {
        let facts = TestFacts::new();
        let flow = login_flow(&facts);
        let c = claims("s-1", "New@Example.com", true);
        let traits = Ok(json!({ "email": "New@Example.com" }));
        let Decided::Register(step) = decide(&facts, flow, &c, traits, &api()).await.unwrap()
        else {
            panic!("signed in an unknown account");
        };
        let t = advanced(step);
        assert_eq!(
            effect_names(&t.effects),
            ["insert_identity", "issue_session"]
        );
        let identity = &t.outcome.identity;
        let credential = identity.credential(CredentialType::Oidc).unwrap();
        assert_eq!(credential.identifiers, ["example:s-1"]);
        assert!(identity.verifiable_addresses[0].verified);
        assert_eq!(t.flow.state, FlowState::PassedChallenge);
    }

    #[tokio::test]
    async fn an_unvouched_address_is_sent_a_verification_code() {
        let facts = TestFacts::new();
        let c = claims("s-2", "maybe@example.com", false);
        let traits = Ok(json!({ "email": "maybe@example.com" }));
        let flow = login_flow(&facts);
        let Decided::Register(step) = decide(&facts, flow, &c, traits, &api()).await.unwrap()
        else {
            panic!("signed in an unknown account");
        };
        let t = advanced(step);
        assert!(!t.outcome.identity.verifiable_addresses[0].verified);
        assert!(effect_names(&t.effects).contains(&"send_mail"));
    }

    #[tokio::test]
    async fn a_known_account_signs_in_and_a_taken_address_is_not_linked() {
        let facts = TestFacts::new();
        let existing = facts.add_identity("taken@example.com").await;
        let c = claims("s-3", "taken@example.com", true);
        let traits = Ok(json!({ "email": "taken@example.com" }));
        let Decided::Register(step) =
            decide(&facts, login_flow(&facts), &c, traits.clone(), &api())
                .await
                .unwrap()
        else {
            panic!("signed in an account nobody linked");
        };
        assert_eq!(message_ids(&rejected(step)), [4_000_027]);

        // Once the account holds this provider account, the provider signs it in.
        let mut linked = existing.clone();
        linked.credentials.insert(
            CredentialType::Oidc,
            Credential {
                id: Uuid::now_v7(),
                credential_type: CredentialType::Oidc,
                identifiers: vec!["example:s-3".into()],
                config: json!({}),
                version: 0,
                created_at: facts.now(),
                updated_at: facts.now(),
            },
        );
        facts
            .identities
            .lock()
            .unwrap()
            .retain(|i| i.id != existing.id);
        facts.identities.lock().unwrap().push(linked);
        let Decided::SignIn(step) = decide(&facts, login_flow(&facts), &c, traits, &api())
            .await
            .unwrap()
        else {
            panic!("registered a known account");
        };
        let t = advanced(step);
        assert_eq!(t.outcome.session.identity.id, existing.id);
        assert_eq!(effect_names(&t.effects), ["issue_session"]);
    }

    #[tokio::test]
    async fn a_new_account_is_not_registered_while_sign_up_is_disabled() {
        let mut facts = TestFacts::new();
        let flow = login_flow(&facts);
        facts.config.registration.enabled = false;
        let c = claims("s-5", "closed@example.com", true);
        let traits = Ok(json!({ "email": "closed@example.com" }));
        let Decided::Register(step) = decide(&facts, flow, &c, traits, &api()).await.unwrap()
        else {
            panic!("signed in");
        };
        let flow = rejected(step);
        assert_eq!(message_ids(&flow), [4_000_001]);
        assert!(flow.ui.messages[0].text.contains("sign-up is disabled"));
    }

    #[tokio::test]
    async fn a_mapper_refusal_is_shown_on_the_flow() {
        let facts = TestFacts::new();
        let c = claims("s-4", "x@example.com", true);
        let traits = Err("no email shared".to_owned());
        let Decided::Register(step) = decide(&facts, login_flow(&facts), &c, traits, &api())
            .await
            .unwrap()
        else {
            panic!("signed in");
        };
        let flow = rejected(step);
        assert_eq!(message_ids(&flow), [4_000_001]);
        assert_eq!(flow.ui.messages[0].text, "no email shared");
    }
}
