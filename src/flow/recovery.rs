//! Recovery by code: the user names a recovery address; a code is sent to it; entering the
//! code signs the user in (a new session, method `code_recovery`) and opens a settings
//! flow where they set a new password. The address the code reached counts as verified.
//!
//! States: `choose_method` ─(address)─▶ `sent_email` ─(the right code)─▶
//! `passed_challenge`. An unknown address gets exactly the same response as a known one
//! (and, if configured, an "account not found" email), so recovery cannot be used to find
//! out who has an account. Each flow accepts a bounded number of code submissions; after
//! that even the right code is refused. A code works once.
//! A code works only while the address it was sent to is still one of the identity's
//! recovery addresses.
//! Effects: queue the code's mail; then issue a session, store the settings flow, mark the
//! address verified, and (by default, `flows.after_recovery`) revoke every other session
//! of the identity.

use chrono::{DateTime, Duration, Utc};

use super::code::{self, CodeSubmission, Judged, Purpose};
use super::lifecycle::new_flow;
use super::settings::settings_flow_for;
use super::text;
use super::{Answers, ContinueFlow, ContinueWith, Effect, Facts, Fallback, Flow, FlowKind};
use super::{FlowRequest, FlowState, FlowType, OtherSessions, Result, Step, Transition};
use crate::credential::code::OneTimeCode;
use crate::hook::AfterEvent;
use crate::identity::{Aal, Identity};
use crate::session::{
    AuthenticatedSession, AuthenticationMethod, Session, SessionError, SessionToken,
};

/// Where a recovery flow got to.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecoveryStep {
    /// A code was sent (or, for an unknown address, seemed to be): show the flow.
    CodeSent(Box<Flow>),
    /// The account is recovered: the user is signed in and should set a new password.
    Recovered(Box<Recovered>),
}

/// A recovered account.
#[derive(Debug)]
pub struct Recovered {
    /// The recovery flow, now `passed_challenge`.
    pub flow: Flow,
    /// The new session with its identity.
    pub session: AuthenticatedSession,
    /// The new session's token (set it as the cookie, or give it to the app).
    pub token: SessionToken,
    /// The settings flow to set a new password in (privileged: the session is fresh).
    pub settings_flow: Flow,
    /// Kratos's `continue_with`: `set_ory_session_token` (API flows) and
    /// `show_settings_ui`.
    pub continue_with: Vec<ContinueWith>,
}

/// A recovery code an administrator created for an identity (Kratos's
/// `POST /admin/recovery/code`): give the code and the flow to the user out of band.
#[derive(Debug)]
pub struct AdminRecoveryCode {
    /// The recovery flow (API type, already `sent_email`); the user submits the code to it.
    pub flow: Flow,
    /// The code.
    pub code: OneTimeCode,
    /// When the code stops working.
    pub expires_at: DateTime<Utc>,
}

/// What a recovery transition tells its caller beyond the flow.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per submission, moved once
pub(crate) enum Outcome {
    CodeSent,
    Recovered {
        session: AuthenticatedSession,
        token: SessionToken,
        settings_flow: Flow,
        continue_with: Vec<ContinueWith>,
    },
}

impl Answers for Outcome {
    type Answer = RecoveryStep;

    fn after_event(&self, flow_id: uuid::Uuid) -> Option<AfterEvent<'_>> {
        match self {
            Self::CodeSent => None,
            Self::Recovered { session, .. } => Some(AfterEvent::Recovery {
                flow_id,
                identity: &session.identity,
                session: &session.session,
            }),
        }
    }

    fn answer(self, _: &dyn Facts, flow: Flow) -> RecoveryStep {
        match self {
            Self::CodeSent => RecoveryStep::CodeSent(Box::new(flow)),
            Self::Recovered {
                session,
                token,
                settings_flow,
                continue_with,
            } => RecoveryStep::Recovered(Box::new(Recovered {
                flow,
                session,
                token,
                settings_flow,
                continue_with,
            })),
        }
    }
}

/// A new recovery flow (not stored).
pub(crate) fn create(facts: &dyn Facts, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
    code::create(facts, Purpose::Recovery, flow_type, req)
}

/// A recovery flow and code for `identity`, for an administrator to hand over (nothing is
/// emailed; the flow is not stored). The code works once, until `expires_in` has passed
/// (at least a minute).
pub(crate) fn admin_code(
    facts: &dyn Facts,
    identity: &Identity,
    expires_in: Duration,
) -> Result<AdminRecoveryCode> {
    if !identity.is_active() {
        return Err(SessionError::IdentityDisabled.into());
    }
    let expires_in = expires_in.max(Duration::minutes(1));
    let mut flow = new_flow(
        facts,
        FlowKind::Recovery,
        FlowType::Api,
        &FlowRequest::api(),
        expires_in.max(facts.config().recovery.lifespan),
        FlowState::ChooseMethod,
    )?;
    let address = identity
        .recovery_addresses
        .first()
        .map(|a| a.value.clone())
        .unwrap_or_default();
    let code = code::issue_code(
        facts,
        &mut flow,
        Purpose::Recovery,
        &address,
        identity.id,
        expires_in,
    );
    Ok(AdminRecoveryCode {
        flow,
        code,
        expires_at: facts.now() + expires_in,
    })
}

/// Judges an address or a code.
pub(crate) async fn submit(
    facts: &dyn Facts,
    flow: Flow,
    submission: CodeSubmission,
    req: &FlowRequest,
    _: Option<&AuthenticatedSession>,
) -> Result<Step<Outcome>> {
    match code::judge(facts, flow, Purpose::Recovery, submission).await? {
        Judged::CodeSent { flow, mail } => Ok(Step::Advance(Transition {
            fallback: Fallback::to(flow.clone()),
            flow,
            effects: mail.into_iter().collect(),
            outcome: Outcome::CodeSent,
        })),
        Judged::Retry(flow) => Ok(Step::Reject(flow)),
        Judged::Accepted {
            flow,
            identity_id,
            address,
        } => recover(facts, flow, identity_id, &address, req).await,
    }
}

/// Whether a code sent to `address` may still recover `identity`: the address is still
/// one of its recovery addresses. (An administrator's code for an identity without one
/// was sent to no address, and is bound to the identity alone.)
fn still_reaches(identity: &Identity, address: &str) -> bool {
    address.is_empty()
        || identity
            .recovery_addresses
            .iter()
            .any(|a| a.value == address)
}

/// The right code: sign the user in and open a settings flow.
async fn recover(
    facts: &dyn Facts,
    mut flow: Flow,
    identity_id: uuid::Uuid,
    address: &str,
    req: &FlowRequest,
) -> Result<Step<Outcome>> {
    let identity = facts.identity(identity_id).await?;
    let Some(mut identity) = identity.filter(|identity| still_reaches(identity, address)) else {
        // Deleted, or the address the code went to is no longer one of its recovery
        // addresses (changed in settings or by an administrator), since the code was
        // sent: the code is void, as a wrong one.
        flow.ui.messages.push(text::recovery_code_invalid());
        return Ok(Step::Reject(flow));
    };
    if !identity.is_active() {
        flow.ui.messages.push(text::identity_disabled());
        return Ok(Step::Reject(flow));
    }
    let fallback = Fallback::to(flow.clone());
    let now = facts.now();
    // The code reached this address: it is verified now.
    let verified = identity.mark_verified(address, now).is_some();
    let method = AuthenticationMethod {
        method: "code_recovery".into(),
        aal: Aal::Aal1,
        completed_at: now,
    };
    let (session, token) = Session::issue(
        &identity,
        vec![method],
        req.device.clone(),
        now,
        facts.session_lifespan(),
        facts.keyring(),
    )?;
    let current = AuthenticatedSession {
        session,
        identity: identity.clone(),
    };
    let settings_req = FlowRequest {
        csrf_cookie: req.csrf_cookie.clone(),
        return_to: flow.return_to.clone(),
        ..FlowRequest::default()
    };
    let mut settings_flow = settings_flow_for(facts, flow.flow_type, &settings_req, &current)?;
    let minutes = code::minutes(facts.config().settings.privileged_session_max_age);
    settings_flow
        .ui
        .messages
        .push(text::recovery_successful(minutes));

    flow.state = FlowState::PassedChallenge;
    flow.ui.nodes.retain(|n| n.name() == Some("csrf_token"));
    flow.ui.messages.clear();
    flow.continue_with = vec![ContinueWith::ShowSettingsUi {
        flow: ContinueFlow {
            id: settings_flow.id,
            url: None,
            verifiable_address: None,
        },
    }];

    let mut effects = vec![
        Effect::InsertFlow(settings_flow.clone()),
        Effect::IssueSession {
            session: current.session.clone(),
            token: token.hash(),
        },
    ];
    if facts.config().after_recovery == OtherSessions::Revoke {
        // Whoever else holds a session (perhaps the reason for the recovery) is out.
        effects.push(Effect::RevokeSessions {
            identity_id: identity.id,
            keep: Some(current.session.id),
        });
    }
    if verified {
        effects.push(Effect::UpdateIdentity(identity));
    }
    let mut continue_with: Vec<_> = ContinueWith::token_for(flow.flow_type, &token)
        .into_iter()
        .collect();
    continue_with.extend(flow.continue_with.iter().cloned());
    Ok(Step::Advance(Transition {
        flow,
        effects,
        outcome: Outcome::Recovered {
            session: current,
            token,
            settings_flow,
            continue_with,
        },
        fallback,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::courier::TemplateKind;
    use crate::flow::check_submit;
    use crate::flow::testing::{
        TestFacts, advanced, api, effect_names, mailed_code, message_ids, rejected,
    };

    async fn send(facts: &TestFacts, address: &str) -> Transition<Outcome> {
        let flow = create(facts, FlowType::Api, &api()).unwrap();
        let req = api();
        let step = submit(
            facts,
            flow,
            CodeSubmission::Email(address.into()),
            &req,
            None,
        )
        .await;
        advanced(step.unwrap())
    }

    /// The flow, checked for a new submission as the engine would.
    fn again(facts: &TestFacts, flow: Flow) -> Flow {
        check_submit(
            flow,
            FlowKind::Recovery,
            &api(),
            facts.keyring(),
            facts.now(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_known_and_an_unknown_address_get_the_same_answer() {
        let facts = TestFacts::new();
        facts.add_identity("ada@example.com").await;
        let known = send(&facts, "ADA@example.com").await;
        let unknown = send(&facts, "nobody@example.com").await;
        for t in [&known, &unknown] {
            assert_eq!(t.flow.state, FlowState::SentEmail);
            assert_eq!(message_ids(&t.flow), [1_060_003]);
        }
        assert_eq!(effect_names(&known.effects), ["send_mail"]);
        assert!(matches!(
            &known.effects[0],
            Effect::SendMail { template: TemplateKind::RecoveryCodeValid, vars }
                if vars.to == "ada@example.com" && vars.code.is_some()
        ));
        // Silent by default: nothing goes to an address without an account.
        assert!(unknown.effects.is_empty());
    }

    #[tokio::test]
    async fn the_right_code_signs_in_verifies_the_address_and_opens_settings() {
        let facts = TestFacts::new();
        let req = api();
        let ada = facts.add_identity("ada@example.com").await;
        let sent = send(&facts, "ada@example.com").await;
        let code = mailed_code(&sent.effects).unwrap();
        let step = submit(
            &facts,
            again(&facts, sent.flow),
            CodeSubmission::Code(code),
            &req,
            None,
        );
        let t = advanced(step.await.unwrap());
        assert_eq!(t.flow.state, FlowState::PassedChallenge);
        assert_eq!(
            effect_names(&t.effects),
            [
                "insert_flow",
                "issue_session",
                "revoke_sessions",
                "update_identity"
            ]
        );
        let Effect::UpdateIdentity(identity) = &t.effects[3] else {
            unreachable!()
        };
        assert!(identity.verifiable_addresses[0].verified);
        let Outcome::Recovered {
            session,
            settings_flow,
            continue_with,
            ..
        } = t.outcome
        else {
            panic!("not recovered")
        };
        assert_eq!(session.identity.id, ada.id);
        assert_eq!(
            session.session.authentication_methods[0].method,
            "code_recovery"
        );
        assert_eq!(settings_flow.kind, FlowKind::Settings);
        assert!(matches!(
            &continue_with[..],
            [ContinueWith::SetOrySessionToken { .. }, ContinueWith::ShowSettingsUi { flow }]
                if flow.id == settings_flow.id
        ));
    }

    /// Recovers Ada's account with a code sent to `address`, `change` made to her
    /// identity after the code was sent: the step.
    async fn recover_after(
        facts: &TestFacts,
        address: &str,
        change: impl FnOnce(&mut Identity),
    ) -> Step<Outcome> {
        let ada = facts.add_identity("ada@example.com").await;
        let sent = send(facts, address).await;
        let code = mailed_code(&sent.effects).unwrap();
        if let Some(stored) = facts
            .identities
            .lock()
            .unwrap()
            .iter_mut()
            .find(|i| i.id == ada.id)
        {
            change(stored);
        }
        let flow = again(facts, sent.flow);
        submit(facts, flow, CodeSubmission::Code(code), &api(), None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn recovery_revokes_every_other_session_but_its_own_unless_configured_to_keep_them() {
        let facts = TestFacts::new();
        let t = advanced(recover_after(&facts, "ada@example.com", |_| ()).await);
        let Outcome::Recovered { session, .. } = &t.outcome else {
            panic!("not recovered")
        };
        assert!(t.effects.iter().any(|e| matches!(
            e,
            Effect::RevokeSessions { identity_id, keep: Some(kept) }
                if *identity_id == session.identity.id && *kept == session.session.id
        )));
        let mut keeping = TestFacts::new();
        keeping.config.after_recovery = OtherSessions::Keep;
        let t = advanced(recover_after(&keeping, "ada@example.com", |_| ()).await);
        assert!(!effect_names(&t.effects).contains(&"revoke_sessions"));
    }

    #[tokio::test]
    async fn a_code_sent_to_an_address_the_identity_no_longer_has_is_refused() {
        let facts = TestFacts::new();
        let step = recover_after(&facts, "ada@example.com", |ada| {
            ada.recovery_addresses[0].value = "ada@new.example".into();
        })
        .await;
        let flow = rejected(step);
        assert_eq!(message_ids(&flow), [4_060_006]);
        assert_ne!(flow.state, FlowState::PassedChallenge);
    }

    #[tokio::test]
    async fn wrong_late_and_too_many_codes_are_refused() {
        let facts = TestFacts::new();
        let req = api();
        facts.add_identity("ada@example.com").await;
        let sent = send(&facts, "ada@example.com").await;
        let code = mailed_code(&sent.effects).unwrap();
        let mut flow = sent.flow;
        for _ in 0..4 {
            let step = submit(
                &facts,
                again(&facts, flow),
                CodeSubmission::Code("000000".into()),
                &req,
                None,
            );
            flow = rejected(step.await.unwrap());
            assert_eq!(message_ids(&flow), [4_060_006]);
        }
        // The fifth try is the last one allowed, but the code is 16 minutes old.
        facts.advance(chrono::Duration::minutes(16));
        let step = submit(
            &facts,
            again(&facts, flow.clone()),
            CodeSubmission::Code(code.clone()),
            &req,
            None,
        );
        flow = rejected(step.await.unwrap());
        assert_eq!(message_ids(&flow), [4_060_006]);
        // After five tries even a fresh right code is refused.
        let resent = {
            let step = submit(
                &facts,
                again(&facts, flow),
                CodeSubmission::Email("ada@example.com".into()),
                &req,
                None,
            );
            advanced(step.await.unwrap())
        };
        let fresh = mailed_code(&resent.effects).unwrap();
        let step = submit(
            &facts,
            again(&facts, resent.flow),
            CodeSubmission::Code(fresh),
            &req,
            None,
        );
        let flow = rejected(step.await.unwrap());
        assert_eq!(message_ids(&flow), [4_000_001]);
        assert_eq!(flow.internal.code_attempts, 6);
    }
}
