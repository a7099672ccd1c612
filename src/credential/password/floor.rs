//! The cost floor: the costliest imported password hash still awaiting its re-hash, as
//! the store keeps it (one row) and as the hasher pads every password check up to it, so
//! that an imported account costlier than the dummy does not answer slower than an unknown
//! identifier (docs/password-hashes.md, "Timing").
//!
//! ```text
//! import ──costliest hash──▶ CostFloor{work, dummy} ──same transaction──▶ one row
//!                                   │                                        │
//!                          raised in memory                  read on first use, again
//!                          (this engine)                     every REREAD (others)
//! ```

/// How often an engine reads the stored floor again: an engine running when another one
/// imports costlier hashes pads to them at most this long after the import (at once on
/// restart, which reads it on the first password check).
pub const COST_FLOOR_REREAD: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// The costliest imported password hash awaiting re-hash: its padding work and, for
/// bcrypt, a dummy of its cost. It never decreases, even once every such hash has been
/// re-hashed (docs/security.md says so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostFloor {
    work: u64,
    dummy: Option<String>,
}

impl CostFloor {
    /// A floor as stored: `work` in argon2 blocks (what a check is padded up to), `dummy`
    /// a bcrypt hash of random bytes at the costliest hash's cost (`None`: the pad is the
    /// argon2 dummy, repeated).
    #[must_use]
    pub fn from_stored(work: u64, dummy: Option<String>) -> Self {
        Self { work, dummy }
    }

    /// The work every password check is padded up to, in argon2 blocks.
    #[must_use]
    pub fn work(&self) -> u64 {
        self.work
    }

    /// The bcrypt dummy of the costliest hash's cost, if it is a bcrypt hash.
    #[must_use]
    pub fn dummy(&self) -> Option<&str> {
        self.dummy.as_deref()
    }
}
