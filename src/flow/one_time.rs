//! The code method that recovery and verification share: ask for an address, send a code
//! to it (or pretend to, for an unknown address), then accept the code a bounded number of
//! times. Only a MAC of the code is stored, inside the flow.

use chrono::Duration;

use super::ui::InputType;
use super::{
    CodeFlowConfig, Flow, FlowKind, FlowRequest, FlowState, FlowType, Node, NodeGroup,
    UnknownRecipients, method_button, new_flow, text,
};
use crate::courier::{TemplateKind, TemplateVars};
use crate::credential::code::{CodeTarget, OneTimeCode, PendingCode};
use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::identity::normalize;
use crate::identity::schema::AddressVia;
use crate::store::OutboxMessage;
use crate::store::{FlowCommit, FlowWrite};

/// Which flow uses the code method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Recovery,
    Verification,
}

impl Purpose {
    pub(crate) fn config(self, identa: &Identa) -> &CodeFlowConfig {
        match self {
            Self::Recovery => &identa.config().flows.recovery,
            Self::Verification => &identa.config().flows.verification,
        }
    }

    fn kind(self) -> FlowKind {
        match self {
            Self::Recovery => FlowKind::Recovery,
            Self::Verification => FlowKind::Verification,
        }
    }

    fn templates(self) -> (TemplateKind, TemplateKind) {
        match self {
            Self::Recovery => (
                TemplateKind::RecoveryCodeValid,
                TemplateKind::RecoveryCodeInvalid,
            ),
            Self::Verification => (
                TemplateKind::VerificationCodeValid,
                TemplateKind::VerificationCodeInvalid,
            ),
        }
    }
}

/// Starts a recovery or verification flow: it asks for the address to send a code to.
pub(crate) async fn create(
    identa: &Identa,
    purpose: Purpose,
    flow_type: FlowType,
    req: &FlowRequest,
) -> Result<Flow> {
    let config = purpose.config(identa);
    if !config.enabled {
        return Err(Error::FlowDisabled(purpose.kind()));
    }
    let mut flow = new_flow(
        identa,
        purpose.kind(),
        flow_type,
        req,
        config.lifespan,
        FlowState::ChooseMethod,
    )?;
    address_nodes(&mut flow, None);
    let commit = FlowCommit {
        flows: vec![FlowWrite::Insert(flow.to_record()?)],
        ..FlowCommit::default()
    };
    identa.store().commit_flow(&commit, None).await?;
    Ok(flow)
}

/// The longest email address accepted (RFC 5321's path limit).
const MAX_ADDRESS_BYTES: usize = 320;

/// A submitted address, normalised, or the message to show on the `email` node. Values
/// that cannot be addresses (no `@`, control characters, too long) are refused the same
/// way whether or not an account exists, and are never shown back.
pub(crate) fn check_address(raw: &str) -> Result<String, super::UiText> {
    let address = normalize::address(raw, AddressVia::Email);
    let plausible = address.len() <= MAX_ADDRESS_BYTES
        && !address.chars().any(char::is_control)
        && address
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if plausible {
        Ok(address)
    } else {
        Err(super::UiText::error(
            4_000_004,
            "The provided value is not a valid email address.",
        ))
    }
}

/// The nodes asking for an address (state `choose_method`), after the CSRF node.
pub(crate) fn address_nodes(flow: &mut Flow, value: Option<&str>) {
    flow.ui.nodes.retain(|n| n.name() == Some("csrf_token"));
    let mut email = Node::input(NodeGroup::Code, "email", InputType::Email)
        .required()
        .autocomplete("email")
        .label(text::label_email());
    if let Some(value) = value {
        email = email.with_value(value);
    }
    flow.ui.nodes.push(email);
    flow.ui
        .nodes
        .push(method_button(NodeGroup::Code, "code", text::label_submit()));
}

/// The nodes asking for the code (state `sent_email`), after the CSRF node.
fn code_nodes(flow: &mut Flow, purpose: Purpose, address: &str) {
    flow.ui.nodes.retain(|n| n.name() == Some("csrf_token"));
    let label = match purpose {
        Purpose::Recovery => text::label_recovery_code(),
        Purpose::Verification => text::label_verification_code(),
    };
    flow.ui.nodes.push(
        Node::input(NodeGroup::Code, "code", InputType::Text)
            .required()
            .autocomplete("one-time-code")
            .label(label),
    );
    flow.ui
        .nodes
        .push(method_button(NodeGroup::Code, "code", text::label_submit()));
    flow.ui.nodes.push(
        Node::input(NodeGroup::Code, "email", InputType::Submit)
            .with_value(address)
            .label(text::label_resend()),
    );
}

/// Sends a fresh code for `flow` to `address`: records its MAC in the flow, moves the
/// flow to `sent_email`, and returns the message to queue. For an unknown address
/// (`identity_id` is `None`) the flow looks exactly the same, no code will ever match, and
/// a message is queued only if unknown recipients are notified.
pub(crate) fn send_code(
    identa: &Identa,
    flow: &mut Flow,
    purpose: Purpose,
    address: &str,
    identity_id: Option<uuid::Uuid>,
) -> Result<Option<OutboxMessage>> {
    let config = purpose.config(identa);
    let code = OneTimeCode::generate(config.code_digits);
    let now = identa.now();
    let expires_at = now + config.code_lifespan;
    let target = match identity_id {
        Some(identity_id) => CodeTarget::Identity {
            identity_id,
            address: address.to_owned(),
        },
        None => CodeTarget::Nobody,
    };
    let known = matches!(target, CodeTarget::Identity { .. });
    flow.internal.code = Some(PendingCode::new(
        identa.keyring(),
        flow.id,
        &code,
        expires_at,
        target,
    ));
    flow.state = FlowState::SentEmail;
    code_nodes(flow, purpose, address);
    flow.ui.messages = vec![match purpose {
        Purpose::Recovery => text::recovery_code_sent(),
        Purpose::Verification => text::verification_code_sent(),
    }];
    let (valid, invalid) = purpose.templates();
    let vars = TemplateVars {
        to: address.to_owned(),
        code: known.then(|| code.expose().to_owned()),
        expires_in_minutes: config.code_lifespan.num_minutes().max(1),
    };
    let courier = identa.courier();
    if known {
        Ok(Some(courier.compose(valid, &vars)?))
    } else if config.unknown_recipients == UnknownRecipients::Notify {
        Ok(Some(courier.compose(invalid, &vars)?))
    } else {
        Ok(None)
    }
}

/// Records a fresh code for an identity in `flow` (which moves to `sent_email`) and
/// returns it, without composing a message: for codes handed over by an administrator.
pub(crate) fn issue_code(
    identa: &Identa,
    flow: &mut Flow,
    purpose: Purpose,
    address: &str,
    identity_id: uuid::Uuid,
    lifespan: chrono::Duration,
) -> OneTimeCode {
    let code = OneTimeCode::generate(purpose.config(identa).code_digits);
    flow.internal.code = Some(PendingCode::new(
        identa.keyring(),
        flow.id,
        &code,
        identa.now() + lifespan,
        CodeTarget::Identity {
            identity_id,
            address: address.to_owned(),
        },
    ));
    flow.state = FlowState::SentEmail;
    code_nodes(flow, purpose, address);
    code
}

/// How a submitted code was judged.
#[derive(Debug)]
pub(crate) enum Judged {
    /// The right code, in time: it is now burnt.
    Accepted {
        identity_id: uuid::Uuid,
        address: String,
    },
    /// Wrong, expired, or for an unknown address.
    Rejected,
    /// The flow used up its attempts; nothing is accepted any more.
    TooManyAttempts,
}

/// Judges a submitted code, counting the attempt on the flow (the caller persists it).
pub(crate) fn judge(identa: &Identa, flow: &mut Flow, purpose: Purpose, code: &str) -> Judged {
    let config = purpose.config(identa);
    flow.internal.code_attempts = flow.internal.code_attempts.saturating_add(1);
    if flow.internal.code_attempts > config.max_attempts {
        return Judged::TooManyAttempts;
    }
    let Some(pending) = &flow.internal.code else {
        return Judged::Rejected;
    };
    let fresh = identa.now() < pending.expires_at;
    let matches = pending.matches(identa.keyring(), flow.id, &OneTimeCode::from_user(code));
    match (&pending.target, fresh && matches) {
        (
            CodeTarget::Identity {
                identity_id,
                address,
            },
            true,
        ) => {
            let judged = Judged::Accepted {
                identity_id: *identity_id,
                address: address.clone(),
            };
            flow.internal.code = None;
            judged
        }
        _ => Judged::Rejected,
    }
}

/// The lifespan left to show in a message.
pub(crate) fn minutes(d: Duration) -> i64 {
    d.num_minutes().max(1)
}
