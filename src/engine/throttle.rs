//! The engine's side of throttling: which attempt each submission is, whether its
//! (identifier, client address) pair is known (a password sign-in from it succeeded
//! recently: its checks wait in the hasher's priority lane and the identifier's limit
//! from all addresses does not refuse it), asking the policy before a flow runs, telling
//! it the verdict afterwards (and remembering a pair that signed in), and showing a
//! refusal on the flow. The policy itself is [`crate::throttle`].

use super::Identa;
use crate::courier::TemplateKind;
use crate::credential::password::Lane;
use crate::error::{Error, Result};
use crate::flow::login::LoginSubmission;
use crate::flow::registration::RegistrationSubmission;
use crate::flow::settings::SettingsSubmission;
use crate::flow::{CodeSubmission, Effect, Flow, FlowRequest, Step, text};
use crate::session::AuthenticatedSession;
use crate::store::StoreError;
use crate::throttle::Throttled;
use crate::throttle::policy::{
    Attempt, KNOWN_PAIR_LIFETIME, Refusal, Standing, Ticket, Verdict, known_pair_key,
};

/// The client address a request names, if any.
fn client_ip(req: &FlowRequest) -> Option<&str> {
    req.device.as_ref()?.ip_address.as_deref()
}

/// A login submission as an attempt: a password, a passkey (which cannot be guessed, but
/// whose challenges and answers cost lookups and signature checks: counted per client
/// address, and its failures per (named identifier, address), on counters of their own so that a
/// password locked by guessing does not lock passkeys too), or a second factor of the
/// current session.
pub(super) fn login_attempt<'a>(
    submission: &'a LoginSubmission,
    req: &'a FlowRequest,
    current: Option<&'a AuthenticatedSession>,
) -> Option<Attempt<'a>> {
    match submission {
        LoginSubmission::Password { identifier, .. } => Some(Attempt::Password {
            identifier,
            ip: client_ip(req),
            standing: Standing::Unknown,
        }),
        LoginSubmission::Totp { .. }
        | LoginSubmission::LookupSecret { .. }
        | LoginSubmission::Webauthn { .. } => current.map(|c| Attempt::SecondFactor {
            identity: c.identity.id,
        }),
        LoginSubmission::Passkey { identifier, .. } => Some(Attempt::Passkey {
            identifier: Some(identifier.as_str()).filter(|i| !i.trim().is_empty()),
            ip: client_ip(req),
        }),
    }
}

/// A registration submission counts when it registers.
pub(super) fn registration_attempt<'a>(
    _: &'a RegistrationSubmission,
    req: &'a FlowRequest,
    _: Option<&'a AuthenticatedSession>,
) -> Option<Attempt<'a>> {
    Some(Attempt::Registration { ip: client_ip(req) })
}

/// A new password submitted to settings is checked against the current one (the flow
/// refuses a password that is the same): an oracle for the current password to whoever
/// holds the session, and a hash to compute. It counts like a password login, per
/// identity. Other changes are not throttled (they need a session).
pub(super) fn settings_attempt<'a>(
    submission: &'a SettingsSubmission,
    req: &'a FlowRequest,
    current: Option<&'a AuthenticatedSession>,
) -> Option<Attempt<'a>> {
    match submission {
        SettingsSubmission::Password { .. } => current.map(|c| Attempt::SettingsPassword {
            identity: c.identity.id,
            ip: client_ip(req),
        }),
        _ => None,
    }
}

/// How settings judged an attempt: only a new password is counted, and any refusal of it
/// (the same as the current one, or against the policy) answered a password check.
pub(super) fn settings_verdict<O>(step: &Step<O>) -> Verdict {
    match step {
        Step::Advance(_) => Verdict::Succeeded,
        Step::Reject(_) => Verdict::Failed,
    }
}

/// An address submitted to recovery or verification asks for a code to be sent; a code
/// submitted is limited per flow by the flow itself.
pub(super) fn code_attempt<'a>(
    submission: &'a CodeSubmission,
    req: &'a FlowRequest,
    _: Option<&'a AuthenticatedSession>,
) -> Option<Attempt<'a>> {
    match submission {
        CodeSubmission::Email(address) => Some(Attempt::CodeSent {
            address,
            ip: client_ip(req),
        }),
        CodeSubmission::Code(_) => None,
    }
}

/// How a flow judged an attempt: a refusal showing a wrong credential failed; any other
/// refusal was not judged.
pub(super) fn verdict_of<O>(step: &Step<O>) -> Verdict {
    match step {
        Step::Advance(_) => Verdict::Succeeded,
        Step::Reject(flow) if shows_credential_refusal(flow) => Verdict::Failed,
        Step::Reject(_) => Verdict::NotJudged,
    }
}

/// Whether `flow` shows that a credential was wrong.
fn shows_credential_refusal(flow: &Flow) -> bool {
    let refusals = [
        text::invalid_credentials(),
        text::totp_wrong(),
        text::lookup_invalid(),
        text::webauthn_refused(),
    ];
    let form = flow.ui.messages.iter();
    let nodes = flow.ui.nodes.iter().flat_map(|n| n.messages.iter());
    form.chain(nodes)
        .any(|m| refusals.iter().any(|r| r.id == m.id && r.text == m.text))
}

impl Identa {
    /// Whether `identifier` signed in with its password from client address `ip` within
    /// [`KNOWN_PAIR_LIFETIME`] (its marker is kept until after now).
    pub(super) async fn standing(
        &self,
        identifier: &str,
        ip: Option<&str>,
    ) -> std::result::Result<Standing, StoreError> {
        let Some(key) = known_pair_key(self.keyring(), identifier, ip) else {
            return Ok(Standing::Unknown);
        };
        let until = self.inner.store.known_pair_until(&key).await?;
        Ok(match until {
            Some(until) if until > self.now() => Standing::Known,
            Some(_) | None => Standing::Unknown,
        })
    }

    /// The hasher's lane for a password check of `identifier` from `ip`: priority for a
    /// known pair.
    pub(super) async fn password_lane(
        &self,
        identifier: &str,
        ip: Option<&str>,
    ) -> std::result::Result<Lane, StoreError> {
        Ok(self.standing(identifier, ip).await?.lane())
    }

    /// `attempt`, knowing whether its pair is known (password sign-ins only; only the
    /// policy asks, so not when throttling is off).
    pub(super) async fn with_standing<'a>(&self, attempt: Attempt<'a>) -> Result<Attempt<'a>> {
        if !self.inner.throttle.is_on() {
            return Ok(attempt);
        }
        match attempt {
            Attempt::Password { identifier, ip, .. } => Ok(Attempt::Password {
                identifier,
                ip,
                standing: self.standing(identifier, ip).await?,
            }),
            other => Ok(other),
        }
    }

    /// What a successful `attempt` leaves behind: a password sign-in from a named client
    /// address makes (or keeps) its pair known for [`KNOWN_PAIR_LIFETIME`] from now.
    pub(super) fn remember_pair(&self, attempt: &Attempt<'_>) -> Option<Effect> {
        let Attempt::Password { identifier, ip, .. } = attempt else {
            return None;
        };
        let key = known_pair_key(self.keyring(), identifier, *ip)?;
        Some(Effect::RememberPair {
            key,
            until: self.now() + KNOWN_PAIR_LIFETIME,
        })
    }

    /// Counts `attempt`, or refuses it: [`Error::Throttled`].
    pub(super) async fn admit(&self, attempt: Attempt<'_>) -> Result<Ticket> {
        match self
            .inner
            .throttle
            .admit(self.keyring(), self.now(), attempt)
            .await
        {
            Ok(ticket) => Ok(ticket),
            Err(Refusal::Throttled(throttled)) => Err(Error::Throttled(throttled)),
            Err(Refusal::Store(err)) => Err(err.into()),
        }
    }

    /// Tells the policy how the attempt of `ticket` was judged.
    pub(super) async fn settle(&self, ticket: Ticket, verdict: Verdict) {
        self.inner.throttle.settle(ticket, verdict).await;
    }

    /// `effects` without the `registration_attempted` notices beyond their address's mail
    /// cap (`Limits::codes_sent_per_address`, shared with the codes sent to it): the
    /// sign-up is answered as a new one either way, so nothing tells the cap was hit. The
    /// notices kept are counted until [`CappedNotices::settle`] learns whether their
    /// commit succeeded: a mail never queued spends nothing.
    pub(super) async fn cap_notices(
        &self,
        effects: Vec<Effect>,
    ) -> Result<(Vec<Effect>, CappedNotices)> {
        let mut kept = Vec::with_capacity(effects.len());
        let mut notices = CappedNotices(Vec::new());
        for effect in effects {
            if let Effect::SendMail {
                template: TemplateKind::RegistrationAttempted,
                vars,
            } = &effect
            {
                match self.admit(Attempt::Notice { address: &vars.to }).await {
                    Ok(ticket) => notices.0.push(ticket),
                    Err(Error::Throttled(_)) => {
                        tracing::debug!(
                            "a registration_attempted notice over its address's mail cap is not sent"
                        );
                        continue;
                    }
                    Err(err) => {
                        notices.settle(self, CommitOutcome::Failed).await;
                        return Err(err);
                    }
                }
            }
            kept.push(effect);
        }
        Ok((kept, notices))
    }

    /// Counts a new flow for the client of `req`, or refuses it.
    pub(super) async fn admit_new_flow(&self, req: &FlowRequest) -> Result<()> {
        let ticket = self.admit(Attempt::NewFlow { ip: client_ip(req) }).await?;
        self.settle(ticket, Verdict::Succeeded).await;
        Ok(())
    }

    /// Counts a provider's callback for the client of `req` (its code exchange is a request
    /// to the provider), or refuses it: shown on `flow` as any throttled submission, before
    /// the flow's pending sign-in is spent. `Ok` gives the flow back.
    #[cfg(feature = "oidc")]
    pub(super) async fn admit_provider_callback(
        &self,
        flow: Flow,
        req: &FlowRequest,
    ) -> Result<Flow> {
        match self
            .admit(Attempt::ProviderCallback { ip: client_ip(req) })
            .await
        {
            Ok(ticket) => {
                self.settle(ticket, Verdict::Succeeded).await;
                Ok(flow)
            }
            Err(Error::Throttled(throttled)) => Err(self.refuse_throttled(flow, throttled).await),
            Err(err) => Err(err),
        }
    }

    /// Saves `flow` showing only that it was throttled (nothing else changes), and
    /// answers [`Error::Throttled`].
    pub(super) async fn refuse_throttled(&self, mut flow: Flow, throttled: Throttled) -> Error {
        flow.ui.clear_messages();
        flow.ui
            .messages
            .push(text::throttled(throttled.retry_after.as_secs().max(1)));
        match self.reject(flow).await {
            Error::Flow(crate::flow::FlowError::Invalid(_)) => Error::Throttled(throttled),
            other => other,
        }
    }
}

/// Whether the commit carrying counted notices succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommitOutcome {
    /// Written: the notices are queued.
    Done,
    /// Refused or failed: nothing was queued.
    Failed,
}

/// The counts of the `registration_attempted` notices a commit carries: kept when the
/// commit succeeded, taken back when it did not.
#[derive(Debug)]
#[must_use = "settle the notices once the commit is done"]
pub(super) struct CappedNotices(Vec<Ticket>);

impl CappedNotices {
    /// Keeps the counts (the mail is queued) or takes them back (it is not).
    pub(super) async fn settle(self, identa: &Identa, outcome: CommitOutcome) {
        for ticket in self.0 {
            match outcome {
                CommitOutcome::Done => identa.settle(ticket, Verdict::Succeeded).await,
                CommitOutcome::Failed => identa.inner.throttle.withdraw(ticket).await,
            }
        }
    }
}
