//! Plain and salted digests and HMACs, in Kratos's layouts (standard padded base64
//! throughout):
//!
//! - `{SSHA}`, `{SSHA256}`, `{SSHA512}`: LDAP's base64(digest(password ‖ salt) ‖ salt).
//! - `$sha1$`, `$sha256$`, `$sha512$` as `$<digest>$pf=<base64 template>$<salt>$<hash>`: the
//!   digest of the template with `{SALT}` and `{PASSWORD}` put in (e.g. `{SALT}{PASSWORD}`).
//! - `$md5$<hash>`, or `$md5$pf=<template>$<salt>$<hash>` like the above.
//! - `$hmac-<md4|md5|sha1|sha224|sha256|sha384|sha512>$<base64 of the hex MAC>$<base64 key>`:
//!   HMAC of the password under the key, compared as lowercase hex (here `sha224` and
//!   `sha384` are SHA-2, unlike in Kratos's PBKDF2).
//!
//! None of these has a cost to bound; all are fast, so a migrated user is re-hashed with
//! argon2id at the first sign-in.

use md5::Md5;
use pbkdf2::hmac::digest::common::BlockSizeUser;
use pbkdf2::hmac::{KeyInit, Mac, SimpleHmac};
use pbkdf2::sha2::{Digest, Sha224, Sha256, Sha384, Sha512};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::{base64, unsupported};
use crate::credential::password::PasswordError;

/// A digest function by Kratos's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algo {
    Md4,
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    fn digest(self, input: &[u8]) -> Vec<u8> {
        match self {
            Self::Md4 => md4::Md4::digest(input).to_vec(),
            Self::Md5 => Md5::digest(input).to_vec(),
            Self::Sha1 => Sha1::digest(input).to_vec(),
            Self::Sha224 => Sha224::digest(input).to_vec(),
            Self::Sha256 => Sha256::digest(input).to_vec(),
            Self::Sha384 => Sha384::digest(input).to_vec(),
            Self::Sha512 => Sha512::digest(input).to_vec(),
        }
    }

    /// The digest's length in bytes.
    fn len(self) -> usize {
        match self {
            Self::Md4 | Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn mac<D: Digest + BlockSizeUser>(key: &[u8], message: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length: `new_from_slice` cannot fail.
            <SimpleHmac<D> as KeyInit>::new_from_slice(key)
                .map(|m| m.chain_update(message).finalize().into_bytes().to_vec())
                .unwrap_or_default()
        }
        match self {
            Self::Md4 => mac::<md4::Md4>(key, message),
            Self::Md5 => mac::<Md5>(key, message),
            Self::Sha1 => mac::<Sha1>(key, message),
            Self::Sha224 => mac::<Sha224>(key, message),
            Self::Sha256 => mac::<Sha256>(key, message),
            Self::Sha384 => mac::<Sha384>(key, message),
            Self::Sha512 => mac::<Sha512>(key, message),
        }
    }
}

/// What the password is run through before the digest.
enum Input {
    /// The password alone.
    Password,
    /// password ‖ salt (`{SSHA…}`).
    PasswordThenSalt(Vec<u8>),
    /// A template with `{SALT}` and `{PASSWORD}` (`pf=`).
    Template { template: Vec<u8>, salt: Vec<u8> },
    /// HMAC under this key, compared as lowercase hex.
    HmacHex(Vec<u8>),
}

/// A parsed digest hash.
pub(in crate::credential::password) struct DigestHash {
    algo: Algo,
    input: Input,
    expected: Vec<u8>,
}

impl DigestHash {
    pub(super) fn parse(stored: &str) -> Result<Self, PasswordError> {
        Self::parse_any(stored)?.checked()
    }

    fn parse_any(stored: &str) -> Result<Self, PasswordError> {
        if let Some(rest) = stored.strip_prefix('{') {
            return Self::parse_ssha(rest);
        }
        let parts: Vec<&str> = stored.split('$').collect();
        match parts.as_slice() {
            [_, "md5", hash] => Ok(Self {
                algo: Algo::Md5,
                input: Input::Password,
                expected: base64(hash, true, "MD5 hash")?,
            }),
            [
                _,
                name @ ("md5" | "sha1" | "sha256" | "sha512"),
                pf,
                salt,
                hash,
            ] => {
                let algo = match *name {
                    "md5" => Algo::Md5,
                    "sha1" => Algo::Sha1,
                    "sha256" => Algo::Sha256,
                    _ => Algo::Sha512,
                };
                let template = pf
                    .strip_prefix("pf=")
                    .ok_or_else(|| unsupported(format!("a ${name}$ hash needs pf=<template>")))?;
                Ok(Self {
                    algo,
                    input: Input::Template {
                        template: base64(template, true, "pf template")?,
                        salt: base64(salt, true, "salt")?,
                    },
                    expected: base64(hash, true, "hash")?,
                })
            }
            [_, name, hash, key] if name.starts_with("hmac-") => {
                let algo = match name.strip_prefix("hmac-") {
                    Some("md4") => Algo::Md4,
                    Some("md5") => Algo::Md5,
                    Some("sha1") => Algo::Sha1,
                    Some("sha224") => Algo::Sha224,
                    Some("sha256") => Algo::Sha256,
                    Some("sha384") => Algo::Sha384,
                    Some("sha512") => Algo::Sha512,
                    _ => return Err(unsupported(format!("`{name}` is not an HMAC identa knows"))),
                };
                Ok(Self {
                    algo,
                    input: Input::HmacHex(base64(key, true, "HMAC key")?),
                    expected: base64(hash, true, "HMAC")?,
                })
            }
            _ => Err(unsupported(
                "not a $md5$, $sha1$, $sha256$, $sha512$ or $hmac-…$ hash in Kratos's layout",
            )),
        }
    }

    /// `{SSHA}…`, `{SSHA256}…`, `{SSHA512}…` (after the `{`).
    fn parse_ssha(rest: &str) -> Result<Self, PasswordError> {
        let (algo, len, encoded) = if let Some(e) = rest.strip_prefix("SSHA}") {
            (Algo::Sha1, 20, e)
        } else if let Some(e) = rest.strip_prefix("SSHA256}") {
            (Algo::Sha256, 32, e)
        } else if let Some(e) = rest.strip_prefix("SSHA512}") {
            (Algo::Sha512, 64, e)
        } else {
            return Err(unsupported("not an {SSHA}, {SSHA256} or {SSHA512} hash"));
        };
        let decoded = base64(encoded, true, "SSHA value")?;
        if decoded.len() <= len {
            return Err(unsupported("an SSHA value needs a digest and a salt"));
        }
        let (hash, salt) = decoded.split_at(len);
        Ok(Self {
            algo,
            input: Input::PasswordThenSalt(salt.to_vec()),
            expected: hash.to_vec(),
        })
    }

    /// `self` if its expected value has the length its algorithm produces.
    fn checked(self) -> Result<Self, PasswordError> {
        let want = match self.input {
            Input::HmacHex(_) => self.algo.len() * 2,
            _ => self.algo.len(),
        };
        if self.expected.len() != want {
            return Err(unsupported(format!(
                "the hash is {} bytes long where {:?} gives {want}",
                self.expected.len(),
                self.algo
            )));
        }
        Ok(self)
    }

    pub(super) fn verify(&self, password: &[u8]) -> bool {
        let computed = match &self.input {
            Input::Password => self.algo.digest(password),
            Input::PasswordThenSalt(salt) => self.algo.digest(&[password, salt].concat()),
            Input::Template { template, salt } => self.algo.digest(&fill(template, salt, password)),
            Input::HmacHex(key) => hex(&self.algo.hmac(key, password)).into_bytes(),
        };
        bool::from(computed.ct_eq(&self.expected))
    }
}

/// `template` with every `{SALT}` and `{PASSWORD}` replaced, in one left-to-right pass
/// (as Go's `strings.Replacer`: what is put in is not searched again).
fn fill(template: &[u8], salt: &[u8], password: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + salt.len() + password.len());
    let mut rest = template;
    while let Some((&first, tail)) = rest.split_first() {
        if let Some(after) = rest.strip_prefix(b"{SALT}".as_slice()) {
            out.extend_from_slice(salt);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"{PASSWORD}".as_slice()) {
            out.extend_from_slice(password);
            rest = after;
        } else {
            out.push(first);
            rest = tail;
        }
    }
    out
}

/// Lowercase hex, as Go's `hex.EncodeToString`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_once() {
        assert_eq!(fill(b"{SALT}{PASSWORD}", b"s", b"p"), b"sp");
        assert_eq!(
            fill(b"${PASSWORD}${SALT}$", b"{PASSWORD}", b"p"),
            b"$p${PASSWORD}$"
        );
        assert_eq!(fill(b"{SALT", b"s", b"p"), b"{SALT");
    }

    #[test]
    fn malformed_is_refused() {
        for bad in [
            "{SSHA}",
            "{SSHA}c2FsdA==",
            "{SSHA384}JFZFs0oHzxbMwkSJmYVeI8MnTDy/276a",
            "$md5$",
            "$md5$x$c2FsdA==$aGFzaA==",
            "$sha1$c2FsdA==$aGFzaA==",
            "$sha1$pf=e1NBTFR9e1BBU1NXT1JEfQ==$c2FsdA==",
            "$hmac-sha3$aGFzaA==$a2V5",
            "$hmac-sha256$aGFzaA==",
        ] {
            assert!(
                matches!(
                    DigestHash::parse(bad),
                    Err(PasswordError::UnsupportedHash { .. })
                ),
                "{bad}"
            );
        }
    }
}
