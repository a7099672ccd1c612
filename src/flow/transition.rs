//! What a submission decides, as values. A flow module never writes: it returns the flow's
//! next state and the effects that go with it, and the engine applies both in one
//! transaction (running the host's after hook inside it). So what a submission changes is
//! listed in one place, and a test can read it without a database.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::text;
use super::ui::UiText;
use super::{Facts, Flow};
use crate::courier::{TemplateKind, TemplateVars};
use crate::hook::{AfterEvent, HookError};
use crate::identity::Identity;
use crate::session::{Session, TokenHash};

/// Where a submission leads. (One per submission, moved once: its variants' sizes may
/// differ.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step<O> {
    /// Accepted: save the flow and apply the effects together, then answer with the
    /// outcome.
    Advance(Transition<O>),
    /// The user must act on the form again (input to fix, or a challenge to answer): save
    /// the flow as it now reads and hand it back.
    Reject(Flow),
}

/// An accepted submission.
#[derive(Debug)]
pub(crate) struct Transition<O> {
    /// The flow after the submission.
    pub(crate) flow: Flow,
    /// Everything else the submission changes.
    pub(crate) effects: Vec<Effect>,
    /// What the caller is told beyond the flow (the identity made, the session issued…).
    pub(crate) outcome: O,
    /// What to save and show instead if applying the effects is refused.
    pub(crate) fallback: Fallback,
}

/// What an accepted submission tells beyond its flow: what the host's after hook is
/// shown, and the caller's answer. Each kind's outcome says it.
pub(crate) trait Answers {
    /// What the caller gets.
    type Answer;
    /// What the host's after hook is shown, if this outcome has one.
    fn after_event(&self, flow_id: Uuid) -> Option<AfterEvent<'_>>;
    /// The caller's answer, with the flow as saved.
    fn answer(self, facts: &dyn Facts, flow: Flow) -> Self::Answer;
}

/// A change a submission makes, applied by the engine in the flow's transaction. Effects
/// live in one short list per submission, so their sizes may differ.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Effect {
    /// Store a new flow (a verification flow for a new address, the settings flow that
    /// follows a recovery).
    InsertFlow(Flow),
    /// Create an identity with its credentials and addresses.
    InsertIdentity(Identity),
    /// Replace an identity (traits, addresses, credentials).
    UpdateIdentity(Identity),
    /// Re-hash a password with the current parameters after a successful sign-in: the
    /// identity with its new hash.
    RehashPassword(Identity),
    /// Store a new session under the hash of its token.
    IssueSession {
        /// The session.
        session: Session,
        /// Its token's hash; the token itself goes only to the caller.
        token: TokenHash,
    },
    /// Replace a session (refreshed, stepped up to `aal2`).
    UpdateSession(Session),
    /// Revoke an identity's sessions, but `keep`.
    RevokeSessions {
        /// Whose.
        identity_id: Uuid,
        /// The one that stays, if any.
        keep: Option<Uuid>,
    },
    /// Queue an email.
    SendMail {
        /// Which template.
        template: TemplateKind,
        /// What it is filled with (may carry a code: never logged).
        vars: TemplateVars,
    },
    /// Record a one-time factor as used (a TOTP step, a backup code), until `until`: a
    /// second spend, even a racing one, refuses the whole transaction.
    SpendCode {
        /// The marker naming what was spent.
        marker: Uuid,
        /// How long the marker is kept.
        until: DateTime<Utc>,
    },
    /// Remember that an identifier and a client address signed in together (their MAC),
    /// until `until`. The engine adds it to a password sign-in's transition; flows never
    /// emit it (they do not know how throttling keys a client address).
    RememberPair {
        /// The pair's MAC.
        key: [u8; 32],
        /// Until when it is known.
        until: DateTime<Utc>,
    },
    /// Add a replaced password's hash to the identity's history, keeping the newest
    /// `keep` entries.
    RememberPassword {
        /// Whose.
        identity_id: Uuid,
        /// The replaced password's hash.
        hash: String,
        /// How many entries the history keeps.
        keep: u8,
    },
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InsertFlow(flow) => f.debug_tuple("InsertFlow").field(&flow.id).finish(),
            Self::InsertIdentity(i) => f.debug_tuple("InsertIdentity").field(&i.id).finish(),
            Self::UpdateIdentity(i) => f.debug_tuple("UpdateIdentity").field(&i.id).finish(),
            Self::RehashPassword(i) => f.debug_tuple("RehashPassword").field(&i.id).finish(),
            Self::IssueSession { session, .. } => {
                f.debug_tuple("IssueSession").field(&session.id).finish()
            }
            Self::UpdateSession(s) => f.debug_tuple("UpdateSession").field(&s.id).finish(),
            Self::RevokeSessions { identity_id, keep } => f
                .debug_struct("RevokeSessions")
                .field("identity_id", identity_id)
                .field("keep", keep)
                .finish(),
            Self::SendMail { template, vars } => f
                .debug_struct("SendMail")
                .field("template", template)
                .field("to", &vars.to)
                .finish_non_exhaustive(),
            Self::SpendCode { marker, .. } => f.debug_tuple("SpendCode").field(marker).finish(),
            Self::RememberPair { until, .. } => f
                .debug_struct("RememberPair")
                .field("until", until)
                .finish_non_exhaustive(),
            Self::RememberPassword {
                identity_id, keep, ..
            } => f
                .debug_struct("RememberPassword")
                .field("identity_id", identity_id)
                .field("keep", keep)
                .finish_non_exhaustive(),
        }
    }
}

/// Why applying a transition's effects was refused (nothing was written).
#[derive(Debug)]
pub(crate) enum CommitRefusal {
    /// The host's after hook refused or failed.
    Hook(HookError),
    /// An identifier or address is taken (by a request that got there first).
    Duplicate,
    /// A racing request spent the same one-time code first.
    Replayed,
}

/// The flow to save and show when a transition's effects are refused: the flow as it
/// was judged, before it completed.
#[derive(Debug)]
pub(crate) struct Fallback {
    flow: Flow,
    /// The message a replayed one-time code shows, on its field.
    replay: Option<(&'static str, UiText)>,
}

impl Fallback {
    /// Shows `flow` again if the transition is refused.
    pub(crate) fn to(flow: Flow) -> Self {
        Self { flow, replay: None }
    }

    /// The flow as it was judged, before it completed.
    pub(crate) fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The same, saying `message` on `field` when a racing request spent the code first.
    pub(crate) fn with_replay(mut self, field: &'static str, message: UiText) -> Self {
        self.replay = Some((field, message));
        self
    }

    /// The flow to save, showing why the submission did not go through.
    pub(crate) fn showing(self, refusal: CommitRefusal) -> Flow {
        let mut flow = self.flow;
        match refusal {
            CommitRefusal::Hook(err) => super::form::show_hook_error(&mut flow.ui, err),
            CommitRefusal::Duplicate => flow.ui.messages.push(text::duplicate()),
            CommitRefusal::Replayed => match self.replay {
                Some((field, message)) => flow.ui.add_message(Some(field), message),
                None => flow.ui.messages.push(text::duplicate()),
            },
        }
        flow
    }
}
