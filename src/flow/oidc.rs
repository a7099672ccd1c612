//! The `oidc` method of login, registration and settings flows (feature `oidc`): one
//! `provider` button per configured provider (`link`/`unlink` in settings), the sign-in
//! with a provider waiting on the flow, and what its verified claims decide.
//!
//! ```text
//! choose_method ─(provider button)─▶ choose_method + pending {provider, MAC(state), nonce, sealed PKCE verifier}
//!      ▲                                   │ browser goes to the provider and comes back to the callback
//!      │ refusal shown (pending spent)     ▼
//!      └──────────────────────────── callback: state checked and spent ─▶ claims
//!                                            ├─ known `<provider>:<subject>` ─▶ passed_challenge, session issued
//!                                            ├─ new subject, address free  ─▶ passed_challenge, identity (+ session)
//!                                            ├─ new subject, address taken, API flow ─▶ refused (4000027), nothing waits
//!                                            └─ new subject, address taken ─▶ a browser login flow holds the link (1010016)
//!                                                  │ the user signs in there (password, passkey, a linked provider)
//!                                                  ├─ to the identity with that address, no second factor ─▶ linked with the session
//!                                                  ├─ to the identity with that address, a second factor ─▶ aal1 session; the link
//!                                                  │      moves to a second-factor flow (1900003), linked with its aal2 step
//!                                                  ├─ the provider account was linked elsewhere meanwhile ─▶ signed in, dropped (1900004)
//!                                                  └─ to another identity ─▶ refused (4010009), the link waits
//! ```
//!
//! Under enumeration-safe registration, a taken address the provider does not vouch for
//! (`email_verified`) is answered as a new account instead (`flow/duplicate.rs`).
//!
//! A settings flow links the same way (its `link` button starts the sign-in; the
//! callback adds the provider account to the signed-in identity) and unlinks without the
//! provider; both need a privileged session.
//!
//! A re-authentication (a login flow with `refresh=true`) offers the providers the
//! signed-in identity has linked, asks the provider to sign the user in again
//! (`prompt=login`), and refreshes the session in place when the provider account is that
//! identity's own; it never registers or links, and refuses another identity's account
//! ([`FlowError::IdentityMismatch`], as the password refresh does).
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
use super::{AfterProviderRegistration, AfterRegistration};
use super::{ContinueWith, Effect, Facts, Fallback, Flow, FlowError};
use super::{FlowKind, FlowRequest, FlowState, Result, Step, Transition, login, registration};
use crate::credential::oidc::{Claims, Tokens};
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
    /// A settings flow linked the provider account to the signed-in identity.
    Linked(super::settings::SettingsSaved),
    /// An API flow's sign-in through the system browser failed (the provider refused,
    /// or the account was refused): the flow, saved, shows why; the browser goes back to
    /// the app with this `return_to_code` as `code`, and the session-token exchange
    /// answers with the flow (422) instead of a session, as Kratos does.
    ErrorHeld {
        /// The flow, with its messages.
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
        push_provider_button(flow, id, &label);
    }
}

/// The buttons of a re-authentication (`refresh=true`) of `identity`: one per configured
/// provider it has an account at, none if it has none (Kratos's
/// `PopulateLoginMethodFirstFactorRefresh`). Only providers whose ID token can prove a
/// fresh sign-in ([`Facts::oidc_proves_fresh_sign_in`]) are offered: not GitHub (no ID
/// token), not Apple (no `max_age`). Kratos offers them all.
pub(crate) fn refresh_nodes(facts: &dyn Facts, flow: &mut Flow, identity: &Identity) {
    for (id, label) in facts.oidc_providers() {
        if linked_to(identity, &id) && facts.oidc_proves_fresh_sign_in(&id) {
            push_provider_button(flow, id, &label);
        }
    }
}

fn push_provider_button(flow: &mut Flow, id: String, label: &str) {
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

/// Checks that `flow` may start a sign-in with a provider (or, a settings flow, link one:
/// the flow's own identity, signed in recently enough, with its highest assurance level).
pub(crate) fn check_start(
    facts: &dyn Facts,
    flow: &Flow,
    current: Option<&AuthenticatedSession>,
) -> Result<()> {
    if flow.kind == FlowKind::Settings {
        let current = current.ok_or(crate::session::SessionError::Inactive(
            crate::session::SessionRefusal::Unknown,
        ))?;
        if flow.identity_id != Some(current.identity.id) {
            return Err(FlowError::IdentityMismatch);
        }
        if flow.flow_type != super::FlowType::Browser {
            return Err(FlowError::State {
                kind: flow.kind,
                state: flow.state,
                reason: "a provider is linked from a browser settings flow",
            });
        }
        super::settings::require_highest_aal(current)?;
        return super::settings::require_privileged(facts, current);
    }
    check_sign_in_start(flow, current, Via::ProviderPage)
}

/// Whether `flow` may take an ID token a native app got from a provider's SDK (Kratos's
/// `id_token` submission): a login or registration API flow choosing its method, not a
/// re-authentication or second factor, with no session yet.
pub(crate) fn check_native_start(
    flow: &Flow,
    current: Option<&AuthenticatedSession>,
) -> Result<()> {
    check_sign_in_start(flow, current, Via::IdToken)
}

/// How a sign-in with a provider reaches identa.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The provider's page, then its callback (the `provider` button).
    ProviderPage,
    /// An ID token a native app got from the provider's SDK (`id_token`).
    IdToken,
}

/// The checks every sign-in with a provider passes before anything is asked of it: a
/// login or registration flow still choosing its method; a re-authentication only from
/// a browser, by the session it was started for; no second factor; no session yet. A
/// provider's page takes a browser flow, or an API flow that can fetch its session token
/// afterwards; an ID token takes an API flow only.
fn check_sign_in_start(
    flow: &Flow,
    current: Option<&AuthenticatedSession>,
    via: Via,
) -> Result<()> {
    let refuse = |reason| FlowError::State {
        kind: flow.kind,
        state: flow.state,
        reason,
    };
    if !matches!(flow.kind, FlowKind::Login | FlowKind::Registration) {
        return Err(refuse(match via {
            Via::ProviderPage => "a provider signs in through a login or registration flow",
            Via::IdToken => "an ID token signs in through a login or registration flow",
        }));
    }
    if via == Via::IdToken && flow.flow_type != super::FlowType::Api {
        return Err(refuse(
            "an ID token from a provider's SDK is for native apps (API flows); a browser signs in through the provider's page (the `provider` button, without `id_token`)",
        ));
    }
    if flow.state != FlowState::ChooseMethod {
        return Err(refuse("the flow is already complete; start a new flow"));
    }
    if flow.refresh && flow.requested_aal != Aal::Aal2 {
        // An ID token comes on an API flow, which this refuses: an app re-authenticates
        // with another method.
        return check_refresh(flow, current);
    }
    if via == Via::ProviderPage
        && flow.flow_type != super::FlowType::Browser
        && flow.internal.exchange.is_none()
    {
        return Err(refuse(
            "an API flow signs in with a provider only if it was started with \
             return_session_token_exchange_code=true (to fetch the session token afterwards)",
        ));
    }
    if flow.requested_aal == Aal::Aal2 {
        return Err(refuse(
            "a provider cannot complete a second factor yet; use another method",
        ));
    }
    if current.is_some() {
        return Err(FlowError::SessionAlreadyAvailable);
    }
    Ok(())
}

/// Checks that the re-authentication `flow` (`refresh=true`) may sign in with a provider:
/// a browser flow, by the session it was started for.
fn check_refresh(flow: &Flow, current: Option<&AuthenticatedSession>) -> Result<()> {
    if flow.flow_type != super::FlowType::Browser {
        return Err(FlowError::State {
            kind: flow.kind,
            state: flow.state,
            reason: "a provider re-authenticates from a browser login flow; an app \
                     re-authenticates with another method",
        });
    }
    let current = current.ok_or(crate::session::SessionError::Inactive(
        crate::session::SessionRefusal::Unknown,
    ))?;
    if flow.session_id != Some(current.session.id) {
        return Err(FlowError::IdentityMismatch);
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

/// An API flow with a session-token exchange whose sign-in failed: keeps the MAC of a new
/// code the browser takes back to the app, and no token, so that the exchange with both
/// codes answers with the flow. `None`: the flow has no exchange (not a native app's).
pub(crate) fn hold_error(facts: &dyn Facts, flow: &mut Flow) -> Option<String> {
    let mut exchange = read_exchange(flow)?;
    let code = random_code();
    exchange.return_to = Some(hex(&exchange_mac(facts, flow.id, "return_to", &code)));
    exchange.token = None;
    flow.internal.exchange = serde_json::to_value(exchange).ok();
    Some(code)
}

/// What an exchange with a flow's own two codes finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Exchanged {
    /// The session token the sign-in made (now dropped from the flow).
    Token(String),
    /// The sign-in failed: the flow shows why.
    Failed,
}

/// The flow an init code names, if it names one.
pub(crate) fn flow_of_code(init_code: &str) -> Option<Uuid> {
    init_code
        .split_once('.')
        .and_then(|(id, _)| Uuid::parse_str(id).ok())
}

/// Hands over the session token held on `flow` if both codes are its own, once (it is
/// dropped from the flow), or says the sign-in failed ([`hold_error`]). `None`: nothing
/// for these codes.
pub(crate) fn take_token(
    facts: &dyn Facts,
    flow: &mut Flow,
    init_code: &str,
    return_to_code: &str,
) -> Option<Exchanged> {
    let mut exchange = read_exchange(flow)?;
    let init_ok = exchange_mac_ok(facts, flow.id, "init", init_code, &exchange.init);
    // Nothing before the sign-in ended, nor once the token was fetched.
    let return_tag = exchange.return_to.clone()?;
    let return_ok = exchange_mac_ok(facts, flow.id, "return_to", return_to_code, &return_tag);
    if !(init_ok & return_ok) {
        return None;
    }
    let Some(sealed) = exchange.token.take() else {
        return Some(Exchanged::Failed);
    };
    let sealed = unhex(&sealed)?;
    exchange.return_to = None;
    flow.internal.exchange = serde_json::to_value(exchange).ok();
    let token = facts
        .keyring()
        .open(&exchange_context(flow.id), &sealed)
        .ok()?;
    String::from_utf8(token).ok().map(Exchanged::Token)
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

/// How much earlier than the re-authentication flow a provider's `auth_time` may be (its
/// clock and identa's differ a little).
const AUTH_TIME_SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// Why provider `provider` may not re-authenticate on refresh flow `flow`, if it may not:
/// it cannot prove a fresh sign-in (no ID token with `auth_time`: GitHub, Apple).
pub(crate) fn refresh_refusal(facts: &dyn Facts, flow: &Flow, provider: &str) -> Option<String> {
    match flow.refresh && !facts.oidc_proves_fresh_sign_in(provider) {
        true => Some(format!(
            "{} cannot confirm that you signed in again, so it cannot re-authenticate you: \
             re-authenticate with another of your sign-in methods.",
            label_of(facts, provider)
        )),
        false => None,
    }
}

/// Why the provider's answer on refresh flow `flow` does not prove a fresh sign-in, if
/// it does not: its ID token must carry `auth_time` no earlier than the flow was made
/// (less [`AUTH_TIME_SKEW`]), as asked with `max_age=0`.
fn stale_sign_in(facts: &dyn Facts, flow: &Flow, claims: &Claims) -> Option<String> {
    if let Some(reason) = refresh_refusal(facts, flow, &claims.provider) {
        return Some(reason);
    }
    let label = label_of(facts, &claims.provider);
    match claims.auth_time {
        Some(at) if at >= flow.issued_at - AUTH_TIME_SKEW => None,
        Some(_) => Some(format!(
            "{label} did not confirm a fresh sign-in (it answered from an earlier one), so \
             it cannot confirm it is you: re-authenticate again and sign in at {label} \
             when asked."
        )),
        None => Some(format!(
            "{label} did not confirm a fresh sign-in (its ID token has no auth_time), so \
             it cannot confirm it is you: re-authenticate with another of your sign-in \
             methods."
        )),
    }
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
    /// A new provider account whose address has an account here: the login flow `login`
    /// now holds it, waiting for the user to sign in to that account (Kratos's 1010016).
    /// `spent` is the registration flow the callback came to, if it was one (then `login`
    /// is new and must be inserted).
    Link {
        /// The registration flow whose pending sign-in was spent.
        spent: Option<Flow>,
        /// The login flow holding the link.
        login: Flow,
    },
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
    tokens: Option<&Tokens>,
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
    // An address already in use is never linked silently: the owner signs in to that
    // account first, and the provider account is linked then.
    for address in &identity.verifiable_addresses {
        if facts
            .identity_by_address(AddressKind::Verifiable, address.via, &address.value)
            .await?
            .is_some()
        {
            // Enumeration-safe registration: unless the provider vouches for the address
            // (then the caller owns it, and may learn it has an account), the answer is
            // the one a new account with an unverified address gets.
            let safe =
                facts.config().registration.duplicate == super::DuplicateRegistration::AnswerAsNew;
            if safe && !claims.email_verified {
                let mut drafted = identity.clone();
                add_provider_account(&mut drafted, claims, now);
                if let Some(t) = super::answer_if_taken(facts, &flow, &drafted, req).await? {
                    return Ok(Decided::Register(Step::Advance(t)));
                }
            }
            // Only a browser flow's CSRF cookie binds the waiting link to the browser that
            // signed in with the provider: an API flow is told to sign in and link from
            // settings instead.
            if flow.flow_type != super::FlowType::Browser {
                flow.ui.messages.push(text::duplicate_on_oidc_link());
                return Ok(Decided::Register(Step::Reject(flow)));
            }
            let link = PendingLink {
                provider: claims.provider.clone(),
                subject: claims.subject.clone(),
                via: address.via,
                address: address.value.clone(),
                tokens: tokens.cloned(),
            };
            return offer_link(facts, flow, &link, req);
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
    add_provider_account(&mut identity, claims, now);
    keep_tokens(facts, &mut identity, claims, tokens)?;
    let fallback = Fallback::to(flow.clone());
    let after = after_registration(facts.config(), &identity);
    Ok(Decided::Register(registration::created(
        facts,
        flow,
        identity,
        method(now),
        after,
        req,
        fallback,
    )?))
}

/// What follows a provider sign-up of `identity` (its vouched addresses marked verified):
/// a session when the provider vouched for every address, and there is at least one, and
/// the configuration says so ([`AfterProviderRegistration::IssueSessionWhenVouched`]),
/// else `registration.after`. An identity with no verifiable address is not vouched for.
fn after_registration(config: &super::FlowsConfig, identity: &Identity) -> AfterRegistration {
    let addresses = &identity.verifiable_addresses;
    let vouched = !addresses.is_empty() && addresses.iter().all(|a| a.verified);
    match config.registration.after_provider {
        AfterProviderRegistration::IssueSessionWhenVouched if vouched => {
            AfterRegistration::IssueSession
        }
        AfterProviderRegistration::IssueSessionWhenVouched | AfterProviderRegistration::AsAfter => {
            config.registration.after
        }
    }
}

/// A provider account waiting on a login flow to be linked, as kept there (sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingLink {
    provider: String,
    subject: String,
    /// The taken address, normalised: only the account that has it may take the link.
    via: AddressVia,
    address: String,
    /// The tokens of its code exchange, if its provider keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens: Option<Tokens>,
}

fn link_context(flow_id: Uuid) -> Vec<u8> {
    [b"identa/v1/oidc-link/".as_slice(), flow_id.as_bytes()].concat()
}

/// The name of `provider` as its button shows it.
fn label_of(facts: &dyn Facts, provider: &str) -> String {
    facts
        .oidc_providers()
        .into_iter()
        .find(|(id, _)| id == provider)
        .map_or_else(|| provider.to_owned(), |(_, label)| label)
}

/// Keeps `link` on a login flow (this one, or a new one for a registration flow) and
/// tells the user to sign in to the account that has the address (Kratos's 1010016).
fn offer_link(
    facts: &dyn Facts,
    mut flow: Flow,
    link: &PendingLink,
    req: &FlowRequest,
) -> Result<Decided> {
    let (spent, mut login) = match flow.kind {
        FlowKind::Login => (None, flow),
        _ => {
            flow.ui.messages.push(text::duplicate_on_oidc_link());
            let mut login =
                login::create(facts, flow.flow_type, req, login::LoginIntent::SignIn, None)?;
            login.return_to = flow.return_to.clone();
            (Some(flow), login)
        }
    };
    seal_link(facts, &mut login, link)?;
    login.ui.clear_messages();
    let label = label_of(facts, &link.provider);
    login
        .ui
        .messages
        .push(text::login_link(&link.address, &label));
    Ok(Decided::Link { spent, login })
}

/// Keeps `link` on `flow`, sealed to its id.
fn seal_link(facts: &dyn Facts, flow: &mut Flow, link: &PendingLink) -> Result<()> {
    let plain = serde_json::to_vec(link).map_err(|e| {
        crate::store::StoreError::Corrupt(format!("flow {}: pending link: {e}", flow.id))
    })?;
    let sealed = facts
        .keyring()
        .seal(&link_context(flow.id), &plain)
        .map_err(|_| crate::credential::CredentialError::Sealing("pending provider link"))?;
    flow.internal.oidc_link = Some(hex(&sealed));
    Ok(())
}

/// The link waiting on `flow`, if any.
fn pending_link(facts: &dyn Facts, flow: &Flow) -> Result<Option<PendingLink>> {
    let Some(sealed) = &flow.internal.oidc_link else {
        return Ok(None);
    };
    let unusable = crate::credential::CredentialError::Sealing("pending provider link");
    let plain = unhex(sealed)
        .and_then(|sealed| facts.keyring().open(&link_context(flow.id), &sealed).ok())
        .ok_or(unusable)?;
    let link = serde_json::from_slice(&plain).map_err(|e| {
        crate::store::StoreError::Corrupt(format!("flow {}: pending link: {e}", flow.id))
    })?;
    Ok(Some(link))
}

/// A provider account that waits for the second factor of the identity that took it, to
/// be carried (sealed) to that second-factor login flow ([`carry_link`]).
#[derive(Debug)]
pub(crate) struct WaitingLink(PendingLink);

/// What a sign-in did with the provider account waiting on its login flow.
#[derive(Debug)]
pub(crate) struct SignedIn {
    /// The flow, its link taken, dropped or moved away.
    pub(crate) flow: Flow,
    /// The identity, with the provider account when it was linked.
    pub(crate) identity: Identity,
    /// The link, when the identity has a second factor this sign-in has not used yet.
    pub(crate) waiting: Option<WaitingLink>,
}

/// A login flow signed `identity` in, to a session at `aal`: if the flow holds a provider
/// account waiting to be linked, adds it to `identity` — in the identity `effects` already
/// write, or in a new write — so that it is linked in the same commit as the session.
///
/// Only a session at the identity's highest level links (as settings need to link):
/// while a second factor is still owed the link is handed back as
/// [`SignedIn::waiting`], to be carried to the second-factor flow. An identity that does
/// not have the address the link was offered for is refused (Kratos's 4010009) and the
/// link stays waiting: `Err` is the flow showing why. A provider account that another
/// identity took meanwhile is not linked: the link is dropped and the flow says so.
pub(crate) async fn link_on_sign_in(
    facts: &dyn Facts,
    mut flow: Flow,
    mut identity: Identity,
    aal: Aal,
    effects: &mut Vec<Effect>,
) -> Result<std::result::Result<SignedIn, Flow>> {
    let Some(link) = pending_link(facts, &flow)? else {
        return Ok(Ok(SignedIn {
            flow,
            identity,
            waiting: None,
        }));
    };
    let owns = identity
        .verifiable_addresses
        .iter()
        .any(|a| a.via == link.via && a.value == link.address);
    let label = label_of(facts, &link.provider);
    if !owns {
        flow.ui.clear_messages();
        flow.ui
            .messages
            .push(text::linked_credentials_do_not_match(&link.address, &label));
        return Ok(Err(flow));
    }
    flow.internal.oidc_link = None;
    if aal < identity.highest_available_aal() {
        return Ok(Ok(SignedIn {
            flow,
            identity,
            waiting: Some(WaitingLink(link)),
        }));
    }
    let claims = Claims {
        provider: link.provider,
        subject: link.subject,
        email: None,
        email_verified: false,
        name: None,
        auth_time: None,
        raw: Value::Null,
    };
    if facts
        .identity_by_identifier(CredentialType::Oidc, &identifier(&claims))
        .await?
        .is_some_and(|owner| owner.id != identity.id)
    {
        flow.ui.clear_messages();
        flow.ui.messages.push(text::link_taken_meanwhile(&label));
        return Ok(Ok(SignedIn {
            flow,
            identity,
            waiting: None,
        }));
    }
    let now = facts.now();
    add_provider_account(&mut identity, &claims, now);
    keep_tokens(facts, &mut identity, &claims, link.tokens.as_ref())?;
    let mut written = false;
    for effect in effects.iter_mut() {
        if let Effect::UpdateIdentity(i) | Effect::RehashPassword(i) = effect
            && i.id == identity.id
        {
            add_provider_account(i, &claims, now);
            keep_tokens(facts, i, &claims, link.tokens.as_ref())?;
            written = true;
        }
    }
    if !written {
        effects.push(Effect::UpdateIdentity(identity.clone()));
    }
    Ok(Ok(SignedIn {
        flow,
        identity,
        waiting: None,
    }))
}

/// The second-factor login flow (not stored) that `current`, a first factor just signed in
/// from `from`, completes next, holding the provider account `link` waiting there (sealed
/// to the new flow): its second factor links it.
pub(crate) fn carry_link(
    facts: &dyn Facts,
    link: WaitingLink,
    from: &Flow,
    req: &FlowRequest,
    current: &AuthenticatedSession,
) -> Result<Flow> {
    let WaitingLink(link) = link;
    let mut next = login::create(
        facts,
        from.flow_type,
        req,
        login::LoginIntent::SecondFactor,
        Some(current),
    )?;
    next.return_to = from.return_to.clone();
    seal_link(facts, &mut next, &link)?;
    let label = label_of(facts, &link.provider);
    next.ui
        .messages
        .push(text::link_after_second_factor(&label));
    Ok(next)
}

/// Adds the provider account of `claims` to `identity`'s `oidc` credential (made if it
/// has none), as Kratos stores it.
pub(crate) fn add_provider_account(
    identity: &mut Identity,
    claims: &Claims,
    now: chrono::DateTime<chrono::Utc>,
) {
    let id = identifier(claims);
    let entry = json!({ "provider": claims.provider, "subject": claims.subject });
    let credential = identity
        .credentials
        .entry(CredentialType::Oidc)
        .or_insert_with(|| Credential {
            id: Uuid::now_v7(),
            credential_type: CredentialType::Oidc,
            identifiers: Vec::new(),
            config: json!({ "providers": [] }),
            version: 0,
            created_at: now,
            updated_at: now,
        });
    if credential.identifiers.contains(&id) {
        return;
    }
    credential.identifiers.push(id);
    match credential
        .config
        .get_mut("providers")
        .and_then(Value::as_array_mut)
    {
        Some(providers) => providers.push(entry),
        None => credential.config = json!({ "providers": [entry] }),
    }
    credential.updated_at = now;
}

/// Seals `tokens` (if its provider keeps them) into `identity`'s entry for the provider
/// account of `claims` (provider and subject: an identity may have two accounts at one
/// provider), which [`add_provider_account`] made.
fn keep_tokens(
    facts: &dyn Facts,
    identity: &mut Identity,
    claims: &Claims,
    tokens: Option<&Tokens>,
) -> Result<()> {
    let provider = claims.provider.as_str();
    let Some(tokens) = tokens else {
        return Ok(());
    };
    let id = identity.id;
    let entry = identity
        .credentials
        .get_mut(&CredentialType::Oidc)
        .and_then(|c| c.config.get_mut("providers"))
        .and_then(Value::as_array_mut)
        .and_then(|entries| {
            entries.iter_mut().find(|e| {
                e.get("provider").and_then(Value::as_str) == Some(provider)
                    && e.get("subject").and_then(Value::as_str) == Some(claims.subject.as_str())
            })
        })
        .and_then(Value::as_object_mut);
    if let Some(entry) = entry {
        crate::credential::oidc::seal_tokens(facts.keyring(), id, provider, tokens, entry)
            .map_err(|_| crate::credential::CredentialError::Sealing("provider tokens"))?;
    }
    Ok(())
}

/// How many ways `identity` has to sign in with a first factor: its password, each
/// passkey, each account at a provider still `configured` (an account at a provider the
/// configuration dropped signs in to nothing).
fn sign_in_methods(identity: &Identity, configured: &[(String, String)]) -> usize {
    let password = usize::from(identity.credential(CredentialType::Password).is_some());
    let passkeys = crate::credential::webauthn::passkeys(identity).keys.len();
    let providers = configured
        .iter()
        .map(|(id, _)| accounts_at(identity, id))
        .sum::<usize>();
    password + passkeys + providers
}

/// How many accounts `identity` has at `provider`.
fn accounts_at(identity: &Identity, provider: &str) -> usize {
    let prefix = format!("{provider}:");
    identity.credential(CredentialType::Oidc).map_or(0, |c| {
        c.identifiers
            .iter()
            .filter(|i| i.starts_with(&prefix))
            .count()
    })
}

/// Whether `identity` has an account at `provider`.
fn linked_to(identity: &Identity, provider: &str) -> bool {
    accounts_at(identity, provider) > 0
}

/// Whether `identity` keeps a way to sign in without its accounts at `provider`.
fn keeps_a_way_without(
    identity: &Identity,
    provider: &str,
    configured: &[(String, String)],
) -> bool {
    let dropped = if configured.iter().any(|(id, _)| id == provider) {
        accounts_at(identity, provider)
    } else {
        0
    };
    sign_in_methods(identity, configured).saturating_sub(dropped) > 0
}

/// A settings form's `oidc` group (Kratos's node shapes): `link` for each provider the
/// identity has no account at, `unlink` for each it has — unless that account is its
/// only way to sign in.
pub(crate) fn settings_nodes(facts: &dyn Facts, flow: &mut Flow, identity: &Identity) {
    flow.ui.nodes.retain(|n| n.group != NodeGroup::Oidc);
    let configured = facts.oidc_providers();
    for (id, label) in &configured {
        let context = json!({ "provider": label });
        let node = if !linked_to(identity, id) {
            let text = UiText::info(1_050_002, format!("Link {label}")).with_context(context);
            Node::input(NodeGroup::Oidc, "link", InputType::Submit).label(text)
        } else if keeps_a_way_without(identity, id, &configured) {
            let text = UiText::info(1_050_003, format!("Unlink {label}")).with_context(context);
            Node::input(NodeGroup::Oidc, "unlink", InputType::Submit).label(text)
        } else {
            continue;
        };
        flow.ui.nodes.push(node.with_value(id.clone()));
    }
}

/// Removes `identity`'s account at `provider`. Refused (with the message to show) when
/// there is none, or when it is the identity's last way to sign in (accounts at
/// providers no longer `configured` do not count).
pub(crate) fn unlink(
    identity: &mut Identity,
    provider: &str,
    configured: &[(String, String)],
    now: chrono::DateTime<chrono::Utc>,
) -> std::result::Result<(), super::ui::UiText> {
    if !linked_to(identity, provider) {
        return Err(text::generic(format!(
            "No account at {provider} is linked to yours: there is nothing to unlink."
        )));
    }
    if !keeps_a_way_without(identity, provider, configured) {
        return Err(text::generic(
            "can not unlink OpenID Connect connection because it is the last remaining first \
             factor credential: add a password or a passkey first",
        ));
    }
    let prefix = format!("{provider}:");
    if let Some(credential) = identity.credentials.get_mut(&CredentialType::Oidc) {
        credential.identifiers.retain(|i| !i.starts_with(&prefix));
        if let Some(providers) = credential
            .config
            .get_mut("providers")
            .and_then(Value::as_array_mut)
        {
            providers.retain(|p| p.get("provider").and_then(Value::as_str) != Some(provider));
        }
        credential.updated_at = now;
        if credential.identifiers.is_empty() {
            identity.credentials.remove(&CredentialType::Oidc);
        }
    }
    identity.updated_at = now;
    Ok(())
}

/// A settings flow's callback: links the provider account of `claims` to the signed-in
/// identity. One already linked to another identity is refused and nothing changes.
pub(crate) async fn link_in_settings(
    facts: &dyn Facts,
    mut flow: Flow,
    claims: &Claims,
    tokens: Option<&Tokens>,
    current: &AuthenticatedSession,
    req: &FlowRequest,
) -> Result<Step<super::settings::Outcome>> {
    let label = label_of(facts, &claims.provider);
    let before = &current.identity;
    match facts
        .identity_by_identifier(CredentialType::Oidc, &identifier(claims))
        .await?
    {
        Some(owner) if owner.id == before.id => {
            flow.ui.messages.push(text::generic(format!(
                "This {label} account is already linked to yours."
            )));
            return Ok(Step::Reject(flow));
        }
        Some(_) => {
            flow.ui.messages.push(text::generic(format!(
                "can not link unknown or already existing OpenID Connect connection: this \
                 {label} account is linked to another account here. Sign in with it and \
                 unlink it there first, or use another {label} account."
            )));
            return Ok(Step::Reject(flow));
        }
        None => {}
    }
    let mut identity = before.clone();
    let now = facts.now();
    add_provider_account(&mut identity, claims, now);
    keep_tokens(facts, &mut identity, claims, tokens)?;
    identity.updated_at = now;
    let fallback = flow.clone();
    super::settings::saved(facts, flow, before, identity, Vec::new(), req, fallback)
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
    // Another provider account of the owner proves ownership as a password does.
    let mut effects = Vec::new();
    let signed = match link_on_sign_in(facts, flow, identity, Aal::Aal1, &mut effects).await? {
        Ok(signed) => signed,
        Err(refused) => return Ok(Step::Reject(refused)),
    };
    let (mut flow, identity) = (signed.flow, signed.identity);
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
    effects.push(Effect::IssueSession {
        session: session.clone(),
        token: token.hash(),
    });
    let continue_with = ContinueWith::token_for(flow.flow_type, &token)
        .into_iter()
        .collect();
    let session = AuthenticatedSession { session, identity };
    let second_factor_flow = match signed.waiting {
        Some(link) => {
            let next = carry_link(facts, link, &flow, req, &session)?;
            let id = next.id;
            effects.push(Effect::InsertFlow(next));
            Some(id)
        }
        None => None,
    };
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: login::Outcome {
            session,
            token: Some(token),
            continue_with,
            second_factor_flow,
        },
        fallback,
    }))
}

/// What a provider sign-in on a re-authentication flow (`refresh=true`) decided.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Reauthenticated {
    /// The signed-in identity's own provider account: its session refreshed in place, or
    /// the flow showing why not (a provider account linked to nobody: nothing is made).
    Step(Step<login::Outcome>),
    /// The provider account is another identity's: refused as the password refresh
    /// refuses it ([`FlowError::IdentityMismatch`]), the session unchanged. The flow (its
    /// pending sign-in spent) is to be saved.
    OtherIdentity(Flow),
}

/// A re-authentication (`refresh=true`) with the provider account of `claims`: only a
/// fresh sign-in at the provider counts (its ID token's `auth_time` no earlier than the
/// flow, see [`stale_sign_in`]), only the
/// identity of `current` may take it, and its session is refreshed in place
/// (`authenticated_at` now, `oidc` added to its methods), as the password refresh does.
/// No identity is ever made here, and none linked. (Kratos gives a re-authentication as
/// another identity a new session; identa refuses it, as its password refresh does.)
pub(crate) async fn reauthenticate(
    facts: &dyn Facts,
    mut flow: Flow,
    claims: &Claims,
    current: &AuthenticatedSession,
    req: &FlowRequest,
) -> Result<Reauthenticated> {
    if let Some(reason) = stale_sign_in(facts, &flow, claims) {
        return Ok(Reauthenticated::Step(Step::Reject(refused(flow, reason))));
    }
    let identifier = identifier(claims);
    let label = label_of(facts, &claims.provider);
    match facts
        .identity_by_identifier(CredentialType::Oidc, &identifier)
        .await?
    {
        Some(owner) if owner.id == current.identity.id => {}
        Some(_) => return Ok(Reauthenticated::OtherIdentity(flow)),
        None => {
            let reason = format!(
                "No account here signs in with this {label} account, so it cannot confirm \
                 it is you: re-authenticate with the {label} account linked to yours, or \
                 with another of your sign-in methods."
            );
            return Ok(Reauthenticated::Step(Step::Reject(refused(flow, reason))));
        }
    }
    let before = BeforeEvent::Login {
        flow_id: flow.id,
        identifier: &identifier,
    };
    if let Err(err) = facts.before(&before).await {
        show_hook_error(&mut flow.ui, err);
        return Ok(Reauthenticated::Step(Step::Reject(flow)));
    }
    let fallback = Fallback::to(flow.clone());
    let session = login::refresh_in_place(&mut flow, &current.session, method(facts.now()), req);
    let effects = vec![Effect::UpdateSession(session.clone())];
    let session = AuthenticatedSession {
        session,
        identity: current.identity.clone(),
    };
    Ok(Reauthenticated::Step(Step::Advance(Transition {
        flow,
        effects,
        outcome: login::Outcome {
            session,
            token: None,
            continue_with: Vec::new(),
            second_factor_flow: None,
        },
        fallback,
    })))
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

    /// A request from a browser with a CSRF cookie.
    fn browser() -> FlowRequest {
        FlowRequest::browser("csrf-cookie")
    }

    /// A browser login flow: only these hold a waiting link.
    fn browser_login_flow(facts: &TestFacts) -> Flow {
        login::create(
            facts,
            super::super::FlowType::Browser,
            &browser(),
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
            auth_time: None,
            raw: json!({}),
        }
    }

    /// A browser sign-in as provider account `subject`, whose `email` has an account:
    /// the login flow offering the link.
    async fn offered_link(facts: &TestFacts, subject: &str, email: &str) -> Flow {
        let c = claims(subject, email, true);
        let traits = Ok(json!({ "email": email }));
        let Decided::Link { login, .. } =
            decide(facts, browser_login_flow(facts), &c, None, traits, &api())
                .await
                .unwrap()
        else {
            panic!("not offered as a link");
        };
        login
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
        assert_eq!(token, Some(Exchanged::Token("the-session-token".into())));
        assert!(
            take_token(&facts, &mut flow, &init, &back).is_none(),
            "once"
        );
    }

    #[test]
    fn a_failed_sign_in_is_told_for_both_codes_only() {
        let facts = TestFacts::new();
        let mut flow = login_flow(&facts);
        assert!(hold_error(&facts, &mut flow).is_none(), "no exchange asked");
        let mut req = api();
        req.session_token_exchange = true;
        provider_nodes(&facts, &mut flow, &req);
        let init = flow.session_token_exchange_code.clone().unwrap();
        let back = hold_error(&facts, &mut flow).unwrap();
        assert!(take_token(&facts, &mut flow.clone(), &init, "wrong").is_none());
        assert!(take_token(&facts, &mut flow.clone(), "wrong", &back).is_none());
        let told = take_token(&facts, &mut flow, &init, &back);
        assert_eq!(told, Some(Exchanged::Failed));
        // A later try that signs in replaces the code.
        let again = hold_token(&facts, &mut flow, "the-session-token").unwrap();
        assert!(take_token(&facts, &mut flow.clone(), &init, &back).is_none());
        let token = take_token(&facts, &mut flow, &init, &again);
        assert_eq!(token, Some(Exchanged::Token("the-session-token".into())));
    }

    #[tokio::test]
    async fn a_new_account_registers_with_its_vouched_address_verified() {
        let facts = TestFacts::new();
        let flow = login_flow(&facts);
        let c = claims("s-1", "New@Example.com", true);
        let traits = Ok(json!({ "email": "New@Example.com" }));
        let Decided::Register(step) = decide(&facts, flow, &c, None, traits, &api())
            .await
            .unwrap()
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
    async fn after_a_provider_sign_up_only_vouched_accounts_override_account_only() {
        use crate::flow::{AfterProviderRegistration, AfterRegistration};
        let sign_up = |after_provider, verified| async move {
            let mut facts = TestFacts::new();
            facts.config.registration.after = AfterRegistration::AccountOnly;
            facts.config.registration.after_provider = after_provider;
            let c = claims("s-9", "new@example.com", verified);
            let traits = Ok(json!({ "email": "new@example.com" }));
            let flow = login_flow(&facts);
            let Decided::Register(step) = decide(&facts, flow, &c, None, traits, &api())
                .await
                .unwrap()
            else {
                panic!("signed in an unknown account");
            };
            effect_names(&advanced(step).effects).contains(&"issue_session")
        };
        let when_vouched = AfterProviderRegistration::IssueSessionWhenVouched;
        assert!(sign_up(when_vouched, true).await);
        assert!(!sign_up(when_vouched, false).await);
        assert!(!sign_up(AfterProviderRegistration::AsAfter, true).await);

        // No verifiable address at all: nothing was vouched for, so no session.
        let mut facts = TestFacts::new();
        facts.config.registration.after = AfterRegistration::AccountOnly;
        facts.config.registration.after_provider = when_vouched;
        let mut identity = facts.add_identity("none@example.com").await;
        identity.verifiable_addresses.clear();
        assert!(matches!(
            after_registration(&facts.config, &identity),
            AfterRegistration::AccountOnly
        ));
    }

    #[tokio::test]
    async fn an_unvouched_address_is_sent_a_verification_code() {
        let facts = TestFacts::new();
        let c = claims("s-2", "maybe@example.com", false);
        let traits = Ok(json!({ "email": "maybe@example.com" }));
        let flow = login_flow(&facts);
        let Decided::Register(step) = decide(&facts, flow, &c, None, traits, &api())
            .await
            .unwrap()
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
        let Decided::Link { spent: None, login } = decide(
            &facts,
            browser_login_flow(&facts),
            &c,
            None,
            traits.clone(),
            &api(),
        )
        .await
        .unwrap() else {
            panic!("signed in an account nobody linked");
        };
        assert_eq!(message_ids(&login), [1_010_016]);

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
        let Decided::SignIn(step) = decide(&facts, login_flow(&facts), &c, None, traits, &api())
            .await
            .unwrap()
        else {
            panic!("registered a known account");
        };
        let t = advanced(step);
        assert_eq!(t.outcome.session.identity.id, existing.id);
        assert_eq!(effect_names(&t.effects), ["issue_session"]);
    }

    /// A taken address on a registration flow: the registration flow says so (4000027)
    /// and a new login flow holds the link, sealed, with Kratos's 1010016.
    #[tokio::test]
    async fn a_taken_address_offers_the_link_on_a_new_login_flow() {
        let facts = TestFacts::new();
        facts.add_identity("kept@example.com").await;
        let registration =
            registration::create(&facts, super::super::FlowType::Browser, &browser(), None)
                .unwrap();
        let c = claims("s-6", "Kept@Example.com", true);
        let traits = Ok(json!({ "email": "Kept@Example.com" }));
        let Decided::Link {
            spent: Some(spent),
            login,
        } = decide(&facts, registration.clone(), &c, None, traits, &browser())
            .await
            .unwrap()
        else {
            panic!("not offered as a link");
        };
        assert_eq!(spent.id, registration.id);
        assert_eq!(message_ids(&spent), [4_000_027]);
        assert_eq!(login.kind, FlowKind::Login);
        assert_eq!(message_ids(&login), [1_010_016]);
        let stored = serde_json::to_string(&login.internal).unwrap();
        assert!(
            !stored.contains("s-6") && !stored.contains("kept@"),
            "{stored}"
        );
        let link = pending_link(&facts, &login).unwrap().unwrap();
        assert_eq!(
            (link.subject.as_str(), link.address.as_str()),
            ("s-6", "kept@example.com")
        );
        let mut moved = login.clone();
        moved.id = Uuid::new_v4();
        assert!(pending_link(&facts, &moved).is_err(), "sealed to its flow");
    }

    /// The link is added to the identity that signed in, in the write that already
    /// stores it; an identity without the address is refused (4010009), the link kept.
    #[tokio::test]
    async fn a_signed_in_owner_takes_the_link_and_nobody_else_does() {
        let facts = TestFacts::new();
        let owner = facts.add_identity("own@example.com").await;
        let other = facts.add_identity("other@example.com").await;
        let login = offered_link(&facts, "s-7", "own@example.com").await;

        let mut effects = Vec::new();
        let Err(refused) = link_on_sign_in(
            &facts,
            login.clone(),
            other.clone(),
            Aal::Aal1,
            &mut effects,
        )
        .await
        .unwrap() else {
            panic!("linked to an account without the address");
        };
        assert_eq!(message_ids(&refused), [4_010_009]);
        assert!(effects.is_empty());
        assert!(refused.internal.oidc_link.is_some(), "still waiting");

        let mut effects = vec![Effect::RehashPassword(owner.clone())];
        let Ok(SignedIn {
            flow,
            identity: linked,
            waiting: None,
        }) = link_on_sign_in(&facts, refused, owner.clone(), Aal::Aal1, &mut effects)
            .await
            .unwrap()
        else {
            panic!("the owner was refused");
        };
        assert!(flow.internal.oidc_link.is_none(), "spent");
        let ids = |i: &Identity| {
            i.credential(CredentialType::Oidc)
                .unwrap()
                .identifiers
                .clone()
        };
        assert_eq!(ids(&linked), ["example:s-7"]);
        assert_eq!(effect_names(&effects), ["rehash_password"], "one write");
        let (Effect::RehashPassword(written) | Effect::UpdateIdentity(written)) = &effects[0]
        else {
            unreachable!()
        };
        assert_eq!(ids(written), ["example:s-7"]);

        let mut effects = Vec::new();
        let Ok(SignedIn { identity: same, .. }) =
            link_on_sign_in(&facts, flow, linked, Aal::Aal1, &mut effects)
                .await
                .unwrap()
        else {
            panic!("refused without a link");
        };
        assert!(effects.is_empty(), "nothing waits any more");
        assert_eq!(ids(&same), ["example:s-7"]);
    }

    /// A re-authentication with the provider refreshes the session as the password
    /// refresh does, through the same function: the flow passes and a passkey ceremony
    /// shown on it before is dropped (the OIDC copy used to keep it).
    #[tokio::test]
    async fn a_provider_refresh_refreshes_in_place_and_drops_pending_ceremonies() {
        let facts = TestFacts::new();
        let mut identity = facts.add_identity("r@example.com").await;
        let c = Claims {
            auth_time: Some(facts.now()),
            ..claims("s-9", "r@example.com", true)
        };
        add_provider_account(&mut identity, &c, facts.now());
        facts
            .identities
            .lock()
            .unwrap()
            .retain(|i| i.id != identity.id);
        facts.identities.lock().unwrap().push(identity.clone());
        let (session, _) = Session::issue(
            &identity,
            vec![method(facts.now())],
            None,
            facts.now(),
            chrono::Duration::hours(1),
            facts.keyring(),
        )
        .unwrap();
        let current = AuthenticatedSession { session, identity };
        let mut flow = login::create(
            &facts,
            super::super::FlowType::Browser,
            &browser(),
            LoginIntent::Refresh,
            Some(&current),
        )
        .unwrap();
        flow.internal.passkey = Some(json!({ "challenge": "shown before" }));
        flow.internal.security_key = Some(json!({ "challenge": "shown before" }));

        let Reauthenticated::Step(step) = reauthenticate(&facts, flow, &c, &current, &browser())
            .await
            .unwrap()
        else {
            panic!("the owner's own provider account was refused");
        };
        let t = advanced(step);
        assert_eq!(t.flow.state, FlowState::PassedChallenge);
        assert!(t.flow.internal.passkey.is_none(), "passkey ceremony kept");
        assert!(t.flow.internal.security_key.is_none(), "key ceremony kept");
        assert_eq!(effect_names(&t.effects), ["update_session"]);
        assert!(t.outcome.token.is_none(), "refreshed in place");
        assert_eq!(t.outcome.session.session.id, current.session.id);
        assert_eq!(t.outcome.session.session.authenticated_at, facts.now());
    }

    /// An app's ID token is taken only on a login or registration API flow choosing its
    /// method: a re-authentication is refused with what is true now (a provider
    /// re-authenticates from a browser), a second factor with "not yet".
    #[tokio::test]
    async fn a_native_id_token_is_refused_on_a_refresh_or_second_factor_flow() {
        let facts = TestFacts::new();
        let reason = |flow: &Flow| match check_native_start(flow, None) {
            Err(FlowError::State { reason, .. }) => reason,
            other => panic!("not refused by state: {other:?}"),
        };
        let fresh = login_flow(&facts);
        check_native_start(&fresh, None).unwrap();

        let mut refresh = fresh.clone();
        refresh.refresh = true;
        let text = reason(&refresh);
        assert!(
            text.contains("re-authenticates from a browser login flow")
                && text.contains("an app re-authenticates with another method"),
            "{text}"
        );
        assert!(!text.contains("yet"), "{text}");

        let mut step_up = fresh.clone();
        step_up.requested_aal = Aal::Aal2;
        assert!(reason(&step_up).contains("cannot complete a second factor yet"));

        let browser = browser_login_flow(&facts);
        assert!(reason(&browser).contains("for native apps"));
        let mut done = fresh;
        done.state = FlowState::PassedChallenge;
        assert!(reason(&done).contains("already complete"));
    }

    /// A provider account the owner already has signs in and takes the waiting link too.
    #[tokio::test]
    async fn another_provider_account_of_the_owner_takes_the_link() {
        let facts = TestFacts::new();
        let mut owner = facts.add_identity("both@example.com").await;
        let old = Claims {
            provider: "older".into(),
            ..claims("s-8", "both@example.com", true)
        };
        add_provider_account(&mut owner, &old, facts.now());
        facts
            .identities
            .lock()
            .unwrap()
            .retain(|i| i.id != owner.id);
        facts.identities.lock().unwrap().push(owner.clone());
        let login = offered_link(&facts, "s-9", "both@example.com").await;
        let traits = Ok(json!({ "email": "both@example.com" }));
        let Decided::SignIn(step) = decide(&facts, login, &old, None, traits, &api())
            .await
            .unwrap()
        else {
            panic!("the owner's provider account did not sign in");
        };
        let t = advanced(step);
        assert_eq!(
            effect_names(&t.effects),
            ["update_identity", "issue_session"]
        );
        let ids = &t
            .outcome
            .session
            .identity
            .credential(CredentialType::Oidc)
            .unwrap()
            .identifiers;
        assert_eq!(ids, &["older:s-8", "example:s-9"]);
    }

    /// Unlinking removes only that provider's account, and never the last way to sign in.
    #[tokio::test]
    async fn unlink_keeps_a_way_to_sign_in() {
        let facts = TestFacts::new();
        let now = facts.now();
        let mut identity = facts.add_identity("u@example.com").await;
        for (provider, subject) in [("one", "a"), ("two", "b")] {
            let c = Claims {
                provider: provider.into(),
                ..claims(subject, "u@example.com", true)
            };
            add_provider_account(&mut identity, &c, now);
        }
        let configured = [
            ("one".to_owned(), "One".to_owned()),
            ("two".to_owned(), "Two".to_owned()),
        ];
        assert_eq!(sign_in_methods(&identity, &configured), 3);
        let refused = unlink(&mut identity, "three", &configured, now).unwrap_err();
        assert_eq!(refused.id, 4_000_001);
        unlink(&mut identity, "one", &configured, now).unwrap();
        let oidc = identity.credential(CredentialType::Oidc).unwrap();
        assert_eq!(oidc.identifiers, ["two:b"]);
        assert_eq!(oidc.config["providers"].as_array().unwrap().len(), 1);

        identity.credentials.remove(&CredentialType::Password);
        let refused = unlink(&mut identity, "two", &configured, now).unwrap_err();
        assert!(refused.text.contains("last remaining first factor"));
        assert!(linked_to(&identity, "two"), "nothing removed");
    }

    /// An account at a provider the configuration dropped signs in to nothing: it does
    /// not count as a way to sign in, so the last configured one stays.
    #[tokio::test]
    async fn an_account_at_a_dropped_provider_is_no_way_to_sign_in() {
        let facts = TestFacts::new();
        let now = facts.now();
        let mut identity = facts.add_identity("d@example.com").await;
        identity.credentials.remove(&CredentialType::Password);
        for (provider, subject) in [("kept", "a"), ("dropped", "b")] {
            let c = Claims {
                provider: provider.into(),
                ..claims(subject, "d@example.com", true)
            };
            add_provider_account(&mut identity, &c, now);
        }
        let configured = [("kept".to_owned(), "Kept".to_owned())];
        assert_eq!(sign_in_methods(&identity, &configured), 1);
        let refused = unlink(&mut identity, "kept", &configured, now).unwrap_err();
        assert!(refused.text.contains("last remaining first factor"));
        assert!(linked_to(&identity, "kept"), "nothing removed");
        unlink(&mut identity, "dropped", &configured, now).unwrap();
        assert!(!linked_to(&identity, "dropped"));
    }

    /// An API flow has no CSRF cookie to bind a waiting link to a browser: a taken
    /// address is refused (4000027) and nothing waits on the flow.
    #[tokio::test]
    async fn an_api_flow_is_not_offered_the_link() {
        let facts = TestFacts::new();
        facts.add_identity("api@example.com").await;
        let c = claims("s-10", "api@example.com", true);
        let traits = Ok(json!({ "email": "api@example.com" }));
        let Decided::Register(step) = decide(&facts, login_flow(&facts), &c, None, traits, &api())
            .await
            .unwrap()
        else {
            panic!("offered a link on an API flow");
        };
        let flow = rejected(step);
        assert_eq!(message_ids(&flow), [4_000_027]);
        assert!(flow.internal.oidc_link.is_none());
    }

    /// A first factor of an identity with a second factor does not link: the link comes
    /// back to be carried to the second-factor flow, where a session at `aal2` takes it.
    #[tokio::test]
    async fn a_second_factor_owed_carries_the_link_to_the_second_factor_flow() {
        let facts = TestFacts::new();
        let mut owner = facts.add_identity("mfa@example.com").await;
        owner.credentials.insert(
            CredentialType::Totp,
            Credential {
                id: Uuid::now_v7(),
                credential_type: CredentialType::Totp,
                identifiers: vec![owner.id.to_string()],
                config: json!({}),
                version: 0,
                created_at: facts.now(),
                updated_at: facts.now(),
            },
        );
        let login = offered_link(&facts, "s-11", "mfa@example.com").await;
        let mut effects = Vec::new();
        let Ok(SignedIn {
            flow,
            identity,
            waiting: Some(waiting),
        }) = link_on_sign_in(&facts, login, owner.clone(), Aal::Aal1, &mut effects)
            .await
            .unwrap()
        else {
            panic!("not carried");
        };
        assert!(effects.is_empty(), "nothing linked at the first factor");
        assert!(identity.credential(CredentialType::Oidc).is_none());
        assert!(
            flow.internal.oidc_link.is_none(),
            "moved off the first flow"
        );

        let (session, _) = Session::issue(
            &identity,
            vec![method(facts.now())],
            None,
            facts.now(),
            facts.session_lifespan(),
            facts.keyring(),
        )
        .unwrap();
        let current = AuthenticatedSession { session, identity };
        let next = carry_link(&facts, waiting, &flow, &browser(), &current).unwrap();
        assert_eq!(next.requested_aal, Aal::Aal2);
        assert!(message_ids(&next).contains(&1_900_003));
        let Ok(SignedIn {
            identity: linked,
            waiting: None,
            ..
        }) = link_on_sign_in(&facts, next, owner, Aal::Aal2, &mut effects)
            .await
            .unwrap()
        else {
            panic!("not linked at aal2");
        };
        let ids = &linked.credential(CredentialType::Oidc).unwrap().identifiers;
        assert_eq!(ids, &["example:s-11"]);
        assert_eq!(effect_names(&effects), ["update_identity"]);
    }

    #[tokio::test]
    async fn a_new_account_is_not_registered_while_sign_up_is_disabled() {
        let mut facts = TestFacts::new();
        let flow = login_flow(&facts);
        facts.config.registration.enabled = false;
        let c = claims("s-5", "closed@example.com", true);
        let traits = Ok(json!({ "email": "closed@example.com" }));
        let Decided::Register(step) = decide(&facts, flow, &c, None, traits, &api())
            .await
            .unwrap()
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
        let Decided::Register(step) = decide(&facts, login_flow(&facts), &c, None, traits, &api())
            .await
            .unwrap()
        else {
            panic!("signed in");
        };
        let flow = rejected(step);
        assert_eq!(message_ids(&flow), [4_000_001]);
        assert_eq!(flow.ui.messages[0].text, "no email shared");
    }

    /// A native ID token is taken on a login API flow choosing its method, not on a
    /// browser flow, a second-factor flow, or a completed one.
    #[test]
    fn an_id_token_is_taken_on_an_api_flow_only() {
        let facts = TestFacts::new();
        let flow = login_flow(&facts);
        assert!(check_native_start(&flow, None).is_ok());
        let browser = browser_login_flow(&facts);
        let refused = check_native_start(&browser, None).unwrap_err();
        assert!(
            refused.to_string().contains("is for native apps"),
            "{refused}"
        );
        let mut second = login_flow(&facts);
        second.requested_aal = Aal::Aal2;
        assert!(check_native_start(&second, None).is_err());
        let mut done = login_flow(&facts);
        done.state = FlowState::PassedChallenge;
        assert!(check_native_start(&done, None).is_err());
    }
}
