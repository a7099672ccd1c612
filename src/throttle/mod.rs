//! Throttling: how many attempts a client may make, counted where every instance on one
//! database sees the counts. [`Limiter`] is the counter (by default [`StoreLimiter`], the
//! store's atomic counters); the policy — which attempts count against which keys, with
//! which [`Limits`] — is `policy`, which the engine asks before it runs a flow and tells
//! how the flow judged afterwards. Keys are MACs of what is counted (an identifier, an
//! address, a client address), so no counter holds them in the clear.
//!
//! Windows are fixed (`[n·w, (n+1)·w)` in Unix time): a client can spend a limit at the
//! end of one window and again at the start of the next, never more in any one window.

mod limiter;
mod limits;
pub(crate) mod policy;

pub use limiter::{Limiter, StoreLimiter, ThrottleKey, Window};
pub use limits::{Limit, Limits, ThrottleConfig};

/// An attempt was refused because a limit is spent: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "too many attempts: try again in {} seconds",
    retry_after.as_secs()
)]
pub struct Throttled {
    /// How long until the window that refused the attempt is over (whole seconds, at
    /// least one).
    pub retry_after: std::time::Duration,
}
