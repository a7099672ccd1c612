//! The WebAuthn part of flow forms: the nodes Kratos front ends render for security keys
//! (group `webauthn`) and passkeys (group `passkey`), and the ceremonies the nodes start.
//! The ceremony state goes into the flow's internal context; only the options a browser
//! needs go into the nodes. The browser script the nodes load is the HTTP layer's.

use super::form::method_button;
use super::text;
use super::ui::{InputType, Node, NodeAttributes, NodeGroup, NodeType, UiText};
use super::{Facts, Flow, Result};
use crate::credential::webauthn::{
    self, Refusal, StoredKeys, passkey_is_last_sign_in, passkeys, security_keys,
};
use crate::identity::{CredentialType, Identity, normalize};

/// The id of the script node every WebAuthn form carries. The HTTP layer, which serves the
/// browser script (Kratos's `webauthn.js`), fills in where it is and its integrity.
pub(crate) const SCRIPT_NODE: &str = "webauthn_script";

fn script_node(group: NodeGroup) -> Node {
    Node::script(group, SCRIPT_NODE)
}

/// The name an authenticator shows for an account: its first sign-in identifier.
fn account_name(identity: &Identity) -> String {
    [CredentialType::Password, CredentialType::Passkey]
        .iter()
        .filter_map(|t| identity.credential(*t))
        .flat_map(|c| c.identifiers.iter())
        .find(|id| !id.starts_with("key:"))
        .cloned()
        .unwrap_or_else(|| identity.id.to_string())
}

/// The security-key and passkey part of a settings form: a remove button per key, and
/// fresh ceremonies to add one of each.
pub(crate) fn settings_nodes(
    facts: &dyn Facts,
    flow: &mut Flow,
    identity: &Identity,
) -> Result<()> {
    flow.ui
        .nodes
        .retain(|n| n.group != NodeGroup::Webauthn && n.group != NodeGroup::Passkey);
    flow.internal.security_key = None;
    flow.internal.passkey = None;
    let Some((rp, _)) = facts.webauthn() else {
        return Ok(());
    };
    let name = account_name(identity);

    let keys = security_keys(identity);
    for key in &keys.keys {
        flow.ui.nodes.push(
            Node::input(NodeGroup::Webauthn, "webauthn_remove", InputType::Submit)
                .with_value(key.id.clone())
                .label(text::remove_key(false, &key.display_name, key.added_at)),
        );
    }
    let (options, ceremony) =
        webauthn::start_security_key_registration(rp, identity.id, &name, &keys)?;
    flow.internal.security_key = ceremony.to_value();
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::Webauthn,
            "webauthn_register_displayname",
            InputType::Text,
        )
        .label(text::security_key_name()),
    );
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::Webauthn,
            "webauthn_register_trigger",
            InputType::Button,
        )
        .with_value(options)
        .on_click("oryWebAuthnRegistration")
        .label(text::add_security_key()),
    );
    flow.ui.nodes.push(Node::input(
        NodeGroup::Webauthn,
        "webauthn_register",
        InputType::Hidden,
    ));
    flow.ui.nodes.push(script_node(NodeGroup::Webauthn));

    let passkeys = passkeys(identity);
    let last = passkey_is_last_sign_in(identity);
    for key in &passkeys.keys {
        let mut node = Node::input(NodeGroup::Passkey, "passkey_remove", InputType::Submit)
            .with_value(key.id.clone())
            .label(text::remove_key(true, &key.display_name, key.added_at));
        if let NodeAttributes::Input(input) = &mut node.attributes {
            input.disabled = last;
        }
        flow.ui.nodes.push(node);
    }
    let (options, ceremony) =
        webauthn::start_passkey_registration(rp, identity.id, &name, &passkeys)?;
    flow.internal.passkey = ceremony.to_value();
    flow.ui.nodes.push(
        Node::input(NodeGroup::Passkey, "passkey_create_data", InputType::Hidden)
            .with_value(webauthn::create_data(&options, "")),
    );
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::Passkey,
            "passkey_register_trigger",
            InputType::Button,
        )
        .on_click("oryPasskeySettingsRegistration")
        .label(text::add_passkey()),
    );
    flow.ui.nodes.push(Node::input(
        NodeGroup::Passkey,
        "passkey_settings_register",
        InputType::Hidden,
    ));
    Ok(())
}

/// The security-key part of a second-factor login form, if the identity has keys.
pub(crate) fn second_factor_nodes(
    facts: &dyn Facts,
    flow: &mut Flow,
    identity: &Identity,
) -> Result<()> {
    flow.ui.nodes.retain(|n| n.group != NodeGroup::Webauthn);
    flow.internal.security_key = None;
    let keys = security_keys(identity);
    let Some((rp, _)) = facts.webauthn().filter(|_| !keys.keys.is_empty()) else {
        return Ok(());
    };
    let (options, ceremony) = webauthn::start_security_key_login(rp, &keys)?;
    flow.internal.security_key = ceremony.to_value();
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::Webauthn,
            "webauthn_login_trigger",
            InputType::Button,
        )
        .with_value(options)
        .on_click("oryWebAuthnLogin")
        .label(text::sign_in_with_hardware_key()),
    );
    flow.ui.nodes.push(Node::input(
        NodeGroup::Webauthn,
        "webauthn_login",
        InputType::Hidden,
    ));
    flow.ui.nodes.push(script_node(NodeGroup::Webauthn));
    Ok(())
}

/// The passkey part of a new login form: a challenge any discoverable passkey answers
/// (no identifier needed), and a button that asks for a challenge for the identifier
/// typed instead (for passkeys that are not discoverable).
pub(crate) fn login_prompt_nodes(facts: &dyn Facts, flow: &mut Flow) -> Result<()> {
    let Some((rp, _)) = facts.webauthn() else {
        return Ok(());
    };
    let (options, ceremony) = webauthn::start_discoverable_login(rp)?;
    flow.internal.passkey = ceremony.to_value();
    challenge_nodes(flow, options);
    flow.ui.nodes.push(method_button(
        NodeGroup::Passkey,
        "passkey",
        text::sign_in_with_passkey_by_identifier(),
    ));
    Ok(())
}

/// A fresh passkey challenge on a login form: for the account `identifier` names (or a
/// believable one if it names none), or without one for any discoverable passkey.
pub(crate) async fn passkey_challenge_nodes(
    facts: &dyn Facts,
    flow: &mut Flow,
    identifier: Option<&str>,
) -> Result<()> {
    let Some((rp, _)) = facts.webauthn() else {
        return Ok(());
    };
    let Some(identifier) = identifier else {
        let (options, ceremony) = webauthn::start_discoverable_login(rp)?;
        flow.internal.passkey = ceremony.to_value();
        challenge_nodes(flow, options);
        return Ok(());
    };
    // An identifier no account can have (too long, a NUL) gets the same believable
    // challenge as an unknown one, without a lookup.
    let normalized = normalize::lookup_identifier(identifier);
    let identity = match &normalized {
        Some(normalized) => facts
            .identity_by_identifier(CredentialType::Passkey, normalized)
            .await?
            .filter(Identity::is_active),
        None => None,
    };
    let normalized = normalized.unwrap_or_else(|| identifier.to_owned());
    let keys = identity.as_ref().map(passkeys);
    let account = identity.as_ref().zip(keys.as_ref()).map(|(i, k)| (i.id, k));
    let (options, ceremony) =
        webauthn::start_passkey_login(rp, facts.keyring(), &normalized, account)?;
    flow.internal.passkey = ceremony.to_value();
    challenge_nodes(flow, options);
    flow.ui.messages.push(text::prepare_device());
    Ok(())
}

/// The nodes a browser answers a passkey challenge in (replacing earlier ones).
fn challenge_nodes(flow: &mut Flow, options: String) {
    flow.ui.nodes.retain(|n| {
        !matches!(
            n.name(),
            Some("passkey_challenge" | "passkey_login" | "passkey_login_trigger")
        )
    });
    flow.ui.nodes.push(
        Node::input(NodeGroup::Passkey, "passkey_challenge", InputType::Hidden).with_value(options),
    );
    flow.ui.nodes.push(Node::input(
        NodeGroup::Passkey,
        "passkey_login",
        InputType::Hidden,
    ));
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::Passkey,
            "passkey_login_trigger",
            InputType::Button,
        )
        .on_click("oryPasskeyLogin")
        .label(text::sign_in_with_passkey()),
    );
    if !flow
        .ui
        .nodes
        .iter()
        .any(|n| n.node_type == NodeType::Script)
    {
        flow.ui.nodes.push(script_node(NodeGroup::Passkey));
    }
}

/// The passkey part of a registration form: a ceremony for the identity about to be made
/// (its id is chosen now), and the nodes the browser answers in. `name_field` is the
/// form field whose value the authenticator should show.
pub(crate) fn registration_nodes(
    facts: &dyn Facts,
    flow: &mut Flow,
    name_field: &str,
) -> Result<()> {
    flow.ui.nodes.retain(|n| n.group != NodeGroup::Passkey);
    flow.internal.passkey = None;
    let Some((rp, _)) = facts.webauthn() else {
        return Ok(());
    };
    let user_id = uuid::Uuid::new_v4();
    let (options, ceremony) =
        webauthn::start_passkey_registration(rp, user_id, "new account", &StoredKeys::default())?;
    flow.internal.passkey = ceremony.to_value();
    flow.ui.nodes.push(
        Node::input(NodeGroup::Passkey, "passkey_create_data", InputType::Hidden)
            .with_value(webauthn::create_data(&options, name_field)),
    );
    flow.ui.nodes.push(Node::input(
        NodeGroup::Passkey,
        "passkey_register",
        InputType::Hidden,
    ));
    flow.ui.nodes.push(
        Node::input(
            NodeGroup::Passkey,
            "passkey_register_trigger",
            InputType::Button,
        )
        .on_click("oryPasskeyRegistration")
        .label(text::sign_up_with_passkey()),
    );
    flow.ui.nodes.push(script_node(NodeGroup::Passkey));
    Ok(())
}

/// The message for a refused ceremony answer (the reason is logged, not shown: it
/// would help an attacker more than a user).
pub(crate) fn refusal_message(refusal: &Refusal) -> UiText {
    match refusal {
        Refusal::Refused(err) => tracing::debug!(error = %err, "webauthn answer refused"),
        other => tracing::debug!(refusal = ?other, "webauthn answer refused"),
    }
    match refusal {
        Refusal::NoCeremony => text::no_webauthn_device(),
        Refusal::Malformed | Refusal::Refused(_) | Refusal::UnknownKey => text::webauthn_refused(),
    }
}
