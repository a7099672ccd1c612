//! `whoami` (token -> session + identity) on a SQLite file holding 100,000 sessions
//! of 1,000 identities, side by side with a raw rusqlite prepared point lookup of the
//! same session row (the floor any SQLite-backed lookup can reach):
//!
//! - `identa_whoami`: the default engine (in-process cache, revocations from other
//!   processes seen within 1 s), warmed over all 100,000 sessions first;
//! - `identa_whoami_uncached`: the cache disabled, every call reads the database (on a
//!   SQLite file, through identa's read-only rusqlite connections);
//! - `rusqlite_point_lookup`: `SELECT … FROM identa_sessions WHERE token_hash = ?`,
//!   prepared once.
//!
//! Where the uncached call's time goes, step by step from that floor (each a baseline of
//! its own): `rusqlite_whoami_statement` runs identa's own statement (the session joined to
//! its identity, `src/store/seaorm/session_read.rs`) through rusqlite, reading every
//! column; `sqlx_point_lookup_sqlite` and `sqlx_whoami_statement_sqlite` run the session-row
//! query and identa's statement through sqlx (a pool of its own on the same file, as
//! sea-orm's), reading one column: what sqlx-sqlite adds (its worker thread per connection
//! and the channel hops to it) before identa decodes anything — the cost that made identa
//! read a SQLite file through rusqlite instead.
//!
//! With the `postgres` feature and `IDENTA_BENCH_POSTGRES_URL` set, the same data goes
//! into a fresh PostgreSQL schema, and identa's uncached `whoami` runs beside a raw sqlx
//! point query of the same row: on a pool with sqlx's defaults (`sqlx_point_lookup`,
//! which pings each connection it hands out) and on one that does not ping
//! (`sqlx_point_lookup_no_ping`, as identa's pool does for connections in use). A third
//! baseline, `sqlx_whoami_statement_no_ping`, runs identa's own statement (the session
//! joined to its identity) raw: what identa adds on top of its query.

use std::time::Duration;

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use identa::SessionCacheConfig;
use identa::credential::password::Password;
use identa::credential::password::PasswordConfig;
use identa::identity::Aal;
use identa::session::AuthenticationMethod;
use identa::session::SessionToken;
use identa::{Config, Identa, Secrets};
use serde_json::json;
use tokio::runtime::Runtime;

const IDENTITIES: usize = 1_000;
const SESSIONS: usize = 100_000;
/// Steps through the tokens in an order unrelated to insertion.
const STRIDE: usize = 7_919;
/// The session row, as both lookups read it.
macro_rules! row_query {
    ($param:literal) => {
        concat!(
            "SELECT id, identity_id, active, issued_at, authenticated_at, expires_at, aal, ",
            "authentication_methods, devices FROM identa_sessions WHERE token_hash = ",
            $param
        )
    };
}

/// The statement identa's uncached `whoami` runs on SQLite (the library's own text).
const WHOAMI_STATEMENT_SQLITE: &str = concat!(
    include_str!("../src/store/seaorm/session_by_token.sql"),
    " ?1"
);

/// The statement identa's uncached `whoami` runs on PostgreSQL (the library's own text).
#[cfg(feature = "postgres")]
const WHOAMI_STATEMENT: &str = concat!(
    include_str!("../src/store/seaorm/session_by_token.sql"),
    " $1"
);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The cookie secrets every engine of a run shares: tokens are tagged under them, so an
/// engine with secrets of its own would refuse the others' tokens as forged.
fn secrets() -> &'static Secrets {
    static SECRETS: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();
    SECRETS.get_or_init(Secrets::default)
}

fn engine(rt: &Runtime, url: &str, cache: SessionCacheConfig) -> Identa {
    let mut config = Config {
        password: PasswordConfig::insecure_fast_for_tests(),
        secrets: secrets().clone(),
        ..Config::default()
    };
    config.session.cache = cache;
    rt.block_on(support::email_engine(url, config))
}

/// 1,000 identities with 100 sessions each; returns the tokens.
fn seed(rt: &Runtime, identa: &Identa) -> Vec<SessionToken> {
    rt.block_on(async {
        let pw = Password::new("bench password 123");
        let mut identities = Vec::with_capacity(IDENTITIES);
        for n in 0..IDENTITIES {
            let traits = json!({ "email": format!("user{n}@example.com") });
            identities.push(identa.register(traits, &pw).await.unwrap());
        }
        let mut tokens = Vec::with_capacity(SESSIONS);
        for n in 0..SESSIONS {
            let identity = &identities[n % IDENTITIES];
            let method = AuthenticationMethod {
                method: "password".into(),
                aal: Aal::Aal1,
                completed_at: identity.created_at,
            };
            let (_, token) = identa
                .issue_session(identity, vec![method], None)
                .await
                .unwrap();
            tokens.push(token);
        }
        tokens
    })
}

fn session_lookup_sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let url = format!("sqlite://{}", path.display());
    let identa = engine(&rt, &url, SessionCacheConfig::default());
    let tokens = seed(&rt, &identa);
    let uncached = engine(&rt, &url, SessionCacheConfig::Disabled);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = raw.prepare(row_query!("?1")).unwrap();

    // Steady state: every session has been seen once, as in a running service.
    rt.block_on(async {
        for token in &tokens {
            identa.whoami(token).await.unwrap();
        }
    });

    let mut group = c.benchmark_group("session_lookup_sqlite_100k");
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    group.bench_function("identa_whoami", |b| {
        b.iter(|| {
            i = (i + STRIDE) % SESSIONS;
            rt.block_on(identa.whoami(&tokens[i])).unwrap()
        })
    });
    group.bench_function("identa_whoami_uncached", |b| {
        b.iter(|| {
            i = (i + STRIDE) % SESSIONS;
            rt.block_on(uncached.whoami(&tokens[i])).unwrap()
        })
    });
    group.bench_function("rusqlite_point_lookup", |b| {
        b.iter(|| {
            i = (i + STRIDE) % SESSIONS;
            let hash = tokens[i].hash();
            stmt.query_row([hash.as_bytes().as_slice()], |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                ))
            })
            .unwrap()
        })
    });
    let mut joined = raw.prepare(WHOAMI_STATEMENT_SQLITE).unwrap();
    group.bench_function("rusqlite_whoami_statement", |b| {
        b.iter(|| {
            i = (i + STRIDE) % SESSIONS;
            let hash = tokens[i].hash();
            joined
                .query_row([hash.as_bytes().as_slice()], |row| {
                    let mut text = 0usize;
                    for c in 0..19 {
                        text += match row.get_ref(c)? {
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => t.len(),
                            _ => 0,
                        };
                    }
                    Ok(text)
                })
                .unwrap()
        })
    });
    {
        use sea_orm::sqlx::{self, Row};
        let pool = rt.block_on(sqlx::SqlitePool::connect(&url)).unwrap();
        for (name, statement) in [
            ("sqlx_point_lookup_sqlite", row_query!("?1")),
            ("sqlx_whoami_statement_sqlite", WHOAMI_STATEMENT_SQLITE),
        ] {
            group.bench_function(name, |b| {
                b.iter(|| {
                    i = (i + STRIDE) % SESSIONS;
                    let hash = tokens[i].hash().as_bytes().to_vec();
                    rt.block_on(sqlx::query(statement).bind(hash).fetch_one(&pool))
                        .unwrap()
                        .get::<Vec<u8>, _>(0)
                })
            });
        }
    }
    // A token no secret of this engine tagged: refused before the cache and the store
    // (benches/forged_tokens.rs measures this path on its own).
    let forged = SessionToken::from_client(format!("identa_st_{}", "A".repeat(64)));
    group.bench_function("identa_whoami_forged_token", |b| {
        b.iter(|| assert!(rt.block_on(identa.whoami(&forged)).is_err()))
    });
    group.finish();
}

#[cfg(feature = "postgres")]
fn session_lookup_postgres(c: &mut Criterion) {
    use sea_orm::sqlx::{self, Row};
    let Ok(base) = std::env::var("IDENTA_BENCH_POSTGRES_URL") else {
        eprintln!("PostgreSQL lookup skipped: set IDENTA_BENCH_POSTGRES_URL");
        return;
    };
    let rt = runtime();
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let pool = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&base).await.unwrap();
        // The schema name is generated here, never input.
        let create = sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"));
        sqlx::query(create).execute(&pool).await.unwrap();
        pool.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={schema}");
        sqlx::PgPool::connect(&url).await.map(|p| (p, url)).unwrap()
    });
    let (raw, url) = pool;
    let uncached = engine(&rt, &url, SessionCacheConfig::Disabled);
    let tokens = seed(&rt, &uncached);

    let mut group = c.benchmark_group("session_lookup_postgres_100k");
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    group.bench_function("identa_whoami_uncached", |b| {
        b.iter(|| {
            i = (i + STRIDE) % SESSIONS;
            rt.block_on(uncached.whoami(&tokens[i])).unwrap()
        })
    });
    let no_ping = rt.block_on(
        sqlx::postgres::PgPoolOptions::new()
            .test_before_acquire(false)
            .connect(&url),
    );
    let no_ping = no_ping.unwrap();
    for (name, pool, statement) in [
        ("sqlx_point_lookup", &raw, row_query!("$1")),
        ("sqlx_point_lookup_no_ping", &no_ping, row_query!("$1")),
        ("sqlx_whoami_statement_no_ping", &no_ping, WHOAMI_STATEMENT),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + STRIDE) % SESSIONS;
                let hash = tokens[i].hash().as_bytes().to_vec();
                rt.block_on(sqlx::query(statement).bind(hash).fetch_one(pool))
                    .unwrap()
                    .get::<uuid::Uuid, _>(0)
            })
        });
    }
    group.finish();
    rt.block_on(async {
        let drop = sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"));
        sqlx::query(drop).execute(&raw).await.unwrap();
    });
}

#[cfg(not(feature = "postgres"))]
fn session_lookup_postgres(_: &mut Criterion) {
    eprintln!("PostgreSQL lookup skipped: build with --features postgres");
}

criterion_group!(benches, session_lookup_sqlite, session_lookup_postgres);
criterion_main!(benches);
