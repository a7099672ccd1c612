//! scrypt hashes in Kratos's two layouts:
//!
//! - `$scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>`: `ln` is read as N itself, not its
//!   logarithm (Kratos's encoding, e.g. `ln=16384`); N must be a power of two.
//! - Firebase's modified scrypt, `$firescrypt$ln=<log2 N>,r=<rounds>,p=<p>$<salt>$<hash>$<salt separator>$<signer key>`:
//!   here `ln` is Firebase's memory cost (log2 N) and `r` its rounds. The key is scrypt of
//!   the password and salt ‖ separator (32 bytes); the hash is the project's signer key
//!   encrypted with it under AES-256-CTR from a zero counter.
//!
//! All fields padded standard base64. Bounds: N ≤ 2^20, r ≤ 32, p ≤ 16, the memory
//! scrypt needs (128 · N · r bytes) at most 1 GiB, argon2's bound, and its work
//! (N · r · p) at most 2^24.

use aes::cipher::{KeyIvInit, StreamCipher};
use subtle::ConstantTimeEq;

use super::{at_most, base64, decimal, unsupported};
use crate::credential::password::PasswordError;

const MAX_LOG_N: u64 = 20;
const MAX_R: u64 = 32;
const MAX_P: u64 = 16;
/// 128 · N · r bytes, in KiB: 1 GiB.
const MAX_MEMORY_KIB: u64 = 1 << 20;
/// The most work accepted, N · r · p (each unit a BlockMix pass over 128 · r bytes,
/// ≈ 0.28 µs): 2^24, about 5 s of one core. The heaviest hash Kratos accepts
/// (N = 2^17, r = 8, p = 10: 10,485,760) passes; N = 2^20, r = 8, p = 16 (2^27, half a
/// minute) would pass every other bound.
const MAX_WORK: u64 = 1 << 24;
/// The longest output accepted, in bytes.
const MAX_HASH_BYTES: u64 = 1024;

/// The variant: plain scrypt, or Firebase's.
enum Variant {
    Plain,
    Firebase {
        separator: Vec<u8>,
        signer_key: Vec<u8>,
    },
}

/// A parsed scrypt hash.
pub(in crate::credential::password) struct ScryptHash {
    variant: Variant,
    params: scrypt::Params,
    /// 128 · N · r bytes, in KiB.
    memory_kib: u64,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl ScryptHash {
    pub(super) fn parse(stored: &str) -> Result<Self, PasswordError> {
        let parts: Vec<&str> = stored.split('$').collect();
        let (algorithm, params, salt, hash, variant) = match parts.as_slice() {
            [_, "scrypt", params, salt, hash] => ("scrypt", params, salt, hash, None),
            [_, "firescrypt", params, salt, hash, separator, signer] => {
                ("firescrypt", params, salt, hash, Some((separator, signer)))
            }
            _ => {
                return Err(unsupported(
                    "not a scrypt hash ($scrypt$ln=<N>,r=<r>,p=<p>$<salt>$<hash>) or a Firebase scrypt hash ($firescrypt$ln=<log2 N>,r=<rounds>,p=<p>$<salt>$<hash>$<separator>$<signer key>)",
                ));
            }
        };
        let fields: Vec<&str> = params.split(',').collect();
        let [ln, r, p] = fields.as_slice() else {
            return Err(unsupported("scrypt parameters must read ln=…,r=…,p=…"));
        };
        let (ln, r, p) = (decimal(ln, "ln")?, decimal(r, "r")?, decimal(p, "p")?);
        let log_n = if variant.is_some() {
            at_most(algorithm, "ln", ln, MAX_LOG_N)?;
            ln
        } else {
            if !ln.is_power_of_two() || ln < 2 {
                return Err(unsupported(format!(
                    "scrypt N (ln={ln}) must be a power of two above 1"
                )));
            }
            let log_n = u64::from(ln.trailing_zeros());
            if log_n > MAX_LOG_N {
                at_most(algorithm, "ln", ln, 1 << MAX_LOG_N)?;
            }
            log_n
        };
        at_most(algorithm, "r", r, MAX_R)?;
        at_most(algorithm, "p", p, MAX_P)?;
        if log_n == 0 || r == 0 || p == 0 {
            return Err(unsupported("scrypt parameters must be at least 1"));
        }
        // 128 · 2^log_n · r bytes, in KiB.
        let memory_kib = (1u64 << log_n) * r / 8;
        at_most(
            algorithm,
            "memory (128·N·r, KiB)",
            memory_kib,
            MAX_MEMORY_KIB,
        )?;
        at_most(algorithm, "N·r·p", (1u64 << log_n) * r * p, MAX_WORK)?;
        let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let params =
            scrypt::Params::new(u8::try_from(log_n).unwrap_or(u8::MAX), narrow(r), narrow(p))
                .map_err(|e| unsupported(format!("{algorithm} parameters: {e}")))?;
        let salt = base64(salt, true, "scrypt salt")?;
        let expected = base64(hash, true, "scrypt hash")?;
        at_most(
            algorithm,
            "hash length",
            expected.len() as u64,
            MAX_HASH_BYTES,
        )?;
        if expected.is_empty() {
            return Err(unsupported("the scrypt hash is empty"));
        }
        let variant = match variant {
            None => Variant::Plain,
            Some((separator, signer)) => Variant::Firebase {
                separator: base64(separator, true, "Firebase salt separator")?,
                signer_key: base64(signer, true, "Firebase signer key")?,
            },
        };
        Ok(Self {
            variant,
            params,
            memory_kib,
            salt,
            expected,
        })
    }

    /// The estimated work of a verification: N · r · p BlockMix rounds of 128 · r bytes
    /// measure about 0.28 µs per unit of N · r · p; counted as half an argon2 block.
    pub(super) fn work(&self) -> u64 {
        (1u64 << self.params.log_n()) * u64::from(self.params.r()) * u64::from(self.params.p()) / 2
    }

    pub(super) fn memory_kib(&self) -> u64 {
        self.memory_kib
    }

    pub(super) fn verify(&self, password: &[u8]) -> Result<bool, PasswordError> {
        let failed = |e: &dyn std::fmt::Display| PasswordError::Hashing(format!("scrypt: {e}"));
        let computed = match &self.variant {
            Variant::Plain => {
                let mut out = vec![0u8; self.expected.len()];
                scrypt::scrypt(password, &self.salt, &self.params, &mut out)
                    .map_err(|e| failed(&e))?;
                out
            }
            Variant::Firebase {
                separator,
                signer_key,
            } => {
                let salted = [self.salt.as_slice(), separator.as_slice()].concat();
                let mut key = [0u8; 32];
                scrypt::scrypt(password, &salted, &self.params, &mut key)
                    .map_err(|e| failed(&e))?;
                let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into());
                let mut out = signer_key.clone();
                cipher.apply_keystream(&mut out);
                out
            }
        };
        Ok(bool::from(computed.ct_eq(&self.expected)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_for(stored: &str) -> Option<&'static str> {
        match ScryptHash::parse(stored) {
            Err(PasswordError::CostOutOfBounds { parameter, .. }) => Some(parameter),
            _ => None,
        }
    }

    #[test]
    fn bounds() {
        let tail = "c2FsdA==$aGFzaA==";
        assert!(ScryptHash::parse(&format!("$scrypt$ln=1048576,r=8,p=1${tail}")).is_ok());
        // Kratos's heaviest: N = 2^17, r = 8, p = 10.
        assert!(ScryptHash::parse(&format!("$scrypt$ln=131072,r=8,p=10${tail}")).is_ok());
        assert_eq!(
            refused_for(&format!("$scrypt$ln=2097152,r=8,p=1${tail}")),
            Some("ln")
        );
        assert_eq!(
            refused_for(&format!("$scrypt$ln=16384,r=33,p=1${tail}")),
            Some("r")
        );
        assert_eq!(
            refused_for(&format!("$scrypt$ln=16384,r=8,p=17${tail}")),
            Some("p")
        );
        assert_eq!(
            refused_for(&format!("$scrypt$ln=1048576,r=32,p=1${tail}")),
            Some("memory (128·N·r, KiB)")
        );
        let fire = "$firescrypt$ln=21,r=8,p=1$c2FsdA==$aGFzaA==$Bw==$aGFzaA==";
        assert_eq!(refused_for(fire), Some("ln"));
        // Each parameter within its bound, the memory at 1 GiB, but the work 2^27.
        assert_eq!(
            refused_for(&format!("$scrypt$ln=1048576,r=8,p=16${tail}")),
            Some("N·r·p")
        );
        let fire = "$firescrypt$ln=20,r=8,p=16$c2FsdA==$aGFzaA==$Bw==$aGFzaA==";
        assert_eq!(refused_for(fire), Some("N·r·p"));
        let fire = "$firescrypt$ln=20,r=8,p=2$c2FsdA==$aGFzaA==$Bw==$aGFzaA==";
        assert!(ScryptHash::parse(fire).is_ok());
        for bad in [
            format!("$scrypt$ln=16385,r=8,p=1${tail}"),
            format!("$scrypt$ln=1,r=8,p=1${tail}"),
            format!("$scrypt$ln=16384,r=0,p=1${tail}"),
            format!("$scrypt$ln=16384,p=1${tail}"),
            "$scrypt$ln=16384,r=8,p=1$c2FsdA$aGFzaA".into(),
            "$firescrypt$ln=0,r=8,p=1$c2FsdA==$aGFzaA==$Bw==$aGFzaA==".into(),
            "$firescrypt$ln=14,r=8,p=1$c2FsdA==$aGFzaA==$Bw==".into(),
        ] {
            assert!(
                matches!(
                    ScryptHash::parse(&bad),
                    Err(PasswordError::UnsupportedHash { .. })
                ),
                "{bad}"
            );
        }
    }
}
