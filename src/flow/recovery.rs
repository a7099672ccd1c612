//! Recovery by code: the user names a recovery address; a code is sent to it; entering the
//! code signs the user in (a new session, method `code_recovery`) and opens a settings
//! flow where they set a new password. The address the code reached counts as verified.
//!
//! States: `choose_method` → `sent_email` → `passed_challenge`. An unknown address gets
//! exactly the same response as a known one (and, if configured, an "account not found"
//! email), so recovery cannot be used to find out who has an account. Each flow accepts a
//! bounded number of code submissions; after that even the right code is refused. A code
//! works once: two submissions racing with the right code succeed at most once.

use uuid::Uuid;

use super::one_time::{self, Judged, Purpose};
use super::settings::settings_flow_for;
use super::{
    ContinueFlow, ContinueWith, Flow, FlowKind, FlowRequest, FlowState, FlowType, check_for_submit,
    commit_with_hook, fetch_flow, new_flow, reject, show_hook_error, text,
};
use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::hook::AfterEvent;
use crate::identity::Aal;
use crate::identity::Identity;
use crate::identity::schema::AddressVia;
use crate::session::{AuthenticatedSession, AuthenticationMethod, SessionToken};
use crate::store::{AddressKind, FlowCommit, FlowWrite};

/// What a user submits to a recovery flow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RecoverySubmission {
    /// Send a code to this address (again, in `sent_email`).
    Email(String),
    /// The code received.
    Code(String),
}

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
    pub code: crate::credential::code::OneTimeCode,
    /// When the code stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Recovery flows of an engine. Get it with [`Identa::recovery_flow`].
#[derive(Debug, Clone, Copy)]
pub struct RecoveryFlows<'a> {
    identa: &'a Identa,
}

impl Identa {
    /// Recovery flows.
    pub fn recovery_flow(&self) -> RecoveryFlows<'_> {
        RecoveryFlows { identa: self }
    }
}

impl RecoveryFlows<'_> {
    /// Starts a recovery flow.
    pub async fn create(&self, flow_type: FlowType, req: &FlowRequest) -> Result<Flow> {
        one_time::create(self.identa, Purpose::Recovery, flow_type, req).await
    }

    /// Creates a recovery flow and code for an identity, for an administrator to hand over
    /// (nothing is emailed). The code works once, until `expires_in` has passed.
    pub async fn create_code_for(
        &self,
        identity_id: Uuid,
        expires_in: chrono::Duration,
    ) -> Result<AdminRecoveryCode> {
        let identa = self.identa;
        let identity = identa.identity(identity_id).await?;
        if !identity.is_active() {
            return Err(Error::IdentityDisabled);
        }
        let config = &identa.config().flows.recovery;
        let expires_in = expires_in.max(chrono::Duration::minutes(1));
        let mut flow = new_flow(
            identa,
            FlowKind::Recovery,
            FlowType::Api,
            &FlowRequest::api(),
            expires_in.max(config.lifespan),
            FlowState::ChooseMethod,
        )?;
        let address = identity
            .recovery_addresses
            .first()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let code = one_time::issue_code(
            identa,
            &mut flow,
            Purpose::Recovery,
            &address,
            identity.id,
            expires_in,
        );
        let expires_at = identa.now() + expires_in;
        let commit = FlowCommit {
            flows: vec![FlowWrite::Insert(flow.to_record()?)],
            ..FlowCommit::default()
        };
        identa.store().commit_flow(&commit, None).await?;
        Ok(AdminRecoveryCode {
            flow,
            code,
            expires_at,
        })
    }

    /// Submits an address or a code.
    pub async fn submit(
        &self,
        flow_id: Uuid,
        submission: RecoverySubmission,
        req: &FlowRequest,
    ) -> Result<RecoveryStep> {
        let flow = fetch_flow(self.identa, flow_id).await?;
        self.submit_loaded(flow, submission, req).await
    }

    /// [`Self::submit`] for a flow the caller has just read (the HTTP layer reads it to
    /// learn its type).
    pub(crate) async fn submit_loaded(
        &self,
        flow: Flow,
        submission: RecoverySubmission,
        req: &FlowRequest,
    ) -> Result<RecoveryStep> {
        let identa = self.identa;
        let mut flow = check_for_submit(identa, flow, FlowKind::Recovery, req)?;
        match (flow.state, submission) {
            (FlowState::PassedChallenge, _) => {
                flow.ui.messages.push(text::recovery_retry_success());
                Err(Error::FlowInvalid(Box::new(flow)))
            }
            (FlowState::ChooseMethod | FlowState::SentEmail, RecoverySubmission::Email(raw)) => {
                let address = match one_time::check_address(&raw) {
                    Ok(address) => address,
                    Err(message) => {
                        flow.ui.add_message(Some("email"), message);
                        return Err(reject(identa, flow).await);
                    }
                };
                let owner = identa
                    .store()
                    .identity_by_address(AddressKind::Recovery, AddressVia::Email, &address)
                    .await?;
                let message = one_time::send_code(
                    identa,
                    &mut flow,
                    Purpose::Recovery,
                    &address,
                    owner.filter(Identity::is_active).map(|i| i.id),
                )?;
                flow.version += 1;
                flow.updated_at = identa.now();
                let commit = FlowCommit {
                    flows: vec![FlowWrite::Update(flow.to_record()?)],
                    messages: message.into_iter().collect(),
                    ..FlowCommit::default()
                };
                identa.store().commit_flow(&commit, None).await?;
                Ok(RecoveryStep::CodeSent(Box::new(flow)))
            }
            (FlowState::SentEmail, RecoverySubmission::Code(code)) => {
                self.check_code(flow, &code, req).await
            }
            (state, _) => Err(Error::FlowState {
                kind: FlowKind::Recovery,
                state,
                reason: "a code can only be submitted after an address was given",
            }),
        }
    }

    async fn check_code(
        &self,
        mut flow: Flow,
        code: &str,
        req: &FlowRequest,
    ) -> Result<RecoveryStep> {
        let identa = self.identa;
        let judged = one_time::judge(identa, &mut flow, Purpose::Recovery, code);
        let (identity_id, address) = match judged {
            Judged::Accepted {
                identity_id,
                address,
            } => (identity_id, address),
            Judged::Rejected => {
                flow.ui
                    .add_message(Some("code"), text::recovery_code_invalid());
                return Err(reject(identa, flow).await);
            }
            Judged::TooManyAttempts => {
                flow.ui.messages.push(text::submitted_too_often());
                return Err(reject(identa, flow).await);
            }
        };
        let mut identity = identa.identity(identity_id).await?;
        if !identity.is_active() {
            flow.ui.messages.push(text::identity_disabled());
            return Err(reject(identa, flow).await);
        }
        let now = identa.now();
        // The code reached this address: it is verified now.
        let verified = super::verification::mark_verified(&mut identity, &address, now).is_some();
        let method = AuthenticationMethod {
            method: "code_recovery".into(),
            aal: Aal::Aal1,
            completed_at: now,
        };
        let (session, token) = identa.new_session(&identity, vec![method], req.device.clone())?;
        let current = AuthenticatedSession {
            session,
            identity: identity.clone(),
        };
        let settings_req = FlowRequest {
            csrf_cookie: req.csrf_cookie.clone(),
            return_to: flow.return_to.clone(),
            ..FlowRequest::default()
        };
        let mut settings_flow = settings_flow_for(identa, flow.flow_type, &settings_req, &current)?;
        let minutes = one_time::minutes(identa.config().flows.settings.privileged_session_max_age);
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
        flow.version += 1;
        flow.updated_at = now;

        let commit = FlowCommit {
            flows: vec![
                FlowWrite::Update(flow.to_record()?),
                FlowWrite::Insert(settings_flow.to_record()?),
            ],
            replace_identity: verified.then_some(&identity),
            insert_session: Some((&current.session, token.hash())),
            ..FlowCommit::default()
        };
        let event = AfterEvent::Recovery {
            flow_id: flow.id,
            identity: &identity,
            session: &current.session,
        };
        if let Err(failure) = commit_with_hook(identa, &commit, event).await {
            let hook_err = failure?;
            let mut flow = flow.clone();
            flow.version -= 1;
            flow.state = FlowState::SentEmail;
            show_hook_error(&mut flow.ui, hook_err);
            return Err(reject(identa, flow).await);
        }
        if verified {
            identa.invalidate(crate::store::SessionEvent::Identity(identity.id));
        }
        let mut continue_with = Vec::new();
        if flow.flow_type == FlowType::Api {
            continue_with.push(ContinueWith::SetOrySessionToken {
                ory_session_token: token.expose().to_owned(),
            });
        }
        continue_with.extend(flow.continue_with.iter().cloned());
        Ok(RecoveryStep::Recovered(Box::new(Recovered {
            flow,
            session: current,
            token,
            settings_flow,
            continue_with,
        })))
    }
}
