//! Backup codes (Kratos's lookup secrets): a set of 12 single-use codes of 8 characters
//! (`a-z0-9`) a user keeps on paper for when their authenticator is gone. They are shown
//! once; only an HMAC of each is stored (bound to the identity, under the cookie secret),
//! with the time it was used. Each works once as a second factor.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::secret::{Keyring, MacPurpose, hex, unhex};

/// Codes per set.
pub const COUNT: usize = 12;
/// Characters per code.
pub const LENGTH: usize = 8;
/// With this many unused codes or fewer, the user is told to make a new set.
pub const FEW_LEFT: usize = 3;

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// One backup code as shown to the user. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode(String);

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCode(<redacted>)")
    }
}

impl BackupCode {
    /// The code, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A fresh set of codes.
pub fn generate_set() -> Vec<BackupCode> {
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|_| {
            let code: String = (0..LENGTH)
                .map(|_| {
                    let i = rng.random_range(0..ALPHABET.len());
                    char::from(ALPHABET.get(i).copied().unwrap_or(b'a'))
                })
                .collect();
            BackupCode(code)
        })
        .collect()
}

fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn tag(keyring: &Keyring, identity_id: Uuid, code: &str) -> [u8; 32] {
    keyring.mac(
        MacPurpose::Code,
        &[
            b"lookup_secret",
            identity_id.as_bytes(),
            normalize(code).as_bytes(),
        ],
    )
}

/// The credential config storing `codes` for `identity_id`: tags only.
pub(crate) fn config_for(keyring: &Keyring, identity_id: Uuid, codes: &[BackupCode]) -> Value {
    let entries: Vec<Value> = codes
        .iter()
        .map(|c| json!({ "tag": hex(&tag(keyring, identity_id, &c.0)), "used_at": null }))
        .collect();
    json!({ "codes": entries })
}

/// The index of the unused code in `config` that `code` is, if any. Every entry is checked
/// (in constant time each), whatever matches.
pub(crate) fn find_unused(
    keyring: &Keyring,
    identity_id: Uuid,
    config: &Value,
    code: &str,
) -> Option<usize> {
    let entries = config.get("codes")?.as_array()?;
    let normalized = normalize(code);
    if normalized.len() != LENGTH {
        return None;
    }
    let mut found = None;
    for (i, entry) in entries.iter().enumerate() {
        let Some(stored) = entry.get("tag").and_then(Value::as_str).and_then(unhex) else {
            continue;
        };
        let matches = keyring.verify(
            MacPurpose::Code,
            &[
                b"lookup_secret",
                identity_id.as_bytes(),
                normalized.as_bytes(),
            ],
            &stored,
        );
        let unused = entry.get("used_at").is_none_or(Value::is_null);
        if matches && unused && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// A code an import brings, if it is one identa accepts: 8 characters of `a-z0-9` (Kratos's
/// format too) once spaces and dashes are dropped and letters lower-cased.
pub(crate) fn imported(code: &str) -> Option<BackupCode> {
    let normalized = normalize(code);
    let valid = normalized.len() == LENGTH && normalized.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(BackupCode(normalized))
}

/// The credential config storing imported `codes` for `identity_id`: tags only, each with
/// when it was used (a used one is never accepted).
pub(crate) fn config_for_imported(
    keyring: &Keyring,
    identity_id: Uuid,
    codes: &[(BackupCode, Option<DateTime<Utc>>)],
) -> Value {
    let entries: Vec<Value> = codes
        .iter()
        .map(|(c, used_at)| json!({ "tag": hex(&tag(keyring, identity_id, &c.0)), "used_at": used_at }))
        .collect();
    json!({ "codes": entries })
}

/// Marks code `index` used at `now`.
pub(crate) fn mark_used(config: &mut Value, index: usize, now: DateTime<Utc>) {
    if let Some(entry) = config
        .get_mut("codes")
        .and_then(Value::as_array_mut)
        .and_then(|entries| entries.get_mut(index))
        && let Some(map) = entry.as_object_mut()
    {
        map.insert("used_at".into(), json!(now));
    }
}

/// How many codes are still unused.
pub(crate) fn remaining(config: &Value) -> usize {
    config
        .get("codes")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e.get("used_at").is_none_or(Value::is_null))
                .count()
        })
        .unwrap_or(0)
}

/// The id under which a used code is recorded as spent (races refused by the database).
pub(crate) fn spent_id(identity_id: Uuid, index: usize, config: &Value) -> Uuid {
    let tag = config
        .get("codes")
        .and_then(|c| c.get(index))
        .and_then(|e| e.get("tag"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    super::spent_marker(b"identa/lookup_secret/", identity_id, tag.as_bytes())
}

/// Seals a set to keep inside a settings flow until the user confirms it.
pub(crate) fn seal_pending(
    keyring: &Keyring,
    flow_id: Uuid,
    codes: &[BackupCode],
) -> Option<String> {
    use base64ct::{Base64, Encoding};
    let joined: Vec<&str> = codes.iter().map(|c| c.0.as_str()).collect();
    let sealed = keyring
        .seal(&pending_context(flow_id), joined.join(",").as_bytes())
        .ok()?;
    Some(Base64::encode_string(&sealed))
}

/// Opens what [`seal_pending`] made.
pub(crate) fn open_pending(
    keyring: &Keyring,
    flow_id: Uuid,
    sealed: &str,
) -> Option<Vec<BackupCode>> {
    use base64ct::{Base64, Encoding};
    let bytes = Base64::decode_vec(sealed).ok()?;
    let plain = keyring.open(&pending_context(flow_id), &bytes).ok()?;
    let text = String::from_utf8(plain).ok()?;
    Some(text.split(',').map(|c| BackupCode(c.to_owned())).collect())
}

fn pending_context(flow_id: Uuid) -> Vec<u8> {
    let mut ctx = b"identa/lookup_secret/flow/".to_vec();
    ctx.extend_from_slice(flow_id.as_bytes());
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;

    #[test]
    fn codes_match_once_and_only_for_their_identity() {
        let keyring = Keyring::new(&Secrets::default()).unwrap();
        let codes = generate_set();
        assert_eq!(codes.len(), COUNT);
        assert!(
            codes
                .iter()
                .all(|c| c.0.len() == LENGTH && c.0.bytes().all(|b| ALPHABET.contains(&b)))
        );
        let id = Uuid::new_v4();
        let mut config = config_for(&keyring, id, &codes);
        assert!(!config.to_string().contains(&codes[0].0));
        let upper = codes[3].0.to_uppercase();
        let i = find_unused(&keyring, id, &config, &upper).unwrap();
        assert_eq!(i, 3);
        assert_eq!(
            find_unused(&keyring, Uuid::new_v4(), &config, &codes[3].0),
            None
        );
        mark_used(&mut config, i, DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(
            find_unused(&keyring, id, &config, &codes[3].0),
            None,
            "used once"
        );
        assert_eq!(remaining(&config), COUNT - 1);
        let sealed = seal_pending(&keyring, id, &codes).unwrap();
        assert_eq!(open_pending(&keyring, id, &sealed).unwrap(), codes);
        assert!(!format!("{:?}", codes[0]).contains(&codes[0].0));
    }

    #[test]
    fn imported_codes_keep_their_use() {
        let keyring = Keyring::new(&Secrets::default()).unwrap();
        assert_eq!(imported("AB12-CD34").unwrap().0, "ab12cd34");
        for bad in ["short", "ab12cd345", "ab12cd3!", "äb12cd34"] {
            assert!(imported(bad).is_none(), "{bad}");
        }
        let id = Uuid::new_v4();
        let codes = [
            (imported("aaaa1111").unwrap(), None),
            (
                imported("bbbb2222").unwrap(),
                Some(DateTime::<Utc>::UNIX_EPOCH),
            ),
        ];
        let config = config_for_imported(&keyring, id, &codes);
        assert!(!config.to_string().contains("aaaa1111"));
        assert_eq!(find_unused(&keyring, id, &config, "aaaa1111"), Some(0));
        assert_eq!(find_unused(&keyring, id, &config, "bbbb2222"), None);
        assert_eq!(remaining(&config), 1);
    }
}
