//! The crypt(3) family under Kratos's prefixes: `$md5-crypt$<salt>$<hash>` (crypt's
//! `$1$`), `$sha256-crypt$[rounds=<n>$]<salt>$<hash>` (`$5$`) and `$sha512-crypt$…`
//! (`$6$`). SHA-crypt is RustCrypto's `sha-crypt`; md5-crypt, for which no maintained
//! crate exists, is Poul-Henning Kamp's published construction composed from RustCrypto's
//! MD5 (checked against `openssl passwd -1` in the tests). SHA-crypt rounds are bounded
//! like PBKDF2's iterations (Kratos leaves them unbounded, up to 999,999,999).

use md5::{Digest, Md5};
use sha_crypt::{PasswordVerifier, ShaCrypt};
use subtle::ConstantTimeEq;

use super::{at_most, decimal, unsupported};
use crate::credential::password::PasswordError;

/// The most SHA-crypt rounds accepted: PBKDF2's bound (passlib's defaults are 535,000 and
/// 656,000).
const MAX_ROUNDS: u64 = 10_000_000;
/// SHA-crypt's rounds when the hash names none.
const DEFAULT_ROUNDS: u64 = 5000;
/// md5-crypt's fixed rounds.
const MD5_ROUNDS: u64 = 1000;
/// Rounds counted as one [`super::Work`] unit (an argon2 block, ≈ 0.5 µs): a SHA-crypt
/// round measures about 0.25 µs, an md5-crypt round 0.15 µs; rounded down to about half.
const ROUNDS_PER_WORK: u64 = 4;
/// crypt's base64 alphabet.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A parsed crypt(3) hash.
pub(in crate::credential::password) enum CryptHash {
    /// md5-crypt: a salt of at most 8 characters and 22 characters of hash.
    Md5 { salt: Vec<u8>, expected: String },
    /// sha256-crypt or sha512-crypt, rewritten to its `$5$`/`$6$` string, and its rounds.
    Sha { hash: String, rounds: u64 },
}

impl CryptHash {
    pub(super) fn parse(stored: &str) -> Result<Self, PasswordError> {
        let parts: Vec<&str> = stored.split('$').collect();
        match parts.as_slice() {
            [_, "md5-crypt", salt, hash] => {
                if salt.len() > 8 || !salt.bytes().all(|b| CRYPT64.contains(&b)) {
                    return Err(unsupported(
                        "an md5-crypt salt is at most 8 characters of ./0-9A-Za-z",
                    ));
                }
                if hash.len() != 22 || !hash.bytes().all(|b| CRYPT64.contains(&b)) {
                    return Err(unsupported(
                        "an md5-crypt hash is 22 characters of ./0-9A-Za-z",
                    ));
                }
                Ok(Self::Md5 {
                    salt: salt.as_bytes().to_vec(),
                    expected: (*hash).to_owned(),
                })
            }
            [_, name @ ("sha256-crypt" | "sha512-crypt"), rest @ ..] => {
                let (algorithm, id) = if *name == "sha256-crypt" {
                    ("sha256-crypt", "5")
                } else {
                    ("sha512-crypt", "6")
                };
                let rounds = match rest {
                    [rounds, _salt, _hash] => {
                        let rounds = decimal(rounds, "rounds")?;
                        at_most(algorithm, "rounds", rounds, MAX_ROUNDS)?;
                        if rounds < 1000 {
                            return Err(unsupported(format!(
                                "{algorithm} rounds must be at least 1000"
                            )));
                        }
                        rounds
                    }
                    [_salt, _hash] => DEFAULT_ROUNDS,
                    _ => {
                        return Err(unsupported(format!(
                            "not a {algorithm} hash (${algorithm}$[rounds=<n>$]<salt>$<hash>)"
                        )));
                    }
                };
                let rewritten = format!("${id}${}", rest.join("$"));
                // Reject what the crate could not read now, not at sign-in.
                sha_crypt::PasswordHashRef::new(&rewritten)
                    .map_err(|_| unsupported(format!("not a valid {algorithm} hash")))?;
                Ok(Self::Sha {
                    hash: rewritten,
                    rounds,
                })
            }
            _ => Err(unsupported(
                "not an md5-crypt, sha256-crypt or sha512-crypt hash",
            )),
        }
    }

    /// The estimated work of a verification.
    pub(super) fn work(&self) -> u64 {
        match self {
            Self::Md5 { .. } => MD5_ROUNDS / ROUNDS_PER_WORK,
            Self::Sha { rounds, .. } => rounds / ROUNDS_PER_WORK,
        }
    }

    pub(super) fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Md5 { salt, expected } => {
                let computed = md5_crypt(password, salt);
                bool::from(computed.as_bytes().ct_eq(expected.as_bytes()))
            }
            // sha-crypt compares in constant time.
            Self::Sha { hash, .. } => ShaCrypt::default()
                .verify_password(password, hash.as_str())
                .is_ok(),
        }
    }
}

/// md5-crypt's 22-character hash of `password` with `salt` (at most 8 bytes), as
/// FreeBSD's `crypt_md5` and glibc compute it.
fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$1$";
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(MAGIC)
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let take = left.min(16);
        ctx.update(alternate.get(..take).unwrap_or_default());
        left -= take;
    }
    let first = password.get(..1).unwrap_or_default();
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(first);
        }
        bits >>= 1;
    }
    let mut digest: [u8; 16] = ctx.finalize().into();
    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 == 1 {
            ctx.update(password);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round & 1 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(password);
        }
        digest = ctx.finalize().into();
    }
    let mut out = String::with_capacity(22);
    let mut put = |value: u32, chars: usize| {
        let mut v = value;
        for _ in 0..chars {
            let index = usize::try_from(v & 0x3f).unwrap_or(0);
            out.push(char::from(CRYPT64.get(index).copied().unwrap_or(b'.')));
            v >>= 6;
        }
    };
    let byte = |i: usize| u32::from(digest.get(i).copied().unwrap_or(0));
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((byte(a) << 16) | (byte(b) << 8) | byte(c), 4);
    }
    put(byte(11), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_crypt_matches_the_reference() {
        // `openssl passwd -1 -salt saltstri password` prints $1$saltstri$qQY4WxjABChYG1ccLpfkz/
        assert_eq!(
            md5_crypt(b"password", b"saltstri"),
            "qQY4WxjABChYG1ccLpfkz/"
        );
    }

    #[test]
    fn rounds_are_bounded() {
        let hash = "$sha512-crypt$rounds=10000001$saltsalt$uuNasMW.RYxlGzIRFU1Was70BPSa933AjxhZIGJdJBOlqJAHlgqa0yuiuq5JHF/ryNGryJkj87G9i3G2HPSXg1";
        assert!(matches!(
            CryptHash::parse(hash),
            Err(PasswordError::CostOutOfBounds {
                parameter: "rounds",
                ..
            })
        ));
        for bad in [
            "$sha512-crypt$rounds=999$saltsalt$x",
            "$sha256-crypt$",
            "$md5-crypt$toolongsalt$SN6/pUaRQS/E8Jh46As2C/",
            "$md5-crypt$TVEiiKNb$short",
        ] {
            assert!(
                matches!(
                    CryptHash::parse(bad),
                    Err(PasswordError::UnsupportedHash { .. })
                ),
                "{bad}"
            );
        }
    }
}
