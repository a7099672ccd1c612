//! Breached passwords: the [`BreachedPasswords`] check every new password passes after
//! the policy, the offline list of common passwords shipped with identa
//! ([`CommonPasswords`], the default) and, with the `hibp` feature, Have I Been Pwned's
//! range API ([`PwnedPasswords`], k-anonymity: only five hex digits of the password's
//! SHA-1 leave the process).

use std::sync::LazyLock;

use async_trait::async_trait;

use super::password::{Password, PasswordConfig, PolicyViolation, check_policy};

/// What a breach check found for a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// In no breach the check knows of.
    NotFound,
    /// Seen in breaches, `times` times (1 when the source does not count).
    Breached {
        /// How often the source saw it.
        times: u64,
    },
}

/// Tells whether a password has been seen in data breaches. Identa refuses a new password
/// that has (message 4000034) at registration, in settings and when an administrator sets
/// one. A check never fails: one that cannot reach its source answers from what it has
/// (for [`PwnedPasswords`], the offline list).
#[async_trait]
pub trait BreachedPasswords: Send + Sync {
    /// The password's exposure. Implementations must not log or keep the password.
    async fn exposure(&self, password: &Password) -> Exposure;
}

impl std::fmt::Debug for dyn BreachedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn BreachedPasswords")
    }
}

/// The whole check of a new password: the policy ([`check_policy`]: length, similarity
/// to `identifiers`), then, only if it passes, `breached`.
///
/// # Errors
///
/// The first [`PolicyViolation`] found; [`PolicyViolation::Breached`] last.
pub async fn check_new_password(
    config: &PasswordConfig,
    breached: &dyn BreachedPasswords,
    password: &Password,
    identifiers: &[String],
) -> Result<(), PolicyViolation> {
    check_policy(config, password, identifiers)?;
    match breached.exposure(password).await {
        Exposure::NotFound => Ok(()),
        Exposure::Breached { times } => Err(PolicyViolation::Breached { times }),
    }
}

/// The 100,000 most common passwords of a public breach corpus (Mark Burnett's ten
/// million passwords, as published by OWASP SecLists; see `data/README.md`), shipped
/// compressed in the crate (262 KiB) and looked up exactly, byte for byte, by binary
/// search. Decompressed once, on first use (about 1 MiB).
#[derive(Debug, Clone, Copy, Default)]
pub struct CommonPasswords;

impl CommonPasswords {
    /// Whether `password` is on the list.
    pub fn contains(&self, password: &str) -> bool {
        COMMON.contains(password.as_bytes())
    }

    /// How many passwords the list holds.
    pub fn len(&self) -> usize {
        COMMON.starts.len()
    }

    /// Whether the list is empty (never, unless the shipped data is damaged).
    pub fn is_empty(&self) -> bool {
        COMMON.starts.is_empty()
    }
}

#[async_trait]
impl BreachedPasswords for CommonPasswords {
    async fn exposure(&self, password: &Password) -> Exposure {
        if self.contains(password.expose()) {
            Exposure::Breached { times: 1 }
        } else {
            Exposure::NotFound
        }
    }
}

/// Newline-separated passwords sorted by bytes, and where each begins.
struct SortedList {
    text: Vec<u8>,
    starts: Vec<usize>,
}

static COMMON: LazyLock<SortedList> =
    LazyLock::new(|| SortedList::decode(include_bytes!("../../data/common-passwords.txt.gz")));

impl SortedList {
    fn decode(gz: &[u8]) -> Self {
        use std::io::Read;
        let mut text = Vec::new();
        if let Err(err) = flate2::read::GzDecoder::new(gz).read_to_end(&mut text) {
            // Compiled in and unit-tested; a damaged build checks nothing rather than
            // refusing every password.
            tracing::error!(error = %err, "the shipped common-password list does not decode");
            text.clear();
        }
        let mut starts = Vec::with_capacity(100_000);
        let mut start = 0;
        for (i, byte) in text.iter().enumerate() {
            if *byte == b'\n' {
                starts.push(start);
                start = i + 1;
            }
        }
        if start < text.len() {
            starts.push(start);
        }
        Self { text, starts }
    }

    fn entry(&self, index: usize) -> &[u8] {
        let start = self.starts.get(index).copied().unwrap_or(0);
        let rest = self.text.get(start..).unwrap_or_default();
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        rest.get(..end).unwrap_or_default()
    }

    fn contains(&self, password: &[u8]) -> bool {
        let (mut low, mut high) = (0, self.starts.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.entry(mid).cmp(password) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

#[cfg(feature = "hibp")]
pub use pwned::PwnedPasswords;

#[cfg(feature = "hibp")]
mod pwned {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use async_trait::async_trait;
    use sha1::{Digest, Sha1};

    use super::{BreachedPasswords, CommonPasswords, Exposure, Password};

    /// How long an answer for one prefix is reused.
    const CACHE_TTL: Duration = Duration::from_secs(3600);
    /// At most this many prefixes are cached (each answer is about 20 KiB).
    const CACHE_PREFIXES: usize = 256;
    /// The largest answer read, in bytes (a real one, padded, is about 40 KB): a larger
    /// one is refused unread, or as soon as it passes this, and the offline list answers.
    const MAX_ANSWER_BYTES: usize = 1024 * 1024;

    /// One prefix's answer: (suffix, count) pairs.
    type Range = Vec<(String, u64)>;

    /// Have I Been Pwned's range API (`GET {base}/range/{first five hex digits of the
    /// SHA-1}`, with `Add-Padding: true`): the password's full hash never leaves the
    /// process. Answers within one second or falls back to [`CommonPasswords`] (Kratos
    /// accepts the password when the API is down, `ignore_network_errors`). A password
    /// seen more than `max_breaches` times (default 0, as Kratos) is breached. Answers
    /// are cached per prefix for an hour, at most 256 prefixes.
    pub struct PwnedPasswords {
        client: reqwest::Client,
        base_url: String,
        max_breaches: u64,
        cache: Mutex<HashMap<String, (Instant, Range)>>,
    }

    impl std::fmt::Debug for PwnedPasswords {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PwnedPasswords")
                .field("base_url", &self.base_url)
                .field("max_breaches", &self.max_breaches)
                .finish_non_exhaustive()
        }
    }

    impl PwnedPasswords {
        /// The public API, `https://api.pwnedpasswords.com`.
        pub fn new() -> Self {
            Self::at("https://api.pwnedpasswords.com")
        }

        /// A self-hosted copy of the API (or a test server) at `base_url`.
        pub fn at(base_url: impl Into<String>) -> Self {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .user_agent(concat!("identa/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default();
            Self {
                client,
                base_url: base_url.into().trim_end_matches('/').to_owned(),
                max_breaches: 0,
                cache: Mutex::new(HashMap::new()),
            }
        }

        /// Accept passwords seen at most `times` times (Kratos's `max_breaches`, ≤ 100).
        pub fn max_breaches(mut self, times: u64) -> Self {
            self.max_breaches = times.min(100);
            self
        }

        fn cached(&self, prefix: &str) -> Option<Range> {
            let cache = self.cache.lock().ok()?;
            let (at, entries) = cache.get(prefix)?;
            (at.elapsed() < CACHE_TTL).then(|| entries.clone())
        }

        fn remember(&self, prefix: String, entries: Range) {
            let Ok(mut cache) = self.cache.lock() else {
                return;
            };
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_PREFIXES {
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    cache.remove(&oldest);
                }
            }
            cache.insert(prefix, (Instant::now(), entries));
        }

        /// The range for `prefix`: (suffix, count) pairs, padding (count 0) dropped.
        async fn range(&self, prefix: &str) -> Result<Range, String> {
            if let Some(entries) = self.cached(prefix) {
                return Ok(entries);
            }
            let url = format!("{}/range/{prefix}", self.base_url);
            let res = self
                .client
                .get(&url)
                .header("Add-Padding", "true")
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if !res.status().is_success() {
                return Err(format!("status {}", res.status()));
            }
            let body = read_capped(res).await?;
            let entries = parse_range(&body)?;
            self.remember(prefix.to_owned(), entries.clone());
            Ok(entries)
        }
    }

    impl Default for PwnedPasswords {
        fn default() -> Self {
            Self::new()
        }
    }

    /// The answer's body, refused when it says (`Content-Length`) or turns out to be
    /// longer than [`MAX_ANSWER_BYTES`]: read chunk by chunk, never more than that.
    async fn read_capped(mut res: reqwest::Response) -> Result<String, String> {
        let too_long = || format!("an answer longer than {MAX_ANSWER_BYTES} bytes");
        if res
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > MAX_ANSWER_BYTES))
        {
            return Err(too_long());
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.without_url().to_string())? {
            if body.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                return Err(too_long());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "an answer that is not UTF-8".to_owned())
    }

    /// Parses the range API's lines, `SUFFIX:COUNT` (35 hex digits; a count may be
    /// missing, meaning 1, as Kratos reads it).
    fn parse_range(body: &str) -> Result<Range, String> {
        let mut entries = Vec::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (suffix, count) = line.split_once(':').unwrap_or((line, "1"));
            if suffix.len() != 35 || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("a line that is not SUFFIX:COUNT".to_owned());
            }
            let count: u64 = count
                .trim()
                .replace(',', "")
                .parse()
                .map_err(|_| "a count that is not a number".to_owned())?;
            if count > 0 {
                entries.push((suffix.to_ascii_uppercase(), count));
            }
        }
        Ok(entries)
    }

    #[async_trait]
    impl BreachedPasswords for PwnedPasswords {
        async fn exposure(&self, password: &Password) -> Exposure {
            let digest = Sha1::digest(password.expose().as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
            let (prefix, suffix) = hex.split_at(5);
            match self.range(prefix).await {
                Ok(entries) => {
                    let times = entries
                        .iter()
                        .find(|(s, _)| s == suffix)
                        .map_or(0, |(_, count)| *count);
                    if times > self.max_breaches {
                        Exposure::Breached { times }
                    } else {
                        Exposure::NotFound
                    }
                }
                Err(reason) => {
                    tracing::warn!(%reason, "the breached-password API did not answer; checking the offline list");
                    CommonPasswords.exposure(password).await
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::parse_range;

        #[test]
        fn range_lines_parse_as_kratos_reads_them() {
            let body = "0018A45C4D1DEF81644B54AB7F969B88D65:10\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n011053FD0102E94D6AE2F8B83D76FAF94F6\r\n";
            let entries = parse_range(body).unwrap();
            assert_eq!(
                entries,
                vec![
                    ("0018A45C4D1DEF81644B54AB7F969B88D65".to_owned(), 10),
                    ("011053FD0102E94D6AE2F8B83D76FAF94F6".to_owned(), 1),
                ]
            );
            assert!(parse_range("<html>busy</html>").is_err());
            assert!(parse_range("0018A45C4D1DEF81644B54AB7F969B88D65:many").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_holds_the_common_passwords() {
        let list = CommonPasswords;
        assert_eq!(list.len(), 100_000);
        for common in [
            "123456",
            "password",
            "qwerty",
            "iloveyou",
            "trustno1",
            "password1",
        ] {
            assert!(list.contains(common), "{common}");
        }
        for rare in [
            "a long and unusual passphrase",
            "",
            "PASSWORD\n123456",
            "12345 6",
        ] {
            assert!(!list.contains(rare), "{rare:?}");
        }
    }

    #[test]
    fn the_list_compares_exact_bytes() {
        let list = CommonPasswords;
        // Case and surrounding spaces count: the list has these spellings and not others.
        assert!(list.contains("password"));
        assert!(list.contains("Password"));
        assert!(!list.contains("pAsSwOrD"));
        assert!(!list.contains("password "));
        assert!(!list.contains(" password"));
    }
}
