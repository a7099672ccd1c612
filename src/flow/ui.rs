//! The UI container every flow carries, in Kratos's shape: an action, a method, nodes
//! (inputs, texts, images, links, scripts) in groups, and messages with Kratos's numeric
//! ids, so a front end written for Kratos renders identa's flows unchanged.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message shown to the user (Kratos's `uiText`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiText {
    /// Kratos's numeric id: 1xxxxxx info, 4xxxxxx validation error, 5xxxxxx system error.
    pub id: u32,
    /// The English text.
    pub text: String,
    /// How to show it.
    #[serde(rename = "type")]
    pub kind: MessageKind,
    /// Values the text was made from, for translations.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
}

impl UiText {
    /// An info message.
    pub fn info(id: u32, text: impl Into<String>) -> Self {
        Self::new(id, text, MessageKind::Info)
    }

    /// An error message.
    pub fn error(id: u32, text: impl Into<String>) -> Self {
        Self::new(id, text, MessageKind::Error)
    }

    /// A success message.
    pub fn success(id: u32, text: impl Into<String>) -> Self {
        Self::new(id, text, MessageKind::Success)
    }

    fn new(id: u32, text: impl Into<String>, kind: MessageKind) -> Self {
        Self {
            id,
            text: text.into(),
            kind,
            context: Value::Null,
        }
    }

    /// The same message with a context object.
    pub fn with_context(mut self, context: Value) -> Self {
        self.context = context;
        self
    }
}

/// The kind of a [`UiText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Information.
    Info,
    /// Something the user must fix.
    Error,
    /// Something went well.
    Success,
}

/// The form of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiContainer {
    /// Where the form posts to.
    pub action: String,
    /// The HTTP method (always `POST`).
    pub method: String,
    /// The form's nodes, in order.
    pub nodes: Vec<Node>,
    /// Messages about the whole form.
    #[serde(default)]
    pub messages: Vec<UiText>,
}

impl UiContainer {
    /// A node by input name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name() == Some(name))
    }

    pub(crate) fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name() == Some(name))
    }

    /// Adds a message to the node named `name`, or to the form if there is none.
    pub(crate) fn add_message(&mut self, name: Option<&str>, message: UiText) {
        match name.and_then(|n| self.node_mut(n)) {
            Some(node) => node.messages.push(message),
            None => self.messages.push(message),
        }
    }

    /// Forgets every message (before a new submission is judged).
    pub(crate) fn clear_messages(&mut self) {
        self.messages.clear();
        for node in &mut self.nodes {
            node.messages.clear();
        }
    }

    /// Sets the value of the input named `name`, if the form has it.
    pub(crate) fn set_value(&mut self, name: &str, value: Value) {
        if let Some(Node {
            attributes: NodeAttributes::Input(input),
            ..
        }) = self.node_mut(name)
        {
            input.value = Some(value);
        }
    }
}

/// The kind of node (Kratos's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    /// A form input.
    Input,
    /// A text to show.
    Text,
    /// An image.
    Img,
    /// A link.
    A,
    /// A script.
    Script,
}

/// Which method a node belongs to (Kratos's `group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeGroup {
    /// Shared by every method (CSRF token, identifier).
    Default,
    /// Passwords.
    Password,
    /// Profile traits.
    Profile,
    /// One-time codes.
    Code,
    /// TOTP.
    Totp,
    /// Backup codes.
    LookupSecret,
    /// Security keys.
    Webauthn,
    /// Passkeys.
    Passkey,
    /// Social sign-in.
    Oidc,
}

/// One element of a form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The kind of node.
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// The method it belongs to.
    pub group: NodeGroup,
    /// Its attributes, by kind.
    pub attributes: NodeAttributes,
    /// Messages about this node (e.g. a validation error).
    #[serde(default)]
    pub messages: Vec<UiText>,
    /// Presentation hints.
    #[serde(default)]
    pub meta: Meta,
}

impl Node {
    /// The input name, for input nodes.
    pub fn name(&self) -> Option<&str> {
        match &self.attributes {
            NodeAttributes::Input(a) => Some(&a.name),
            _ => None,
        }
    }

    /// The input value, for input nodes.
    pub fn value(&self) -> Option<&Value> {
        match &self.attributes {
            NodeAttributes::Input(a) => a.value.as_ref(),
            _ => None,
        }
    }

    /// An input node.
    pub fn input(group: NodeGroup, name: &str, input_type: InputType) -> Self {
        Self {
            node_type: NodeType::Input,
            group,
            attributes: NodeAttributes::Input(InputAttributes {
                name: name.to_owned(),
                input_type,
                value: None,
                required: false,
                disabled: false,
                autocomplete: None,
                onclick_trigger: None,
                onload_trigger: None,
            }),
            messages: Vec::new(),
            meta: Meta::default(),
        }
    }

    /// A text node.
    pub fn text(group: NodeGroup, id: &str, text: UiText) -> Self {
        Self {
            node_type: NodeType::Text,
            group,
            attributes: NodeAttributes::Text(TextAttributes {
                id: id.to_owned(),
                text,
            }),
            messages: Vec::new(),
            meta: Meta::default(),
        }
    }

    /// This node, required.
    pub fn required(mut self) -> Self {
        if let NodeAttributes::Input(a) = &mut self.attributes {
            a.required = true;
        }
        self
    }

    /// This node with a value.
    pub fn with_value(mut self, value: impl Into<Value>) -> Self {
        if let NodeAttributes::Input(a) = &mut self.attributes {
            a.value = Some(value.into());
        }
        self
    }

    /// This node with an autocomplete hint.
    pub fn autocomplete(mut self, hint: &str) -> Self {
        if let NodeAttributes::Input(a) = &mut self.attributes {
            a.autocomplete = Some(hint.to_owned());
        }
        self
    }

    /// This input, running a `webauthn.js` function when clicked.
    pub fn on_click(mut self, trigger: &str) -> Self {
        if let NodeAttributes::Input(a) = &mut self.attributes {
            a.onclick_trigger = Some(trigger.to_owned());
        }
        self
    }

    /// A script the page must load (Kratos's `webauthn_script`). Where it is served
    /// (`src`, `integrity`) is filled in by whoever serves it (the HTTP layer).
    pub fn script(group: NodeGroup, id: &str) -> Self {
        Self {
            node_type: NodeType::Script,
            group,
            attributes: NodeAttributes::Script(ScriptAttributes {
                id: id.to_owned(),
                src: String::new(),
                is_async: true,
                integrity: String::new(),
                script_type: "text/javascript".into(),
                nonce: String::new(),
                referrerpolicy: "no-referrer".into(),
                crossorigin: "anonymous".into(),
            }),
            messages: Vec::new(),
            meta: Meta::default(),
        }
    }

    /// This node with a label.
    pub fn label(mut self, label: UiText) -> Self {
        self.meta.label = Some(label);
        self
    }
}

/// A node's attributes, by node kind (Kratos's `node_type` discriminator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node_type", rename_all = "lowercase")]
pub enum NodeAttributes {
    /// An input.
    Input(InputAttributes),
    /// A text.
    Text(TextAttributes),
    /// An image.
    Img(ImageAttributes),
    /// A link.
    A(AnchorAttributes),
    /// A script.
    Script(ScriptAttributes),
}

/// An input's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputAttributes {
    /// The field name (`identifier`, `password`, `traits.email`, `csrf_token`, …).
    pub name: String,
    /// The HTML input type.
    #[serde(rename = "type")]
    pub input_type: InputType,
    /// The value to pre-fill (never a secret the user typed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Whether the field must be filled.
    #[serde(default)]
    pub required: bool,
    /// Whether the field is disabled.
    #[serde(default)]
    pub disabled: bool,
    /// The autocomplete hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocomplete: Option<String>,
    /// The function of Kratos's `webauthn.js` a click runs (`oryWebAuthnLogin`, …).
    #[serde(
        default,
        rename = "onclickTrigger",
        skip_serializing_if = "Option::is_none"
    )]
    pub onclick_trigger: Option<String>,
    /// The function of `webauthn.js` to run when the form loads.
    #[serde(
        default,
        rename = "onloadTrigger",
        skip_serializing_if = "Option::is_none"
    )]
    pub onload_trigger: Option<String>,
}

/// HTML input types used by identa's forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// Free text.
    Text,
    /// A password.
    Password,
    /// A number.
    Number,
    /// A checkbox.
    Checkbox,
    /// Hidden.
    Hidden,
    /// An email address.
    Email,
    /// A phone number.
    Tel,
    /// A submit button.
    Submit,
    /// A plain button.
    Button,
    /// A date.
    Date,
    /// A URL.
    Url,
}

/// A text node's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextAttributes {
    /// Its id.
    pub id: String,
    /// The text.
    pub text: UiText,
}

/// An image node's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageAttributes {
    /// Its id.
    pub id: String,
    /// The source (often a data URI).
    pub src: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// A link node's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorAttributes {
    /// Its id.
    pub id: String,
    /// Where it points.
    pub href: String,
    /// Its title.
    pub title: UiText,
}

/// A script node's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptAttributes {
    /// Its id.
    pub id: String,
    /// The script URL.
    pub src: String,
    /// Load asynchronously.
    #[serde(rename = "async")]
    pub is_async: bool,
    /// Subresource integrity.
    pub integrity: String,
    /// The script type.
    #[serde(rename = "type")]
    pub script_type: String,
    /// A CSP nonce.
    pub nonce: String,
    /// Referrer policy.
    pub referrerpolicy: String,
    /// CORS mode.
    pub crossorigin: String,
}

/// Presentation hints of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Meta {
    /// The label to show next to the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<UiText>,
}
