//! Verification by code: the user names an address, a code is sent to it, and entering the
//! code marks the address verified. Registration and settings start verification flows
//! themselves for new addresses (already in `sent_email`).
//!
//! States: `choose_method` → `sent_email` → `passed_challenge`. An address that belongs to
//! no account gets the same response as a known one.

use uuid::Uuid;

use super::one_time::{self, Judged, Purpose};
use super::{
    ContinueFlow, ContinueWith, Flow, FlowKind, FlowRequest, FlowState, FlowType, check_for_submit,
    commit_with_hook, fetch_flow, new_flow, reject, show_hook_error, text,
};
use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::hook::AfterEvent;
use crate::identity::schema::AddressVia;
use crate::identity::{Identity, VerifiableAddress, VerificationStatus};
use crate::store::OutboxMessage;
use crate::store::{AddressKind, FlowCommit, FlowWrite};

/// What a user submits to a verification flow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VerificationSubmission {
    /// Send a code to this address (again, in `sent_email`).
    Email(String),
    /// The code received.
    Code(String),
}

/// Where a verification flow got to.
#[derive(Debug)]
#[non_exhaustive]
pub enum VerificationStep {
    /// A code was sent (or, for an unknown address, seemed to be): show the flow.
    CodeSent(Box<Flow>),
    /// The address is verified.
    Verified {
        /// The flow, now `passed_challenge`.
        flow: Box<Flow>,
        /// The identity with the address verified.
        identity: Box<Identity>,
    },
}

/// Verification flows of an engine. Get it with [`Identa::verification_flow`].
#[derive(Debug, Clone, Copy)]
pub struct Verifications<'a> {
    identa: &'a Identa,
}

impl Identa {
    /// Verification flows.
    pub fn verification_flow(&self) -> Verifications<'_> {
        Verifications { identa: self }
    }
}

impl Verifications<'_> {
    /// Starts a verification flow.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        one_time::create(self.identa, Purpose::Verification, flow_type, req).await
    }

    /// Submits an address or a code.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: VerificationSubmission,
        req: &FlowRequest,
    ) -> Result<VerificationStep> {
        let flow = fetch_flow(self.identa, flow_id).await?;
        self.submit_loaded(flow, submission, req).await
    }

    /// [`Self::submit`] for a flow the caller has just read (the HTTP layer reads it to
    /// learn its type).
    pub(crate) async fn submit_loaded(
        &self,
        flow: Flow,
        submission: VerificationSubmission,
        req: &FlowRequest,
    ) -> Result<VerificationStep> {
        let identa = self.identa;
        let mut flow = check_for_submit(identa, flow, FlowKind::Verification, req)?;
        match (flow.state, submission) {
            (FlowState::PassedChallenge, _) => {
                flow.ui.messages.push(text::verification_retry_success());
                Err(Error::FlowInvalid(Box::new(flow)))
            }
            (
                FlowState::ChooseMethod | FlowState::SentEmail,
                VerificationSubmission::Email(raw),
            ) => {
                let address = match one_time::check_address(&raw) {
                    Ok(address) => address,
                    Err(message) => {
                        flow.ui.add_message(Some("email"), message);
                        return Err(reject(identa, flow).await);
                    }
                };
                let owner = identa
                    .store()
                    .identity_by_address(AddressKind::Verifiable, AddressVia::Email, &address)
                    .await?;
                let message = one_time::send_code(
                    identa,
                    &mut flow,
                    Purpose::Verification,
                    &address,
                    owner.map(|i| i.id),
                )?;
                flow.version += 1;
                flow.updated_at = identa.now();
                let commit = FlowCommit {
                    flows: vec![FlowWrite::Update(flow.to_record()?)],
                    messages: message.into_iter().collect(),
                    ..FlowCommit::default()
                };
                identa.store().commit_flow(&commit, None).await?;
                Ok(VerificationStep::CodeSent(Box::new(flow)))
            }
            (FlowState::SentEmail, VerificationSubmission::Code(code)) => {
                self.check_code(flow, &code).await
            }
            (state, _) => Err(Error::FlowState {
                kind: FlowKind::Verification,
                state,
                reason: "a code can only be submitted after an address was given",
            }),
        }
    }

    async fn check_code(&self, mut flow: Flow, code: &str) -> Result<VerificationStep> {
        let identa = self.identa;
        let judged = one_time::judge(identa, &mut flow, Purpose::Verification, code);
        let (identity_id, address) = match judged {
            Judged::Accepted {
                identity_id,
                address,
            } => (identity_id, address),
            Judged::Rejected => {
                flow.ui
                    .add_message(Some("code"), text::verification_code_invalid());
                return Err(reject(identa, flow).await);
            }
            Judged::TooManyAttempts => {
                flow.ui.messages.push(text::submitted_too_often());
                return Err(reject(identa, flow).await);
            }
        };
        let mut identity = identa.identity(identity_id).await?;
        let now = identa.now();
        let Some(verified) = mark_verified(&mut identity, &address, now) else {
            // The address was removed from the identity since the code was sent.
            flow.ui
                .add_message(Some("code"), text::verification_code_invalid());
            return Err(reject(identa, flow).await);
        };
        identity.updated_at = now;
        flow.state = FlowState::PassedChallenge;
        flow.ui.nodes.retain(|n| n.name() == Some("csrf_token"));
        flow.ui.messages = vec![text::verification_successful()];
        flow.version += 1;
        flow.updated_at = now;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Update(flow.to_record()?)],
            replace_identity: Some(&identity),
            ..FlowCommit::default()
        };
        let event = AfterEvent::Verification {
            flow_id: flow.id,
            identity: &identity,
            address: &verified,
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let hook_err = failure?;
            let mut flow = flow.clone();
            flow.version -= 1;
            flow.state = FlowState::SentEmail;
            show_hook_error(&mut flow.ui, hook_err);
            return Err(reject(identa, flow).await);
        }
        identa.invalidate(crate::store::SessionEvent::Identity(identity.id));
        Ok(VerificationStep::Verified {
            flow: Box::new(flow),
            identity: Box::new(identity),
        })
    }
}

/// Marks `address` verified on `identity`; returns the address, or `None` if the identity
/// no longer has it.
pub(crate) fn mark_verified(
    identity: &mut Identity,
    address: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<VerifiableAddress> {
    let a = identity
        .verifiable_addresses
        .iter_mut()
        .find(|a| a.via == AddressVia::Email && a.value == address)?;
    if !a.verified {
        a.verified = true;
        a.verified_at = Some(now);
        a.updated_at = now;
    }
    a.status = VerificationStatus::Completed;
    Some(a.clone())
}

/// Verification flows (already `sent_email`), their messages and `continue_with` items
/// for every unverified email address of `identity` that is not in `known`.
pub(crate) struct CodeSends {
    pub(crate) flows: Vec<Flow>,
    pub(crate) messages: Vec<OutboxMessage>,
    pub(crate) continue_with: Vec<ContinueWith>,
}

pub(crate) fn codes_for_new_addresses(
    identa: &Identa,
    identity: &Identity,
    known: &[VerifiableAddress],
    flow_type: FlowType,
    req: &FlowRequest,
) -> Result<CodeSends> {
    let mut sends = CodeSends {
        flows: Vec::new(),
        messages: Vec::new(),
        continue_with: Vec::new(),
    };
    let config = &identa.config().flows.verification;
    if !config.enabled {
        return Ok(sends);
    }
    for address in &identity.verifiable_addresses {
        let is_new = !known
            .iter()
            .any(|k| k.via == address.via && k.value == address.value);
        if address.verified || !is_new || address.via != AddressVia::Email {
            continue;
        }
        let mut flow = new_flow(
            identa,
            FlowKind::Verification,
            flow_type,
            req,
            config.lifespan,
            FlowState::ChooseMethod,
        )?;
        flow.identity_id = Some(identity.id);
        if let Some(message) = one_time::send_code(
            identa,
            &mut flow,
            Purpose::Verification,
            &address.value,
            Some(identity.id),
        )? {
            sends.messages.push(message);
        }
        sends.continue_with.push(ContinueWith::ShowVerificationUi {
            flow: ContinueFlow {
                id: flow.id,
                url: None,
                verifiable_address: Some(address.value.clone()),
            },
        });
        sends.flows.push(flow);
    }
    Ok(sends)
}
