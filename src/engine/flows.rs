//! Flows as the engine drives them. Every submission takes one path, whatever its kind:
//! load the flow, check kind, expiry and CSRF, find the session the request presents, run
//! the kind's state machine, then save what it decided — the flow showing what to fix, or
//! the flow with its effects and the after hook in one transaction (or, if that is
//! refused, the flow as it was, saying why — except a taken identifier under
//! enumeration-safe registration, which is answered as new instead). [`Kind`] is what
//! differs between kinds.

use async_trait::async_trait;
use chrono::Duration;
use uuid::Uuid;

use super::Identa;
use super::apply::ApplyError;
use super::throttle::{
    CommitOutcome, code_attempt, login_attempt, registration_attempt, settings_attempt,
    settings_verdict, verdict_of,
};
use crate::error::{Error, Result};
use crate::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use crate::flow::recovery::{AdminRecoveryCode, RecoveryStep};
use crate::flow::registration::{Registered, RegistrationSubmission};
use crate::flow::settings::{SettingsSaved, SettingsSubmission};
use crate::flow::verification::VerificationStep;
use crate::flow::{
    Answers, CodeSubmission, CommitRefusal, Fallback, Flow, FlowError, FlowKind, FlowRequest,
    FlowType, Step, Transition,
};
use crate::flow::{check_submit, check_view};
use crate::flow::{login, recovery, registration, settings, verification};
use crate::session::{AuthenticatedSession, SessionError, SessionRefusal};
use crate::store::{Commit, Write};
use crate::throttle::policy::{Attempt, Ticket, Verdict};

/// What differs between flow kinds when the engine drives a submission: the kind, what a
/// user submits, and its state machine (whose outcome [`Answers`] the rest).
#[async_trait]
pub(crate) trait Kind: Send + Sync {
    /// Which flows this kind handles.
    const KIND: FlowKind;
    /// What a user submits.
    type Submission: Send;
    /// What the state machine tells beyond the flow.
    type Outcome: Answers + Send + Sync;

    /// What the submission counts as for throttling, if anything.
    fn attempt<'a>(
        submission: &'a Self::Submission,
        req: &'a FlowRequest,
        current: Option<&'a AuthenticatedSession>,
    ) -> Option<Attempt<'a>>;

    /// How the state machine judged a counted attempt. Default: a refusal showing a
    /// wrong credential failed.
    fn verdict(step: &Step<Self::Outcome>) -> Verdict {
        verdict_of(step)
    }

    /// Runs the kind's state machine.
    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        req: &FlowRequest,
        current: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError>;

    /// What to apply instead when the commit of an accepted submission found an
    /// identifier taken meanwhile, if anything: enumeration-safe registration answers as
    /// new. Default: nothing (the flow shows the refusal).
    async fn instead_of_duplicate(
        _identa: &Identa,
        _fallback: &Fallback,
        _outcome: &Self::Outcome,
        _req: &FlowRequest,
    ) -> std::result::Result<Option<Transition<Self::Outcome>>, FlowError> {
        Ok(None)
    }
}

/// The kinds, as [`Kind`]s.
pub(crate) mod kind {
    use super::*;

    macro_rules! kind {
        ($(#[$doc:meta])* $marker:ident, $kind:expr, $submission:ty, $module:ident, $attempt:ident
            $(, verdict: $verdict:path)? $(, instead_of_duplicate: $instead:path)?) => {
            $(#[$doc])*
            pub(crate) struct $marker;

            #[async_trait]
            impl Kind for $marker {
                const KIND: FlowKind = $kind;
                type Submission = $submission;
                type Outcome = $module::Outcome;

                fn attempt<'a>(
                    submission: &'a Self::Submission,
                    req: &'a FlowRequest,
                    current: Option<&'a AuthenticatedSession>,
                ) -> Option<Attempt<'a>> {
                    $attempt(submission, req, current)
                }
                $(
                fn verdict(step: &Step<Self::Outcome>) -> Verdict {
                    $verdict(step)
                }
                )?

                async fn judge(
                    identa: &Identa,
                    flow: Flow,
                    submission: Self::Submission,
                    req: &FlowRequest,
                    current: Option<&AuthenticatedSession>,
                ) -> std::result::Result<Step<Self::Outcome>, FlowError> {
                    $module::submit(identa, flow, submission, req, current).await
                }
                $(
                async fn instead_of_duplicate(
                    identa: &Identa,
                    fallback: &Fallback,
                    outcome: &Self::Outcome,
                    req: &FlowRequest,
                ) -> std::result::Result<Option<Transition<Self::Outcome>>, FlowError> {
                    $instead(identa, fallback.flow(), &outcome.identity, req).await
                }
                )?
            }
        };
    }

    kind!(
        /// Registration flows.
        Registration, FlowKind::Registration, RegistrationSubmission, registration,
        registration_attempt, instead_of_duplicate: crate::flow::answer_if_taken
    );
    kind!(
        /// Login flows.
        Login, FlowKind::Login, LoginSubmission, login, login_attempt
    );
    kind!(
        /// Settings flows.
        Settings, FlowKind::Settings, SettingsSubmission, settings, settings_attempt,
        verdict: settings_verdict
    );
    kind!(
        /// Recovery flows.
        Recovery, FlowKind::Recovery, CodeSubmission, recovery, code_attempt
    );
    kind!(
        /// Verification flows.
        Verification, FlowKind::Verification, CodeSubmission, verification, code_attempt
    );
}

use kind::{Login, Recovery, Registration, Settings, Verification};

impl Identa {
    /// A flow by id, for showing it (Kratos's `GET /self-service/<flow>/flows?id=`). A
    /// browser flow is only shown to the browser it was made for (the CSRF cookie must
    /// match), a settings flow only to its identity. Expired flows are still returned;
    /// submitting them fails.
    pub async fn flow(&self, id: Uuid, req: &FlowRequest) -> Result<Flow> {
        let mut flow = self.load_flow(id).await?;
        check_view(&flow, req, self.keyring())?;
        if flow.kind == FlowKind::Settings {
            // A settings flow shows the user's traits: only to that user.
            let current = self
                .current_session(req)
                .await?
                .ok_or(SessionError::Inactive(SessionRefusal::Unknown))?;
            if flow.identity_id != Some(current.identity.id) {
                return Err(FlowError::IdentityMismatch.into());
            }
            settings::hydrate(self, &mut flow, &current.identity);
        }
        Ok(flow)
    }

    /// A stored flow.
    pub(crate) async fn load_flow(&self, id: Uuid) -> Result<Flow> {
        let record = self
            .inner
            .store
            .flow(id)
            .await?
            .ok_or(FlowError::NotFound(id))?;
        Ok(Flow::from_record(record)?)
    }

    /// Stores a new flow.
    async fn insert_flow(&self, flow: &Flow) -> Result<()> {
        let commit = Commit {
            writes: vec![Write::InsertFlow(flow.to_record()?)],
        };
        Ok(self.inner.store.commit(&commit, None).await?)
    }

    /// The session the request presents, if it is usable; `None` if there is none or it
    /// is expired, revoked or unknown.
    pub(super) async fn current_session(
        &self,
        req: &FlowRequest,
    ) -> Result<Option<AuthenticatedSession>> {
        let Some(token) = &req.session else {
            return Ok(None);
        };
        match self.authenticate(token).await {
            Ok(session) => Ok(Some(session)),
            Err(Error::Session(SessionError::Inactive(_))) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Submits to a flow of kind `K` the caller has just read (the HTTP layer reads it to
    /// learn its type).
    pub(crate) async fn submit_loaded<K: Kind>(
        &self,
        flow: Flow,
        submission: K::Submission,
        req: &FlowRequest,
    ) -> Result<<K::Outcome as Answers>::Answer> {
        let flow = check_submit(flow, K::KIND, req, self.keyring(), self.now())?;
        let current = self.current_session(req).await?;
        let attempt = match K::attempt(&submission, req, current.as_ref()) {
            Some(attempt) => Some(self.with_standing(attempt).await?),
            None => None,
        };
        // Owned now, before the submission moves into the flow.
        let remember = attempt.as_ref().and_then(|a| self.remember_pair(a));
        let ticket = match attempt {
            Some(attempt) => match self.admit(attempt).await {
                Ok(ticket) => ticket,
                Err(Error::Throttled(throttled)) => {
                    return Err(self.refuse_throttled(flow, throttled).await);
                }
                Err(err) => return Err(err),
            },
            None => Ticket::default(),
        };
        let step = match K::judge(self, flow, submission, req, current.as_ref()).await {
            Ok(step) => step,
            Err(err) => {
                self.settle(ticket, Verdict::NotJudged).await;
                return Err(err.into());
            }
        };
        let verdict = K::verdict(&step);
        let transition = match step {
            Step::Reject(flow) => {
                self.settle(ticket, verdict).await;
                return Err(self.reject_shown(flow, current.as_ref()).await);
            }
            Step::Advance(mut transition) => {
                transition.effects.extend(remember);
                transition
            }
        };
        let result = self
            .commit_or_instead::<K>(transition, req, current.as_ref())
            .await;
        let verdict = if result.is_ok() {
            verdict
        } else {
            Verdict::NotJudged
        };
        self.settle(ticket, verdict).await;
        result
    }

    /// Commits `transition`; when the database refuses it as a duplicate, commits what
    /// the kind answers instead (tried once), else shows the refusal on the flow.
    async fn commit_or_instead<K: Kind>(
        &self,
        transition: Transition<K::Outcome>,
        req: &FlowRequest,
        current: Option<&AuthenticatedSession>,
    ) -> Result<<K::Outcome as Answers>::Answer> {
        let transition = match self.commit_transition(transition).await {
            Committed::Done(answer) => return Ok(answer),
            Committed::Failed(err) => return Err(err),
            Committed::Refused(refusal, fallback, outcome) => {
                let instead = match refusal {
                    CommitRefusal::Duplicate => {
                        K::instead_of_duplicate(self, &fallback, &outcome, req).await?
                    }
                    CommitRefusal::Hook(_) | CommitRefusal::Replayed => None,
                };
                match instead {
                    // Tried once: a refusal of this one is shown.
                    Some(instead) => instead,
                    None => {
                        let shown = fallback.showing(refusal);
                        return Err(self.reject_shown(shown, current).await);
                    }
                }
            }
        };
        match self.commit_transition(transition).await {
            Committed::Done(answer) => Ok(answer),
            Committed::Failed(err) => Err(err),
            Committed::Refused(refusal, fallback, _) => {
                let shown = fallback.showing(refusal);
                Err(self.reject_shown(shown, current).await)
            }
        }
    }

    /// Applies `transition`: the caller's answer, or why not (with what a caller may
    /// show or try instead).
    pub(super) async fn commit_transition<O: Answers + Send + Sync>(
        &self,
        transition: Transition<O>,
    ) -> Committed<O> {
        let Transition {
            mut flow,
            effects,
            outcome,
            fallback,
        } = transition;
        let (effects, notices) = match self.cap_notices(effects).await {
            Ok(capped) => capped,
            Err(err) => return Committed::Failed(err),
        };
        let event = outcome.after_event(flow.id);
        let applied = self.apply(&mut flow, &effects, event).await;
        let committed = match applied {
            Ok(()) => CommitOutcome::Done,
            Err(_) => CommitOutcome::Failed,
        };
        notices.settle(self, committed).await;
        match applied {
            Ok(()) => Committed::Done(outcome.answer(self, flow)),
            Err(ApplyError::Refused(refusal)) => Committed::Refused(refusal, fallback, outcome),
            Err(ApplyError::Failed(err)) => Committed::Failed(err),
        }
    }

    /// Submits to the flow `flow_id`, which must be of kind `K`.
    async fn submit<K: Kind>(
        &self,
        flow_id: Uuid,
        submission: K::Submission,
        req: &FlowRequest,
    ) -> Result<<K::Outcome as Answers>::Answer> {
        let flow = self.load_flow(flow_id).await?;
        self.submit_loaded::<K>(flow, submission, req).await
    }

    /// [`Self::reject`], with a settings flow's secrets filled in for showing.
    pub(super) async fn reject_shown(
        &self,
        flow: Flow,
        current: Option<&AuthenticatedSession>,
    ) -> Error {
        match self.reject(flow).await {
            Error::Flow(FlowError::Invalid(mut shown)) => {
                if let (FlowKind::Settings, Some(current)) = (shown.kind, current) {
                    settings::hydrate(self, &mut shown, &current.identity);
                }
                FlowError::Invalid(shown).into()
            }
            other => other,
        }
    }
}

/// How applying a transition went. (One per submission, moved once.)
#[allow(clippy::large_enum_variant)]
pub(super) enum Committed<O: Answers> {
    /// Written; the caller's answer.
    Done(O::Answer),
    /// Refused in a way the user can act on: the flow to show instead, and the outcome
    /// that was refused.
    Refused(CommitRefusal, Fallback, O),
    /// Anything else.
    Failed(Error),
}

/// A handle on one kind of flow: `Identa::<kind>_flow()` gives it; `submit` takes the
/// kind's submission and answers with the kind's result, through the one path every
/// submission takes. Each kind adds how its flows start.
macro_rules! flow_handle {
    ($(#[$doc:meta])* $handle:ident, $accessor:ident, $kind:ty, $submission:ty, $answer:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $handle<'a> {
            identa: &'a Identa,
        }

        impl Identa {
            $(#[$doc])*
            pub fn $accessor(&self) -> $handle<'_> {
                $handle { identa: self }
            }
        }

        impl $handle<'_> {
            /// Submits to the flow `flow_id`. Input errors come back as
            /// [`FlowError::Invalid`], the flow showing them (typed values kept, secrets
            /// never).
            pub async fn submit(
                &self,
                flow_id: Uuid,
                submission: $submission,
                req: &FlowRequest,
            ) -> Result<$answer> {
                self.identa.submit::<$kind>(flow_id, submission, req).await
            }
        }
    };
}

flow_handle!(
    /// Registration flows.
    RegistrationFlows, registration_flow, Registration, RegistrationSubmission, Registered
);
flow_handle!(
    /// Login flows (sign in, re-authenticate, step up to `aal2`).
    LoginFlows, login_flow, Login, LoginSubmission, LoggedIn
);
flow_handle!(
    /// Settings flows.
    SettingsFlows, settings_flow, Settings, SettingsSubmission, SettingsSaved
);
flow_handle!(
    /// Recovery flows.
    RecoveryFlows, recovery_flow, Recovery, CodeSubmission, RecoveryStep
);
flow_handle!(
    /// Verification flows.
    VerificationFlows, verification_flow, Verification, CodeSubmission, VerificationStep
);

impl RegistrationFlows<'_> {
    /// Starts a registration flow. Refused when the request already has a valid session.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        self.identa.admit_new_flow(req).await?;
        let current = self.identa.current_session(req).await?;
        let flow = registration::create(self.identa, flow_type, req, current.as_ref())?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }
}

impl LoginFlows<'_> {
    /// Starts a login flow.
    pub async fn create(
        &self,
        flow_type: FlowType,
        req: &FlowRequest,
        intent: LoginIntent,
    ) -> Result<Flow> {
        self.identa.admit_new_flow(req).await?;
        let current = self.identa.current_session(req).await?;
        let flow = login::create(self.identa, flow_type, req, intent, current.as_ref())?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }
}

impl SettingsFlows<'_> {
    /// Starts a settings flow for the signed-in user of `req`.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        self.identa.admit_new_flow(req).await?;
        let current = self.identa.current_session(req).await?;
        let mut flow = settings::create(self.identa, flow_type, req, current.as_ref())?;
        self.identa.insert_flow(&flow).await?;
        if let Some(current) = &current {
            settings::hydrate(self.identa, &mut flow, &current.identity);
        }
        Ok(flow)
    }
}

impl RecoveryFlows<'_> {
    /// Starts a recovery flow.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        self.identa.admit_new_flow(req).await?;
        let flow = recovery::create(self.identa, flow_type, req)?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }

    /// Creates a recovery flow and code for an identity, for an administrator to hand over
    /// (nothing is emailed). The code works once, until `expires_in` has passed.
    pub async fn create_code_for(
        &self,
        identity_id: Uuid,
        expires_in: Duration,
    ) -> Result<AdminRecoveryCode> {
        let identity = self.identa.identity(identity_id).await?;
        let issued = recovery::admin_code(self.identa, &identity, expires_in)?;
        self.identa.insert_flow(&issued.flow).await?;
        Ok(issued)
    }
}

impl VerificationFlows<'_> {
    /// Starts a verification flow.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        self.identa.admit_new_flow(req).await?;
        let flow = verification::create(self.identa, flow_type, req)?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }
}
