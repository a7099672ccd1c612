//! Settings: a signed-in user changes their profile (traits), password, or second factors
//! and passkeys. Changing a password, an identifier, an address or a factor is sensitive:
//! it needs a session authenticated within `privileged_session_max_age`, otherwise the
//! answer is [`FlowError::RefreshRequired`] (re-authenticate with a login flow with
//! [`LoginIntent::Refresh`](super::login::LoginIntent::Refresh), then submit again). An
//! identity with a second factor changes nothing from an `aal1` session. A new email
//! address is unverified and is sent a verification code.
//!
//! States: `show_form` ─(a valid change)─▶ `success` (and further changes stay there).
//! Effects: update identity; revoke the other sessions (after a password change, when
//! configured); a verification flow and its mail per new email address. (Feature `oidc`:
//! the `oidc` group's link/unlink buttons and unlinking are [`super::oidc`]'s.)

use serde_json::Value;
use uuid::Uuid;

use super::FlowRequest;
use super::code::verify_new_addresses;
use super::form::{
    PasswordInput, method_button, password_nodes, refill_traits, show_input_error, trait_nodes,
};
use super::lifecycle::new_flow;
use super::text;
use super::ui::{ImageAttributes, InputType, Meta, Node, NodeAttributes, NodeGroup, NodeType};
use super::webauthn::{refusal_message, settings_nodes};
use super::{Answers, ContinueWith, Effect, Facts, Fallback, Flow, FlowError, FlowKind};
use super::{FlowState, FlowType, OtherSessions, Result, Step, Transition};
use crate::credential::CredentialError;
use crate::credential::password::{self, Password};
use crate::credential::totp::{self, TotpSecret};
use crate::credential::webauthn::{
    self as cred_webauthn, Ceremony, Refusal, passkey_is_last_sign_in, passkeys, security_keys,
    sign_in_identifiers,
};
use crate::credential::{breached, lookup};
use crate::hook::AfterEvent;
use crate::identity::{Credential, CredentialType, Identity, check_traits};
use crate::session::{AuthenticatedSession, SessionError, SessionRefusal};

/// What a user submits to a settings flow. Its `Debug` shows which change, not its
/// secrets.
#[non_exhaustive]
pub enum SettingsSubmission {
    /// New traits (Kratos's `method: "profile"`).
    Profile {
        /// The whole traits object.
        traits: Value,
    },
    /// A new password (Kratos's `method: "password"`).
    Password {
        /// The new password.
        password: Password,
    },
    /// Confirms the TOTP secret the flow shows with a code from the authenticator app
    /// (Kratos's `method: "totp"` with `totp_code`).
    Totp {
        /// The code.
        code: String,
    },
    /// Removes the TOTP authenticator (Kratos's `method: "totp"` with `totp_unlink`).
    TotpUnlink,
    /// Makes a new set of backup codes and shows it (Kratos's `method: "lookup_secret"`
    /// with `lookup_secret_regenerate`); nothing is stored until it is confirmed.
    LookupRegenerate,
    /// Stores the set shown, replacing any earlier one (`lookup_secret_confirm`).
    LookupConfirm,
    /// Removes the backup codes (`lookup_secret_disable`).
    LookupDisable,
    /// Adds the security key that answered the flow's challenge (Kratos's
    /// `method: "webauthn"` with `webauthn_register`, the JSON of the browser's
    /// credential, and `webauthn_register_displayname`).
    WebauthnRegister {
        /// The owner's name for the key.
        display_name: String,
        /// The answer, as JSON.
        response: String,
    },
    /// Removes a security key (`webauthn_remove`: the id its remove button carries).
    WebauthnRemove {
        /// The key's id.
        id: String,
    },
    /// Adds the passkey that answered the flow's challenge (Kratos's `method: "passkey"`
    /// with `passkey_settings_register`).
    PasskeyRegister {
        /// The answer, as JSON.
        response: String,
    },
    /// Removes a passkey (`passkey_remove`). Refused for the last way to sign in.
    PasskeyRemove {
        /// The key's id.
        id: String,
    },
    /// (Feature `oidc`.) Unlinks a provider account (Kratos's `method: "oidc"` with
    /// `unlink`: the provider id its button carries). Refused for the last way to sign
    /// in. (Linking goes through the provider: `Identa::oidc().start` on a settings flow.)
    #[cfg(feature = "oidc")]
    OidcUnlink {
        /// The provider id.
        provider: String,
    },
}

impl std::fmt::Debug for SettingsSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Profile { .. } => "Profile",
            Self::Password { .. } => "Password",
            Self::Totp { .. } => "Totp",
            Self::TotpUnlink => "TotpUnlink",
            Self::LookupRegenerate => "LookupRegenerate",
            Self::LookupConfirm => "LookupConfirm",
            Self::LookupDisable => "LookupDisable",
            Self::WebauthnRegister { .. } => "WebauthnRegister",
            Self::WebauthnRemove { .. } => "WebauthnRemove",
            Self::PasskeyRegister { .. } => "PasskeyRegister",
            Self::PasskeyRemove { .. } => "PasskeyRemove",
            #[cfg(feature = "oidc")]
            Self::OidcUnlink { .. } => "OidcUnlink",
        };
        f.debug_struct(name).finish_non_exhaustive()
    }
}

/// Saved settings.
#[derive(Debug)]
pub struct SettingsSaved {
    /// The flow, now `success`, showing the saved values.
    pub flow: Flow,
    /// The identity as saved.
    pub identity: Identity,
    /// Verification flows for new addresses.
    pub continue_with: Vec<ContinueWith>,
}

/// What a settings transition tells its caller beyond the flow.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) identity: Identity,
    pub(crate) continue_with: Vec<ContinueWith>,
}

impl Answers for Outcome {
    type Answer = SettingsSaved;

    fn after_event(&self, flow_id: Uuid) -> Option<AfterEvent<'_>> {
        Some(AfterEvent::Settings {
            flow_id,
            identity: &self.identity,
        })
    }

    /// The saved flow, with its secrets (a TOTP secret to enrol) filled in for showing.
    fn answer(self, facts: &dyn Facts, mut flow: Flow) -> SettingsSaved {
        hydrate(facts, &mut flow, &self.identity);
        SettingsSaved {
            flow,
            identity: self.identity,
            continue_with: self.continue_with,
        }
    }
}

/// A new settings flow for the signed-in user (not stored).
pub(crate) fn create(
    facts: &dyn Facts,
    flow_type: FlowType,
    req: &FlowRequest,
    current: Option<&AuthenticatedSession>,
) -> Result<Flow> {
    let current = current.ok_or(SessionError::Inactive(SessionRefusal::Unknown))?;
    require_highest_aal(current)?;
    settings_flow_for(facts, flow_type, req, current)
}

/// Judges a change.
pub(crate) async fn submit(
    facts: &dyn Facts,
    mut flow: Flow,
    submission: SettingsSubmission,
    req: &FlowRequest,
    current: Option<&AuthenticatedSession>,
) -> Result<Step<Outcome>> {
    let current = current.ok_or(SessionError::Inactive(SessionRefusal::Unknown))?;
    if flow.identity_id != Some(current.identity.id) {
        return Err(FlowError::IdentityMismatch);
    }
    require_highest_aal(current)?;
    let before = &current.identity;
    // What the form is if the change is refused when it is saved: as it was before this
    // submission (no backup codes it generated), with fresh WebAuthn challenges (the one
    // answered is spent) and the typed values.
    let mut fallback = flow.clone();
    settings_nodes(facts, &mut fallback, before)?;
    let mut identity = current.identity.clone();
    let now = facts.now();
    let mut effects = Vec::new();
    let privileged = || require_privileged(facts, current);
    match submission {
        SettingsSubmission::Profile { traits } => {
            refill_traits(&mut flow.ui, &traits);
            refill_traits(&mut fallback.ui, &traits);
            let schema = facts.schemas().get(&identity.schema_id)?;
            match identity.set_traits(&schema, traits, now) {
                Ok(extracted) => cred_webauthn::follow_traits(&mut identity, &extracted, now),
                Err(err) => {
                    show_input_error(&mut flow.ui, err.into())?;
                    return Ok(Step::Reject(flow));
                }
            }
            if changes_sign_in_or_addresses(before, &identity) {
                privileged()?;
            }
        }
        SettingsSubmission::Password { password } => {
            privileged()?;
            let old = before
                .credential(CredentialType::Password)
                .and_then(Credential::hashed_password);
            if old.is_some() && facts.verify_password(&password, old).await.unwrap_or(false) {
                flow.ui
                    .add_message(Some("password"), text::new_password_same_as_old());
                return Ok(Step::Reject(flow));
            }
            let history = facts.password_config().history.len();
            if used_before(facts, identity.id, &password).await? {
                flow.ui
                    .add_message(Some("password"), text::new_password_used_before(history));
                return Ok(Step::Reject(flow));
            }
            if let Err(err) = set_password(facts, &mut identity, &password).await {
                show_input_error(&mut flow.ui, err)?;
                return Ok(Step::Reject(flow));
            }
            // Only identa's own argon2id hashes are remembered: a previous hash still in an
            // imported format (md5-crypt, `{SSHA}`, salted SHA, HMAC, bcrypt…) would keep a
            // cheaply crackable record of an old password at rest, so that one is dropped
            // with the credential and is not in the history.
            if let Some(old) = old.filter(|h| history > 0 && h.starts_with("$argon2id$")) {
                effects.push(Effect::RememberPassword {
                    identity_id: identity.id,
                    hash: old.to_owned(),
                    keep: history,
                });
            }
            if facts.config().settings.after_password_change == OtherSessions::Revoke {
                effects.push(Effect::RevokeSessions {
                    identity_id: identity.id,
                    keep: Some(current.session.id),
                });
            }
        }
        SettingsSubmission::Totp { code } => {
            privileged()?;
            let pending = flow.internal.pending_totp.as_deref().and_then(|sealed| {
                TotpSecret::open(facts.keyring(), &totp::pending_context(flow.id), sealed)
            });
            let Some(secret) = pending else {
                flow.ui
                    .add_message(Some("totp_code"), text::no_totp_device());
                return Ok(Step::Reject(flow));
            };
            let unix = u64::try_from(now.timestamp()).unwrap_or(0);
            let Some(step) = secret.accept(&code, unix, None) else {
                flow.ui.add_message(Some("totp_code"), text::totp_wrong());
                return Ok(Step::Reject(flow));
            };
            let sealed = secret
                .seal(facts.keyring(), &totp::credential_context(identity.id))
                .ok_or(CredentialError::Sealing("TOTP secret"))?;
            identity.credentials.insert(
                CredentialType::Totp,
                second_factor(
                    &identity,
                    CredentialType::Totp,
                    totp::credential_config(&sealed, Some(step)),
                    now,
                ),
            );
            identity.updated_at = now;
        }
        SettingsSubmission::LookupRegenerate => {
            privileged()?;
            let codes = lookup::generate_set();
            flow.internal.pending_lookup = Some(
                lookup::seal_pending(facts.keyring(), flow.id, &codes)
                    .ok_or(CredentialError::Sealing("backup codes"))?,
            );
        }
        SettingsSubmission::LookupConfirm => {
            privileged()?;
            let pending = flow
                .internal
                .pending_lookup
                .as_deref()
                .and_then(|sealed| lookup::open_pending(facts.keyring(), flow.id, sealed));
            let Some(codes) = pending else {
                flow.ui.messages.push(text::generic(
                    "There are no new backup codes to confirm: generate them first.",
                ));
                return Ok(Step::Reject(flow));
            };
            let config = lookup::config_for(facts.keyring(), identity.id, &codes);
            identity.credentials.insert(
                CredentialType::LookupSecret,
                second_factor(&identity, CredentialType::LookupSecret, config, now),
            );
            identity.updated_at = now;
            flow.internal.pending_lookup = None;
        }
        SettingsSubmission::LookupDisable => {
            privileged()?;
            flow.internal.pending_lookup = None;
            if identity
                .credentials
                .remove(&CredentialType::LookupSecret)
                .is_none()
            {
                flow.ui
                    .messages
                    .push(text::generic("There are no backup codes to disable."));
                return Ok(Step::Reject(flow));
            }
            identity.updated_at = now;
        }
        SettingsSubmission::WebauthnRegister {
            display_name,
            response,
        } => {
            privileged()?;
            let ceremony = Ceremony::from_value(flow.internal.security_key.as_ref());
            let added = match facts.webauthn() {
                Some((rp, _)) => {
                    cred_webauthn::finish_security_key_registration(rp, ceremony, &response)
                }
                None => Err(Refusal::NoCeremony),
            };
            let key = match added {
                Ok(key) => key,
                Err(refusal) => {
                    settings_nodes(facts, &mut flow, before)?;
                    flow.ui
                        .add_message(Some("webauthn_register"), refusal_message(&refusal));
                    return Ok(Step::Reject(flow));
                }
            };
            let mut keys = security_keys(&identity);
            if !keys.add(key, key_name(&display_name, "Security key"), now) {
                settings_nodes(facts, &mut flow, before)?;
                flow.ui
                    .add_message(Some("webauthn_register"), text::key_already_registered());
                return Ok(Step::Reject(flow));
            }
            cred_webauthn::store_security_keys(&mut identity, &keys, now);
        }
        SettingsSubmission::WebauthnRemove { id } => {
            privileged()?;
            let mut keys = security_keys(&identity);
            if !keys.remove(&id) {
                flow.ui.messages.push(text::no_webauthn_device());
                return Ok(Step::Reject(flow));
            }
            cred_webauthn::store_security_keys(&mut identity, &keys, now);
        }
        SettingsSubmission::PasskeyRegister { response } => {
            privileged()?;
            let ceremony = Ceremony::from_value(flow.internal.passkey.as_ref());
            let added = match facts.webauthn() {
                Some((rp, _)) => cred_webauthn::finish_passkey_registration(
                    rp, ceremony, &response,
                )
                .and_then(|(user, key)| {
                    if user == identity.id {
                        Ok(key)
                    } else {
                        Err(Refusal::NoCeremony)
                    }
                }),
                None => Err(Refusal::NoCeremony),
            };
            let sign_in = passkey_sign_in(facts, &identity)?;
            let key = match added {
                Ok(key) if !sign_in.is_empty() => key,
                Ok(_) => {
                    settings_nodes(facts, &mut flow, before)?;
                    flow.ui.messages.push(text::generic(
                        "Your profile has no identifier to sign in with a passkey by.",
                    ));
                    return Ok(Step::Reject(flow));
                }
                Err(refusal) => {
                    settings_nodes(facts, &mut flow, before)?;
                    flow.ui
                        .add_message(Some("passkey_settings_register"), refusal_message(&refusal));
                    return Ok(Step::Reject(flow));
                }
            };
            let mut keys = passkeys(&identity);
            let name = sign_in.first().cloned().unwrap_or_default();
            if !keys.add(key, name, now) {
                settings_nodes(facts, &mut flow, before)?;
                flow.ui.add_message(
                    Some("passkey_settings_register"),
                    text::key_already_registered(),
                );
                return Ok(Step::Reject(flow));
            }
            cred_webauthn::store_passkeys(&mut identity, &keys, sign_in, now);
        }
        SettingsSubmission::PasskeyRemove { id } => {
            privileged()?;
            if passkey_is_last_sign_in(&identity) {
                flow.ui.messages.push(text::last_first_factor());
                return Ok(Step::Reject(flow));
            }
            let mut keys = passkeys(&identity);
            if !keys.remove(&id) {
                flow.ui.messages.push(text::no_webauthn_device());
                return Ok(Step::Reject(flow));
            }
            let sign_in = passkey_sign_in(facts, &identity)?;
            cred_webauthn::store_passkeys(&mut identity, &keys, sign_in, now);
        }
        SettingsSubmission::TotpUnlink => {
            privileged()?;
            if identity.credentials.remove(&CredentialType::Totp).is_none() {
                flow.ui.messages.push(text::no_totp_device());
                return Ok(Step::Reject(flow));
            }
            identity.updated_at = now;
        }
        #[cfg(feature = "oidc")]
        SettingsSubmission::OidcUnlink { provider } => {
            privileged()?;
            if let Err(refusal) =
                super::oidc::unlink(&mut identity, &provider, &facts.oidc_providers(), now)
            {
                flow.ui.messages.push(refusal);
                return Ok(Step::Reject(flow));
            }
        }
    }
    saved(facts, flow, before, identity, effects, req, fallback)
}

/// A valid change to `before`, now `identity`: the flow showing it saved (`success`),
/// the identity written first among `effects`, verification of new addresses.
pub(crate) fn saved(
    facts: &dyn Facts,
    mut flow: Flow,
    before: &Identity,
    identity: Identity,
    mut effects: Vec<Effect>,
    req: &FlowRequest,
    fallback: Flow,
) -> Result<Step<Outcome>> {
    let fallback = Fallback::to(fallback);
    totp_nodes(facts, &mut flow, &identity)?;
    lookup_nodes(&mut flow, &identity);
    settings_nodes(facts, &mut flow, &identity)?;
    #[cfg(feature = "oidc")]
    super::oidc::settings_nodes(facts, &mut flow, &identity);

    let (verification, continue_with) = verify_new_addresses(
        facts,
        &identity,
        &before.verifiable_addresses,
        flow.flow_type,
        req,
    )?;
    flow.state = FlowState::Success;
    refill_traits(&mut flow.ui, &identity.traits);
    flow.ui.messages = vec![text::settings_saved()];
    flow.continue_with = continue_with.clone();

    effects.insert(0, Effect::UpdateIdentity(identity.clone()));
    effects.extend(verification);
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: Outcome {
            identity,
            continue_with,
        },
        fallback,
    }))
}

/// Whether `password` is one of identity `id`'s previous passwords the history keeps
/// (each compared through the hashing queue; none when the history is off).
async fn used_before(facts: &dyn Facts, id: uuid::Uuid, password: &Password) -> Result<bool> {
    for previous in facts.password_history(id).await? {
        if facts
            .verify_password(password, Some(&previous))
            .await
            .unwrap_or(false)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Checks the policy, hashes, and puts the password on the identity (not stored).
async fn set_password(
    facts: &dyn Facts,
    identity: &mut Identity,
    password: &Password,
) -> Result<()> {
    let schema = facts.schemas().get(&identity.schema_id)?;
    let identifiers = check_traits(&schema, &identity.traits)?.password_identifiers;
    breached::check_new_password(
        facts.password_config(),
        facts.breached_passwords(),
        password,
        &identifiers,
    )
    .await
    .map_err(CredentialError::Policy)?;
    let hash = facts.hash_password(password).await?;
    password::set_on(identity, identifiers, hash, facts.now());
    Ok(())
}

/// What an identity's traits let it sign in with a passkey by.
fn passkey_sign_in(facts: &dyn Facts, identity: &Identity) -> Result<Vec<String>> {
    let schema = facts.schemas().get(&identity.schema_id)?;
    Ok(sign_in_identifiers(&check_traits(
        &schema,
        &identity.traits,
    )?))
}

/// A second-factor credential (TOTP, backup codes) of `identity`, identified by its id.
fn second_factor(
    identity: &Identity,
    credential_type: CredentialType,
    config: Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Credential {
    Credential {
        id: Uuid::new_v4(),
        credential_type,
        identifiers: vec![identity.id.to_string()],
        config,
        version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// A settings flow (not stored) for the session's identity.
pub(crate) fn settings_flow_for(
    facts: &dyn Facts,
    flow_type: FlowType,
    req: &FlowRequest,
    current: &AuthenticatedSession,
) -> Result<Flow> {
    let mut flow = new_flow(
        facts,
        FlowKind::Settings,
        flow_type,
        req,
        facts.config().settings.lifespan,
        FlowState::ShowForm,
    )?;
    flow.identity_id = Some(current.identity.id);
    flow.session_id = Some(current.session.id);
    let schema = facts.schemas().get(&current.identity.schema_id)?;
    flow.ui.nodes.extend(trait_nodes(
        &schema.trait_fields(),
        NodeGroup::Profile,
        &current.identity.traits,
    ));
    flow.ui.nodes.push(method_button(
        NodeGroup::Profile,
        "profile",
        text::label_save(),
    ));
    flow.ui
        .nodes
        .extend(password_nodes(PasswordInput::New, text::label_save()));
    totp_nodes(facts, &mut flow, &current.identity)?;
    lookup_nodes(&mut flow, &current.identity);
    settings_nodes(facts, &mut flow, &current.identity)?;
    #[cfg(feature = "oidc")]
    super::oidc::settings_nodes(facts, &mut flow, &current.identity);
    Ok(flow)
}

/// The backup-code part of a settings form: with a set waiting for confirmation, the
/// codes (filled in only when shown, see [`hydrate`]) and a confirm button; else a button
/// to generate a set, and, with a set stored, one to disable it.
fn lookup_nodes(flow: &mut Flow, identity: &Identity) {
    flow.ui.nodes.retain(|n| n.group != NodeGroup::LookupSecret);
    if flow.internal.pending_lookup.is_some() {
        flow.ui.nodes.push(
            Node::text(
                NodeGroup::LookupSecret,
                "lookup_secret_codes",
                text::lookup_list(&[]),
            )
            .label(text::lookup_label()),
        );
        flow.ui.nodes.push(
            Node::input(
                NodeGroup::LookupSecret,
                "lookup_secret_confirm",
                InputType::Submit,
            )
            .with_value(true)
            .label(text::confirm_lookup()),
        );
        return;
    }
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::LookupSecret,
            "lookup_secret_regenerate",
            InputType::Submit,
        )
        .with_value(true)
        .label(text::regenerate_lookup()),
    );
    if let Some(credential) = identity.credential(CredentialType::LookupSecret) {
        let left = lookup::remaining(&credential.config);
        if left <= lookup::FEW_LEFT {
            flow.ui.messages.push(text::lookup_few_left(left));
        }
        flow.ui.nodes.push(
            Node::input(
                NodeGroup::LookupSecret,
                "lookup_secret_disable",
                InputType::Submit,
            )
            .with_value(true)
            .label(text::disable_lookup()),
        );
    }
}

/// The TOTP part of a settings form: for an identity without TOTP, a fresh secret to
/// enrol (kept sealed in the flow; the QR code and the secret are filled in only when the
/// flow is shown, see [`hydrate`]) and a code input; with TOTP, an unlink button.
fn totp_nodes(facts: &dyn Facts, flow: &mut Flow, identity: &Identity) -> Result<()> {
    flow.ui.nodes.retain(|n| n.group != NodeGroup::Totp);
    flow.internal.pending_totp = None;
    if !facts.config().totp.enabled {
        return Ok(());
    }
    if identity.credential(CredentialType::Totp).is_some() {
        flow.ui.nodes.push(
            Node::input(NodeGroup::Totp, "totp_unlink", InputType::Submit)
                .with_value(true)
                .label(text::unlink_totp()),
        );
        return Ok(());
    }
    let secret = TotpSecret::generate();
    flow.internal.pending_totp = Some(
        secret
            .seal(facts.keyring(), &totp::pending_context(flow.id))
            .ok_or(CredentialError::Sealing("TOTP secret"))?,
    );
    flow.ui.nodes.push(Node {
        node_type: NodeType::Img,
        group: NodeGroup::Totp,
        attributes: NodeAttributes::Img(ImageAttributes {
            id: "totp_qr".into(),
            src: String::new(),
            width: 256,
            height: 256,
        }),
        messages: Vec::new(),
        meta: Meta {
            label: Some(text::totp_qr()),
        },
    });
    flow.ui.nodes.push(
        Node::text(NodeGroup::Totp, "totp_secret_key", text::totp_secret(""))
            .label(text::totp_secret_label()),
    );
    flow.ui.nodes.push(
        Node::input(NodeGroup::Totp, "totp_code", InputType::Text)
            .required()
            .autocomplete("one-time-code")
            .label(text::verify_code()),
    );
    flow.ui
        .nodes
        .push(method_button(NodeGroup::Totp, "totp", text::label_save()));
    Ok(())
}

/// Fills the TOTP QR code and secret, and backup codes waiting for confirmation, into a
/// settings flow about to be shown. The stored flow never holds them in the clear.
pub(crate) fn hydrate(facts: &dyn Facts, flow: &mut Flow, identity: &Identity) {
    hydrate_lookup(facts, flow);
    let Some(secret) = flow.internal.pending_totp.as_deref().and_then(|sealed| {
        TotpSecret::open(facts.keyring(), &totp::pending_context(flow.id), sealed)
    }) else {
        return;
    };
    let issuer = facts.config().totp.issuer.clone();
    // The schema's `credentials.totp.account_name` trait (as Kratos), else the first
    // password identifier, else the id.
    let account = facts
        .schemas()
        .get(&identity.schema_id)
        .ok()
        .and_then(|schema| check_traits(&schema, &identity.traits).ok())
        .and_then(|extracted| extracted.totp_account_name)
        .or_else(|| {
            identity
                .credential(CredentialType::Password)
                .and_then(|c| c.identifiers.first().cloned())
        })
        .unwrap_or_else(|| identity.id.to_string());
    let qr = secret.qr_data_uri(&issuer, &account).unwrap_or_default();
    let key = secret.base32();
    for node in &mut flow.ui.nodes {
        match &mut node.attributes {
            NodeAttributes::Img(img) if img.id == "totp_qr" => img.src = qr.clone(),
            NodeAttributes::Text(t) if t.id == "totp_secret_key" => {
                t.text = text::totp_secret(&key)
            }
            _ => {}
        }
    }
}

/// Fills pending backup codes into a settings flow about to be shown.
fn hydrate_lookup(facts: &dyn Facts, flow: &mut Flow) {
    let Some(codes) = flow
        .internal
        .pending_lookup
        .as_deref()
        .and_then(|sealed| lookup::open_pending(facts.keyring(), flow.id, sealed))
    else {
        return;
    };
    let shown: Vec<String> = codes.iter().map(|c| c.expose().to_owned()).collect();
    for node in &mut flow.ui.nodes {
        if let NodeAttributes::Text(t) = &mut node.attributes
            && t.id == "lookup_secret_codes"
        {
            t.text = text::lookup_list(&shown);
        }
    }
}

/// Settings changes of an identity with a second factor need a session that used it.
pub(crate) fn require_highest_aal(current: &AuthenticatedSession) -> Result<()> {
    if current.session.aal < current.identity.highest_available_aal() {
        return Err(FlowError::Aal2Required);
    }
    Ok(())
}

/// Refuses unless the session signed in recently enough for a sensitive change.
pub(crate) fn require_privileged(facts: &dyn Facts, current: &AuthenticatedSession) -> Result<()> {
    let max_age = facts.config().settings.privileged_session_max_age;
    if facts.now() - current.session.authenticated_at > max_age {
        return Err(FlowError::RefreshRequired);
    }
    Ok(())
}

/// Whether a traits change touches what signs in or where codes go.
fn changes_sign_in_or_addresses(before: &Identity, after: &Identity) -> bool {
    let ids = |i: &Identity| {
        i.credential(CredentialType::Password)
            .map(|c| c.identifiers.clone())
            .unwrap_or_default()
    };
    let verifiable = |i: &Identity| {
        let mut v: Vec<_> = i
            .verifiable_addresses
            .iter()
            .map(|a| (a.via, a.value.clone()))
            .collect();
        v.sort();
        v
    };
    let recovery = |i: &Identity| {
        let mut v: Vec<_> = i
            .recovery_addresses
            .iter()
            .map(|a| (a.via, a.value.clone()))
            .collect();
        v.sort();
        v
    };
    ids(before) != ids(after)
        || verifiable(before) != verifiable(after)
        || recovery(before) != recovery(after)
}

/// The name a key is stored under: what the user typed (trimmed, at most 64
/// characters), or `fallback`.
fn key_name(typed: &str, fallback: &str) -> String {
    let name: String = typed
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if name.is_empty() {
        fallback.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::courier::TemplateKind;
    use crate::flow::login;
    use crate::flow::login::{LoginIntent, LoginSubmission};
    use crate::flow::testing::{
        PASSWORD, TestFacts, advanced, api, effect_names, message_ids, rejected,
    };
    use crate::identity::Aal;

    /// Ada, signed in now.
    async fn signed_in(facts: &TestFacts) -> AuthenticatedSession {
        facts.add_identity("ada@example.com").await;
        let flow = login::create(facts, FlowType::Api, &api(), LoginIntent::SignIn, None).unwrap();
        let submission = LoginSubmission::Password {
            identifier: "ada@example.com".into(),
            password: Password::new(PASSWORD),
        };
        let step = login::submit(facts, flow, submission, &api(), None).await;
        advanced(step.unwrap()).outcome.session
    }

    #[tokio::test]
    async fn a_new_email_is_saved_unverified_and_sent_a_code() {
        let facts = TestFacts::new();
        let me = signed_in(&facts).await;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        assert_eq!(flow.state, FlowState::ShowForm);
        let submission = SettingsSubmission::Profile {
            traits: json!({ "email": "ada@new.example" }),
        };
        let t = advanced(
            submit(&facts, flow, submission, &api(), Some(&me))
                .await
                .unwrap(),
        );
        assert_eq!(t.flow.state, FlowState::Success);
        assert_eq!(message_ids(&t.flow), [1_050_001]);
        assert_eq!(
            effect_names(&t.effects),
            ["update_identity", "insert_flow", "send_mail"]
        );
        let Effect::UpdateIdentity(identity) = &t.effects[0] else {
            unreachable!()
        };
        let address = &identity.verifiable_addresses[0];
        assert_eq!(
            (address.value.as_str(), address.verified),
            ("ada@new.example", false)
        );
        assert_eq!(
            identity
                .credential(CredentialType::Password)
                .unwrap()
                .identifiers,
            ["ada@new.example"]
        );
        assert!(matches!(
            &t.effects[2],
            Effect::SendMail { template: TemplateKind::VerificationCodeValid, vars }
                if vars.to == "ada@new.example"
        ));
    }

    #[tokio::test]
    async fn sensitive_changes_need_a_recent_sign_in() {
        let facts = TestFacts::new();
        let me = signed_in(&facts).await;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        facts.advance(chrono::Duration::minutes(16));
        let submission = SettingsSubmission::Password {
            password: Password::new("an entirely new passphrase"),
        };
        let err = submit(&facts, flow.clone(), submission, &api(), Some(&me))
            .await
            .unwrap_err();
        assert!(matches!(err, FlowError::RefreshRequired));
        // A profile change that touches no identifier or address needs none.
        let submission = SettingsSubmission::Profile {
            traits: json!({ "email": "ada@example.com" }),
        };
        advanced(
            submit(&facts, flow, submission, &api(), Some(&me))
                .await
                .unwrap(),
        );
    }

    #[tokio::test]
    async fn a_new_password_revokes_the_other_sessions_unless_configured_to_keep_them() {
        let mut facts = TestFacts::new();
        let me = signed_in(&facts).await;
        let change = || SettingsSubmission::Password {
            password: Password::new("an entirely new passphrase"),
        };
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        let t = advanced(
            submit(&facts, flow, change(), &api(), Some(&me))
                .await
                .unwrap(),
        );
        assert_eq!(
            effect_names(&t.effects),
            ["update_identity", "revoke_sessions"]
        );
        assert!(matches!(
            &t.effects[1],
            Effect::RevokeSessions { identity_id, keep: Some(kept) }
                if *identity_id == me.identity.id && *kept == me.session.id
        ));
        facts.config.settings.after_password_change = OtherSessions::Keep;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        let t = advanced(
            submit(&facts, flow, change(), &api(), Some(&me))
                .await
                .unwrap(),
        );
        assert_eq!(effect_names(&t.effects), ["update_identity"]);
    }

    #[tokio::test]
    async fn the_same_password_again_is_refused() {
        let facts = TestFacts::new();
        let me = signed_in(&facts).await;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        let submission = SettingsSubmission::Password {
            password: Password::new(PASSWORD),
        };
        let flow = rejected(
            submit(&facts, flow, submission, &api(), Some(&me))
                .await
                .unwrap(),
        );
        assert_eq!(message_ids(&flow), [4_000_039]);
    }

    #[tokio::test]
    async fn an_identity_with_a_second_factor_changes_nothing_from_an_aal1_session() {
        let facts = TestFacts::new();
        let mut me = signed_in(&facts).await;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        // A second factor is enrolled after the flow was made (elsewhere).
        me.identity.credentials.insert(
            CredentialType::Totp,
            second_factor(&me.identity, CredentialType::Totp, json!({}), facts.now()),
        );
        assert_eq!(me.session.aal, Aal::Aal1);
        let submission = SettingsSubmission::Profile {
            traits: json!({ "email": "ada@example.com" }),
        };
        let err = submit(&facts, flow, submission, &api(), Some(&me))
            .await
            .unwrap_err();
        assert!(matches!(err, FlowError::Aal2Required));
    }

    #[tokio::test]
    async fn a_change_refused_when_saved_leaves_the_form_as_it_was() {
        let facts = TestFacts::new();
        let me = signed_in(&facts).await;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        assert!(flow.internal.pending_lookup.is_none());
        let t = advanced(
            submit(
                &facts,
                flow,
                SettingsSubmission::LookupRegenerate,
                &api(),
                Some(&me),
            )
            .await
            .unwrap(),
        );
        assert!(t.flow.internal.pending_lookup.is_some(), "codes to confirm");
        // Say the host's after hook refuses: the form it shows again holds no codes the
        // user never saw (a later confirm could store them).
        let shown = t.fallback.showing(crate::flow::CommitRefusal::Hook(
            crate::hook::HookError::refuse("not now"),
        ));
        assert!(shown.internal.pending_lookup.is_none());
        assert_eq!(message_ids(&shown), [4_000_001]);
    }

    #[tokio::test]
    async fn a_settings_flow_belongs_to_its_identity() {
        let facts = TestFacts::new();
        let me = signed_in(&facts).await;
        let flow = create(&facts, FlowType::Api, &api(), Some(&me)).unwrap();
        let mut other = me.clone();
        other.identity.id = Uuid::new_v4();
        let submission = SettingsSubmission::Profile {
            traits: json!({ "email": "ada@example.com" }),
        };
        let err = submit(&facts, flow, submission, &api(), Some(&other))
            .await
            .unwrap_err();
        assert!(matches!(err, FlowError::IdentityMismatch));
    }
}
