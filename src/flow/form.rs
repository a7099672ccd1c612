//! What every flow form shares: input nodes generated from the identity schema, values
//! shown back after a submission (never secrets, never what cannot be stored), submit
//! buttons, and the messages that put an error about the user's input on the form.

use serde_json::Value;

use super::FlowError;
use super::text;
use super::ui::{InputType, Node, NodeAttributes, NodeGroup, UiContainer, UiText};
use crate::credential::CredentialError;
use crate::hook::HookError;
use crate::identity::{IdentityError, SchemaError, TraitField, has_nul};
use crate::session::SessionError;

/// The longest value shown back in a node, serialized.
const MAX_ECHO_BYTES: usize = 4096;

/// The input nodes for an identity schema's traits, in `group`, filled from `traits`.
pub(crate) fn trait_nodes(fields: &[TraitField], group: NodeGroup, traits: &Value) -> Vec<Node> {
    fields
        .iter()
        .map(|field| {
            let input_type = match (field.json_type.as_str(), field.format.as_deref()) {
                (_, Some("email")) => InputType::Email,
                (_, Some("tel")) => InputType::Tel,
                (_, Some("uri" | "url")) => InputType::Url,
                (_, Some("date")) => InputType::Date,
                ("number" | "integer", _) => InputType::Number,
                ("boolean", _) => InputType::Checkbox,
                _ => InputType::Text,
            };
            let name = format!("traits.{}", field.path);
            let title = field.title.clone().unwrap_or_else(|| field.path.clone());
            let mut node =
                Node::input(group, &name, input_type).label(text::label_generated(&title, &name));
            if field.required {
                node = node.required();
            }
            if let Some(value) = trait_value(traits, &field.path) {
                node = node.with_value(value);
            }
            node
        })
        .collect()
}

/// The value at a dotted path below the traits object.
fn trait_value(traits: &Value, path: &str) -> Option<Value> {
    let mut current = traits;
    for part in path.split('.') {
        current = current.get(part)?;
    }
    (!current.is_null()).then(|| current.clone())
}

/// Whether a value the user typed may be shown back in the form: not too long, and free
/// of NUL characters (which no database stores in JSON).
pub(crate) fn echoable(value: &Value) -> bool {
    !has_nul(value) && serde_json::to_string(value).is_ok_and(|s| s.len() <= MAX_ECHO_BYTES)
}

/// Sets every `traits.*` input of the form from `traits` (after a submission, so the user
/// sees what they typed). Values that cannot be shown back are left out.
pub(crate) fn refill_traits(ui: &mut UiContainer, traits: &Value) {
    for node in &mut ui.nodes {
        if let NodeAttributes::Input(input) = &mut node.attributes
            && let Some(path) = input.name.strip_prefix("traits.")
        {
            input.value = trait_value(traits, path).filter(echoable);
        }
    }
}

/// Puts an error that is about the user's input on the form; returns other errors.
pub(crate) fn show_input_error(ui: &mut UiContainer, err: FlowError) -> Result<(), FlowError> {
    match err {
        FlowError::Identity(IdentityError::Schema(SchemaError::Traits { violations, .. })) => {
            for v in &violations {
                let field = (v.path != "traits").then_some(v.path.as_str());
                ui.add_message(field, text::trait_violation(v));
            }
        }
        FlowError::Identity(
            err @ (IdentityError::TooLarge { .. }
            | IdentityError::IdentifierTooLong { .. }
            | IdentityError::Nul(_)),
        ) => {
            ui.messages.push(text::generic(err.to_string()));
        }
        FlowError::Credential(CredentialError::Policy(v)) => {
            ui.add_message(Some("password"), text::password_policy(&v));
        }
        FlowError::InvalidCredentials => ui.messages.push(text::invalid_credentials()),
        FlowError::AddressNotVerified => ui.messages.push(text::address_not_verified()),
        FlowError::Session(SessionError::IdentityDisabled) => {
            ui.messages.push(text::identity_disabled());
        }
        other => return Err(other),
    }
    Ok(())
}

/// Shows a hook's refusal on the form.
pub(crate) fn show_hook_error(ui: &mut UiContainer, err: HookError) {
    match err {
        HookError::Refused { field, message } => {
            ui.add_message(field.as_deref(), text::generic(message));
        }
        HookError::Failed(reason) => ui.messages.push(text::system_error(&reason)),
    }
}

/// Which password a form asks for (the browser's autocomplete hint).
#[derive(Debug, Clone, Copy)]
pub(crate) enum PasswordInput {
    /// The one the account has (sign-in).
    Current,
    /// A new one (sign-up, settings).
    New,
}

/// A password input and its submit button (`method=password`, labelled `submit`).
pub(crate) fn password_nodes(password: PasswordInput, submit: UiText) -> [Node; 2] {
    let hint = match password {
        PasswordInput::Current => "current-password",
        PasswordInput::New => "new-password",
    };
    [
        Node::input(NodeGroup::Password, "password", InputType::Password)
            .required()
            .autocomplete(hint)
            .label(text::label_password()),
        method_button(NodeGroup::Password, "password", submit),
    ]
}

/// A submit button `method=<value>`.
pub(crate) fn method_button(group: NodeGroup, value: &str, label: UiText) -> Node {
    Node::input(group, "method", InputType::Submit)
        .with_value(value)
        .label(label)
}
