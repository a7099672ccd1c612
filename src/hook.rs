//! In-process hooks: the host's code that runs inside identa's flows. They replace the
//! webhooks a Kratos deployment uses to keep a backend in sync, without the network hop
//! and without a window where the two disagree.
//!
//! Ordering, for every flow submission:
//! 1. the flow is loaded; expiry and CSRF are checked;
//! 2. **before** hooks run ([`Hooks::before`], registration and login only), with what the
//!    user submitted. Refusing here shows the hook's message on the flow; nothing changes;
//! 3. identa validates the input and checks credentials;
//! 4. identa opens one database transaction and writes the flow change and its effects
//!    (identity, session, codes, outbox mail);
//! 5. **after** hooks run ([`Hooks::after`]) inside that transaction, with the result. A
//!    hook may write its own rows through [`Transaction::sea_orm`] so they commit or roll
//!    back with identa's. Refusing (or failing) rolls everything back: the user sees the
//!    hook's message on the flow and may submit again;
//! 6. the transaction commits.
//!
//! After hooks therefore run at most once per successful submission, but may run for a
//! submission that then does not commit (when a later step fails): keep side effects
//! outside the transaction (calls to other services) idempotent, or queue them.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use crate::identity::{Identity, VerifiableAddress};
use crate::session::Session;
use crate::store::Transaction;

/// What a before hook is shown.
#[derive(Debug)]
#[non_exhaustive]
pub enum BeforeEvent<'a> {
    /// A registration is about to be judged.
    Registration {
        /// The flow's id.
        flow_id: Uuid,
        /// The traits submitted (not yet validated).
        traits: &'a Value,
    },
    /// A login is about to be judged.
    Login {
        /// The flow's id.
        flow_id: Uuid,
        /// The identifier submitted (not yet checked).
        identifier: &'a str,
    },
}

/// What an after hook is shown: the flow's result, before it commits.
#[derive(Debug)]
#[non_exhaustive]
pub enum AfterEvent<'a> {
    /// A new identity (and its session, if one is issued).
    Registration {
        /// The flow's id.
        flow_id: Uuid,
        /// The identity being created.
        identity: &'a Identity,
        /// The session being issued, if any.
        session: Option<&'a Session>,
    },
    /// A sign-in.
    Login {
        /// The flow's id.
        flow_id: Uuid,
        /// Who signed in.
        identity: &'a Identity,
        /// The session issued or refreshed.
        session: &'a Session,
    },
    /// Saved settings.
    Settings {
        /// The flow's id.
        flow_id: Uuid,
        /// The identity as it will be.
        identity: &'a Identity,
    },
    /// A recovered account.
    Recovery {
        /// The flow's id.
        flow_id: Uuid,
        /// The recovered identity.
        identity: &'a Identity,
        /// The session issued.
        session: &'a Session,
    },
    /// A verified address.
    Verification {
        /// The flow's id.
        flow_id: Uuid,
        /// The identity as it will be.
        identity: &'a Identity,
        /// The address just verified.
        address: &'a VerifiableAddress,
    },
}

/// A hook refused the flow, or failed. The user sees the message on the flow: a refusal
/// as a validation message (Kratos's generic id 4000001), a failure as a system error
/// (5000001) after which the flow can be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The host refuses the submission.
    #[error("{message}")]
    Refused {
        /// The input it is about (`traits.email`), or `None` for the whole form.
        field: Option<String>,
        /// What the user is told.
        message: String,
    },
    /// The hook itself failed (a system error); nothing was written.
    #[error("{0}")]
    Failed(String),
}

impl HookError {
    /// Refuses with a message for the whole form.
    pub fn refuse(text: impl Into<String>) -> Self {
        Self::Refused {
            field: None,
            message: text.into(),
        }
    }

    /// Refuses with a message on one input (`traits.email`).
    pub fn refuse_field(field: impl Into<String>, text: impl Into<String>) -> Self {
        Self::Refused {
            field: Some(field.into()),
            message: text.into(),
        }
    }

    /// The hook itself failed; the flow can be retried.
    pub fn failed(reason: impl std::fmt::Display) -> Self {
        Self::Failed(reason.to_string())
    }
}

/// The host's hooks. Every method defaults to doing nothing.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// Runs before a registration or login is judged; an error refuses it.
    async fn before(&self, event: &BeforeEvent<'_>) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }

    /// Runs inside the flow's transaction, before it commits; an error rolls it back.
    async fn after(&self, event: &AfterEvent<'_>, tx: &Transaction<'_>) -> Result<(), HookError> {
        let _ = (event, tx);
        Ok(())
    }
}

/// No hooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}
