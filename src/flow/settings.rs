//! Settings: a signed-in user changes their profile (traits) or password. Changing a
//! password, an identifier or an address is sensitive: it needs a session authenticated
//! within `privileged_session_max_age`, otherwise the answer is
//! [`Error::SessionRefreshRequired`] (re-authenticate with a login flow with
//! [`LoginIntent::Refresh`](super::login::LoginIntent::Refresh), then submit again).
//! A new email address is unverified and is sent a verification code.
//!
//! States: `show_form` → `success` (and further submissions stay in `success`).

use serde_json::Value;
use uuid::Uuid;

use super::ui::{ImageAttributes, InputType, Meta, NodeAttributes, NodeType};
use super::{
    ContinueWith, Flow, FlowKind, FlowRequest, FlowState, FlowType, Node, NodeGroup, OtherSessions,
    check_for_submit, commit_with_hook, current_session, fetch_flow, method_button, new_flow,
    refill_traits, reject, show_hook_error, show_input_error, text, trait_nodes, verification,
    webauthn,
};
use crate::credential::lookup;
use crate::credential::password::Password;
use crate::credential::totp::{self, TotpSecret};
use crate::credential::webauthn::{self as cred_webauthn, Ceremony, Refusal};
use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::hook::AfterEvent;
use crate::identity::{Credential, CredentialType, Identity};
use crate::session::{AuthenticatedSession, SessionRefusal};
use crate::store::SessionEvent;
use crate::store::{FlowCommit, FlowWrite};

/// What a user submits to a settings flow.
#[derive(Debug)]
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

/// Settings flows of an engine. Get it with [`Identa::settings_flow`].
#[derive(Debug, Clone, Copy)]
pub struct SettingsFlows<'a> {
    identa: &'a Identa,
}

impl Identa {
    /// Settings flows.
    pub fn settings_flow(&self) -> SettingsFlows<'_> {
        SettingsFlows { identa: self }
    }
}

impl SettingsFlows<'_> {
    /// Starts a settings flow for the signed-in user of `req`.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        let current = current_session(self.identa, req)
            .await?
            .ok_or(Error::SessionInactive(SessionRefusal::Unknown))?;
        require_highest_aal(&current)?;
        let mut flow = settings_flow_for(self.identa, flow_type, req, &current)?;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Insert(flow.to_record()?)],
            ..FlowCommit::default()
        };
        self.identa.store().commit_flow(&commit, None).await?;
        hydrate_totp(self.identa, &mut flow, &current.identity);
        Ok(flow)
    }

    /// Submits a change.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: SettingsSubmission,
        req: &FlowRequest,
    ) -> Result<SettingsSaved> {
        let flow = fetch_flow(self.identa, flow_id).await?;
        self.submit_loaded(flow, submission, req).await
    }

    /// [`Self::submit`] for a flow the caller has just read (the HTTP layer reads it to
    /// learn its type).
    pub(crate) async fn submit_loaded(
        &self,
        flow: Flow,
        submission: SettingsSubmission,
        req: &FlowRequest,
    ) -> Result<SettingsSaved> {
        let identa = self.identa;
        let mut flow = check_for_submit(identa, flow, FlowKind::Settings, req)?;
        let current = current_session(identa, req)
            .await?
            .ok_or(Error::SessionInactive(SessionRefusal::Unknown))?;
        if flow.identity_id != Some(current.identity.id) {
            return Err(Error::IdentityMismatch);
        }
        require_highest_aal(&current)?;
        let before = current.identity.clone();
        let mut identity = current.identity.clone();
        let mut revoke = None;
        let refill = |flow: Flow| async { reject_settings(identa, flow, &before).await };
        match submission {
            SettingsSubmission::Profile { traits } => {
                refill_traits(&mut flow.ui, &traits);
                if let Err(err) = identa.apply_traits(&mut identity, traits) {
                    show_input_error(&mut flow.ui, err)?;
                    return Err(refill(flow).await);
                }
                if changes_sign_in_or_addresses(&before, &identity) {
                    require_privileged(identa, &current)?;
                }
            }
            SettingsSubmission::Password { password } => {
                require_privileged(identa, &current)?;
                let old = before
                    .credential(CredentialType::Password)
                    .and_then(Credential::hashed_password);
                if old.is_some()
                    && identa
                        .hasher()
                        .verify(&password, old)
                        .await
                        .unwrap_or(false)
                {
                    flow.ui
                        .add_message(Some("password"), text::new_password_same_as_old());
                    return Err(refill(flow).await);
                }
                if let Err(err) = identa.apply_password(&mut identity, &password).await {
                    show_input_error(&mut flow.ui, err)?;
                    return Err(refill(flow).await);
                }
                if identa.config().flows.settings.after_password_change == OtherSessions::Revoke {
                    revoke = Some((identity.id, Some(current.session.id)));
                }
            }
            SettingsSubmission::Totp { code } => {
                require_privileged(identa, &current)?;
                let pending = flow.internal.pending_totp.as_deref().and_then(|sealed| {
                    TotpSecret::open(identa.keyring(), &totp::pending_context(flow.id), sealed)
                });
                let Some(secret) = pending else {
                    flow.ui
                        .add_message(Some("totp_code"), text::no_totp_device());
                    return Err(refill(flow).await);
                };
                let now = u64::try_from(identa.now().timestamp()).unwrap_or(0);
                let Some(step) = secret.accept(&code, now, None) else {
                    flow.ui.add_message(Some("totp_code"), text::totp_wrong());
                    return Err(refill(flow).await);
                };
                let sealed = secret
                    .seal(identa.keyring(), &totp::credential_context(identity.id))
                    .ok_or_else(|| {
                        Error::InvalidInput("the TOTP secret could not be sealed".into())
                    })?;
                let at = identa.now();
                identity.credentials.insert(
                    CredentialType::Totp,
                    Credential {
                        id: Uuid::new_v4(),
                        credential_type: CredentialType::Totp,
                        identifiers: vec![identity.id.to_string()],
                        config: totp::credential_config(&sealed, Some(step)),
                        version: 0,
                        created_at: at,
                        updated_at: at,
                    },
                );
                identity.updated_at = at;
            }
            SettingsSubmission::LookupRegenerate => {
                require_privileged(identa, &current)?;
                let codes = lookup::generate_set();
                flow.internal.pending_lookup = Some(
                    lookup::seal_pending(identa.keyring(), flow.id, &codes).ok_or_else(|| {
                        Error::InvalidInput("backup codes could not be sealed".into())
                    })?,
                );
            }
            SettingsSubmission::LookupConfirm => {
                require_privileged(identa, &current)?;
                let pending = flow
                    .internal
                    .pending_lookup
                    .as_deref()
                    .and_then(|sealed| lookup::open_pending(identa.keyring(), flow.id, sealed));
                let Some(codes) = pending else {
                    flow.ui.messages.push(text::generic(
                        "There are no new backup codes to confirm: generate them first.",
                    ));
                    return Err(refill(flow).await);
                };
                let at = identa.now();
                identity.credentials.insert(
                    CredentialType::LookupSecret,
                    Credential {
                        id: Uuid::new_v4(),
                        credential_type: CredentialType::LookupSecret,
                        identifiers: vec![identity.id.to_string()],
                        config: lookup::config_for(identa.keyring(), identity.id, &codes),
                        version: 0,
                        created_at: at,
                        updated_at: at,
                    },
                );
                identity.updated_at = at;
                flow.internal.pending_lookup = None;
            }
            SettingsSubmission::LookupDisable => {
                require_privileged(identa, &current)?;
                flow.internal.pending_lookup = None;
                if identity
                    .credentials
                    .remove(&CredentialType::LookupSecret)
                    .is_none()
                {
                    flow.ui
                        .messages
                        .push(text::generic("There are no backup codes to disable."));
                    return Err(refill(flow).await);
                }
                identity.updated_at = identa.now();
            }
            SettingsSubmission::WebauthnRegister {
                display_name,
                response,
            } => {
                require_privileged(identa, &current)?;
                let ceremony = Ceremony::from_value(flow.internal.security_key.as_ref());
                let added = match identa.webauthn() {
                    Some(rp) => {
                        cred_webauthn::finish_security_key_registration(rp, ceremony, &response)
                    }
                    None => Err(Refusal::NoCeremony),
                };
                let key = match added {
                    Ok(key) => key,
                    Err(refusal) => {
                        webauthn::settings_nodes(identa, &mut flow, &before)?;
                        flow.ui.add_message(
                            Some("webauthn_register"),
                            webauthn::refusal_message(&refusal),
                        );
                        return Err(refill(flow).await);
                    }
                };
                let mut keys = webauthn::security_keys(&identity);
                if !keys.add(key, key_name(&display_name, "Security key"), identa.now()) {
                    webauthn::settings_nodes(identa, &mut flow, &before)?;
                    flow.ui
                        .add_message(Some("webauthn_register"), text::key_already_registered());
                    return Err(refill(flow).await);
                }
                webauthn::store_security_keys(identa, &mut identity, &keys);
            }
            SettingsSubmission::WebauthnRemove { id } => {
                require_privileged(identa, &current)?;
                let mut keys = webauthn::security_keys(&identity);
                if !keys.remove(&id) {
                    flow.ui.messages.push(text::no_webauthn_device());
                    return Err(refill(flow).await);
                }
                webauthn::store_security_keys(identa, &mut identity, &keys);
            }
            SettingsSubmission::PasskeyRegister { response } => {
                require_privileged(identa, &current)?;
                let ceremony = Ceremony::from_value(flow.internal.passkey.as_ref());
                let added = match identa.webauthn() {
                    Some(rp) => cred_webauthn::finish_passkey_registration(rp, ceremony, &response)
                        .and_then(|(user, key)| {
                            if user == identity.id {
                                Ok(key)
                            } else {
                                Err(Refusal::NoCeremony)
                            }
                        }),
                    None => Err(Refusal::NoCeremony),
                };
                let sign_in = identa.passkey_sign_in_identifiers(&identity)?;
                let key = match added {
                    Ok(key) if !sign_in.is_empty() => key,
                    Ok(_) => {
                        webauthn::settings_nodes(identa, &mut flow, &before)?;
                        flow.ui.messages.push(text::generic(
                            "Your profile has no identifier to sign in with a passkey by.",
                        ));
                        return Err(refill(flow).await);
                    }
                    Err(refusal) => {
                        webauthn::settings_nodes(identa, &mut flow, &before)?;
                        flow.ui.add_message(
                            Some("passkey_settings_register"),
                            webauthn::refusal_message(&refusal),
                        );
                        return Err(refill(flow).await);
                    }
                };
                let mut keys = webauthn::passkeys(&identity);
                let name = sign_in.first().cloned().unwrap_or_default();
                if !keys.add(key, name, identa.now()) {
                    webauthn::settings_nodes(identa, &mut flow, &before)?;
                    flow.ui.add_message(
                        Some("passkey_settings_register"),
                        text::key_already_registered(),
                    );
                    return Err(refill(flow).await);
                }
                webauthn::store_passkeys(identa, &mut identity, &keys, sign_in);
            }
            SettingsSubmission::PasskeyRemove { id } => {
                require_privileged(identa, &current)?;
                if webauthn::passkey_is_last_sign_in(&identity) {
                    flow.ui.messages.push(text::last_first_factor());
                    return Err(refill(flow).await);
                }
                let mut keys = webauthn::passkeys(&identity);
                if !keys.remove(&id) {
                    flow.ui.messages.push(text::no_webauthn_device());
                    return Err(refill(flow).await);
                }
                let sign_in = identa.passkey_sign_in_identifiers(&identity)?;
                webauthn::store_passkeys(identa, &mut identity, &keys, sign_in);
            }
            SettingsSubmission::TotpUnlink => {
                require_privileged(identa, &current)?;
                if identity.credentials.remove(&CredentialType::Totp).is_none() {
                    flow.ui.messages.push(text::no_totp_device());
                    return Err(refill(flow).await);
                }
                identity.updated_at = identa.now();
            }
        }
        totp_nodes(identa, &mut flow, &identity)?;
        lookup_nodes(&mut flow, &identity);
        webauthn::settings_nodes(identa, &mut flow, &identity)?;

        let sends = verification::codes_for_new_addresses(
            identa,
            &identity,
            &before.verifiable_addresses,
            flow.flow_type,
            req,
        )?;
        let now = identa.now();
        flow.state = FlowState::Success;
        flow.version += 1;
        flow.updated_at = now;
        refill_traits(&mut flow.ui, &identity.traits);
        flow.ui.messages = vec![text::settings_saved()];
        flow.continue_with = sends.continue_with.clone();

        let mut commit = FlowCommit {
            flows: vec![FlowWrite::Update(flow.to_record()?)],
            replace_identity: Some(&identity),
            revoke_sessions: revoke,
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
        let event = AfterEvent::Settings {
            flow_id: flow.id,
            identity: &identity,
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let mut flow = flow.clone();
            flow.version -= 1;
            flow.ui.messages.clear();
            flow.continue_with.clear();
            match failure {
                Ok(hook_err) => show_hook_error(&mut flow.ui, hook_err),
                Err(err) => show_input_error(&mut flow.ui, err)?,
            }
            return Err(reject(identa, flow).await);
        }
        identa.invalidate(SessionEvent::Identity(identity.id));
        hydrate_totp(identa, &mut flow, &identity);
        Ok(SettingsSaved {
            continue_with: flow.continue_with.clone(),
            flow,
            identity,
        })
    }
}

/// A settings flow (not stored) for the session's identity.
pub(crate) fn settings_flow_for(
    identa: &Identa,
    flow_type: FlowType,
    req: &FlowRequest,
    current: &AuthenticatedSession,
) -> Result<Flow> {
    let mut flow = new_flow(
        identa,
        FlowKind::Settings,
        flow_type,
        req,
        identa.config().flows.settings.lifespan,
        FlowState::ShowForm,
    )?;
    flow.identity_id = Some(current.identity.id);
    flow.session_id = Some(current.session.id);
    let schema = identa.schemas().get(&current.identity.schema_id)?;
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
    flow.ui.nodes.push(
        Node::input(NodeGroup::Password, "password", InputType::Password)
            .required()
            .autocomplete("new-password")
            .label(text::label_password()),
    );
    flow.ui.nodes.push(method_button(
        NodeGroup::Password,
        "password",
        text::label_save(),
    ));
    totp_nodes(identa, &mut flow, &current.identity)?;
    lookup_nodes(&mut flow, &current.identity);
    webauthn::settings_nodes(identa, &mut flow, &current.identity)?;
    Ok(flow)
}

/// The backup-code part of a settings form: with a set waiting for confirmation, the
/// codes (filled in only when shown, see [`hydrate_totp`]) and a confirm button; else a
/// button to generate a set, and, with a set stored, one to disable it.
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
/// flow is shown, see [`hydrate_totp`]) and a code input; with TOTP, an unlink button.
fn totp_nodes(identa: &Identa, flow: &mut Flow, identity: &Identity) -> Result<()> {
    flow.ui.nodes.retain(|n| n.group != NodeGroup::Totp);
    flow.internal.pending_totp = None;
    if !identa.config().flows.totp.enabled {
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
            .seal(identa.keyring(), &totp::pending_context(flow.id))
            .ok_or_else(|| Error::InvalidInput("the TOTP secret could not be sealed".into()))?,
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

/// Fills the TOTP QR code and secret into a settings flow about to be shown. The stored
/// flow never holds them in the clear.
pub(crate) fn hydrate_totp(identa: &Identa, flow: &mut Flow, identity: &Identity) {
    hydrate_lookup(identa, flow);
    let Some(secret) = flow.internal.pending_totp.as_deref().and_then(|sealed| {
        TotpSecret::open(identa.keyring(), &totp::pending_context(flow.id), sealed)
    }) else {
        return;
    };
    let issuer = identa.config().flows.totp.issuer.clone();
    let account = identity
        .credential(CredentialType::Password)
        .and_then(|c| c.identifiers.first().cloned())
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
fn hydrate_lookup(identa: &Identa, flow: &mut Flow) {
    let Some(codes) = flow
        .internal
        .pending_lookup
        .as_deref()
        .and_then(|sealed| lookup::open_pending(identa.keyring(), flow.id, sealed))
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

/// [`reject`] for settings flows: saved without the TOTP secret, shown with it.
async fn reject_settings(identa: &Identa, flow: Flow, identity: &Identity) -> Error {
    match reject(identa, flow).await {
        Error::FlowInvalid(mut shown) => {
            hydrate_totp(identa, &mut shown, identity);
            Error::FlowInvalid(shown)
        }
        other => other,
    }
}

/// Settings changes of an identity with a second factor need a session that used it.
fn require_highest_aal(current: &AuthenticatedSession) -> Result<()> {
    if current.session.aal < current.identity.highest_available_aal() {
        return Err(Error::Aal2Required);
    }
    Ok(())
}

/// Refuses unless the session signed in recently enough for a sensitive change.
fn require_privileged(identa: &Identa, current: &AuthenticatedSession) -> Result<()> {
    let max_age = identa.config().flows.settings.privileged_session_max_age;
    if identa.now() - current.session.authenticated_at > max_age {
        return Err(Error::SessionRefreshRequired);
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
