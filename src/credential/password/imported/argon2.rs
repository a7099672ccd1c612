//! argon2id and argon2i PHC strings (`$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$salt$hash`), the
//! format identa and Kratos write: parsed and bounded here, verified by the hasher over
//! its pooled memory.

use argon2::{Algorithm, Params};
use password_hash::phc::{Output, PasswordHash, Salt};

use super::{at_most, unsupported};
use crate::credential::password::PasswordError;

/// Kratos's import bounds for argon2 hashes: anything larger is refused, not attempted.
const MAX_M_KIB: u64 = 1 << 20;
const MAX_T: u64 = 10;
const MAX_P: u64 = 16;
/// identa's bound on the total work, m · t (KiB × passes = blocks filled): 2^23, about
/// 4 s of one core — 1 GiB at 8 passes, or 128 MiB (Kratos's default) at 64. identa's
/// argon2 fills the lanes one after another, so p adds no work; the per-parameter bounds
/// alone would allow 1 GiB × 10 passes.
const MAX_WORK: u64 = 1 << 23;
/// The only argon2 version accepted (0x13), as in Kratos.
pub(in crate::credential::password) const ARGON2_VERSION: u32 = 19;

/// A parsed argon2 hash, ready to verify.
pub(in crate::credential::password) struct Argon2Hash {
    pub(in crate::credential::password) algorithm: Algorithm,
    pub(in crate::credential::password) params: Params,
    pub(in crate::credential::password) salt: Salt,
    pub(in crate::credential::password) expected: Output,
}

impl Argon2Hash {
    /// Parses and bounds-checks a PHC string; nothing is allocated for argon2 yet.
    pub(in crate::credential::password) fn parse(phc: &str) -> Result<Self, PasswordError> {
        let hash =
            PasswordHash::new(phc).map_err(|e| unsupported(format!("not a PHC string: {e}")))?;
        let algorithm = match hash.algorithm.as_str() {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            other => {
                return Err(unsupported(format!("`{other}` hashes are not supported")));
            }
        };
        if hash.version != Some(ARGON2_VERSION) {
            return Err(unsupported("the argon2 version must be v=19"));
        }
        if let Some((name, _)) = hash
            .params
            .iter()
            .find(|(name, _)| !matches!(name.as_str(), "m" | "t" | "p"))
        {
            return Err(unsupported(format!(
                "argon2 parameter `{name}` is not supported"
            )));
        }
        let get = |name: &str| {
            hash.params
                .get_decimal(name)
                .ok_or_else(|| unsupported(format!("missing or invalid parameter `{name}`")))
        };
        let (m, t, p) = (get("m")?, get("t")?, get("p")?);
        let name = algorithm.as_str();
        at_most(name, "m", u64::from(m), MAX_M_KIB)?;
        at_most(name, "t", u64::from(t), MAX_T)?;
        at_most(name, "p", u64::from(p), MAX_P)?;
        at_most(name, "m·t", u64::from(m) * u64::from(t), MAX_WORK)?;
        let salt = hash.salt.ok_or_else(|| unsupported("no salt"))?;
        let expected = hash.hash.ok_or_else(|| unsupported("no hash output"))?;
        let params = Params::new(m, t, p, Some(expected.len()))
            .map_err(|e| unsupported(format!("{name} parameters: {e}")))?;
        Ok(Self {
            algorithm,
            params,
            salt,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_work_is_bounded() {
        let tail = "c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";
        let parse = |params: &str| Argon2Hash::parse(&format!("$argon2id$v=19${params}${tail}"));
        // Every parameter within its bound, but 1 GiB × 9 passes is over the total.
        assert!(matches!(
            parse("m=1048576,t=9,p=1"),
            Err(PasswordError::CostOutOfBounds {
                parameter: "m·t",
                value: 9_437_184,
                max: 8_388_608,
                ..
            })
        ));
        assert!(parse("m=1048576,t=8,p=16").is_ok());
        // Kratos's default (128 MiB, one pass) and its test vector's (64 MiB, 3).
        assert!(parse("m=131072,t=1,p=4").is_ok());
        assert!(parse("m=65536,t=3,p=4").is_ok());
    }
}
