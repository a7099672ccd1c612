//! Applying what a flow decided: the submitted flow (its next version) and the
//! transition's effects are written in one transaction, with the host's after hook
//! running inside it, in a fixed order (spent codes first, so a replay fails before
//! anything else is written); then the session cache drops what the commit changed.

use std::sync::Mutex;

use async_trait::async_trait;

use super::Identa;
use crate::error::Error;
use crate::flow::{CommitRefusal, Effect, Flow, FlowError};
use crate::hook::{AfterEvent, HookError, Hooks};
use crate::store::{Commit, CommitHook, Rollback, SessionEvent, StoreError, Transaction, Write};

/// Why applying a transition did not go through.
#[derive(Debug)]
pub(super) enum ApplyError {
    /// Refused in a way the user can act on: the flow shows it.
    Refused(CommitRefusal),
    /// Anything else.
    Failed(Error),
}

impl From<Error> for ApplyError {
    fn from(err: Error) -> Self {
        Self::Failed(err)
    }
}

impl Identa {
    /// Writes `flow` (as its next version) and `effects` in one transaction, running the
    /// host's after hook for `event` inside it.
    pub(super) async fn apply(
        &self,
        flow: &mut Flow,
        effects: &[Effect],
        event: Option<AfterEvent<'_>>,
    ) -> Result<(), ApplyError> {
        flow.version += 1;
        flow.updated_at = self.now();
        let mut writes = vec![Write::UpdateFlow(flow.to_record().map_err(Error::from)?)];
        let courier = self.courier();
        for effect in effects {
            writes.push(match effect {
                Effect::InsertFlow(new) => Write::InsertFlow(new.to_record().map_err(Error::from)?),
                Effect::InsertIdentity(identity) => Write::InsertIdentity(identity),
                Effect::UpdateIdentity(identity) | Effect::RehashPassword(identity) => {
                    Write::ReplaceIdentity(identity)
                }
                Effect::IssueSession { session, token } => Write::InsertSession(session, *token),
                Effect::UpdateSession(session) => Write::UpdateSession(session),
                Effect::RevokeSessions { identity_id, keep } => Write::RevokeSessions {
                    identity_id: *identity_id,
                    keep: *keep,
                },
                Effect::SendMail { template, vars } => {
                    Write::Enqueue(courier.compose(*template, vars).map_err(Error::from)?)
                }
                Effect::SpendCode { marker, until } => Write::Spend {
                    marker: *marker,
                    until: *until,
                },
                Effect::RememberPair { key, until } => Write::RememberPair {
                    key: *key,
                    until: *until,
                },
                Effect::RememberPassword {
                    identity_id,
                    hash,
                    keep,
                } => Write::RememberPassword {
                    identity_id: *identity_id,
                    hash,
                    at: flow.updated_at,
                    keep: *keep,
                },
            });
        }
        writes.sort_by_key(order);
        let commit = Commit { writes };
        let outcome = match event {
            Some(event) => {
                let hook = AfterHook {
                    hooks: self.inner.hooks.as_ref(),
                    event,
                    refusal: Mutex::new(None),
                };
                let outcome = self.inner.store.commit(&commit, Some(&hook)).await;
                outcome.map_err(|err| (err, hook.take_refusal()))
            }
            None => self
                .inner
                .store
                .commit(&commit, None)
                .await
                .map_err(|err| (err, None)),
        };
        match outcome {
            Ok(()) => {
                for effect in effects {
                    if let Some(event) = stale_after(effect) {
                        self.invalidate(event);
                    }
                }
                Ok(())
            }
            Err((StoreError::Aborted, refusal)) => Err(ApplyError::Refused(CommitRefusal::Hook(
                refusal.unwrap_or_else(|| HookError::failed("the hook rolled back")),
            ))),
            Err((StoreError::Conflict { .. }, _)) => {
                Err(ApplyError::Refused(CommitRefusal::Duplicate))
            }
            Err((StoreError::Spent, _)) => Err(ApplyError::Refused(CommitRefusal::Replayed)),
            Err((err, _)) => Err(ApplyError::Failed(err.into())),
        }
    }

    /// Saves a flow that shows what the user must fix (its next version) and returns the
    /// error that hands it back.
    pub(super) async fn reject(&self, mut flow: Flow) -> Error {
        flow.version += 1;
        flow.updated_at = self.now();
        let record = match flow.to_record() {
            Ok(record) => record,
            Err(err) => return err.into(),
        };
        let commit = Commit {
            writes: vec![Write::UpdateFlow(record)],
        };
        match self.inner.store.commit(&commit, None).await {
            Ok(()) => FlowError::Invalid(Box::new(flow)).into(),
            Err(err) => err.into(),
        }
    }
}

/// The order writes are applied in: a replayed code fails before anything is written, a
/// new identity exists before its session, revocations come before the session that is
/// kept is written.
fn order(write: &Write<'_>) -> u8 {
    match write {
        Write::Spend { .. } => 0,
        Write::UpdateFlow(_) => 1,
        Write::InsertFlow(_) => 2,
        Write::InsertIdentity(_) => 3,
        Write::ReplaceIdentity(_) => 4,
        Write::RevokeSessions { .. } => 5,
        Write::InsertSession(..) => 6,
        Write::UpdateSession(_) => 7,
        Write::Enqueue(_) => 8,
        Write::RememberPair { .. } => 9,
        Write::RememberPassword { .. } => 10,
    }
}

/// What the session cache must drop once `effect` is committed.
fn stale_after(effect: &Effect) -> Option<SessionEvent> {
    match effect {
        Effect::UpdateIdentity(identity) | Effect::RehashPassword(identity) => {
            Some(SessionEvent::Identity(identity.id))
        }
        Effect::UpdateSession(session) => Some(SessionEvent::Session(session.id)),
        Effect::RevokeSessions { identity_id, .. } => Some(SessionEvent::Identity(*identity_id)),
        Effect::InsertFlow(_)
        | Effect::InsertIdentity(_)
        | Effect::IssueSession { .. }
        | Effect::SendMail { .. }
        | Effect::SpendCode { .. }
        | Effect::RememberPair { .. }
        | Effect::RememberPassword { .. } => None,
    }
}

/// The host's after hook, run inside a commit; remembers why it rolled back.
struct AfterHook<'a> {
    hooks: &'a dyn Hooks,
    event: AfterEvent<'a>,
    refusal: Mutex<Option<HookError>>,
}

impl AfterHook<'_> {
    fn take_refusal(&self) -> Option<HookError> {
        self.refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

#[async_trait]
impl CommitHook for AfterHook<'_> {
    async fn run(&self, tx: &Transaction<'_>) -> Result<(), Rollback> {
        self.hooks.after(&self.event, tx).await.map_err(|err| {
            *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
            Rollback
        })
    }
}
