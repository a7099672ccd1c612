//! PBKDF2 hashes in Kratos's layout: `$pbkdf2-<digest>$i=<iterations>,l=<length>$<salt>$<hash>`
//! (salt and hash unpadded standard base64). Kratos's quirk is kept, because hashes it
//! stored depend on it: `sha224` and `sha384` mean SHA3-224 and SHA3-384, not SHA-2
//! (`getPseudorandomFunctionForPbkdf2` in Kratos's `hash/hasher_pbkdf2.go`). An unknown
//! digest is refused (Kratos would silently use SHA-256).

use pbkdf2::pbkdf2_hmac;
use pbkdf2::sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{at_most, base64, decimal, unsupported};
use crate::credential::password::PasswordError;

/// Kratos's bound on iterations.
const MAX_ITERATIONS: u64 = 10_000_000;
/// The most work accepted: iterations × blocks of the derived key (each block of the
/// digest's output repeats every iteration), Kratos's bound on iterations alone.
const MAX_WORK: u64 = 10_000_000;
/// The longest derived key accepted, in bytes: each further block of output repeats all
/// the iterations, so the length is a cost too (Kratos writes 32).
const MAX_KEY_BYTES: u64 = 128;

/// The PRF's digest, by Kratos's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prf {
    Sha1,
    /// `sha224` in Kratos's layout: SHA3-224.
    Sha3_224,
    Sha256,
    /// `sha384` in Kratos's layout: SHA3-384.
    Sha3_384,
    Sha512,
}

impl Prf {
    /// The digest's output, in bytes: one block of the derived key.
    fn output_bytes(self) -> u64 {
        match self {
            Self::Sha1 => 20,
            Self::Sha3_224 => 28,
            Self::Sha256 => 32,
            Self::Sha3_384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Iterations counted as one [`super::Work`] unit (an argon2 block, ≈ 0.5 µs): an
    /// HMAC-SHA-1 or HMAC-SHA-256 iteration measures about 0.22 µs, HMAC-SHA-512 0.53 µs,
    /// HMAC-SHA-3 0.8 µs; each rounded down to about half.
    fn iterations_per_work(self) -> u64 {
        match self {
            Self::Sha1 | Self::Sha256 => 4,
            Self::Sha512 => 2,
            Self::Sha3_224 | Self::Sha3_384 => 1,
        }
    }
}

/// A parsed PBKDF2 hash.
pub(in crate::credential::password) struct Pbkdf2Hash {
    prf: Prf,
    iterations: u32,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl Pbkdf2Hash {
    pub(super) fn parse(stored: &str) -> Result<Self, PasswordError> {
        let parts: Vec<&str> = stored.split('$').collect();
        let [_, name, params, salt, hash] = parts.as_slice() else {
            return Err(unsupported(
                "not a PBKDF2 hash ($pbkdf2-sha256$i=<iterations>,l=<length>$<salt>$<hash>)",
            ));
        };
        let prf = match name.strip_prefix("pbkdf2-") {
            Some("sha1") => Prf::Sha1,
            Some("sha224") => Prf::Sha3_224,
            Some("sha256") => Prf::Sha256,
            Some("sha384") => Prf::Sha3_384,
            Some("sha512") => Prf::Sha512,
            _ => {
                return Err(unsupported(format!(
                    "`{name}` is not a PBKDF2 digest identa knows (sha1, sha224, sha256, sha384, sha512)"
                )));
            }
        };
        let (iterations, length) = params
            .split_once(',')
            .ok_or_else(|| unsupported("PBKDF2 parameters must read i=<iterations>,l=<length>"))?;
        let iterations = decimal(iterations, "i")?;
        // Like Kratos, the declared length is read but the hash's own length is used.
        decimal(length, "l")?;
        at_most("pbkdf2", "i", iterations, MAX_ITERATIONS)?;
        if iterations == 0 {
            return Err(unsupported("PBKDF2 needs at least one iteration"));
        }
        let salt = base64(salt, false, "PBKDF2 salt")?;
        let expected = base64(hash, false, "PBKDF2 hash")?;
        at_most("pbkdf2", "l", expected.len() as u64, MAX_KEY_BYTES)?;
        if expected.is_empty() {
            return Err(unsupported("the PBKDF2 hash is empty"));
        }
        let hash = Self {
            prf,
            iterations: u32::try_from(iterations).unwrap_or(u32::MAX),
            salt,
            expected,
        };
        at_most(
            "pbkdf2",
            "i·blocks (blocks: the hash's length ÷ the digest's, rounded up)",
            iterations * hash.blocks(),
            MAX_WORK,
        )?;
        Ok(hash)
    }

    /// How many blocks of the digest's output the derived key takes: each repeats every
    /// iteration.
    fn blocks(&self) -> u64 {
        (self.expected.len() as u64).div_ceil(self.prf.output_bytes())
    }

    /// The estimated work of a verification.
    pub(super) fn work(&self) -> u64 {
        u64::from(self.iterations) * self.blocks() / self.prf.iterations_per_work()
    }

    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let mut out = vec![0u8; self.expected.len()];
        let (salt, rounds) = (&self.salt, self.iterations);
        match self.prf {
            Prf::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, &mut out),
            Prf::Sha3_224 => pbkdf2_hmac::<sha3::Sha3_224>(password, salt, rounds, &mut out),
            Prf::Sha256 => pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out),
            Prf::Sha3_384 => pbkdf2_hmac::<sha3::Sha3_384>(password, salt, rounds, &mut out),
            Prf::Sha512 => pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out),
        }
        bool::from(out.ct_eq(&self.expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_digests() {
        let salt_hash = "c2FsdA$aGFzaA";
        assert!(matches!(
            Pbkdf2Hash::parse(&format!("$pbkdf2-sha256$i=10000001,l=32${salt_hash}")),
            Err(PasswordError::CostOutOfBounds { parameter: "i", .. })
        ));
        assert!(Pbkdf2Hash::parse(&format!("$pbkdf2-sha256$i=10000000,l=32${salt_hash}")).is_ok());
        for bad in [
            format!("$pbkdf2-sha3$i=1,l=32${salt_hash}"),
            format!("$pbkdf2-md5$i=1,l=32${salt_hash}"),
            format!("$pbkdf2-sha256$i=0,l=32${salt_hash}"),
            format!("$pbkdf2-sha256$l=32,i=1${salt_hash}"),
            format!("$pbkdf2-sha256$i=1${salt_hash}"),
            "$pbkdf2-sha256$i=1,l=32$c2FsdA==$aGFzaA".into(),
            "$pbkdf2-sha256$i=1,l=32$c2FsdA$".into(),
        ] {
            assert!(
                matches!(
                    Pbkdf2Hash::parse(&bad),
                    Err(PasswordError::UnsupportedHash { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn total_work_is_bounded() {
        let work_refused = |stored: &str| {
            matches!(
                Pbkdf2Hash::parse(stored),
                Err(PasswordError::CostOutOfBounds { parameter, value, max: 10_000_000, .. })
                    if parameter.starts_with("i·blocks") && value > 10_000_000
            )
        };
        // 64 bytes of SHA-256 are two blocks, each repeating every iteration.
        let two_blocks = "c2FsdA$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaA";
        assert!(Pbkdf2Hash::parse(&format!("$pbkdf2-sha256$i=5000000,l=64${two_blocks}")).is_ok());
        assert!(work_refused(&format!(
            "$pbkdf2-sha256$i=5000001,l=64${two_blocks}"
        )));
        // 40 bytes of SHA-1 (20 a block) likewise; SHA-512 keeps them in one block.
        let forty = "c2FsdA$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaA";
        assert!(work_refused(&format!(
            "$pbkdf2-sha1$i=5000001,l=40${forty}"
        )));
        assert!(Pbkdf2Hash::parse(&format!("$pbkdf2-sha512$i=10000000,l=64${two_blocks}")).is_ok());
    }
}
