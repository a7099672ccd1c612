//! Importing a user base: batches of 1,000 identities with pre-made bcrypt hashes
//! (Kratos's batch size, the hashes as a Kratos or legacy export carries them), through
//! `Identa::import_identities`, on a SQLite file (default durability) and, with the
//! `postgres` feature and `IDENTA_BENCH_POSTGRES_URL` (or `IDENTA_TEST_POSTGRES_URL`) set,
//! on PostgreSQL. Import checks a hash's format and cost but never verifies it, so a few
//! cost-12 hashes made once in setup stand for a thousand. Throughput is reported in
//! identities per second.
//!
//! `cargo bench --bench import` (`--all-features` for PostgreSQL)

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use identa::identity::NewIdentity;
use identa::{Config, Identa, IdentityImport, PasswordImport};
use serde_json::json;

const BATCH: usize = 1_000;
/// Distinct hashes made in setup (cost 12 takes a while each; import does not verify).
const HASHES: usize = 8;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hashes() -> Vec<String> {
    (0..HASHES)
        .map(|n| bcrypt::hash(format!("imported password {n}"), 12).unwrap())
        .collect()
}

/// Imports batch number `round`: all of it must be created.
async fn import_batch(identa: &Identa, hashes: &[String], round: usize) {
    let imports = (0..BATCH)
        .map(|n| IdentityImport {
            identity: NewIdentity {
                traits: json!({ "email": format!("user{round}-{n}@example.com") }),
                ..NewIdentity::default()
            },
            password: PasswordImport::Hashed(hashes[n % hashes.len()].clone()),
        })
        .collect();
    let answers = identa.import_identities(imports).await.unwrap();
    assert!(answers.iter().all(Result::is_ok));
}

fn bench_on(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, identa: &Identa) {
    let hashes = hashes();
    let round = AtomicUsize::new(0);
    let mut group = c.benchmark_group("import_1000_bcrypt");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            let n = round.fetch_add(1, Ordering::Relaxed);
            rt.block_on(import_batch(identa, &hashes, n))
        })
    });
    group.finish();
}

fn import_sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let identa = rt.block_on(support::email_engine(&url, Config::default()));
    bench_on(c, &rt, "sqlite_file", &identa);
}

#[cfg(feature = "postgres")]
fn import_postgres(c: &mut Criterion) {
    use sea_orm::sqlx;
    let Ok(base) = std::env::var("IDENTA_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("IDENTA_TEST_POSTGRES_URL"))
    else {
        eprintln!("PostgreSQL import skipped: set IDENTA_BENCH_POSTGRES_URL");
        return;
    };
    let rt = runtime();
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let url = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&base).await.unwrap();
        // The schema name is generated here, never input.
        let create = sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"));
        sqlx::query(create).execute(&pool).await.unwrap();
        pool.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options[search_path]={schema}")
    });
    let identa = rt.block_on(support::email_engine(&url, Config::default()));
    bench_on(c, &rt, "postgres", &identa);
}

#[cfg(not(feature = "postgres"))]
fn import_postgres(_: &mut Criterion) {
    eprintln!("PostgreSQL import skipped: build with --features postgres");
}

criterion_group!(benches, import_sqlite, import_postgres);
criterion_main!(benches);
