//! Throttle counters as records: how many attempts one opaque key made in one fixed
//! window; and known-pair markers, opaque keys kept until a time. The store counts atomically (an upsert that returns the new count), so every
//! instance on one database shares the counters; it knows neither what a key stands for
//! (keys are MACs, never identifiers or addresses) nor which limits apply.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// One counter: a key (a 32-byte MAC) in the window starting at `window_start` (Unix
/// seconds), kept until `expires_at`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CounterId<'a> {
    /// The key, a MAC of what is counted.
    pub key: &'a [u8; 32],
    /// The window's start, in Unix seconds.
    pub window_start: i64,
}

impl std::fmt::Debug for CounterId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterId")
            .field("window_start", &self.window_start)
            .finish_non_exhaustive()
    }
}

/// Attempt counters shared by every engine on the database.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Adds one to the counter (creating it, to expire at `expires_at`) and returns its
    /// new value, in one atomic statement.
    async fn count_attempt(
        &self,
        counter: CounterId<'_>,
        expires_at: DateTime<Utc>,
    ) -> Result<u32, StoreError>;

    /// Takes back one attempt counted before (never below zero).
    async fn uncount_attempt(&self, counter: CounterId<'_>) -> Result<(), StoreError>;

    /// Forgets every window of `key`.
    async fn clear_attempts(&self, key: &[u8; 32]) -> Result<(), StoreError>;

    /// Deletes counters that expired before `before`, and known-pair markers that lapsed
    /// before it; returns how many counters.
    async fn delete_expired_attempts(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Until when the known-pair marker `key` (a MAC of an identifier and a client
    /// address that signed in together) is kept, if there is one. A commit writes it
    /// ([`Write::RememberPair`](super::Write::RememberPair)).
    async fn known_pair_until(&self, key: &[u8; 32]) -> Result<Option<DateTime<Utc>>, StoreError>;
}
