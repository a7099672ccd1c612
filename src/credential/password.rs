//! Password credentials: argon2id hashing and verification, and the password policy.
//!
//! Hashing is memory-hard on purpose, so it is treated as a scarce resource: it runs on
//! blocking threads (never on the async executor), at most [`PasswordConfig::concurrency`]
//! at a time, and reuses a pool of argon2 memory blocks instead of allocating ~19 MiB per
//! hash. Further requests queue; none fails because of load.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), the format Kratos
//! stores, so hashes move between the two. Verifying an unknown account runs the same
//! work against a dummy hash, so timing does not tell which accounts exist.

use std::fmt;
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Kratos's import bounds for argon2 hashes: anything larger is refused, not attempted.
const MAX_IMPORT_M_KIB: u32 = 1 << 20;
const MAX_IMPORT_T: u32 = 10;
const MAX_IMPORT_P: u32 = 16;
/// Output length of hashes identa creates.
const OUTPUT_LEN: usize = 32;
/// Above this many bytes the similarity check is skipped (as in Kratos).
const SIMILARITY_MAX_BYTES: usize = 256;

/// argon2id parameters, the concurrency budget, and the password policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordConfig {
    /// Memory cost in KiB. Default 19456 (19 MiB, the OWASP baseline).
    pub memory_kib: u32,
    /// Time cost (passes). Default 2.
    pub iterations: u32,
    /// Lanes. Default 1.
    pub parallelism: u32,
    /// Shortest password accepted, in characters. Default 8.
    pub min_length: usize,
    /// Longest password accepted, in bytes; longer ones are refused before hashing. Default 256.
    pub max_length: usize,
    /// Refuse passwords too similar to an identifier. Default true.
    pub identifier_similarity_check: bool,
    /// argon2 memory allowed in flight at once, in KiB. Default 128 MiB.
    pub memory_budget_kib: u64,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            min_length: 8,
            max_length: 256,
            identifier_similarity_check: true,
            memory_budget_kib: 128 * 1024,
        }
    }
}

impl PasswordConfig {
    /// Tiny argon2 parameters (m = 64 KiB, t = 1, p = 1) so test suites run fast.
    /// **Never use in production**: such hashes are cheap to brute-force.
    pub fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..Self::default()
        }
    }

    /// How many hashes may run at once: the memory budget divided by the memory cost,
    /// at least 1 and at most the number of cores.
    pub fn concurrency(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let by_memory = self.memory_budget_kib / u64::from(self.memory_kib.max(1));
        usize::try_from(by_memory)
            .unwrap_or(usize::MAX)
            .clamp(1, cores)
    }

    fn params(&self) -> Result<Params, PasswordError> {
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| PasswordError::InvalidConfig(format!("argon2 parameters: {e}")))
    }
}

/// A password as a user typed it. Its `Debug` never shows it.
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password text (for hashing; never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Why hashing or verification failed. Never carries a password or a hash.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The configured argon2 parameters are invalid.
    #[error("invalid password hashing configuration: {0}")]
    InvalidConfig(String),
    /// A stored hash is not an argon2 PHC string identa can verify, or exceeds the bounds.
    #[error("unsupported stored password hash: {reason}")]
    UnsupportedHash {
        /// What is wrong with it.
        reason: String,
    },
    /// argon2 itself failed.
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The blocking worker was cancelled or panicked.
    #[error("password hashing worker stopped unexpectedly")]
    WorkerGone,
}

fn unsupported(reason: impl fmt::Display) -> PasswordError {
    PasswordError::UnsupportedHash {
        reason: reason.to_string(),
    }
}

/// A parsed argon2 hash, ready to verify.
struct Stored {
    algorithm: Algorithm,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl Stored {
    fn parse(phc: &str) -> Result<Self, PasswordError> {
        let hash =
            PasswordHash::new(phc).map_err(|e| unsupported(format!("not a PHC string ({e})")))?;
        let algorithm = match hash.algorithm.as_str() {
            "argon2id" => Algorithm::Argon2id,
            "argon2i" => Algorithm::Argon2i,
            other => {
                return Err(unsupported(format!(
                    "algorithm `{}` is not supported yet",
                    other.chars().take(24).collect::<String>()
                )));
            }
        };
        if hash.version.is_some_and(|v| v != 19) {
            return Err(unsupported("argon2 version must be 19"));
        }
        let expected = hash
            .hash
            .map(|o| o.as_bytes().to_vec())
            .ok_or_else(|| unsupported("no hash output"))?;
        let salt = hash
            .salt
            .map(|s| s.to_vec())
            .ok_or_else(|| unsupported("no salt"))?;
        let get = |name: &str| -> Result<u32, PasswordError> {
            hash.params
                .get_decimal(name)
                .ok_or_else(|| unsupported(format!("missing parameter `{name}`")))
        };
        let (m, t, p) = (get("m")?, get("t")?, get("p")?);
        if m > MAX_IMPORT_M_KIB || t > MAX_IMPORT_T || p > MAX_IMPORT_P {
            return Err(unsupported(format!(
                "parameters m={m}, t={t}, p={p} exceed m≤{MAX_IMPORT_M_KIB}, t≤{MAX_IMPORT_T}, p≤{MAX_IMPORT_P}"
            )));
        }
        let params = Params::new(m, t, p, Some(expected.len())).map_err(unsupported)?;
        Ok(Self {
            algorithm,
            params,
            salt,
            expected,
        })
    }
}

/// Hashes and verifies passwords off the async executor, a bounded number at a time.
/// Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    config: PasswordConfig,
    params: Params,
    permits: Semaphore,
    pool: Mutex<Vec<Vec<Block>>>,
    dummy: String,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher for `config`. Fails if the argon2 parameters are invalid.
    pub fn new(config: PasswordConfig) -> Result<Self, PasswordError> {
        let params = config.params()?;
        let concurrency = config.concurrency();
        let mut inner = Inner {
            permits: Semaphore::new(concurrency),
            pool: Mutex::new(Vec::with_capacity(concurrency)),
            params,
            config,
            dummy: String::new(),
        };
        // The dummy hash unknown accounts are verified against: same parameters, random input.
        let random: [u8; 16] = rand::random();
        inner.dummy = inner.hash_blocking(&random)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &PasswordConfig {
        &self.inner.config
    }

    /// Hashes a password into an argon2id PHC string with a fresh 16-byte salt.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let pwd = password.expose().as_bytes().to_vec();
        self.run(move |inner| inner.hash_blocking(&pwd)).await
    }

    /// Verifies a password against a stored hash. `None` means the account does not
    /// exist: the same work is done against a dummy hash and the answer is `false`.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let parsed = match stored {
            Some(phc) => Some(Stored::parse(phc)?),
            None => None,
        };
        let pwd = password.expose().as_bytes().to_vec();
        self.run(move |inner| match parsed {
            Some(stored) => inner.verify_blocking(&pwd, &stored),
            None => {
                let dummy = Stored::parse(&inner.dummy)?;
                inner.verify_blocking(&pwd, &dummy).map(|_| false)
            }
        })
        .await
    }

    /// Whether `stored` should be re-hashed with the configured parameters (it is not
    /// argon2id at exactly those parameters).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match Stored::parse(stored) {
            Ok(s) => {
                s.algorithm != Algorithm::Argon2id
                    || s.params.m_cost() != self.inner.params.m_cost()
                    || s.params.t_cost() != self.inner.params.t_cost()
                    || s.params.p_cost() != self.inner.params.p_cost()
                    || s.expected.len() != OUTPUT_LEN
            }
            Err(_) => true,
        }
    }

    async fn run<T, F>(&self, work: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, PasswordError> + Send + 'static,
    {
        // Waiting here queues the request; the semaphore is never closed.
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::WorkerGone)?;
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|_| PasswordError::WorkerGone)?;
        drop(permit);
        result
    }
}

impl Inner {
    fn with_blocks<T>(&self, params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let wanted = params.block_count();
        let pooled = wanted == self.params.block_count();
        let mut blocks = if pooled { self.lock_pool().pop() } else { None }
            .unwrap_or_else(|| vec![Block::new(); wanted]);
        let out = f(&mut blocks);
        if pooled {
            let mut pool = self.lock_pool();
            if pool.len() < self.config.concurrency() {
                pool.push(blocks);
            }
        }
        out
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn hash_blocking(&self, pwd: &[u8]) -> Result<String, PasswordError> {
        let salt = Salt::generate();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let mut out = [0u8; OUTPUT_LEN];
        self.with_blocks(&self.params, |blocks| {
            argon.hash_password_into_with_memory(pwd, &salt, &mut out, blocks)
        })
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)
                .map_err(|e| PasswordError::Hashing(e.to_string()))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| PasswordError::Hashing(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    fn verify_blocking(&self, pwd: &[u8], stored: &Stored) -> Result<bool, PasswordError> {
        let argon = Argon2::new(stored.algorithm, Version::V0x13, stored.params.clone());
        let mut out = vec![0u8; stored.expected.len()];
        self.with_blocks(&stored.params, |blocks| {
            argon.hash_password_into_with_memory(pwd, &stored.salt, &mut out, blocks)
        })
        .map_err(unsupported)?;
        Ok(bool::from(out.ct_eq(&stored.expected)))
    }
}

// ---- policy -------------------------------------------------------------------------

/// A password the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Shorter than the minimum.
    #[error("The password must be at least {min} characters long, but got {actual}.")]
    TooShort {
        /// The minimum, in characters.
        min: usize,
        /// The length given.
        actual: usize,
    },
    /// Longer than the maximum.
    #[error("The password must be at most {max} bytes long.")]
    TooLong {
        /// The maximum, in bytes.
        max: usize,
    },
    /// Too close to an identifier (email, username…).
    #[error("The password can not be used because it is too similar to the identifier.")]
    TooSimilarToIdentifier,
}

impl PolicyViolation {
    /// Kratos's message id for this violation.
    pub fn message_id(&self) -> u32 {
        match self {
            Self::TooShort { .. } => 4_000_032,
            Self::TooLong { .. } => 4_000_033,
            Self::TooSimilarToIdentifier => 4_000_031,
        }
    }
}

/// Checks a password against the policy. The byte length is checked first, so an
/// enormous password is refused without further work.
pub fn check_policy(
    config: &PasswordConfig,
    password: &Password,
    identifiers: &[String],
) -> Result<(), PolicyViolation> {
    let pwd = password.expose();
    if pwd.len() > config.max_length {
        return Err(PolicyViolation::TooLong {
            max: config.max_length,
        });
    }
    let chars = pwd.chars().count();
    if chars < config.min_length {
        return Err(PolicyViolation::TooShort {
            min: config.min_length,
            actual: chars,
        });
    }
    if config.identifier_similarity_check && identifiers.iter().any(|id| too_similar(pwd, id)) {
        return Err(PolicyViolation::TooSimilarToIdentifier);
    }
    Ok(())
}

/// Kratos's rule: lower-case both; too similar if the edit distance is under 5, or the
/// longest common substring covers more than half of the password.
fn too_similar(password: &str, identifier: &str) -> bool {
    if password.len() > SIMILARITY_MAX_BYTES || identifier.len() > SIMILARITY_MAX_BYTES {
        return false;
    }
    let p: Vec<char> = password.to_lowercase().chars().collect();
    let i: Vec<char> = identifier.to_lowercase().chars().collect();
    if p.is_empty() {
        return false;
    }
    levenshtein(&p, &i) < 5 || longest_common_substring(&p, &i) * 2 > p.len()
}

fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(cell) = cur.get_mut(j + 1) {
                *cell = substitute.min(delete).min(insert);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

fn longest_common_substring(a: &[char], b: &[char]) -> usize {
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for ca in a {
        for (j, cb) in b.iter().enumerate() {
            let run = if ca == cb {
                prev.get(j).copied().unwrap_or(0) + 1
            } else {
                0
            };
            if let Some(cell) = cur.get_mut(j + 1) {
                *cell = run;
            }
            best = best.max(run);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(PasswordConfig::insecure_fast_for_tests()).unwrap()
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = fast();
        let pw = Password::new("correct horse battery staple");
        let phc = h.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify(&pw, Some(&phc)).await.unwrap());
        assert!(!h.verify(&Password::new("wrong"), Some(&phc)).await.unwrap());
        assert!(!h.verify(&pw, None).await.unwrap());
        assert_ne!(phc, h.hash(&pw).await.unwrap(), "salts differ");
        assert!(!h.needs_rehash(&phc));
        let stronger = PasswordHasher::new(PasswordConfig {
            memory_kib: 128,
            ..PasswordConfig::insecure_fast_for_tests()
        })
        .unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(
            stronger.verify(&pw, Some(&phc)).await.unwrap(),
            "other params still verify"
        );
    }

    #[tokio::test]
    async fn kratos_vectors() {
        let path = std::env::var("IDENTA_HASH_VECTORS").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/kratos-hash-vectors.json"
            )
            .to_owned()
        });
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipped: {path} not found");
            return;
        };
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let h = fast();
        let mut checked = 0;
        for v in doc["kratos_hasher_test"].as_array().unwrap() {
            let alg = v["algorithm"].as_str().unwrap();
            let pw = Password::new(v["password"].as_str().unwrap());
            let hash = v["hash"].as_str().unwrap();
            let got = h.verify(&pw, Some(hash)).await;
            if alg.starts_with("argon2") {
                if v["matches"].as_bool().unwrap() {
                    assert!(got.unwrap(), "{hash}");
                } else {
                    // Kratos's negative vector alters the last base64 character, which
                    // a strict PHC parser refuses outright: either way, no match.
                    assert!(!matches!(got, Ok(true)), "{hash}");
                }
                checked += 1;
            } else {
                assert!(
                    matches!(got, Err(PasswordError::UnsupportedHash { .. })),
                    "{alg}"
                );
            }
        }
        assert!(checked >= 3, "argon2 vectors checked: {checked}");
    }

    #[tokio::test]
    async fn malformed_and_oversized_hashes_are_refused() {
        let h = fast();
        let pw = Password::new("whatever123");
        for bad in [
            "",
            "plain",
            "$argon2id$",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=16384,r=8,p=1$c2FsdA$aGFzaA",
        ] {
            let err = h.verify(&pw, Some(bad)).await.unwrap_err();
            assert!(
                matches!(err, PasswordError::UnsupportedHash { .. }),
                "{bad}: {err}"
            );
            assert!(h.needs_rehash(bad));
        }
    }

    #[test]
    fn policy() {
        let c = PasswordConfig::default();
        let ids = vec!["alice@example.com".to_owned()];
        let check = |pw: &str| check_policy(&c, &Password::new(pw), &ids);
        assert_eq!(
            check("short"),
            Err(PolicyViolation::TooShort { min: 8, actual: 5 })
        );
        assert_eq!(
            check("ünïcödé"),
            Err(PolicyViolation::TooShort { min: 8, actual: 7 })
        );
        assert_eq!(
            check(&"x".repeat(1 << 20)),
            Err(PolicyViolation::TooLong { max: 256 })
        );
        assert_eq!(
            check("alice@example.com"),
            Err(PolicyViolation::TooSimilarToIdentifier)
        );
        assert_eq!(
            check("ALICE@example.com1"),
            Err(PolicyViolation::TooSimilarToIdentifier)
        );
        assert_eq!(
            check("alice@example"),
            Err(PolicyViolation::TooSimilarToIdentifier)
        );
        assert_eq!(check("purple monkey dishwasher"), Ok(()));
        assert_eq!(
            PolicyViolation::TooShort { min: 8, actual: 3 }.message_id(),
            4_000_032
        );
        assert_eq!(
            PolicyViolation::TooShort { min: 8, actual: 3 }.to_string(),
            "The password must be at least 8 characters long, but got 3."
        );
        let relaxed = PasswordConfig {
            identifier_similarity_check: false,
            ..PasswordConfig::default()
        };
        assert_eq!(
            check_policy(&relaxed, &Password::new("alice@example.com"), &ids),
            Ok(())
        );
    }

    #[test]
    fn concurrency_is_bounded() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let n = PasswordConfig::default().concurrency();
        assert!(n >= 1 && n <= cores);
        let tight = PasswordConfig {
            memory_budget_kib: 1,
            ..PasswordConfig::default()
        };
        assert_eq!(tight.concurrency(), 1);
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(***)");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_verifies_complete_and_pool_stays_bounded() {
        let h = fast();
        let pw = Password::new("correct horse battery staple");
        let phc = h.hash(&pw).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let h = h.clone();
                let phc = phc.clone();
                tokio::spawn(async move {
                    let pw = Password::new(if i % 2 == 0 {
                        "correct horse battery staple"
                    } else {
                        "nope"
                    });
                    h.verify(&pw, Some(&phc)).await.unwrap() == (i % 2 == 0)
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        let pooled = h.inner.lock_pool().len();
        assert!(
            pooled >= 1 && pooled <= h.config().concurrency(),
            "{pooled}"
        );
    }
}
