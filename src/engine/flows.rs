//! Flows as the engine drives them. Every submission takes one path, whatever its kind:
//! load the flow, check kind, expiry and CSRF, find the session the request presents, run
//! the kind's state machine, then save what it decided — the flow showing what to fix, or
//! the flow with its effects and the after hook in one transaction (or, if that is
//! refused, the flow as it was, saying why). [`Kind`] is what differs between kinds.

use async_trait::async_trait;
use chrono::Duration;
use uuid::Uuid;

use super::Identa;
use super::apply::ApplyError;
use crate::error::{Error, Result};
use crate::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use crate::flow::recovery::{AdminRecoveryCode, RecoveryStep};
use crate::flow::registration::{Registered, RegistrationSubmission};
use crate::flow::settings::{SettingsSaved, SettingsSubmission};
use crate::flow::verification::VerificationStep;
use crate::flow::{CodeSubmission, Flow, FlowError, FlowKind, FlowRequest, FlowType, Step};
use crate::flow::{check_submit, check_view};
use crate::flow::{login, recovery, registration, settings, verification};
use crate::hook::AfterEvent;
use crate::session::{AuthenticatedSession, SessionError, SessionRefusal};
use crate::store::{Commit, Write};

/// What differs between flow kinds when the engine drives a submission.
#[async_trait]
pub(crate) trait Kind {
    /// Which flows this kind handles.
    const KIND: FlowKind;
    /// What a user submits.
    type Submission: Send;
    /// What the state machine tells beyond the flow.
    type Outcome: Send + Sync;
    /// What the caller gets.
    type Answer;

    /// Runs the kind's state machine.
    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        req: &FlowRequest,
        current: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError>;

    /// What the host's after hook is shown, if this outcome has one.
    fn after_event(flow_id: Uuid, outcome: &Self::Outcome) -> Option<AfterEvent<'_>>;

    /// The caller's answer.
    fn answer(identa: &Identa, flow: Flow, outcome: Self::Outcome) -> Self::Answer;
}

/// The kinds, as [`Kind`]s.
pub(crate) mod kind {
    /// Registration flows.
    pub(crate) struct Registration;
    /// Login flows.
    pub(crate) struct Login;
    /// Settings flows.
    pub(crate) struct Settings;
    /// Recovery flows.
    pub(crate) struct Recovery;
    /// Verification flows.
    pub(crate) struct Verification;
}

use kind::{Login, Recovery, Registration, Settings, Verification};

#[async_trait]
impl Kind for Registration {
    const KIND: FlowKind = FlowKind::Registration;
    type Submission = RegistrationSubmission;
    type Outcome = registration::Outcome;
    type Answer = Registered;

    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        req: &FlowRequest,
        current: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError> {
        registration::submit(identa, flow, submission, req, current).await
    }

    fn after_event(flow_id: Uuid, outcome: &Self::Outcome) -> Option<AfterEvent<'_>> {
        Some(AfterEvent::Registration {
            flow_id,
            identity: &outcome.identity,
            session: outcome.login.as_ref().map(|l| &l.session.session),
        })
    }

    fn answer(_: &Identa, flow: Flow, outcome: Self::Outcome) -> Registered {
        outcome.into_registered(flow)
    }
}

#[async_trait]
impl Kind for Login {
    const KIND: FlowKind = FlowKind::Login;
    type Submission = LoginSubmission;
    type Outcome = login::Outcome;
    type Answer = LoggedIn;

    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        req: &FlowRequest,
        current: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError> {
        login::submit(identa, flow, submission, req, current).await
    }

    fn after_event(flow_id: Uuid, outcome: &Self::Outcome) -> Option<AfterEvent<'_>> {
        Some(AfterEvent::Login {
            flow_id,
            identity: &outcome.session.identity,
            session: &outcome.session.session,
        })
    }

    fn answer(_: &Identa, flow: Flow, outcome: Self::Outcome) -> LoggedIn {
        outcome.into_logged_in(flow)
    }
}

#[async_trait]
impl Kind for Settings {
    const KIND: FlowKind = FlowKind::Settings;
    type Submission = SettingsSubmission;
    type Outcome = settings::Outcome;
    type Answer = SettingsSaved;

    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        req: &FlowRequest,
        current: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError> {
        settings::submit(identa, flow, submission, req, current).await
    }

    fn after_event(flow_id: Uuid, outcome: &Self::Outcome) -> Option<AfterEvent<'_>> {
        Some(AfterEvent::Settings {
            flow_id,
            identity: &outcome.identity,
        })
    }

    fn answer(identa: &Identa, mut flow: Flow, outcome: Self::Outcome) -> SettingsSaved {
        settings::hydrate(identa, &mut flow, &outcome.identity);
        outcome.into_saved(flow)
    }
}

#[async_trait]
impl Kind for Recovery {
    const KIND: FlowKind = FlowKind::Recovery;
    type Submission = CodeSubmission;
    type Outcome = recovery::Outcome;
    type Answer = RecoveryStep;

    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        req: &FlowRequest,
        _: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError> {
        recovery::submit(identa, flow, submission, req).await
    }

    fn after_event(flow_id: Uuid, outcome: &Self::Outcome) -> Option<AfterEvent<'_>> {
        match outcome {
            recovery::Outcome::CodeSent => None,
            recovery::Outcome::Recovered { session, .. } => Some(AfterEvent::Recovery {
                flow_id,
                identity: &session.identity,
                session: &session.session,
            }),
        }
    }

    fn answer(_: &Identa, flow: Flow, outcome: Self::Outcome) -> RecoveryStep {
        outcome.into_step(flow)
    }
}

#[async_trait]
impl Kind for Verification {
    const KIND: FlowKind = FlowKind::Verification;
    type Submission = CodeSubmission;
    type Outcome = verification::Outcome;
    type Answer = VerificationStep;

    async fn judge(
        identa: &Identa,
        flow: Flow,
        submission: Self::Submission,
        _: &FlowRequest,
        _: Option<&AuthenticatedSession>,
    ) -> std::result::Result<Step<Self::Outcome>, FlowError> {
        verification::submit(identa, flow, submission).await
    }

    fn after_event(flow_id: Uuid, outcome: &Self::Outcome) -> Option<AfterEvent<'_>> {
        match outcome {
            verification::Outcome::CodeSent => None,
            verification::Outcome::Verified { identity, address } => {
                Some(AfterEvent::Verification {
                    flow_id,
                    identity,
                    address,
                })
            }
        }
    }

    fn answer(_: &Identa, flow: Flow, outcome: Self::Outcome) -> VerificationStep {
        outcome.into_step(flow)
    }
}

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
    async fn current_session(&self, req: &FlowRequest) -> Result<Option<AuthenticatedSession>> {
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
    ) -> Result<K::Answer> {
        let flow = check_submit(flow, K::KIND, req, self.keyring(), self.now())?;
        let current = self.current_session(req).await?;
        let step = K::judge(self, flow, submission, req, current.as_ref()).await?;
        let transition = match step {
            Step::Reject(flow) => return Err(self.reject_shown(flow, current.as_ref()).await),
            Step::Advance(transition) => transition,
        };
        let mut flow = transition.flow;
        let event = K::after_event(flow.id, &transition.outcome);
        match self.apply(&mut flow, &transition.effects, event).await {
            Ok(()) => Ok(K::answer(self, flow, transition.outcome)),
            Err(ApplyError::Refused(refusal)) => {
                let shown = transition.fallback.showing(refusal);
                Err(self.reject_shown(shown, current.as_ref()).await)
            }
            Err(ApplyError::Failed(err)) => Err(err),
        }
    }

    /// Submits to the flow `flow_id`, which must be of kind `K`.
    async fn submit<K: Kind>(
        &self,
        flow_id: Uuid,
        submission: K::Submission,
        req: &FlowRequest,
    ) -> Result<K::Answer> {
        let flow = self.load_flow(flow_id).await?;
        self.submit_loaded::<K>(flow, submission, req).await
    }

    /// [`Self::reject`], with a settings flow's secrets filled in for showing.
    async fn reject_shown(&self, flow: Flow, current: Option<&AuthenticatedSession>) -> Error {
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

    /// Registration flows.
    pub fn registration_flow(&self) -> RegistrationFlows<'_> {
        RegistrationFlows { identa: self }
    }

    /// Login flows.
    pub fn login_flow(&self) -> LoginFlows<'_> {
        LoginFlows { identa: self }
    }

    /// Settings flows.
    pub fn settings_flow(&self) -> SettingsFlows<'_> {
        SettingsFlows { identa: self }
    }

    /// Recovery flows.
    pub fn recovery_flow(&self) -> RecoveryFlows<'_> {
        RecoveryFlows { identa: self }
    }

    /// Verification flows.
    pub fn verification_flow(&self) -> VerificationFlows<'_> {
        VerificationFlows { identa: self }
    }
}

/// Registration flows of an engine. Get it with [`Identa::registration_flow`].
#[derive(Debug, Clone, Copy)]
pub struct RegistrationFlows<'a> {
    identa: &'a Identa,
}

impl RegistrationFlows<'_> {
    /// Starts a registration flow. Refused when the request already has a valid session.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        let current = self.identa.current_session(req).await?;
        let flow = registration::create(self.identa, flow_type, req, current.as_ref())?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }

    /// Submits a registration. Input errors come back as [`FlowError::Invalid`] with the
    /// flow showing them (values kept, the password never).
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: RegistrationSubmission,
        req: &FlowRequest,
    ) -> Result<Registered> {
        self.identa
            .submit::<Registration>(flow_id, submission, req)
            .await
    }
}

/// Login flows of an engine. Get it with [`Identa::login_flow`].
#[derive(Debug, Clone, Copy)]
pub struct LoginFlows<'a> {
    identa: &'a Identa,
}

impl LoginFlows<'_> {
    /// Starts a login flow.
    pub async fn create(
        &self,
        flow_type: FlowType,
        req: &FlowRequest,
        intent: LoginIntent,
    ) -> Result<Flow> {
        let current = self.identa.current_session(req).await?;
        let flow = login::create(self.identa, flow_type, req, intent, current.as_ref())?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }

    /// Submits credentials. A wrong identifier or password comes back as
    /// [`FlowError::Invalid`] with Kratos's message 4000006 on the flow.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: LoginSubmission,
        req: &FlowRequest,
    ) -> Result<LoggedIn> {
        self.identa.submit::<Login>(flow_id, submission, req).await
    }
}

/// Settings flows of an engine. Get it with [`Identa::settings_flow`].
#[derive(Debug, Clone, Copy)]
pub struct SettingsFlows<'a> {
    identa: &'a Identa,
}

impl SettingsFlows<'_> {
    /// Starts a settings flow for the signed-in user of `req`.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        let current = self.identa.current_session(req).await?;
        let mut flow = settings::create(self.identa, flow_type, req, current.as_ref())?;
        self.identa.insert_flow(&flow).await?;
        if let Some(current) = &current {
            settings::hydrate(self.identa, &mut flow, &current.identity);
        }
        Ok(flow)
    }

    /// Submits a change.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: SettingsSubmission,
        req: &FlowRequest,
    ) -> Result<SettingsSaved> {
        self.identa
            .submit::<Settings>(flow_id, submission, req)
            .await
    }
}

/// Recovery flows of an engine. Get it with [`Identa::recovery_flow`].
#[derive(Debug, Clone, Copy)]
pub struct RecoveryFlows<'a> {
    identa: &'a Identa,
}

impl RecoveryFlows<'_> {
    /// Starts a recovery flow.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
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

    /// Submits an address or a code.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: CodeSubmission,
        req: &FlowRequest,
    ) -> Result<RecoveryStep> {
        self.identa
            .submit::<Recovery>(flow_id, submission, req)
            .await
    }
}

/// Verification flows of an engine. Get it with [`Identa::verification_flow`].
#[derive(Debug, Clone, Copy)]
pub struct VerificationFlows<'a> {
    identa: &'a Identa,
}

impl VerificationFlows<'_> {
    /// Starts a verification flow.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        let flow = verification::create(self.identa, flow_type, req)?;
        self.identa.insert_flow(&flow).await?;
        Ok(flow)
    }

    /// Submits an address or a code.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: CodeSubmission,
        req: &FlowRequest,
    ) -> Result<VerificationStep> {
        self.identa
            .submit::<Verification>(flow_id, submission, req)
            .await
    }
}
