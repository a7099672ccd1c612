//! Verification by code: the user names an address, a code is sent to it, and entering the
//! code marks the address verified. Registration and settings start verification flows
//! themselves for new addresses (already in `sent_email`).
//!
//! States: `choose_method` ─(address)─▶ `sent_email` ─(the right code)─▶
//! `passed_challenge`. An address that belongs to no account gets the same response as a
//! known one.
//! Effects: queue the code's mail; then update the identity (the address verified).

use super::Step;
use super::Transition;
use super::code::{self, CodeSubmission, Judged, Purpose};
use super::text;
use super::{Answers, Effect, Facts, Fallback, Flow, FlowRequest, FlowState, FlowType, Result};
use crate::hook::AfterEvent;
use crate::identity::{Identity, VerifiableAddress};
use crate::session::AuthenticatedSession;

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

/// What a verification transition tells its caller beyond the flow.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per submission, moved once
pub(crate) enum Outcome {
    CodeSent,
    Verified {
        identity: Identity,
        address: VerifiableAddress,
    },
}

impl Answers for Outcome {
    type Answer = VerificationStep;

    fn after_event(&self, flow_id: uuid::Uuid) -> Option<AfterEvent<'_>> {
        match self {
            Self::CodeSent => None,
            Self::Verified { identity, address } => Some(AfterEvent::Verification {
                flow_id,
                identity,
                address,
            }),
        }
    }

    fn answer(self, _: &dyn Facts, flow: Flow) -> VerificationStep {
        match self {
            Self::CodeSent => VerificationStep::CodeSent(Box::new(flow)),
            Self::Verified { identity, .. } => VerificationStep::Verified {
                flow: Box::new(flow),
                identity: Box::new(identity),
            },
        }
    }
}

/// A new verification flow (not stored).
pub(crate) fn create(facts: &dyn Facts, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
    code::create(facts, Purpose::Verification, flow_type, req)
}

/// Judges an address or a code.
pub(crate) async fn submit(
    facts: &dyn Facts,
    flow: Flow,
    submission: CodeSubmission,
    _: &FlowRequest,
    _: Option<&AuthenticatedSession>,
) -> Result<Step<Outcome>> {
    let (mut flow, identity_id, address) =
        match code::judge(facts, flow, Purpose::Verification, submission).await? {
            Judged::CodeSent { flow, mail } => {
                return Ok(Step::Advance(Transition {
                    fallback: Fallback::to(flow.clone()),
                    flow,
                    effects: mail.into_iter().collect(),
                    outcome: Outcome::CodeSent,
                }));
            }
            Judged::Retry(flow) => return Ok(Step::Reject(flow)),
            Judged::Accepted {
                flow,
                identity_id,
                address,
            } => (flow, identity_id, address),
        };
    let now = facts.now();
    let identity = facts.identity(identity_id).await?;
    let Some((mut identity, verified)) = identity.and_then(|mut identity| {
        let verified = identity.mark_verified(&address, now)?;
        Some((identity, verified))
    }) else {
        // The identity, or this address of it, is gone since the code was sent.
        flow.ui.messages.push(text::verification_code_invalid());
        return Ok(Step::Reject(flow));
    };
    let fallback = Fallback::to(flow.clone());
    identity.updated_at = now;
    flow.state = FlowState::PassedChallenge;
    flow.ui.nodes.retain(|n| n.name() == Some("csrf_token"));
    flow.ui.messages = vec![text::verification_successful()];
    Ok(Step::Advance(Transition {
        flow,
        effects: vec![Effect::UpdateIdentity(identity.clone())],
        outcome: Outcome::Verified {
            identity,
            address: verified,
        },
        fallback,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::testing::{TestFacts, advanced, api, effect_names, mailed_code, rejected};
    use crate::flow::{FlowKind, check_submit};

    #[tokio::test]
    async fn the_right_code_marks_the_address_verified() {
        let facts = TestFacts::new();
        let req = api();
        let ada = facts.add_identity("ada@example.com").await;
        let flow = create(&facts, FlowType::Api, &api()).unwrap();
        let step = submit(
            &facts,
            flow,
            CodeSubmission::Email("ada@example.com".into()),
            &req,
            None,
        )
        .await;
        let sent = advanced(step.unwrap());
        let code = mailed_code(&sent.effects).unwrap();
        let flow = check_submit(
            sent.flow,
            FlowKind::Verification,
            &api(),
            facts.keyring(),
            facts.now(),
        )
        .unwrap();

        // Another code does nothing (and is counted).
        let flow = rejected(
            submit(
                &facts,
                flow,
                CodeSubmission::Code("123456".into()),
                &req,
                None,
            )
            .await
            .unwrap(),
        );
        assert_eq!(flow.internal.code_attempts, 1);
        let step = submit(&facts, flow, CodeSubmission::Code(code), &req, None).await;
        let t = advanced(step.unwrap());
        assert_eq!(t.flow.state, FlowState::PassedChallenge);
        assert_eq!(effect_names(&t.effects), ["update_identity"]);
        let Outcome::Verified { identity, address } = t.outcome else {
            panic!("not verified")
        };
        assert_eq!(identity.id, ada.id);
        assert!(address.verified);
        assert_eq!(
            address.status,
            crate::identity::VerificationStatus::Completed
        );
        assert!(
            !facts.stored(ada.id).verifiable_addresses[0].verified,
            "nothing is written"
        );
    }
}
