//! The stored password hashes identa verifies — every format Kratos verifies — as one typed
//! [`ImportedHash`]: one parse step (dispatch on the prefix, as Kratos's
//! `hash/hash_comparator.go` does, then the family's layout and its cost bounds) and one
//! verify, whose final comparison is constant-time (`subtle`).
//!
//! ```text
//! stored string ──parse──▶ ImportedHash ──verify(password bytes)──▶ bool
//!   prefix picks a family     bounded: nothing                 argon2 runs over the
//!   (argon2, bcrypt, pbkdf2,  costly is ever                   hasher's pooled memory;
//!   scrypt, crypt, digest)    attempted                        the others in place
//! ```
//!
//! Passwords are compared as their raw UTF-8 bytes, as Kratos does. The families, each in
//! its own module: [`argon2`] (PHC argon2id/argon2i), [`bcrypt`], [`pbkdf2`] (Kratos's
//! layout and its SHA-3 quirk), [`scrypt`] (plain, and Firebase's modified scrypt),
//! [`crypt`] (md5-crypt, sha256-crypt, sha512-crypt), [`digest`] (`{SSHA*}`, `$sha*$`,
//! `$md5$`, `$hmac-*$`). docs/password-hashes.md lists them with their bounds.

mod argon2;
mod bcrypt;
mod crypt;
mod digest;
mod pbkdf2;
mod scrypt;

pub(super) use self::argon2::{ARGON2_VERSION, Argon2Hash};

use super::PasswordError;

/// A stored hash in one of the formats identa verifies, parsed and within the bounds.
pub(super) enum ImportedHash {
    /// argon2id or argon2i (PHC), verified over the hasher's pooled memory.
    Argon2(Argon2Hash),
    /// bcrypt (`$2a$`, `$2b$`, `$2y$`, `$2x$`).
    Bcrypt(bcrypt::BcryptHash),
    /// PBKDF2 in Kratos's layout (`$pbkdf2-sha256$i=…,l=…$salt$hash`).
    Pbkdf2(pbkdf2::Pbkdf2Hash),
    /// scrypt (`$scrypt$…`) or Firebase's modified scrypt (`$firescrypt$…`).
    Scrypt(scrypt::ScryptHash),
    /// md5-crypt, sha256-crypt, sha512-crypt under Kratos's prefixes.
    Crypt(crypt::CryptHash),
    /// A plain or salted digest, or an HMAC (`{SSHA}`, `$sha1$`, `$md5$`, `$hmac-…$`).
    Digest(digest::DigestHash),
}

impl ImportedHash {
    /// Parses `stored`, refusing what is malformed ([`PasswordError::UnsupportedHash`])
    /// or costlier than the bounds ([`PasswordError::CostOutOfBounds`]) before any work.
    pub(super) fn parse(stored: &str) -> Result<Self, PasswordError> {
        let family = Family::of(stored).ok_or_else(|| {
            unsupported("not a password hash format identa verifies (see docs/password-hashes.md)")
        })?;
        Ok(match family {
            Family::Argon2 => Self::Argon2(Argon2Hash::parse(stored)?),
            Family::Bcrypt => Self::Bcrypt(bcrypt::BcryptHash::parse(stored)?),
            Family::Pbkdf2 => Self::Pbkdf2(pbkdf2::Pbkdf2Hash::parse(stored)?),
            Family::Scrypt => Self::Scrypt(scrypt::ScryptHash::parse(stored)?),
            Family::Crypt => Self::Crypt(crypt::CryptHash::parse(stored)?),
            Family::Digest => Self::Digest(digest::DigestHash::parse(stored)?),
        })
    }

    /// The memory verifying takes, in KiB (what the hashing queue weighs it by).
    pub(super) fn memory_kib(&self) -> u64 {
        match self {
            Self::Argon2(a) => u64::try_from(a.params.block_count()).unwrap_or(u64::MAX),
            Self::Scrypt(s) => s.memory_kib(),
            Self::Bcrypt(_) | Self::Pbkdf2(_) | Self::Crypt(_) | Self::Digest(_) => 0,
        }
    }

    /// The work verifying takes, estimated in argon2 block computations ([`Work`]).
    pub(super) fn work(&self) -> Work {
        Work(match self {
            Self::Argon2(a) => u64::from(a.params.m_cost()) * u64::from(a.params.t_cost()),
            Self::Bcrypt(b) => b.work(),
            Self::Pbkdf2(p) => p.work(),
            Self::Scrypt(s) => s.work(),
            Self::Crypt(c) => c.work(),
            // A few digest compressions: nothing next to one argon2 block.
            Self::Digest(_) => 0,
        })
    }

    /// The work a check is padded up to when this is the costliest imported hash
    /// ([`Work`] units): argon2's exact `m · t`; for the other families, whose estimates
    /// are rounded down to about half their measured cost, twice the estimate — at most
    /// [`MAX_PADDING_WORK`], the argon2 import bound — so that the pad errs long.
    pub(super) fn padding_work(&self) -> Work {
        match self {
            Self::Argon2(_) => self.work(),
            Self::Bcrypt(_) | Self::Pbkdf2(_) | Self::Scrypt(_) | Self::Crypt(_) => {
                Work(self.work().0.saturating_mul(2).min(MAX_PADDING_WORK.0))
            }
            Self::Digest(_) => Work(0),
        }
    }

    /// A hash of random bytes in this hash's format and at its cost, when one can be made
    /// (bcrypt; `None` for the other families, whose pad is the argon2 dummy repeated).
    pub(super) fn same_cost_dummy(&self) -> Result<Option<Self>, PasswordError> {
        match self {
            Self::Bcrypt(b) => Ok(Some(Self::Bcrypt(bcrypt::BcryptHash::dummy(b.cost())?))),
            Self::Argon2(_)
            | Self::Pbkdf2(_)
            | Self::Scrypt(_)
            | Self::Crypt(_)
            | Self::Digest(_) => Ok(None),
        }
    }

    /// The stored string of a bcrypt hash (what a dummy is persisted as).
    pub(super) fn bcrypt_str(&self) -> Option<&str> {
        match self {
            Self::Bcrypt(b) => Some(b.as_str()),
            _ => None,
        }
    }

    /// Whether `password` (its raw bytes) matches. argon2 runs through `argon2`, which
    /// owns the memory pool; every family compares in constant time.
    pub(super) fn verify(
        &self,
        password: &[u8],
        argon2: impl FnOnce(&Argon2Hash) -> Result<bool, PasswordError>,
    ) -> Result<bool, PasswordError> {
        match self {
            Self::Argon2(a) => argon2(a),
            Self::Bcrypt(b) => Ok(b.verify(password)),
            Self::Pbkdf2(p) => Ok(p.verify(password)),
            Self::Scrypt(s) => s.verify(password),
            Self::Crypt(c) => Ok(c.verify(password)),
            Self::Digest(d) => Ok(d.verify(password)),
        }
    }
}

/// How much work a verification takes, in argon2 block computations: one 1 KiB block
/// filled once, about 0.5 µs on one core. An argon2 hash's is exactly `m · t` (identa's
/// argon2 fills the lanes one after another, so `p` adds none). The other families' are
/// estimates from measurements (docs/password-hashes.md, "Timing"), each rounded *down*
/// to about half the measured cost, so that a hash that might be cheaper than argon2 at the
/// configured parameters is taken for cheaper: the hasher pads those with the dummy's work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Work(pub(super) u64);

/// The most work a pad ever takes: argon2's import bound on `m · t` (2^23 blocks, about
/// 4 s), which no imported hash exceeds either.
pub(super) const MAX_PADDING_WORK: Work = Work(1 << 23);

/// The family a stored hash belongs to, by its prefix (Kratos's `Is…Hash` checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Argon2,
    Bcrypt,
    Pbkdf2,
    Scrypt,
    Crypt,
    Digest,
}

impl Family {
    fn of(stored: &str) -> Option<Self> {
        const PREFIXES: &[(&str, Family)] = &[
            ("$md5-crypt$", Family::Crypt),
            ("$sha256-crypt$", Family::Crypt),
            ("$sha512-crypt$", Family::Crypt),
            ("$2", Family::Bcrypt),
            ("$argon2id$", Family::Argon2),
            ("$argon2i$", Family::Argon2),
            ("$pbkdf2-", Family::Pbkdf2),
            ("$scrypt$", Family::Scrypt),
            ("$firescrypt$", Family::Scrypt),
            ("{SSHA", Family::Digest),
            ("$sha1$", Family::Digest),
            ("$sha256$", Family::Digest),
            ("$sha512$", Family::Digest),
            ("$md5$", Family::Digest),
            ("$hmac-", Family::Digest),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| stored.starts_with(prefix))
            .map(|(_, family)| *family)
    }
}

/// A malformed or unknown stored hash.
pub(super) fn unsupported(reason: impl std::fmt::Display) -> PasswordError {
    PasswordError::UnsupportedHash {
        reason: reason.to_string(),
    }
}

/// `value` of `parameter` in an `algorithm` hash, refused above `max`.
pub(super) fn at_most(
    algorithm: &'static str,
    parameter: &'static str,
    value: u64,
    max: u64,
) -> Result<(), PasswordError> {
    if value > max {
        return Err(PasswordError::CostOutOfBounds {
            algorithm,
            parameter,
            value,
            max,
        });
    }
    Ok(())
}

/// A decimal parameter `name=<n>` of a hash's parameter list, or why not.
pub(super) fn decimal(field: &str, name: &str) -> Result<u64, PasswordError> {
    field
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('='))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| unsupported(format!("parameter `{name}` is missing or not a number")))
}

/// `field` decoded as standard base64 (`padded`: with `=` padding, else without), strictly.
pub(super) fn base64(field: &str, padded: bool, what: &str) -> Result<Vec<u8>, PasswordError> {
    use base64ct::{Base64, Base64Unpadded, Encoding};
    let decoded = if padded {
        Base64::decode_vec(field)
    } else {
        Base64Unpadded::decode_vec(field)
    };
    decoded.map_err(|_| unsupported(format!("the {what} is not valid base64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kratos_prefix_has_a_family() {
        for (stored, family) in [
            ("$md5-crypt$s$h", Family::Crypt),
            ("$2y$04$x", Family::Bcrypt),
            ("$argon2i$v=19$", Family::Argon2),
            ("$pbkdf2-sha1$", Family::Pbkdf2),
            ("$firescrypt$", Family::Scrypt),
            ("{SSHA512}x", Family::Digest),
            ("$hmac-md4$x$y", Family::Digest),
        ] {
            assert_eq!(Family::of(stored), Some(family), "{stored}");
        }
        for other in ["", "plain", "$1$salt$hash", "$6$x$y", "$apr1$x$y", "{SHA}x"] {
            assert_eq!(Family::of(other), None, "{other}");
        }
    }

    #[test]
    fn parameters_parse_strictly() {
        assert_eq!(decimal("i=100000", "i").unwrap(), 100_000);
        for bad in [
            "i=",
            "i=-1",
            "i=1e3",
            "l=5",
            "i=99999999999999999999999",
            "i= 5",
        ] {
            assert!(decimal(bad, "i").is_err(), "{bad}");
        }
        assert!(at_most("scrypt", "r", 33, 32).is_err());
        assert!(at_most("scrypt", "r", 32, 32).is_ok());
    }
}
