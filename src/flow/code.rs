//! The code method recovery and verification share: ask for an address, send a code to it
//! (or seem to, for an address no account has), then accept the code a bounded number of
//! times. Only a MAC of the code is kept, inside the flow.
//!
//! States: `choose_method` ─(address)─▶ `sent_email` ─(address again: a fresh code)─▶
//! `sent_email` ─(the right code)─▶ what the kind decides (`passed_challenge`).

use chrono::Duration;
use uuid::Uuid;

use super::form::method_button;
use super::lifecycle::new_flow;
use super::text;
use super::ui::{InputType, Node, NodeGroup, UiText};
use super::{CodeFlowConfig, Effect, Facts, Flow, FlowError, FlowKind, FlowRequest, FlowState};
use super::{FlowType, Result, UnknownRecipients};
use crate::courier::{TemplateKind, TemplateVars};
use crate::credential::code::{CodeTarget, OneTimeCode, PendingCode};
use crate::identity::{AddressVia, Identity, normalize};
use crate::store::AddressKind;

/// What a user submits to a recovery or verification flow. Its `Debug` hides the code.
#[derive(Clone)]
#[non_exhaustive]
pub enum CodeSubmission {
    /// Send a code to this address (again, in `sent_email`).
    Email(String),
    /// The code received.
    Code(String),
}

impl std::fmt::Debug for CodeSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Email(address) => f.debug_tuple("Email").field(address).finish(),
            Self::Code(_) => f.debug_tuple("Code").field(&"<redacted>").finish(),
        }
    }
}

/// Which flow uses the code method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Recovery,
    Verification,
}

impl Purpose {
    pub(crate) fn config(self, facts: &dyn Facts) -> &CodeFlowConfig {
        match self {
            Self::Recovery => &facts.config().recovery,
            Self::Verification => &facts.config().verification,
        }
    }

    fn kind(self) -> FlowKind {
        match self {
            Self::Recovery => FlowKind::Recovery,
            Self::Verification => FlowKind::Verification,
        }
    }

    /// The templates for a known and an unknown address.
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

    /// Which addresses a code may go to.
    fn addresses(self) -> AddressKind {
        match self {
            Self::Recovery => AddressKind::Recovery,
            Self::Verification => AddressKind::Verifiable,
        }
    }
}

/// A new recovery or verification flow (not stored): it asks for the address to send a
/// code to.
pub(crate) fn create(
    facts: &dyn Facts,
    purpose: Purpose,
    flow_type: FlowType,
    req: &FlowRequest,
) -> Result<Flow> {
    let config = purpose.config(facts);
    if !config.enabled {
        return Err(FlowError::Disabled(purpose.kind()));
    }
    let mut flow = new_flow(
        facts,
        purpose.kind(),
        flow_type,
        req,
        config.lifespan,
        FlowState::ChooseMethod,
    )?;
    address_nodes(&mut flow);
    Ok(flow)
}

/// How a submission to a code flow was judged.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per submission, moved once
pub(crate) enum Judged {
    /// An address was given: a code was sent to it (or, for an address no account has,
    /// seemed to be). Save the flow and queue the mail, if any.
    CodeSent { flow: Flow, mail: Option<Effect> },
    /// The user must act on the form again (not an address, a wrong or late code, too
    /// many tries).
    Retry(Flow),
    /// The right code, in time: what it proves is for the flow's kind to act on.
    Accepted {
        flow: Flow,
        identity_id: Uuid,
        address: String,
    },
}

/// Judges a submission to a code flow that passed [`check_submit`](super::check_submit).
pub(crate) async fn judge(
    facts: &dyn Facts,
    mut flow: Flow,
    purpose: Purpose,
    submission: CodeSubmission,
) -> Result<Judged> {
    match (flow.state, submission) {
        (FlowState::PassedChallenge, _) => {
            flow.ui.messages.push(match purpose {
                Purpose::Recovery => text::recovery_retry_success(),
                Purpose::Verification => text::verification_retry_success(),
            });
            Err(FlowError::Invalid(Box::new(flow)))
        }
        (FlowState::ChooseMethod | FlowState::SentEmail, CodeSubmission::Email(raw)) => {
            let address = match check_address(&raw) {
                Ok(address) => address,
                Err(message) => {
                    flow.ui.add_message(Some("email"), message);
                    return Ok(Judged::Retry(flow));
                }
            };
            let owner = facts
                .identity_by_address(purpose.addresses(), AddressVia::Email, &address)
                .await?
                .filter(|owner| purpose == Purpose::Verification || owner.is_active());
            let mail = send_code(facts, &mut flow, purpose, &address, owner.map(|i| i.id));
            Ok(Judged::CodeSent { flow, mail })
        }
        (FlowState::SentEmail, CodeSubmission::Code(code)) => {
            Ok(judge_code(facts, flow, purpose, &code))
        }
        (state, _) => Err(FlowError::State {
            kind: purpose.kind(),
            state,
            reason: "a code can only be submitted after an address was given",
        }),
    }
}

/// The longest email address accepted (RFC 5321's path limit).
const MAX_ADDRESS_BYTES: usize = 320;

/// A submitted address, normalised, or the message to show on the `email` node. Values
/// that cannot be addresses (no `@`, control characters, too long) are refused the same
/// way whether or not an account exists, and are never shown back.
fn check_address(raw: &str) -> std::result::Result<String, UiText> {
    let address = normalize::address(raw, AddressVia::Email);
    let plausible = address.len() <= MAX_ADDRESS_BYTES
        && !address.chars().any(char::is_control)
        && address
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if plausible {
        Ok(address)
    } else {
        Err(text::invalid_email())
    }
}

/// The nodes asking for an address (state `choose_method`), after the CSRF node.
fn address_nodes(flow: &mut Flow) {
    flow.ui.nodes.retain(|n| n.name() == Some("csrf_token"));
    flow.ui.nodes.push(
        Node::input(NodeGroup::Code, "email", InputType::Email)
            .required()
            .autocomplete("email")
            .label(text::label_email()),
    );
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
/// flow to `sent_email`, and returns the mail to queue. For an unknown address
/// (`identity_id` is `None`) the flow looks exactly the same, no code will ever match, and
/// mail goes out only if unknown recipients are notified.
pub(crate) fn send_code(
    facts: &dyn Facts,
    flow: &mut Flow,
    purpose: Purpose,
    address: &str,
    identity_id: Option<Uuid>,
) -> Option<Effect> {
    let config = purpose.config(facts);
    let code = OneTimeCode::generate(config.code_digits);
    let target = match identity_id {
        Some(identity_id) => CodeTarget::Identity {
            identity_id,
            address: address.to_owned(),
        },
        None => CodeTarget::Nobody,
    };
    let known = matches!(target, CodeTarget::Identity { .. });
    let expires_at = facts.now() + config.code_lifespan;
    flow.internal.code = Some(PendingCode::new(
        facts.keyring(),
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
    let template = match (known, config.unknown_recipients) {
        (true, _) => valid,
        (false, UnknownRecipients::Notify) => invalid,
        (false, UnknownRecipients::Silent) => return None,
    };
    Some(Effect::SendMail {
        template,
        vars: TemplateVars {
            to: address.to_owned(),
            code: known.then(|| code.expose().to_owned()),
            expires_in_minutes: minutes(config.code_lifespan),
            code_expires_at: known.then_some(expires_at),
        },
    })
}

/// Records a fresh code for an identity in `flow` (which moves to `sent_email`) and
/// returns it, without any mail: for codes an administrator hands over.
pub(crate) fn issue_code(
    facts: &dyn Facts,
    flow: &mut Flow,
    purpose: Purpose,
    address: &str,
    identity_id: Uuid,
    lifespan: Duration,
) -> OneTimeCode {
    let code = OneTimeCode::generate(purpose.config(facts).code_digits);
    flow.internal.code = Some(PendingCode::new(
        facts.keyring(),
        flow.id,
        &code,
        facts.now() + lifespan,
        CodeTarget::Identity {
            identity_id,
            address: address.to_owned(),
        },
    ));
    flow.state = FlowState::SentEmail;
    code_nodes(flow, purpose, address);
    code
}

/// Judges a submitted code, counting the attempt on the flow (kept, whatever the outcome).
fn judge_code(facts: &dyn Facts, mut flow: Flow, purpose: Purpose, code: &str) -> Judged {
    let config = purpose.config(facts);
    flow.internal.code_attempts = flow.internal.code_attempts.saturating_add(1);
    if flow.internal.code_attempts > config.max_attempts {
        flow.ui.messages.push(text::submitted_too_often());
        return Judged::Retry(flow);
    }
    let accepted = flow.internal.code.as_ref().and_then(|pending| {
        let fresh = facts.now() < pending.expires_at;
        let matches = pending.matches(facts.keyring(), flow.id, &OneTimeCode::from_user(code));
        match &pending.target {
            CodeTarget::Identity {
                identity_id,
                address,
            } if fresh && matches => Some((*identity_id, address.clone())),
            _ => None,
        }
    });
    match accepted {
        Some((identity_id, address)) => {
            flow.internal.code = None;
            Judged::Accepted {
                flow,
                identity_id,
                address,
            }
        }
        None => {
            // On the form, not the code field, as Kratos shows it (`ui.messages`).
            flow.ui.messages.push(match purpose {
                Purpose::Recovery => text::recovery_code_invalid(),
                Purpose::Verification => text::verification_code_invalid(),
            });
            Judged::Retry(flow)
        }
    }
}

/// New verification flows (already `sent_email`) with their mail, and the `continue_with`
/// items pointing at them, for every unverified email address of `identity` that is not
/// in `known` (what registration and settings send for new addresses).
pub(crate) fn verify_new_addresses(
    facts: &dyn Facts,
    identity: &Identity,
    known: &[crate::identity::VerifiableAddress],
    flow_type: FlowType,
    req: &FlowRequest,
) -> Result<(Vec<Effect>, Vec<super::ContinueWith>)> {
    let mut effects = Vec::new();
    let mut continue_with = Vec::new();
    let config = &facts.config().verification;
    if !config.enabled {
        return Ok((effects, continue_with));
    }
    for address in &identity.verifiable_addresses {
        let is_new = !known
            .iter()
            .any(|k| k.via == address.via && k.value == address.value);
        if address.verified || !is_new || address.via != AddressVia::Email {
            continue;
        }
        let mut flow = new_flow(
            facts,
            FlowKind::Verification,
            flow_type,
            req,
            config.lifespan,
            FlowState::ChooseMethod,
        )?;
        flow.identity_id = Some(identity.id);
        let mail = send_code(
            facts,
            &mut flow,
            Purpose::Verification,
            &address.value,
            Some(identity.id),
        );
        continue_with.push(super::ContinueWith::ShowVerificationUi {
            flow: super::ContinueFlow {
                id: flow.id,
                url: None,
                verifiable_address: Some(address.value.clone()),
            },
        });
        effects.push(Effect::InsertFlow(flow));
        effects.extend(mail);
    }
    Ok((effects, continue_with))
}

/// A lifespan in whole minutes, at least one, for messages.
pub(crate) fn minutes(d: Duration) -> i64 {
    d.num_minutes().max(1)
}
