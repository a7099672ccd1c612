//! The [`Limiter`]: counts attempts per opaque key and window. The default,
//! [`StoreLimiter`], counts in the store, so every engine on one database shares the
//! counts; a host may plug in its own (e.g. over Redis) with
//! [`IdentaBuilder::limiter`](crate::IdentaBuilder::limiter).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::store::{CounterId, Store, StoreError};

/// What a counter counts for: a MAC (HMAC-SHA256 under a key derived from the cookie
/// secret) of the kind of attempt, the normalised identifier or address, and the client
/// address. It reveals none of them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey(pub(crate) [u8; 32]);

impl ThrottleKey {
    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThrottleKey(..)")
    }
}

/// One fixed window of time: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When the window began.
    pub start: DateTime<Utc>,
    /// When it ends (and its counts may be forgotten).
    pub end: DateTime<Utc>,
}

impl Window {
    /// The window of length `length` (whole seconds, at least one, at most
    /// [`Limit::MAX_WINDOW_SECS`](super::Limit::MAX_WINDOW_SECS)) that holds `now`.
    pub fn containing(now: DateTime<Utc>, length: Duration) -> Self {
        // Clamped, so no window reaches past what a date can hold.
        let secs = length
            .num_seconds()
            .clamp(1, super::limits::Limit::MAX_WINDOW_SECS);
        let start = now.timestamp().div_euclid(secs) * secs;
        let start = DateTime::from_timestamp(start, 0).unwrap_or(now);
        let end = start
            .checked_add_signed(Duration::seconds(secs))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Self { start, end }
    }
}

/// Counts attempts. Implementations MUST count atomically (two racing `hit`s get two
/// different counts) and SHOULD share counts between every instance of the service, or a
/// client can multiply its limits by the number of instances.
#[async_trait]
pub trait Limiter: Send + Sync {
    /// Counts one attempt of `key` in `window` and returns how many that window holds,
    /// this one included.
    async fn hit(&self, key: &ThrottleKey, window: Window) -> Result<u32, StoreError>;

    /// Takes back one attempt counted in `window` (it turned out not to count).
    async fn undo(&self, key: &ThrottleKey, window: Window) -> Result<(), StoreError>;

    /// Forgets every attempt of `key` (a successful login clears its failures).
    async fn clear(&self, key: &ThrottleKey) -> Result<(), StoreError>;

    /// Drops counts of windows that ended before `now`; returns how many.
    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The default [`Limiter`]: the store's counters (one row per key and window, counted
/// by an atomic upsert), shared by every engine on the database.
#[derive(Clone)]
pub struct StoreLimiter {
    store: Arc<dyn Store>,
}

impl StoreLimiter {
    /// Counts in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for StoreLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLimiter")
    }
}

fn counter(key: &ThrottleKey, window: Window) -> CounterId<'_> {
    CounterId {
        key: &key.0,
        window_start: window.start.timestamp(),
    }
}

#[async_trait]
impl Limiter for StoreLimiter {
    async fn hit(&self, key: &ThrottleKey, window: Window) -> Result<u32, StoreError> {
        self.store
            .count_attempt(counter(key, window), window.end)
            .await
    }

    async fn undo(&self, key: &ThrottleKey, window: Window) -> Result<(), StoreError> {
        self.store.uncount_attempt(counter(key, window)).await
    }

    async fn clear(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        self.store.clear_attempts(&key.0).await
    }

    async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.delete_expired_attempts(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_hold_now() {
        let now = DateTime::from_timestamp(1_000_000_123, 0).unwrap();
        let w = Window::containing(now, Duration::minutes(15));
        assert!(w.start <= now && now < w.end);
        assert_eq!(w.start.timestamp() % 900, 0);
        assert_eq!(w.end - w.start, Duration::minutes(15));
        let later = Window::containing(now + Duration::seconds(1), Duration::minutes(15));
        assert_eq!(w, later);
    }

    #[test]
    fn windows_longer_than_the_maximum_are_clamped_not_a_panic() {
        let now = DateTime::from_timestamp(1_000_000_123, 0).unwrap();
        let w = Window::containing(now, Duration::MAX);
        assert!(w.start <= now && now < w.end);
        assert_eq!(
            (w.end - w.start).num_seconds(),
            crate::throttle::Limit::MAX_WINDOW_SECS
        );
        let w = Window::containing(DateTime::<Utc>::MAX_UTC, Duration::days(29));
        assert!(w.start <= w.end);
    }
}
