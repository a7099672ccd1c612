//! The in-process `whoami` cache: token hash → session and identity, so most requests
//! never touch the database.
//!
//! Correctness rules:
//! - The process that revokes a session, or changes an identity, drops the affected
//!   entries at once: it never serves them again.
//! - Other processes sharing the database learn of such changes from the store's session
//!   event log, which each engine reads at most `max_staleness` (see
//!   [`SessionCacheConfig`]) after its previous read, by the engine's clock (lazily, on the
//!   `whoami` path). A change is therefore seen everywhere within that bound; a bound of
//!   zero reads the log on every `whoami`.
//!   The log is read so that no event is missed, even one that commits after a later
//!   one (see `store::EventCursor`).
//! - Whatever happens to the log, an entry is served for at most `max_age` after it was
//!   read from the store; then it is read again (the backstop for a change the log did
//!   not carry).
//! - Expiry is checked against the clock on every hit, never cached.
//! - An entry is one [`CachedSession`]: the session with its identity and, once an HTTP
//!   `whoami` has answered it, that answer's JSON. The JSON lives and dies with the entry,
//!   so every rule above holds for it too.
//!
//! Memory rules: at most `capacity` entries (a full cache starts over), and no entry
//! heavier than [`SessionCacheConfig::MAX_ENTRY_BYTES`] by its estimated weight (`weight`):
//! a heavier session is answered from the store on every `whoami`, and a rendered answer
//! that would push its entry over the bound is answered but not kept. So the entries hold
//! at most `capacity × MAX_ENTRY_BYTES`, their table slots included (the tables' spare
//! room aside).

mod weight;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::config::SessionCacheConfig;
use crate::session::{AuthenticatedSession, TokenHash};
use crate::store::{EventCursor, SessionEvent};

use weight::Weight;

/// What `whoami` found for a token, shared by the cache and the requests it answers.
#[derive(Debug)]
pub(crate) struct CachedSession {
    /// The session and its identity.
    pub(crate) value: AuthenticatedSession,
    /// What an entry of it weighs, without its rendered answer.
    weight: Weight,
    /// Kratos's session JSON of `value`, rendered by the first answer that needed it, and
    /// kept if the entry stays within the bound with it.
    rendered: OnceLock<Arc<[u8]>>,
}

/// The bytes every entry holds whatever its content: the shared allocation (the two
/// reference counts and the [`CachedSession`]) and its slots in the tables.
const FIXED_BYTES: usize =
    2 * size_of::<usize>() + size_of::<CachedSession>() + weight::table_slots::<Entry>();

impl CachedSession {
    pub(crate) fn new(value: AuthenticatedSession) -> Self {
        Self {
            weight: Weight::of(&value, FIXED_BYTES),
            value,
            rendered: OnceLock::new(),
        }
    }

    /// What an entry of it weighs: the rendered answer included once kept.
    pub(crate) fn weight(&self) -> Weight {
        match self.rendered.get() {
            Some(rendered) => self.weight.with_rendered(rendered.len()),
            None => self.weight,
        }
    }

    /// Kratos's session JSON (what `GET /sessions/whoami` answers), rendered once per
    /// entry (unless keeping it would make the entry too heavy: then rendered per call):
    /// byte for byte what rendering `value` through `serde_json::Value` gives.
    pub(crate) fn json(&self) -> Result<Arc<[u8]>, serde_json::Error> {
        if let Some(rendered) = self.rendered.get() {
            return Ok(rendered.clone());
        }
        let rendered: Arc<[u8]> = serde_json::to_vec(&serde_json::to_value(&self.value)?)?.into();
        match self.weight.with_rendered(rendered.len()) {
            Weight::Within(_) => Ok(self.rendered.get_or_init(|| rendered).clone()),
            Weight::Over => Ok(rendered),
        }
    }
}

/// A cached entry and when it was read from the store.
#[derive(Debug)]
struct Entry {
    value: Arc<CachedSession>,
    read_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Entries {
    by_token: HashMap<TokenHash, Entry>,
    token_of_session: HashMap<Uuid, TokenHash>,
    sessions_of_identity: HashMap<Uuid, HashSet<Uuid>>,
}

impl Entries {
    fn forget_session(&mut self, session_id: Uuid) {
        if let Some(token) = self.token_of_session.remove(&session_id)
            && let Some(entry) = self.by_token.remove(&token)
            && let Some(set) = self
                .sessions_of_identity
                .get_mut(&entry.value.value.identity.id)
        {
            set.remove(&session_id);
            if set.is_empty() {
                self.sessions_of_identity
                    .remove(&entry.value.value.identity.id);
            }
        }
    }

    fn forget_identity(&mut self, identity_id: Uuid) {
        for session_id in self
            .sessions_of_identity
            .remove(&identity_id)
            .unwrap_or_default()
        {
            if let Some(token) = self.token_of_session.remove(&session_id) {
                self.by_token.remove(&token);
            }
        }
    }
}

/// The cache. All methods are cheap and never block on I/O.
#[derive(Debug)]
pub(crate) struct SessionCache {
    config: SessionCacheConfig,
    entries: Mutex<Entries>,
    sync: Mutex<SyncState>,
    /// Set while no event-log read has succeeded yet: nothing may be served.
    unsynced: AtomicBool,
}

#[derive(Debug)]
struct SyncState {
    /// Where the last event-log read left off.
    cursor: EventCursor,
    last_read: Option<DateTime<Utc>>,
    /// Bumped by every invalidation, local or from the log: a store read that began
    /// under an older generation may predate it and is not cached.
    generation: u64,
}

/// The configured bounds of an enabled cache.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_staleness: Duration,
    max_age: Duration,
    capacity: usize,
}

/// What the engine must do before trusting the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncNeed {
    /// The cache is fresh enough.
    Fresh,
    /// Read the event log after this cursor, then call [`SessionCache::apply`].
    ReadAfter(EventCursor),
}

impl SessionCache {
    pub(crate) fn new(config: SessionCacheConfig) -> Self {
        Self {
            config,
            entries: Mutex::new(Entries::default()),
            sync: Mutex::new(SyncState {
                cursor: EventCursor::default(),
                last_read: None,
                generation: 0,
            }),
            unsynced: AtomicBool::new(true),
        }
    }

    fn enabled(&self) -> Option<Limits> {
        match self.config {
            SessionCacheConfig::Disabled => None,
            SessionCacheConfig::InProcess {
                max_staleness,
                max_age,
                capacity,
            } => Some(Limits {
                max_staleness: Duration::from_std(max_staleness).unwrap_or(Duration::MAX),
                max_age: Duration::from_std(max_age).unwrap_or(Duration::MAX),
                capacity,
            }),
        }
    }

    fn lock_entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_sync(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the event log must be read before serving from the cache.
    /// `now` comes from the engine's clock; a clock that went backwards since the last
    /// read counts as stale.
    pub(crate) fn sync_need(&self, now: DateTime<Utc>) -> SyncNeed {
        let Some(limits) = self.enabled() else {
            return SyncNeed::Fresh;
        };
        let sync = self.lock_sync();
        match sync.last_read {
            Some(at) if at <= now && now - at < limits.max_staleness => SyncNeed::Fresh,
            _ => SyncNeed::ReadAfter(sync.cursor.clone()),
        }
    }

    /// Applies events read after `from` (leaving off at `cursor`). `complete` is false
    /// when the read was cut short: then everything is dropped.
    pub(crate) fn apply(
        &self,
        from: &EventCursor,
        events: &[SessionEvent],
        cursor: EventCursor,
        complete: bool,
        read_at: DateTime<Utc>,
    ) {
        let mut sync = self.lock_sync();
        if sync.cursor != *from {
            return; // another task applied a read meanwhile; the next check catches up
        }
        {
            let mut entries = self.lock_entries();
            if complete {
                for event in events {
                    match *event {
                        SessionEvent::Session(id) => entries.forget_session(id),
                        SessionEvent::Identity(id) => entries.forget_identity(id),
                    }
                }
            } else {
                *entries = Entries::default();
            }
        }
        sync.cursor = cursor;
        sync.last_read = Some(read_at);
        sync.generation += 1;
        self.unsynced.store(false, Ordering::Release);
    }

    /// A cached entry, if there is one, the cache has been synchronised, and the entry
    /// was read from the store less than `max_age` before `now` (by the engine's clock; a
    /// clock that went backwards since counts as too old).
    pub(crate) fn get(&self, token: &TokenHash, now: DateTime<Utc>) -> Option<Arc<CachedSession>> {
        let limits = self.enabled()?;
        if self.unsynced.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.lock_entries();
        let entry = entries.by_token.get(token)?;
        let fresh = entry.read_at <= now && now - entry.read_at < limits.max_age;
        fresh.then(|| entry.value.clone())
    }

    /// Caches (a reference to) an entry whose store read began at `generation` (from
    /// [`Self::generation`]) and at `read_at`; nothing is copied when the cache is off or
    /// the entry stale.
    pub(crate) fn put(
        &self,
        token: TokenHash,
        value: &Arc<CachedSession>,
        generation: u64,
        read_at: DateTime<Utc>,
    ) {
        let Some(Limits { capacity, .. }) = self.enabled() else {
            return;
        };
        if value.weight() == Weight::Over {
            return; // answered from the store every time: see the module's memory rules
        }
        // Held while inserting, so no invalidation can slip between the check and the insert.
        let sync = self.lock_sync();
        if sync.generation != generation {
            return; // something changed since the read began; the value may predate it
        }
        let mut entries = self.lock_entries();
        // Reading a session again (after `max_age`) replaces its entry: only a new one grows
        // the cache.
        if entries.by_token.len() >= capacity && !entries.by_token.contains_key(&token) {
            *entries = Entries::default();
        }
        let (session_id, identity_id) = (value.value.session.id, value.value.identity.id);
        entries.by_token.insert(
            token,
            Entry {
                value: Arc::clone(value),
                read_at,
            },
        );
        entries.token_of_session.insert(session_id, token);
        entries
            .sessions_of_identity
            .entry(identity_id)
            .or_default()
            .insert(session_id);
    }

    /// Makes the next `whoami` read the event log first, however recent the last read.
    pub(crate) fn resync(&self) {
        self.lock_sync().last_read = None;
    }

    /// The current generation (taken before a store read that may be cached).
    pub(crate) fn generation(&self) -> u64 {
        self.lock_sync().generation
    }

    /// Drops what this process just changed.
    pub(crate) fn invalidate(&self, event: SessionEvent) {
        let mut sync = self.lock_sync();
        sync.generation += 1;
        let mut entries = self.lock_entries();
        match event {
            SessionEvent::Session(id) => entries.forget_session(id),
            SessionEvent::Identity(id) => entries.forget_identity(id),
        }
    }

    /// How many sessions are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock_entries().by_token.len()
    }

    /// How many sessions are cached and their estimated weight in all.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn usage(&self) -> (usize, usize) {
        let entries = self.lock_entries();
        let bytes = entries
            .by_token
            .values()
            .map(|entry| match entry.value.weight() {
                Weight::Within(bytes) => bytes,
                Weight::Over => 0, // never cached
            })
            .sum();
        (entries.by_token.len(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Aal;
    use crate::identity::{Identity, IdentityState};
    use crate::session::{Session, SessionToken};

    fn at(last: i64) -> EventCursor {
        EventCursor {
            last,
            ..EventCursor::default()
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn entry(identity_id: Uuid) -> (TokenHash, Arc<CachedSession>) {
        entry_with(identity_id, serde_json::json!({}))
    }

    fn entry_with(identity_id: Uuid, traits: serde_json::Value) -> (TokenHash, Arc<CachedSession>) {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let session = Session {
            id: Uuid::new_v4(),
            identity_id,
            active: true,
            issued_at: at,
            authenticated_at: at,
            expires_at: at,
            aal: Aal::Aal1,
            authentication_methods: vec![],
            devices: vec![],
        };
        let identity = Identity {
            id: identity_id,
            schema_id: "default".into(),
            state: IdentityState::Active,
            state_changed_at: None,
            traits,
            verifiable_addresses: vec![],
            recovery_addresses: vec![],
            metadata_public: None,
            metadata_admin: None,
            external_id: None,
            credentials: Default::default(),
            created_at: at,
            updated_at: at,
        };
        (
            SessionToken::untagged().hash(),
            Arc::new(CachedSession::new(AuthenticatedSession {
                session,
                identity,
            })),
        )
    }

    fn synced(config: SessionCacheConfig) -> SessionCache {
        let cache = SessionCache::new(config);
        cache.apply(&at(0), &[], at(0), true, t0());
        cache
    }

    #[test]
    fn the_rendered_answer_is_the_value_as_json_rendered_once() {
        let (_, cached) = entry(Uuid::new_v4());
        let first = cached.json().unwrap();
        let expected = serde_json::to_vec(&serde_json::to_value(&cached.value).unwrap()).unwrap();
        assert_eq!(&*first, expected.as_slice());
        assert!(
            Arc::ptr_eq(&first, &cached.json().unwrap()),
            "rendered once"
        );
    }

    /// An entry whose traits hold a string of `len` bytes.
    fn entry_of(len: usize) -> (TokenHash, Arc<CachedSession>) {
        entry_with(
            Uuid::new_v4(),
            serde_json::json!({ "bio": "x".repeat(len) }),
        )
    }

    fn bytes(weight: Weight) -> usize {
        match weight {
            Weight::Within(bytes) => bytes,
            Weight::Over => panic!("over the bound"),
        }
    }

    #[test]
    fn the_estimate_counts_content_and_gives_up_past_the_bound() {
        let (_, empty) = entry(Uuid::new_v4());
        let (_, small) = entry_of(100);
        let (_, larger) = entry_of(4_000);
        assert!(bytes(empty.weight()) >= FIXED_BYTES);
        assert_eq!(bytes(larger.weight()) - bytes(small.weight()), 3_900);
        let (_, heavy) = entry_of(SessionCacheConfig::MAX_ENTRY_BYTES);
        assert_eq!(heavy.weight(), Weight::Over);
        // Many small values: each object entry costs its node share, not just its bytes.
        let many: serde_json::Map<_, _> = (0..1_000)
            .map(|n| (format!("k{n}"), serde_json::Value::Null))
            .collect();
        let (_, wide) = entry_with(Uuid::new_v4(), serde_json::Value::Object(many));
        assert_eq!(wide.weight(), Weight::Over, "1,000 keys weigh over 16 KiB");
    }

    #[test]
    fn an_entry_over_the_bound_is_served_but_not_cached() {
        let cache = synced(SessionCacheConfig::default());
        let (token, heavy) = entry_of(SessionCacheConfig::MAX_ENTRY_BYTES);
        cache.put(token, &heavy, cache.generation(), t0());
        assert!(cache.get(&token, t0()).is_none());
        assert_eq!(cache.usage(), (0, 0));
        let rendered = heavy.json().unwrap();
        assert!(heavy.rendered.get().is_none(), "not kept either");
        assert!(!Arc::ptr_eq(&rendered, &heavy.json().unwrap()));
        assert_eq!(rendered, heavy.json().unwrap());
    }

    #[test]
    fn a_rendered_answer_is_kept_only_within_the_bound() {
        let cache = synced(SessionCacheConfig::default());
        let (token, small) = entry_of(100);
        cache.put(token, &small, cache.generation(), t0());
        let before = bytes(small.weight());
        let rendered = small.json().unwrap();
        assert!(Arc::ptr_eq(&rendered, &small.json().unwrap()), "kept");
        assert_eq!(
            bytes(small.weight()),
            before + rendered.len() + 2 * size_of::<usize>()
        );
        assert_eq!(cache.usage(), (1, bytes(small.weight())));

        // Cached, but its answer (about as long as its traits) would push it over.
        let (token, half) = entry_of(SessionCacheConfig::MAX_ENTRY_BYTES / 2);
        cache.put(token, &half, cache.generation(), t0());
        let before = half.weight();
        assert!(cache.get(&token, t0()).is_some());
        let rendered = half.json().unwrap();
        assert!(half.rendered.get().is_none());
        assert_eq!(half.weight(), before);
        assert_eq!(rendered, half.json().unwrap(), "rendered alike every time");
    }

    #[test]
    fn a_full_cache_weighs_at_most_capacity_times_the_bound() {
        let capacity = 8;
        let cache = synced(SessionCacheConfig::InProcess {
            max_staleness: std::time::Duration::from_secs(60),
            max_age: std::time::Duration::from_secs(60),
            capacity,
        });
        let max = SessionCacheConfig::MAX_ENTRY_BYTES;
        for len in [max / 2, max - 2_000, max, max * 4].repeat(4) {
            let (token, value) = entry_of(len);
            cache.put(token, &value, cache.generation(), t0());
            value.json().unwrap();
            let (entries, weight) = cache.usage();
            assert!(entries <= capacity && weight <= entries * max);
        }
    }

    #[test]
    fn nothing_is_served_before_the_first_sync() {
        let cache = SessionCache::new(SessionCacheConfig::default());
        let (token, value) = entry(Uuid::new_v4());
        cache.put(token, &value, cache.generation(), t0());
        assert!(cache.get(&token, t0()).is_none());
        cache.apply(&at(0), &[], at(0), true, t0());
        assert!(cache.get(&token, t0()).is_some());
    }

    #[test]
    fn invalidation_drops_sessions_and_identities() {
        let cache = synced(SessionCacheConfig::default());
        let alice = Uuid::new_v4();
        let (t1, v1) = entry(alice);
        let (t2, v2) = entry(alice);
        let (t3, v3) = entry(Uuid::new_v4());
        let s1 = v1.value.session.id;
        for (t, v) in [(t1, v1), (t2, v2), (t3, v3)] {
            cache.put(t, &v, cache.generation(), t0());
        }
        assert_eq!(cache.len(), 3);
        cache.invalidate(SessionEvent::Session(s1));
        assert!(cache.get(&t1, t0()).is_none());
        assert!(cache.get(&t2, t0()).is_some());
        cache.invalidate(SessionEvent::Identity(alice));
        assert!(cache.get(&t2, t0()).is_none());
        assert!(cache.get(&t3, t0()).is_some());
    }

    #[test]
    fn a_read_that_began_before_an_invalidation_is_not_cached() {
        let cache = synced(SessionCacheConfig::default());
        let (token, value) = entry(Uuid::new_v4());
        let before = cache.generation();
        cache.invalidate(SessionEvent::Session(value.value.session.id));
        cache.put(token, &value, before, t0());
        assert!(cache.get(&token, t0()).is_none());
        let before = cache.generation();
        cache.apply(&at(0), &[], at(5), true, t0());
        cache.put(token, &value, before, t0());
        assert!(cache.get(&token, t0()).is_none());
    }

    #[test]
    fn log_events_apply_and_an_incomplete_read_starts_over() {
        let cache = synced(SessionCacheConfig::default());
        let (t1, v1) = entry(Uuid::new_v4());
        let (t2, v2) = entry(Uuid::new_v4());
        let s1 = v1.value.session.id;
        cache.put(t1, &v1, cache.generation(), t0());
        cache.put(t2, &v2, cache.generation(), t0());
        cache.apply(&at(0), &[SessionEvent::Session(s1)], at(7), true, t0());
        assert!(cache.get(&t1, t0()).is_none());
        assert!(cache.get(&t2, t0()).is_some());
        // A stale cursor (another task applied first) changes nothing.
        cache.apply(&at(0), &[], at(9), false, t0());
        assert!(cache.get(&t2, t0()).is_some());
        cache.apply(&at(7), &[], at(9), false, t0());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn staleness_bound_and_capacity() {
        let cache = synced(SessionCacheConfig::InProcess {
            max_staleness: std::time::Duration::from_secs(60),
            max_age: std::time::Duration::from_secs(60),
            capacity: 2,
        });
        let now = t0();
        assert_eq!(cache.sync_need(now), SyncNeed::Fresh);
        assert_eq!(
            cache.sync_need(now + Duration::seconds(61)),
            SyncNeed::ReadAfter(at(0))
        );
        for _ in 0..3 {
            let (t, v) = entry(Uuid::new_v4());
            cache.put(t, &v, cache.generation(), t0());
        }
        assert_eq!(cache.len(), 1, "full cache starts over");
        let (t, v) = entry(Uuid::new_v4());
        cache.put(t, &v, cache.generation(), t0());
        assert_eq!(cache.len(), 2);
        cache.put(t, &v, cache.generation(), t0() + Duration::seconds(61));
        assert_eq!(cache.len(), 2, "an entry read again replaces itself");

        let zero = synced(SessionCacheConfig::InProcess {
            max_staleness: std::time::Duration::ZERO,
            max_age: std::time::Duration::from_secs(60),
            capacity: 10,
        });
        assert_eq!(zero.sync_need(t0()), SyncNeed::ReadAfter(at(0)));

        let off = SessionCache::new(SessionCacheConfig::Disabled);
        let (t, v) = entry(Uuid::new_v4());
        off.put(t, &v, off.generation(), t0());
        assert!(off.get(&t, t0()).is_none());
        assert_eq!(off.sync_need(t0()), SyncNeed::Fresh);
    }

    #[test]
    fn an_entry_is_read_again_after_max_age() {
        let cache = synced(SessionCacheConfig::InProcess {
            max_staleness: std::time::Duration::from_secs(1),
            max_age: std::time::Duration::from_secs(60),
            capacity: 10,
        });
        let (token, value) = entry(Uuid::new_v4());
        cache.put(token, &value, cache.generation(), t0());
        assert!(cache.get(&token, t0() + Duration::seconds(59)).is_some());
        assert!(cache.get(&token, t0() + Duration::seconds(60)).is_none());
        assert!(
            cache.get(&token, t0() - Duration::seconds(1)).is_none(),
            "a clock that went back counts as too old"
        );
    }
}
