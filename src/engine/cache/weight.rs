//! What a `whoami` cache entry weighs: an estimate of the heap bytes it holds, taken once
//! when the entry is made, from the values it already has (no serialising), and given up
//! as soon as it passes [`SessionCacheConfig::MAX_ENTRY_BYTES`] — so estimating costs at
//! most that bound's worth of walking, however large the identity.
//!
//! The estimate counts what the allocator is asked for: the entry's own allocation, its
//! slots in the cache's three tables, every string's and vector's capacity, and the nodes
//! of every JSON object (a `BTreeMap`, whose smallest node holds eleven entries). It is
//! meant to be at least the real figure and not much more: `benches/session_scale.rs`
//! measures real entries of several sizes with a counting allocator and checks the
//! estimate against them (docs/performance.md, "The cache's memory").

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use uuid::Uuid;

use crate::config::SessionCacheConfig;
use crate::identity::{Credential, CredentialType, Identity};
use crate::session::{AuthenticatedSession, Session, TokenHash};

/// An entry's estimated weight, or that it is over the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    /// At most [`SessionCacheConfig::MAX_ENTRY_BYTES`]: this many bytes.
    Within(usize),
    /// More than [`SessionCacheConfig::MAX_ENTRY_BYTES`]: not kept.
    Over,
}

impl Weight {
    /// The weight of an entry holding `value` (not yet its rendered answer).
    pub(crate) fn of(value: &AuthenticatedSession, fixed: usize) -> Self {
        let mut scale = Scale {
            total: fixed,
            limit: SessionCacheConfig::MAX_ENTRY_BYTES,
        };
        scale.session(&value.session);
        scale.identity(&value.identity);
        scale.weight()
    }

    /// This weight with a rendered answer of `len` bytes kept too.
    pub(crate) fn with_rendered(self, len: usize) -> Self {
        match self {
            Self::Within(bytes) => {
                let mut scale = Scale {
                    total: bytes,
                    limit: SessionCacheConfig::MAX_ENTRY_BYTES,
                };
                // An `Arc<[u8]>`: the two counts, then the bytes.
                scale.add(2 * size_of::<usize>() + len);
                scale.weight()
            }
            Self::Over => Self::Over,
        }
    }
}

/// The bytes of one entry's slots in the cache's tables (`by_token`, `token_of_session`,
/// `sessions_of_identity` counted as if the session's identity had no other: a set of its
/// own, at its smallest, four buckets), with the tables' control bytes and their load
/// factor (seven eighths full at most).
pub(crate) const fn table_slots<E>() -> usize {
    let slots = (size_of::<(TokenHash, E)>() + 1)
        + (size_of::<(Uuid, TokenHash)>() + 1)
        + (size_of::<(Uuid, HashSet<Uuid>)>() + 1)
        + 4 * (size_of::<Uuid>() + 1)
        + 16;
    slots * 8 / 7
}

/// A running total that stops counting past its limit.
struct Scale {
    total: usize,
    limit: usize,
}

impl Scale {
    fn add(&mut self, bytes: usize) {
        self.total = self.total.saturating_add(bytes);
    }

    fn over(&self) -> bool {
        self.total > self.limit
    }

    fn weight(&self) -> Weight {
        if self.over() {
            Weight::Over
        } else {
            Weight::Within(self.total)
        }
    }

    fn vec<T>(&mut self, items: &Vec<T>) {
        self.add(items.capacity() * size_of::<T>());
    }

    fn string(&mut self, s: &str) {
        self.add(s.len());
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
            Value::String(s) => self.add(s.capacity()),
            Value::Array(items) => {
                self.vec(items);
                for item in items {
                    if self.over() {
                        return;
                    }
                    self.value(item);
                }
            }
            Value::Object(map) => {
                self.add(btree_nodes::<String, Value>(map.len()));
                for (key, item) in map {
                    if self.over() {
                        return;
                    }
                    self.add(key.capacity());
                    self.value(item);
                }
            }
        }
    }

    fn session(&mut self, session: &Session) {
        let Session {
            id: _,
            identity_id: _,
            active: _,
            issued_at: _,
            authenticated_at: _,
            expires_at: _,
            aal: _,
            authentication_methods,
            devices,
        } = session;
        self.vec(authentication_methods);
        for method in authentication_methods {
            self.add(method.method.capacity());
        }
        self.vec(devices);
        for device in devices {
            for text in [&device.ip_address, &device.user_agent, &device.location] {
                self.add(text.as_ref().map_or(0, String::capacity));
            }
        }
    }

    fn identity(&mut self, identity: &Identity) {
        let Identity {
            id: _,
            schema_id,
            state: _,
            state_changed_at: _,
            traits,
            verifiable_addresses,
            recovery_addresses,
            metadata_public,
            metadata_admin,
            external_id,
            credentials,
            created_at: _,
            updated_at: _,
        } = identity;
        self.add(schema_id.capacity());
        self.vec(verifiable_addresses);
        for address in verifiable_addresses {
            self.add(address.value.capacity());
        }
        self.vec(recovery_addresses);
        for address in recovery_addresses {
            self.add(address.value.capacity());
        }
        if let Some(id) = external_id {
            self.string(id.as_str());
        }
        self.credentials(credentials);
        for value in [
            Some(traits),
            metadata_public.as_ref(),
            metadata_admin.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if self.over() {
                return;
            }
            self.value(value);
        }
    }

    fn credentials(&mut self, credentials: &BTreeMap<CredentialType, Credential>) {
        self.add(btree_nodes::<CredentialType, Credential>(credentials.len()));
        for credential in credentials.values() {
            if self.over() {
                return;
            }
            self.vec(&credential.identifiers);
            for identifier in &credential.identifiers {
                self.add(identifier.capacity());
            }
            self.value(&credential.config);
        }
    }
}

/// The bytes of the nodes of a `BTreeMap<K, V>` of `len` entries: a node holds up to
/// eleven; a map filled one key at a time splits full nodes in two, so past one node
/// count six entries a node, and an inner node (with its twelve edges) per six of those.
fn btree_nodes<K, V>(len: usize) -> usize {
    const CAPACITY: usize = 11;
    // Parent pointer, index and length, then the keys and the values.
    let leaf =
        size_of::<usize>() + 2 * size_of::<u16>() + CAPACITY * (size_of::<K>() + size_of::<V>());
    let inner = leaf + (CAPACITY + 1) * size_of::<usize>();
    match len {
        0 => 0,
        1..=CAPACITY => leaf,
        _ => {
            let leaves = len.div_ceil(6);
            leaves * leaf + leaves.div_ceil(6) * inner
        }
    }
}
