//! Session events the store pushes as they commit (PostgreSQL's LISTEN/NOTIFY), applied
//! to this engine's cache at once instead of at its next read of the event log. The push
//! is started by the builder and stops when the engine is dropped (it holds the store's
//! [`SessionPush`]); reading the log stays the backstop.

use std::sync::Arc;

use tokio::sync::watch;

use super::cache::SessionCache;
use crate::store::{SessionEvent, SessionEventSink};

/// How the push is doing, for tests to wait on (`testing::pushed_session_events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PushState {
    /// The store's listener is running.
    pub(crate) listening: bool,
    /// Events applied so far.
    pub(crate) received: u64,
}

/// The sink the store pushes into: this engine's cache.
pub(super) struct CacheSink {
    pub(super) cache: Arc<SessionCache>,
    pub(super) state: Arc<watch::Sender<PushState>>,
}

impl SessionEventSink for CacheSink {
    fn event(&self, event: SessionEvent) {
        self.cache.invalidate(event);
        self.state.send_modify(|s| s.received += 1);
    }

    fn listening(&self) {
        // Whatever committed before the listener started was not pushed.
        self.cache.resync();
        self.state.send_modify(|s| s.listening = true);
    }

    fn lost(&self) {
        self.cache.resync();
        self.state.send_modify(|s| s.listening = false);
    }
}
