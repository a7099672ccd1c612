//! What a host needs to test its own code against identa (feature `testing`): a test
//! environment ([`TestEnv`]: an engine on a fresh store, a [`ManualClock`], cheap hashing,
//! codes read from the outbox), and the store conformance suite ([`store_conformance!`]),
//! which identa's SeaORM store runs on SQLite and PostgreSQL and a host's own [`Store`]
//! can run too.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use identa::testing::TestEnv;
//!
//! let env = TestEnv::sqlite_memory().await;
//! let ada = env.identa.register(serde_json::json!({ "email": "ada@example.com" }),
//!     &identa::credential::password::Password::new(identa::testing::PASSWORD)).await.unwrap();
//! env.clock.advance(chrono::Duration::hours(25));
//! # let _ = ada;
//! # }
//! ```
//!
//! Everything here trades security for speed (argon2 at 64 KiB, random secrets): tests
//! only.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::Config;
use crate::courier::TemplateKind;
use crate::credential::password::PasswordConfig;
use crate::engine::Identa;
use crate::identity::{
    AddressVia, CredentialType, ExternalId, Identity, RecoveryAddress, SchemaRegistry,
    VerifiableAddress, VerificationStatus,
};
use crate::session::{Session, SessionToken};
use crate::store::{
    AddressKind, Commit, CommitHook, FlowRecord, MessageStatus, OutboxMessage, PageRequest, Retry,
    Rollback, SeaOrmStore, SessionEvent, Store, StoreError, Transaction, Write,
};

/// The password [`TestEnv`]'s helpers register with.
pub const PASSWORD: &str = "a long and unusual passphrase";

/// An identity schema for tests: `email` (password identifier, verified, recovery) and an
/// optional `username` (password identifier).
pub fn schema() -> Value {
    json!({
        "$id": "https://example.invalid/person.schema.json",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": { "traits": {
            "type": "object",
            "properties": {
                "email": { "type": "string", "format": "email", "maxLength": 320,
                    "ory.sh/kratos": {
                        "credentials": { "password": { "identifier": true } },
                        "verification": { "via": "email" },
                        "recovery": { "via": "email" } } },
                "username": { "type": "string", "minLength": 3, "maxLength": 32,
                    "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } } }
            },
            "required": ["email"],
            "additionalProperties": false
        } }
    })
}

/// A configuration for tests: cheap hashing ([`PasswordConfig::insecure_fast_for_tests`]),
/// defaults otherwise.
pub fn config() -> Config {
    Config {
        password: PasswordConfig::insecure_fast_for_tests(),
        ..Config::default()
    }
}

/// An engine on a fresh store, with a clock that only moves when told.
#[derive(Debug)]
pub struct TestEnv {
    /// The engine.
    pub identa: Identa,
    /// Its clock, started at a whole second (exact at the stores' precision).
    pub clock: Arc<ManualClock>,
    /// Its store.
    pub store: SeaOrmStore,
}

impl TestEnv {
    /// An engine on `sqlite::memory:` with [`schema`] and [`config`].
    pub async fn sqlite_memory() -> Self {
        Self::connect("sqlite::memory:", config()).await
    }

    /// An engine on the database at `url` (migrated) with [`schema`] and `config`.
    ///
    /// # Panics
    ///
    /// If the database cannot be reached or migrated: this is for tests.
    pub async fn connect(url: &str, config: Config) -> Self {
        #[allow(clippy::expect_used)]
        let store = SeaOrmStore::connect(url)
            .await
            .expect("the test database can be reached");
        Self::on(store, config)
    }

    /// An engine on `store` with [`schema`] and `config`.
    ///
    /// # Panics
    ///
    /// If the engine cannot be built (an invalid `config`): this is for tests.
    #[allow(clippy::expect_used)]
    pub fn on(store: SeaOrmStore, config: Config) -> Self {
        let start = SystemClock.now().timestamp();
        let clock = Arc::new(ManualClock::new(
            DateTime::from_timestamp(start, 0).unwrap_or_default(),
        ));
        let mut schemas = SchemaRegistry::new();
        schemas
            .add("default", schema())
            .expect("the test schema is valid");
        let identa = Identa::builder()
            .store(store.clone())
            .schemas(schemas)
            .config(config)
            .clock(clock.clone())
            .build()
            .expect("the test engine builds");
        Self {
            identa,
            clock,
            store,
        }
    }

    /// The newest code mailed to `to` with `template`, read from the outbox.
    pub async fn code_sent_to(&self, to: &str, template: TemplateKind) -> Option<String> {
        let page = self
            .identa
            .courier()
            .messages(None, PageRequest::default())
            .await
            .ok()?;
        page.items
            .iter()
            .find(|m| m.template == template && m.email.to == to)
            .and_then(|m| code_in(&m.email.text))
    }
}

/// The first run of six or more digits in a text (a one-time code in an email).
fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 6)
        .map(str::to_owned)
}

/// What [`store_conformance!`] runs a case on: a store, and whatever must live as long as
/// it (a temporary directory, say). A host's own store implements it in one line.
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl Fixture for SeaOrmStore {
    fn store(&self) -> &dyn Store {
        self
    }
}

impl<G> Fixture for (SeaOrmStore, G) {
    fn store(&self) -> &dyn Store {
        &self.0
    }
}

/// Waits until `identa`'s store is pushing session events to it (PostgreSQL's
/// LISTEN/NOTIFY), so that a change committed from now on reaches its cache without a read
/// of the event log. Returns false at once for a store that does not push (SQLite) or an
/// engine without a cache.
pub async fn session_push_listening(identa: &Identa) -> bool {
    if identa.store_pushes() {
        identa
            .push_state()
            .wait_for(|state| state.listening)
            .await
            .is_ok()
    } else {
        false
    }
}

/// What an engine's `whoami` cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCacheUsage {
    /// Sessions cached.
    pub entries: usize,
    /// Their estimated weight in bytes in all: each at most
    /// [`SessionCacheConfig::MAX_ENTRY_BYTES`](crate::SessionCacheConfig::MAX_ENTRY_BYTES),
    /// the rendered answers kept included.
    pub estimated_bytes: usize,
}

/// What `identa`'s `whoami` cache holds now (to check that a session is, or is not,
/// cached, and the cache's estimate against measured memory).
pub fn session_cache_usage(identa: &Identa) -> SessionCacheUsage {
    let (entries, estimated_bytes) = identa.session_cache_usage();
    SessionCacheUsage {
        entries,
        estimated_bytes,
    }
}

/// Waits until `identa` has applied `count` pushed session events in all (events of this
/// store's tables only).
pub async fn pushed_session_events(identa: &Identa, count: u64) {
    let mut state = identa.push_state();
    let _ = state.wait_for(|state| state.received >= count).await;
}

/// Runs the store conformance suite against a store: one `#[tokio::test]` per case, in a
/// module named `$name`, each on a fresh [`Fixture`] made by `$make` (an expression
/// evaluating to a future of one, over an empty, migrated store). Attributes given after
/// `$make` go on every case (`#[ignore = "needs PostgreSQL"]`).
///
/// ```ignore
/// identa::store_conformance!(sqlite_memory, async {
///     identa::store::SeaOrmStore::connect("sqlite::memory:").await.unwrap()
/// });
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($name:ident, $make:expr $(, #[$attr:meta])* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_conformance!(@cases { $(#[$attr])* } $make;
                identities_round_trip,
                identifiers_are_unique_and_nothing_is_half_written,
                identities_insert_together_or_not_at_all,
                external_ids_are_unique_and_found,
                replacing_an_identity_moves_its_identifiers_and_logs_an_event,
                deleting_an_identity_deletes_its_sessions,
                identities_page_by_id,
                sessions_round_trip_and_revoke,
                commits_are_all_or_nothing,
                a_stale_flow_version_is_refused,
                a_one_time_marker_is_spent_once,
                a_hook_rolls_the_commit_back,
                outbox_claims_are_exclusive,
                housekeeping_deletes_only_what_is_old,
                throttle_counters_count_per_key_and_window,
                known_pairs_are_remembered_refreshed_and_expire,
            );
        }
    };
    (@cases $attrs:tt $make:expr; $($case:ident),* $(,)?) => {
        $($crate::store_conformance!(@case $attrs $make; $case);)*
    };
    (@case { $(#[$attr:meta])* } $make:expr; $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $case() {
            let fixture = $make.await;
            $crate::testing::conformance::$case($crate::testing::Fixture::store(&fixture)).await;
        }
    };
}

/// The cases of [`store_conformance!`], each over any [`Store`]. Each starts from an
/// empty, migrated store. They are tests: a failed expectation panics.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub mod conformance {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    /// An identity with a password credential for `email` and both kinds of address.
    pub fn identity(email: &str) -> Identity {
        let now = at(0);
        let mut identity = Identity {
            id: Uuid::new_v4(),
            schema_id: "default".into(),
            state: crate::identity::IdentityState::Active,
            state_changed_at: None,
            traits: json!({ "email": email }),
            verifiable_addresses: vec![VerifiableAddress {
                id: Uuid::new_v4(),
                value: email.into(),
                via: AddressVia::Email,
                verified: false,
                status: VerificationStatus::Pending,
                verified_at: None,
                created_at: now,
                updated_at: now,
            }],
            recovery_addresses: vec![RecoveryAddress {
                id: Uuid::new_v4(),
                value: email.into(),
                via: AddressVia::Email,
                created_at: now,
                updated_at: now,
            }],
            metadata_public: None,
            metadata_admin: None,
            external_id: None,
            credentials: std::collections::BTreeMap::new(),
            created_at: now,
            updated_at: now,
        };
        crate::credential::password::set_on(
            &mut identity,
            vec![email.into()],
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
            now,
        );
        identity
    }

    /// A session of `identity` and its token (tagged under a throwaway secret: stores
    /// never look at tags).
    pub fn session(identity: &Identity) -> (Session, SessionToken) {
        #[allow(clippy::expect_used)]
        let keyring = crate::secret::Keyring::new(&crate::secret::Secrets::default())
            .expect("the default secrets make a keyring");
        #[allow(clippy::expect_used)]
        Session::issue(
            identity,
            Vec::new(),
            None,
            at(0),
            Duration::hours(1),
            &keyring,
        )
        .expect("an active identity holds sessions")
    }

    fn flow_record(version: i64) -> FlowRecord {
        FlowRecord {
            id: Uuid::new_v4(),
            kind: "login".into(),
            flow_type: "api".into(),
            state: "choose_method".into(),
            version,
            expires_at: at(3600),
            created_at: at(0),
            updated_at: at(0),
            document: json!({ "anything": "the store never reads this" }),
        }
    }

    fn message(to: &str, created: DateTime<Utc>) -> OutboxMessage {
        OutboxMessage {
            id: Uuid::now_v7(),
            status: MessageStatus::Queued,
            template: "recovery_code_valid".into(),
            recipient: to.into(),
            sealed: vec![1, 2, 3],
            send_count: 0,
            last_error: None,
            next_attempt_at: created,
            useful_until: Some(created + chrono::Duration::hours(1)),
            created_at: created,
            updated_at: created,
        }
    }

    /// An identity reads back as written, and is found by identifier and by address.
    pub async fn identities_round_trip(store: &dyn Store) {
        let ada = identity("ada@example.com");
        store.insert_identity(&ada).await.unwrap();
        assert_eq!(store.identity(ada.id).await.unwrap().as_ref(), Some(&ada));
        let by_id = store
            .identity_by_identifier(CredentialType::Password, "ada@example.com")
            .await
            .unwrap();
        assert_eq!(by_id.map(|i| i.id), Some(ada.id));
        for kind in [AddressKind::Recovery, AddressKind::Verifiable] {
            let found = store
                .identity_by_address(kind, AddressVia::Email, "ada@example.com")
                .await
                .unwrap();
            assert_eq!(found.map(|i| i.id), Some(ada.id), "{kind:?}");
        }
        assert!(
            store
                .identity_by_identifier(CredentialType::Password, "bob@example.com")
                .await
                .unwrap()
                .is_none()
        );
    }

    /// A second identity with a taken identifier is refused as a conflict, and none of it
    /// is stored.
    pub async fn identifiers_are_unique_and_nothing_is_half_written(store: &dyn Store) {
        store
            .insert_identity(&identity("ada@example.com"))
            .await
            .unwrap();
        let twin = identity("ada@example.com");
        let err = store.insert_identity(&twin).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert!(store.identity(twin.id).await.unwrap().is_none());
    }

    /// Several identities go in together, or none does when one clashes; each is found
    /// by id afterwards.
    pub async fn identities_insert_together_or_not_at_all(store: &dyn Store) {
        store
            .insert_identity(&identity("taken@example.com"))
            .await
            .unwrap();
        let batch: Vec<Identity> = (0..3)
            .map(|n| identity(&format!("user{n}@example.com")))
            .chain([identity("taken@example.com")])
            .collect();
        let err = store.insert_identities(&batch).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        let ids: Vec<Uuid> = batch.iter().map(|i| i.id).collect();
        assert!(store.identities_by_ids(&ids).await.unwrap().is_empty());
        // Past one statement's worth of rows, all arrive.
        let batch: Vec<Identity> = (0..1200)
            .map(|n| identity(&format!("user{n}@example.com")))
            .collect();
        store.insert_identities(&batch).await.unwrap();
        let some: Vec<Uuid> = batch.iter().step_by(100).map(|i| i.id).collect();
        let found = store.identities_by_ids(&some).await.unwrap();
        let mut want = some.clone();
        want.sort();
        assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), want);
        let last = batch.last().unwrap();
        assert_eq!(store.identity(last.id).await.unwrap().as_ref(), Some(last));
    }

    /// An external id finds its identity and belongs to one identity only.
    pub async fn external_ids_are_unique_and_found(store: &dyn Store) {
        let external: ExternalId = "crm:42".parse().unwrap();
        let mut ada = identity("ada@example.com");
        ada.external_id = Some(external.clone());
        store.insert_identity(&ada).await.unwrap();
        let found = store.identity_by_external_id(&external).await.unwrap();
        assert_eq!(found.as_ref(), Some(&ada));
        let mut bob = identity("bob@example.com");
        bob.external_id = Some(external.clone());
        let err = store.insert_identity(&bob).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    what: "external id"
                }
            ),
            "{err:?}"
        );
        // Any number of identities have none.
        bob.external_id = None;
        store.insert_identity(&bob).await.unwrap();
        store
            .insert_identity(&identity("cy@example.com"))
            .await
            .unwrap();
        let other: ExternalId = "crm:43".parse().unwrap();
        assert!(
            store
                .identity_by_external_id(&other)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Replacing an identity frees its old identifier and logs an identity event.
    pub async fn replacing_an_identity_moves_its_identifiers_and_logs_an_event(store: &dyn Store) {
        let mut ada = identity("ada@example.com");
        store.insert_identity(&ada).await.unwrap();
        let cursor = store
            .session_events_after(&Default::default(), 100)
            .await
            .unwrap()
            .cursor;
        let renamed = identity("ada@new.example");
        ada.traits = renamed.traits;
        ada.credentials = renamed.credentials;
        ada.verifiable_addresses = renamed.verifiable_addresses;
        ada.recovery_addresses = renamed.recovery_addresses;
        store.replace_identity(&ada).await.unwrap();
        assert_eq!(store.identity(ada.id).await.unwrap().as_ref(), Some(&ada));
        let old = store
            .identity_by_identifier(CredentialType::Password, "ada@example.com")
            .await
            .unwrap();
        assert!(old.is_none(), "the old identifier still signs in");
        let log = store.session_events_after(&cursor, 100).await.unwrap();
        assert_eq!(log.events, [SessionEvent::Identity(ada.id)]);
        // Now the old identifier is free for someone else.
        store
            .insert_identity(&identity("ada@example.com"))
            .await
            .unwrap();
    }

    /// Deleting an identity deletes its sessions; deleting it again finds nothing.
    pub async fn deleting_an_identity_deletes_its_sessions(store: &dyn Store) {
        let ada = identity("ada@example.com");
        store.insert_identity(&ada).await.unwrap();
        let (session, token) = session(&ada);
        store.insert_session(&session, &token.hash()).await.unwrap();
        assert!(store.delete_identity(ada.id).await.unwrap());
        assert!(store.session(session.id).await.unwrap().is_none());
        assert!(
            store
                .session_by_token(&token.hash())
                .await
                .unwrap()
                .is_none()
        );
        assert!(!store.delete_identity(ada.id).await.unwrap());
    }

    /// Identities list by id, a page at a time, each exactly once.
    pub async fn identities_page_by_id(store: &dyn Store) {
        let mut ids = Vec::new();
        for n in 0..5 {
            let identity = identity(&format!("user{n}@example.com"));
            ids.push(identity.id);
            store.insert_identity(&identity).await.unwrap();
        }
        ids.sort();
        let mut seen = Vec::new();
        let mut page = PageRequest {
            page_size: 2,
            after: None,
        };
        loop {
            let listed = store.list_identities(page).await.unwrap();
            assert!(listed.items.len() <= 2);
            seen.extend(listed.items.iter().map(|i| i.id));
            match listed.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids);
    }

    /// A session is found by its token's hash with its identity; revoking it (or all but
    /// one) is logged for other processes' caches.
    pub async fn sessions_round_trip_and_revoke(store: &dyn Store) {
        let ada = identity("ada@example.com");
        store.insert_identity(&ada).await.unwrap();
        let (first, token) = session(&ada);
        let (second, _) = session(&ada);
        store.insert_session(&first, &token.hash()).await.unwrap();
        store
            .insert_session(&second, &SessionToken::untagged().hash())
            .await
            .unwrap();
        let (found, owner) = store
            .session_by_token(&token.hash())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((found, owner.id), (first.clone(), ada.id));
        let cursor = store
            .session_events_after(&Default::default(), 100)
            .await
            .unwrap()
            .cursor;

        assert!(store.revoke_session(ada.id, first.id).await.unwrap());
        assert!(!store.revoke_session(ada.id, first.id).await.unwrap());
        assert!(!store.session(first.id).await.unwrap().unwrap().active);
        // A copy read before the revocation cannot bring the session back.
        let mut stale = first.clone();
        stale.expires_at = at(7200);
        assert!(!store.update_session(&stale).await.unwrap());
        let stored = store.session(first.id).await.unwrap().unwrap();
        assert!(!stored.active);
        assert_eq!(stored.expires_at, first.expires_at);
        // An active one takes the update.
        let mut extended = second.clone();
        extended.expires_at = at(7200);
        assert!(store.update_session(&extended).await.unwrap());
        assert_eq!(
            store.session(second.id).await.unwrap().unwrap().expires_at,
            at(7200)
        );
        assert_eq!(
            store
                .revoke_sessions(ada.id, Some(second.id))
                .await
                .unwrap(),
            0
        );
        assert!(store.session(second.id).await.unwrap().unwrap().active);
        assert_eq!(store.revoke_sessions(ada.id, None).await.unwrap(), 1);

        let log = store.session_events_after(&cursor, 100).await.unwrap();
        assert!(log.complete);
        assert_eq!(log.events.first(), Some(&SessionEvent::Session(first.id)));
        assert_eq!(log.events.last(), Some(&SessionEvent::Identity(ada.id)));
    }

    /// A commit whose last write fails leaves nothing of its earlier writes.
    pub async fn commits_are_all_or_nothing(store: &dyn Store) {
        store
            .insert_identity(&identity("ada@example.com"))
            .await
            .unwrap();
        let flow = flow_record(0);
        let fresh = identity("bob@example.com");
        let twin = identity("ada@example.com");
        let commit = Commit {
            writes: vec![
                Write::InsertFlow(flow.clone()),
                Write::InsertIdentity(&fresh),
                Write::InsertIdentity(&twin),
            ],
        };
        let err = store.commit(&commit, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert!(store.flow(flow.id).await.unwrap().is_none());
        assert!(store.identity(fresh.id).await.unwrap().is_none());
    }

    /// An update naming a version that is no longer stored is refused.
    pub async fn a_stale_flow_version_is_refused(store: &dyn Store) {
        let flow = flow_record(0);
        let insert = Commit {
            writes: vec![Write::InsertFlow(flow.clone())],
        };
        store.commit(&insert, None).await.unwrap();
        let mut next = flow.clone();
        next.version = 1;
        next.state = "passed_challenge".into();
        let update = Commit {
            writes: vec![Write::UpdateFlow(next.clone())],
        };
        store.commit(&update, None).await.unwrap();
        // A second update from the same read (version 0 → 1) lost the race.
        let err = store.commit(&update, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Stale { .. }), "{err:?}");
        let stored = store.flow(flow.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.version, stored.state.as_str()),
            (1, "passed_challenge")
        );
        assert_eq!(stored.document, flow.document);
    }

    /// A one-time marker is spent once; a second commit spending it writes nothing.
    pub async fn a_one_time_marker_is_spent_once(store: &dyn Store) {
        let marker = Uuid::new_v4();
        let spend = |flow: FlowRecord| Commit {
            writes: vec![
                Write::Spend {
                    marker,
                    until: at(300),
                },
                Write::InsertFlow(flow),
            ],
        };
        let (first, second) = (flow_record(0), flow_record(0));
        store.commit(&spend(first.clone()), None).await.unwrap();
        let err = store
            .commit(&spend(second.clone()), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Spent), "{err:?}");
        assert!(store.flow(first.id).await.unwrap().is_some());
        assert!(store.flow(second.id).await.unwrap().is_none());
    }

    struct RollsBack;

    #[async_trait::async_trait]
    impl CommitHook for RollsBack {
        async fn run(&self, _: &Transaction<'_>) -> Result<(), Rollback> {
            Err(Rollback)
        }
    }

    /// A hook that rolls back undoes the commit's writes.
    pub async fn a_hook_rolls_the_commit_back(store: &dyn Store) {
        let ada = identity("ada@example.com");
        let commit = Commit {
            writes: vec![Write::InsertIdentity(&ada)],
        };
        let err = store.commit(&commit, Some(&RollsBack)).await.unwrap_err();
        assert!(matches!(err, StoreError::Aborted), "{err:?}");
        assert!(store.identity(ada.id).await.unwrap().is_none());
    }

    /// Two workers never claim the same message; a failed one waits for its retry time.
    pub async fn outbox_claims_are_exclusive(store: &dyn Store) {
        let messages: Vec<_> = (0..4)
            .map(|n| message(&format!("user{n}@example.com"), at(0)))
            .collect();
        store.enqueue(&messages).await.unwrap();
        let lease = Duration::seconds(60);
        let first = store.claim_due(at(1), 3, lease).await.unwrap();
        let second = store.claim_due(at(1), 3, lease).await.unwrap();
        assert_eq!((first.len(), second.len()), (3, 1));
        assert!(second.iter().all(|m| first.iter().all(|f| f.id != m.id)));
        assert!(store.claim_due(at(1), 3, lease).await.unwrap().is_empty());

        store.mark_sent(first[0].id, at(2)).await.unwrap();
        store
            .mark_failed(first[1].id, "mailbox full", Retry::At(at(100)), at(2))
            .await
            .unwrap();
        store
            .mark_failed(first[2].id, "no such user", Retry::Abandon, at(2))
            .await
            .unwrap();
        let sent = store.message(first[0].id).await.unwrap().unwrap();
        assert_eq!((sent.status, sent.send_count), (MessageStatus::Sent, 1));
        assert_eq!(
            store.message(first[2].id).await.unwrap().unwrap().status,
            MessageStatus::Abandoned
        );
        // Nothing is due while the retry waits and the last claim holds …
        assert!(store.claim_due(at(50), 10, lease).await.unwrap().is_empty());
        // … then the retry is due, and the claim a worker never finished has lapsed.
        let mut due: Vec<_> = store
            .claim_due(at(100), 10, lease)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        due.sort();
        let mut expected = vec![first[1].id, second[0].id];
        expected.sort();
        assert_eq!(due, expected);
    }

    /// Housekeeping deletes expired sessions and flows and finished mail older than the
    /// cut-off, and nothing newer (undelivered mail never).
    pub async fn housekeeping_deletes_only_what_is_old(store: &dyn Store) {
        let ada = identity("ada@example.com");
        store.insert_identity(&ada).await.unwrap();
        let (expired, token) = session(&ada);
        store.insert_session(&expired, &token.hash()).await.unwrap();
        let old_flow = flow_record(0);
        store
            .commit(
                &Commit {
                    writes: vec![Write::InsertFlow(old_flow.clone())],
                },
                None,
            )
            .await
            .unwrap();
        let (sent, queued) = (
            message("a@example.com", at(0)),
            message("b@example.com", at(0)),
        );
        store
            .enqueue(&[sent.clone(), queued.clone()])
            .await
            .unwrap();
        let claimed = store
            .claim_due(at(0), 10, Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        store.mark_sent(sent.id, at(1)).await.unwrap();
        store
            .mark_failed(queued.id, "try later", Retry::At(at(20_000)), at(1))
            .await
            .unwrap();

        // Nothing is older than the session's expiry yet.
        assert_eq!(store.delete_expired_sessions(at(0)).await.unwrap(), 0);
        assert_eq!(store.delete_expired_sessions(at(7200)).await.unwrap(), 1);
        assert!(store.session(expired.id).await.unwrap().is_none());
        assert_eq!(store.delete_expired_flows(at(3600)).await.unwrap(), 0);
        assert_eq!(store.delete_expired_flows(at(3601)).await.unwrap(), 1);
        assert_eq!(store.delete_finished_before(at(10_000)).await.unwrap(), 1);
        assert!(store.message(sent.id).await.unwrap().is_none());
        assert!(store.message(queued.id).await.unwrap().is_some());
    }

    /// A known-pair marker is written by a commit (and rolled back with it), moved on by a
    /// later one, read by its key only, and deleted once it lapsed.
    pub async fn known_pairs_are_remembered_refreshed_and_expire(store: &dyn Store) {
        use crate::store::{Commit, Write};
        let (a, b) = ([7u8; 32], [8u8; 32]);
        let remember = |key: [u8; 32], until| Commit {
            writes: vec![Write::RememberPair { key, until }],
        };
        assert_eq!(store.known_pair_until(&a).await.unwrap(), None);
        store.commit(&remember(a, at(100)), None).await.unwrap();
        assert_eq!(store.known_pair_until(&a).await.unwrap(), Some(at(100)));
        assert_eq!(store.known_pair_until(&b).await.unwrap(), None);
        store.commit(&remember(a, at(5000)), None).await.unwrap();
        assert_eq!(store.known_pair_until(&a).await.unwrap(), Some(at(5000)));
        // Rolled back with the rest of a commit that fails.
        let failing = Commit {
            writes: vec![
                Write::RememberPair {
                    key: b,
                    until: at(100),
                },
                // A flow that was never stored: stale.
                Write::UpdateFlow(flow_record(1)),
            ],
        };
        assert!(store.commit(&failing, None).await.is_err());
        assert_eq!(store.known_pair_until(&b).await.unwrap(), None);
        store.commit(&remember(b, at(100)), None).await.unwrap();
        store.delete_expired_attempts(at(101)).await.unwrap();
        assert_eq!(store.known_pair_until(&b).await.unwrap(), None);
        assert_eq!(store.known_pair_until(&a).await.unwrap(), Some(at(5000)));
    }

    /// Throttle counters count per key and window, take back one attempt (never below
    /// zero), forget a key's windows, and expire.
    pub async fn throttle_counters_count_per_key_and_window(store: &dyn Store) {
        use crate::store::CounterId;
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let first = CounterId {
            key: &a,
            window_start: 0,
        };
        let second = CounterId {
            key: &a,
            window_start: 900,
        };
        let other = CounterId {
            key: &b,
            window_start: 0,
        };
        for expected in 1..=3 {
            assert_eq!(store.count_attempt(first, at(900)).await.unwrap(), expected);
        }
        assert_eq!(store.count_attempt(second, at(1800)).await.unwrap(), 1);
        assert_eq!(store.count_attempt(other, at(900)).await.unwrap(), 1);
        store.uncount_attempt(first).await.unwrap();
        assert_eq!(store.count_attempt(first, at(900)).await.unwrap(), 3);
        store.uncount_attempt(other).await.unwrap();
        store.uncount_attempt(other).await.unwrap();
        assert_eq!(store.count_attempt(other, at(900)).await.unwrap(), 1);
        store.clear_attempts(&a).await.unwrap();
        assert_eq!(store.count_attempt(second, at(1800)).await.unwrap(), 1);
        assert_eq!(store.delete_expired_attempts(at(900)).await.unwrap(), 0);
        assert_eq!(store.delete_expired_attempts(at(901)).await.unwrap(), 1);
        assert_eq!(store.count_attempt(other, at(900)).await.unwrap(), 1);
    }
}
