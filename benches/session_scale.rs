//! `whoami` at scale (issue 16): 100,000 sessions of 10,000 identities, then 1,000,000
//! of 100,000, on a SQLite file (and on PostgreSQL with the `postgres` feature and
//! `IDENTA_BENCH_POSTGRES_URL` set), measured in one process run so the ratios compare
//! like with like:
//!
//! - cold: the cache disabled, every call reads the database, over tokens drawn at
//!   random from the whole set (with the database's pages in the OS page cache, as on a
//!   running server: a lookup that waits on the disk measures the disk);
//! - warm: the default cache, after one pass over a random sample of tokens, then calls
//!   drawn at random from that sample.
//!
//! Identities go in through `Identa::import_identities` (batches of 1,000, one transaction
//! each), sessions through `Identa::issue_session` (the engine's own token minting and
//! store insert, several in flight): real rows, and a sample of them is checked to
//! authenticate before anything is timed. Medians and p99 come from per-call timings.
//!
//! The cache's memory per entry is measured with a counting global allocator: the bytes
//! still allocated after filling a cache with N sessions, over N — for the seeded
//! one-email identities and for larger ones (about 4 KiB of traits, and near
//! `SessionCacheConfig::MAX_ENTRY_BYTES`), each filled by the library's `whoami` and by
//! `GET /sessions/whoami` (whose entry keeps the rendered answer when it fits) — against
//! the cache's own estimate, which must be within `ESTIMATE_FACTOR` of it; and a cache
//! with a small capacity is filled three times over to show its memory stays bounded by it.
//!
//! `IDENTA_SCALE=small` runs 10,000 and 100,000 sessions instead (a quick check). The
//! last line printed is `scale_…=…` pairs; the process exits non-zero if a 1M/100k
//! ratio is over 1.5, the cache outgrows its capacity or its estimate of an entry is off
//! by more than `ESTIMATE_FACTOR`. The databases live in a
//! temporary directory (a temporary PostgreSQL schema) removed at the end.

use std::alloc::System;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod support;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use identa::credential::password::PasswordConfig;
use identa::http::{HttpConfig, PublicApi};
use identa::identity::{Aal, Identity, NewIdentity};
use identa::session::{AuthenticationMethod, SessionToken};
use identa::store::{SqliteDurability, StoreOptions};
use identa::testing::session_cache_usage;
use identa::{
    Config, Identa, IdentityImport, MAX_IMPORT_BATCH, PasswordImport, Secrets, SessionCacheConfig,
};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::runtime::Runtime;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Sessions per identity, at every size.
const SESSIONS_PER_IDENTITY: usize = 10;
/// Timed calls per measurement.
const CALLS: usize = 20_000;
/// Tokens checked to authenticate, as issued, before timing.
const CHECKED: usize = 1_000;
/// Sessions issued at once while seeding.
const IN_FLIGHT: usize = 16;
/// The issue's target: the large size within this factor of the small one.
const TARGET_RATIO: f64 = 1.5;

/// A small deterministic generator (xorshift64*): the same draws on every run.
struct Draw(u64);

impl Draw {
    fn index(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below as u64) as usize
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every engine of a run shares these secrets, so each accepts the tokens another minted.
fn secrets() -> &'static Secrets {
    static SECRETS: OnceLock<Secrets> = OnceLock::new();
    SECRETS.get_or_init(Secrets::default)
}

fn config(cache: SessionCacheConfig) -> Config {
    let mut config = Config {
        password: PasswordConfig::insecure_fast_for_tests(),
        secrets: secrets().clone(),
        ..Config::default()
    };
    config.session.cache = cache;
    config
}

/// The sizes measured: (identities, sessions), small first.
fn sizes() -> [(usize, usize); 2] {
    let small = std::env::var("IDENTA_SCALE").is_ok_and(|s| s == "small");
    let base = if small { 1_000 } else { 10_000 };
    [
        (base, base * SESSIONS_PER_IDENTITY),
        (base * 10, base * 10 * SESSIONS_PER_IDENTITY),
    ]
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Tokens and the identity each belongs to.
type Issued = Vec<(SessionToken, Uuid)>;

/// Seeds `identities` identities with [`SESSIONS_PER_IDENTITY`] sessions each.
async fn seed(identa: &Identa, identities: usize) -> Issued {
    seed_with(
        identa,
        identities,
        &|n| json!({ "email": format!("user{n}@example.com") }),
    )
    .await
}

/// [`seed`] with the traits `traits(n)` for the `n`th identity.
async fn seed_with(identa: &Identa, identities: usize, traits: &dyn Fn(usize) -> Value) -> Issued {
    let mut people: Vec<Identity> = Vec::with_capacity(identities);
    for start in (0..identities).step_by(MAX_IMPORT_BATCH) {
        let batch = (start..identities.min(start + MAX_IMPORT_BATCH))
            .map(|n| IdentityImport {
                identity: NewIdentity {
                    traits: traits(n),
                    ..NewIdentity::default()
                },
                password: PasswordImport::None,
            })
            .collect();
        for answer in identa.import_identities(batch).await.unwrap() {
            people.push(answer.unwrap());
        }
    }
    let people = &people;
    stream::iter(0..identities * SESSIONS_PER_IDENTITY)
        .map(|n| async move {
            let identity = &people[n % people.len()];
            let method = AuthenticationMethod {
                method: "password".into(),
                aal: Aal::Aal1,
                completed_at: identity.created_at,
            };
            let (_, token) = identa
                .issue_session(identity, vec![method], None)
                .await
                .unwrap();
            (token, identity.id)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    median_us: f64,
    p99_us: f64,
}

fn timing(mut calls: Vec<Duration>) -> Timing {
    calls.sort_unstable();
    let at = |q: f64| calls[((calls.len() - 1) as f64 * q).round() as usize];
    Timing {
        median_us: at(0.5).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
    }
}

/// Times one `whoami` per token, in order.
fn time_calls(rt: &Runtime, identa: &Identa, tokens: &[&SessionToken]) -> Timing {
    let calls = tokens
        .iter()
        .map(|token| {
            let start = Instant::now();
            rt.block_on(identa.whoami(token)).unwrap();
            start.elapsed()
        })
        .collect();
    timing(calls)
}

#[derive(Debug, Clone, Copy)]
struct SizeRun {
    sessions: usize,
    seed_s: f64,
    cold: Timing,
    warm: Timing,
}

/// Seeds one size on `url` and measures it.
/// `settle` runs between seeding and timing (PostgreSQL: `VACUUM ANALYZE`, so autovacuum
/// waking up after the bulk load does not land inside the timings; SQLite: [`page_in`]).
fn run_size(
    rt: &Runtime,
    url: &str,
    backend: &str,
    (identities, sessions): (usize, usize),
    settle: &dyn Fn(),
) -> (SizeRun, Issued) {
    // Seeded with commits synced at checkpoints only (the default syncs every commit):
    // the rows are the same, the timed engines use the defaults.
    let fast = StoreOptions {
        sqlite_durability: SqliteDurability::Normal,
    };
    let seeding = rt.block_on(support::email_engine_with(
        url,
        fast,
        config(SessionCacheConfig::Disabled),
    ));
    let start = Instant::now();
    let issued = rt.block_on(seed(&seeding, identities));
    let seed_s = start.elapsed().as_secs_f64();
    drop(seeding);
    settle();
    assert_eq!(issued.len(), sessions);
    println!(
        "{backend} {sessions} sessions of {identities} identities seeded in {seed_s:.1} s (load {})",
        uptime()
    );
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15 ^ sessions as u64);

    // Cold: every call reads the database, tokens from the whole set.
    let cold_engine = rt.block_on(support::email_engine(
        url,
        config(SessionCacheConfig::Disabled),
    ));
    for _ in 0..CHECKED {
        let (token, identity_id) = &issued[draw.index(sessions)];
        let found = rt.block_on(cold_engine.whoami(token)).unwrap();
        assert_eq!(
            found.identity.id, *identity_id,
            "a seeded token found another identity"
        );
    }
    let picks: Vec<&SessionToken> = (0..CALLS)
        .map(|_| &issued[draw.index(sessions)].0)
        .collect();
    let cold = time_calls(rt, &cold_engine, &picks);
    drop(cold_engine);

    // Warm: the default cache, warmed over a sample, then calls drawn from it.
    let warm_engine = rt.block_on(support::email_engine(
        url,
        config(SessionCacheConfig::default()),
    ));
    let sample: Vec<&SessionToken> = (0..CALLS)
        .map(|_| &issued[draw.index(sessions)].0)
        .collect();
    for token in &sample {
        rt.block_on(warm_engine.whoami(token)).unwrap();
    }
    let picks: Vec<&SessionToken> = (0..CALLS)
        .map(|_| sample[draw.index(sample.len())])
        .collect();
    let warm = time_calls(rt, &warm_engine, &picks);
    drop(warm_engine);

    println!(
        "{backend} {sessions}: cold median {:.1} µs p99 {:.1} µs; warm median {:.1} µs p99 {:.1} µs (load {})",
        cold.median_us,
        cold.p99_us,
        warm.median_us,
        warm.p99_us,
        uptime()
    );
    let run = SizeRun {
        sessions,
        seed_s,
        cold,
        warm,
    };
    (run, issued)
}

/// Bytes allocated by `fill` and still held when it returns.
fn live_bytes(fill: impl FnOnce()) -> i64 {
    let region = Region::new(GLOBAL);
    fill();
    let change = region.change();
    // stats_alloc counts a realloc's growth as allocated and its shrinking as deallocated.
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

/// How `whoami` fills a cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// `Identa::whoami`: the session and its identity.
    Library,
    /// `GET /sessions/whoami` through `identa::http::PublicApi`: the entry keeps the
    /// rendered answer too (if it stays within `SessionCacheConfig::MAX_ENTRY_BYTES`).
    Http,
}

/// One entry size measured: real bytes per entry (the counting allocator) and the
/// cache's own estimate of them (`identa::testing::session_cache_usage`).
#[derive(Debug, Clone, Copy)]
struct EntryBytes {
    real: f64,
    estimated: f64,
}

impl EntryBytes {
    fn ratio(&self) -> f64 {
        self.estimated / self.real
    }
}

/// The estimate is honest if it is within this factor of the real bytes, either way
/// (documented in docs/performance.md, "The cache's memory"). It is meant to be a little
/// over: the tables' spare room after they grow is what could put the real bytes above it.
const ESTIMATE_FACTOR: f64 = 1.25;

fn cache_config(capacity: usize) -> SessionCacheConfig {
    SessionCacheConfig::InProcess {
        max_staleness: Duration::from_secs(3600),
        max_age: Duration::from_secs(3600),
        capacity,
    }
}

/// Calls `whoami` for every token, the `fill` way.
fn fill(rt: &Runtime, identa: &Identa, tokens: &[(SessionToken, Uuid)], how: Fill) {
    match how {
        Fill::Library => {
            for (token, _) in tokens {
                rt.block_on(identa.whoami(token)).unwrap();
            }
        }
        Fill::Http => {
            let api = PublicApi::new(identa.clone(), HttpConfig::default());
            for (token, _) in tokens {
                let req = http::Request::get("/sessions/whoami")
                    .header("x-session-token", token.expose())
                    .body(Bytes::new())
                    .unwrap();
                let res = rt.block_on(api.handle(req));
                assert_eq!(res.status(), 200);
            }
        }
    }
}

/// Bytes per entry of a cache with room for all of `issued`, filled the `how` way.
fn entry_bytes(rt: &Runtime, url: &str, issued: &Issued, how: Fill) -> EntryBytes {
    // One call first, so pools, prepared statements and the event-log cursor exist.
    let engine = rt.block_on(support::email_engine(
        url,
        config(cache_config(issued.len() + 1)),
    ));
    fill(rt, &engine, &issued[..1], Fill::Library);
    let first = session_cache_usage(&engine);
    let rest = &issued[1..];
    let real = live_bytes(|| fill(rt, &engine, rest, how)) as f64 / rest.len() as f64;
    let usage = session_cache_usage(&engine);
    assert_eq!(
        usage.entries,
        issued.len(),
        "every session cached: a size meant to be within the bound is over it"
    );
    let estimated =
        (usage.estimated_bytes - first.estimated_bytes) as f64 / (usage.entries - 1) as f64;
    EntryBytes { real, estimated }
}

/// Traits with `fields` profile fields of `len` bytes each (and a `bio` of `bio` bytes).
fn profile_traits(n: usize, fields: usize, len: usize, bio: usize) -> Value {
    let profile: serde_json::Map<String, Value> = (0..fields)
        .map(|f| (format!("field_{f:02}"), json!("x".repeat(len))))
        .collect();
    json!({ "email": format!("sized{n}-{fields}-{bio}@example.com"), "profile": profile,
        "bio": "y".repeat(bio) })
}

/// Identities measured besides the seeded one-email ones, and their sessions.
const SIZED_IDENTITIES: usize = 200;

/// What the memory measurement reports.
struct Memory {
    /// (size, fill, bytes) for every size measured, the one-email identities first.
    sizes: Vec<(&'static str, Fill, EntryBytes)>,
    /// Bytes held at capacity, over capacity, after filling a small cache 3× over.
    at_capacity: f64,
    /// Whether that stayed within 1.5 × the one-email entry's bytes × capacity.
    bounded: bool,
}

/// The cache's memory: per entry, for one-email identities and larger ones (about 4 KiB
/// of traits, and near the bound), filled by the library's `whoami` and by the HTTP one
/// (which keeps the rendered answer); and bounded by a small capacity.
fn cache_memory(rt: &Runtime, url: &str, issued: &Issued) -> Memory {
    let mut sizes = Vec::new();
    for how in [Fill::Library, Fill::Http] {
        sizes.push(("one email", how, entry_bytes(rt, url, issued, how)));
    }
    let seeding = rt.block_on(support::email_engine(
        url,
        config(SessionCacheConfig::Disabled),
    ));
    // About 4 KiB of traits as JSON: 40 fields of 90 bytes.
    let four_k = rt.block_on(seed_with(&seeding, SIZED_IDENTITIES, &|n| {
        profile_traits(n, 40, 90, 0)
    }));
    let four_k_bytes = entry_bytes(rt, url, &four_k, Fill::Library);
    // Then as much more as a `bio` that leaves the entry 512 bytes short of the bound.
    let bio = SessionCacheConfig::MAX_ENTRY_BYTES - 512 - four_k_bytes.estimated as usize;
    let near = rt.block_on(seed_with(&seeding, SIZED_IDENTITIES, &|n| {
        profile_traits(n, 40, 90, bio)
    }));
    drop(seeding);
    sizes.push(("4 KiB traits", Fill::Library, four_k_bytes));
    sizes.push((
        "4 KiB traits",
        Fill::Http,
        entry_bytes(rt, url, &four_k, Fill::Http),
    ));
    for how in [Fill::Library, Fill::Http] {
        sizes.push(("near the bound", how, entry_bytes(rt, url, &near, how)));
    }

    let capacity = issued.len() / 5;
    let small = rt.block_on(support::email_engine(url, config(cache_config(capacity))));
    fill(rt, &small, &issued[..1], Fill::Library);
    // Three times the capacity in all: the cache starts over twice and ends full.
    let over: Vec<(SessionToken, Uuid)> = issued[1..3 * capacity].to_vec();
    let held = live_bytes(|| fill(rt, &small, &over, Fill::Library)) as f64;
    drop(small);
    let at_capacity = held / capacity as f64;
    let bounded = held <= sizes[0].2.real * capacity as f64 * 1.5;
    Memory {
        sizes,
        at_capacity,
        bounded,
    }
}

struct Backend {
    name: &'static str,
    small: SizeRun,
    large: SizeRun,
}

impl Backend {
    fn ratios(&self) -> Vec<(String, f64)> {
        let r = |a: f64, b: f64| a / b;
        let (s, l) = (&self.small, &self.large);
        vec![
            (
                format!("scale_{}_warm_ratio", self.name),
                r(l.warm.median_us, s.warm.median_us),
            ),
            (
                format!("scale_{}_warm_p99_ratio", self.name),
                r(l.warm.p99_us, s.warm.p99_us),
            ),
            (
                format!("scale_{}_cold_ratio", self.name),
                r(l.cold.median_us, s.cold.median_us),
            ),
            (
                format!("scale_{}_cold_p99_ratio", self.name),
                r(l.cold.p99_us, s.cold.p99_us),
            ),
        ]
    }
}

/// Reads the file at `path` through once, so the timings find it in the OS page cache, as a
/// running server's lookups do. Seeding a million sessions writes tens of gigabytes
/// through the WAL (about 200 MB/s for four minutes here), and on this machine that pushes
/// much of the file out of the page cache: the first lookups after seeding then wait on
/// the disk, which alone made the 1M cold p99 3.8 times the 100k one (docs/performance.md).
fn page_in(path: &std::path::Path) {
    let mut file = std::fs::File::open(path).unwrap();
    std::io::copy(&mut file, &mut std::io::sink()).unwrap();
}

fn sqlite(rt: &Runtime, memory: &mut Option<Memory>) -> Backend {
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(target) => tempfile::tempdir_in(target),
        None => tempfile::tempdir(),
    }
    .unwrap();
    let mut runs = Vec::new();
    for (n, size) in sizes().into_iter().enumerate() {
        let path = dir.path().join(format!("scale{n}.db"));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let (run, issued) = run_size(rt, &url, "sqlite", size, &|| page_in(&path));
        if n == 0 {
            *memory = Some(cache_memory(rt, &url, &issued));
        }
        drop(issued);
        std::fs::remove_file(&path).ok();
        runs.push(run);
    }
    Backend {
        name: "sqlite",
        small: runs[0],
        large: runs[1],
    }
}

#[cfg(feature = "postgres")]
fn postgres(rt: &Runtime) -> Option<Backend> {
    use sea_orm::sqlx;
    let Ok(base) = std::env::var("IDENTA_BENCH_POSTGRES_URL") else {
        eprintln!("PostgreSQL skipped: set IDENTA_BENCH_POSTGRES_URL");
        return None;
    };
    let admin = rt.block_on(sqlx::PgPool::connect(&base)).unwrap();
    let mut runs = Vec::new();
    for size in sizes() {
        let schema = format!("scale_{}", Uuid::new_v4().simple());
        // The schema name is generated here, never input.
        let create = sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"));
        rt.block_on(sqlx::query(create).execute(&admin)).unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        let settle = || {
            let pool = rt.block_on(sqlx::PgPool::connect(&url)).unwrap();
            for table in ["identa_identities", "identa_sessions"] {
                let analyze = sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"));
                rt.block_on(sqlx::query(analyze).execute(&pool)).unwrap();
            }
            rt.block_on(pool.close());
        };
        let (run, _) = run_size(rt, &url, "postgres", size, &settle);
        let drop = sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"));
        rt.block_on(sqlx::query(drop).execute(&admin)).unwrap();
        runs.push(run);
    }
    Some(Backend {
        name: "pg",
        small: runs[0],
        large: runs[1],
    })
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &Runtime) -> Option<Backend> {
    eprintln!("PostgreSQL skipped: build with --features postgres");
    None
}

fn main() {
    let rt = runtime();
    let mut memory = None;
    let mut backends = vec![sqlite(&rt, &mut memory)];
    backends.extend(postgres(&rt));

    let mut out = Vec::new();
    let mut met = true;
    for backend in &backends {
        for run in [&backend.small, &backend.large] {
            out.push((
                format!("scale_{}_{}_seed_s", backend.name, run.sessions),
                run.seed_s,
            ));
        }
        for (name, ratio) in backend.ratios() {
            met &= ratio <= TARGET_RATIO;
            out.push((name, ratio));
        }
    }
    if let Some(memory) = memory {
        let mib_per_1m = |bytes: f64| bytes * 1e6 / (1024.0 * 1024.0);
        for (size, how, bytes) in &memory.sizes {
            let honest = (1.0 / ESTIMATE_FACTOR..=ESTIMATE_FACTOR).contains(&bytes.ratio());
            println!(
                "cache entry, {size}, filled by {how:?}: {:.0} bytes ({:.0} MiB per 1M entries); estimated {:.0} ({:.2}x, within {ESTIMATE_FACTOR}x: {honest})",
                bytes.real,
                mib_per_1m(bytes.real),
                bytes.estimated,
                bytes.ratio()
            );
            met &= honest;
        }
        println!(
            "cache: a cache filled 3x past its capacity holds {:.0} bytes per entry of capacity (bounded: {}); no entry over {} bytes estimated",
            memory.at_capacity,
            memory.bounded,
            SessionCacheConfig::MAX_ENTRY_BYTES
        );
        for (key, how) in [("", Fill::Library), ("_rendered", Fill::Http)] {
            if let Some((_, _, bytes)) = memory.sizes.iter().find(|(_, h, _)| *h == how) {
                out.push((format!("scale_cache_bytes_per_entry{key}"), bytes.real));
                out.push((
                    format!("scale_cache_mib_per_1m{key}"),
                    mib_per_1m(bytes.real),
                ));
            }
        }
        let ratios = memory.sizes.iter().map(|(_, _, b)| b.ratio());
        out.push((
            "scale_cache_estimate_ratio_min".into(),
            ratios.clone().fold(f64::INFINITY, f64::min),
        ));
        out.push((
            "scale_cache_estimate_ratio_max".into(),
            ratios.fold(0.0, f64::max),
        ));
        met &= memory.bounded;
    }
    let line: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v:.2}")).collect();
    println!("{}", line.join(" "));
    if !met {
        std::process::exit(1);
    }
}
