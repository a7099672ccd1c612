//! What SQLite's durability setting costs a write: registration (an identity with its
//! credential and addresses, one transaction) and password login (a session row, one
//! transaction) on a SQLite file in WAL mode, with `synchronous=FULL` (identa's default:
//! every commit is fsynced) and `synchronous=NORMAL` (commits are fsynced at checkpoints
//! only). Password hashing uses the cheap test parameters so that the storage cost shows;
//! at the default argon2 parameters a hash (about 15 ms here) dominates both operations.
//!
//! `cargo bench --bench sqlite_durability`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use identa::credential::password::{Password, PasswordConfig};
use identa::store::{SqliteDurability, StoreOptions};
use identa::{Config, Identa};
use serde_json::json;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An engine on a fresh SQLite file in `dir`, with `durability`.
fn engine(rt: &Runtime, dir: &tempfile::TempDir, durability: SqliteDurability) -> Identa {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("identa.db").display()
    );
    let config = Config {
        password: PasswordConfig::insecure_fast_for_tests(),
        ..Config::default()
    };
    let options = StoreOptions {
        sqlite_durability: durability,
    };
    rt.block_on(support::email_engine_with(&url, options, config))
}

fn sqlite_durability(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("sqlite_durability");
    group.measurement_time(Duration::from_secs(5));
    let pw = Password::new("bench password 123");
    for (name, durability) in [
        ("full", SqliteDurability::Full),
        ("normal", SqliteDurability::Normal),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let identa = engine(&rt, &dir, durability);
        let n = AtomicUsize::new(0);
        group.bench_function(format!("register_{name}"), |b| {
            b.iter(|| {
                let email = format!("user{}@example.com", n.fetch_add(1, Ordering::Relaxed));
                rt.block_on(identa.register(json!({ "email": email }), &pw))
                    .unwrap()
            })
        });
        group.bench_function(format!("login_{name}"), |b| {
            b.iter(|| {
                rt.block_on(identa.login("user0@example.com", &pw, None))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sqlite_durability);
criterion_main!(benches);
