//! Login over HTTP against the hashing bound. The same process first measures how many
//! password verifications per second the machine does at the default argon2 parameters
//! with the engine's concurrency bound (the *hashing bound*), then starts the axum host on
//! loopback (SQLite file, default parameters) and drives native logins through it from
//! concurrent clients (its own load generator: create a login flow, submit the password)
//! for a fixed time. It prints logins per second, their share of the hashing bound, and the
//! p50 and p99 latency of the submissions.
//!
//! `cargo bench -p identa-axum --bench login_http` — ends with one `name=value` line.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use identa::credential::password::Password;
use identa::credential::password::PasswordConfig;
use identa::credential::password::PasswordHasher;
use support::{BenchHost, PASSWORD, login, percentile};

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
const CLIENTS: usize = 8;

async fn hashing_bound() -> f64 {
    let hasher = PasswordHasher::new(PasswordConfig::default()).unwrap();
    let hash = hasher.hash(&Password::new(PASSWORD)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..PasswordConfig::default().concurrency() * 2)
        .map(|_| {
            let (hasher, hash, stop) = (hasher.clone(), hash.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert!(
                        hasher
                            .verify(&Password::new(PASSWORD), Some(&hash))
                            .await
                            .unwrap()
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;
    let start = Instant::now();
    tokio::time::sleep(MEASURE).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed() + WARM_UP;
    let mut total = 0u64;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / elapsed.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bound = hashing_bound().await;
    eprintln!("hashing bound: {bound:.1} verifications/s");

    // Every client logs in from 127.0.0.1, hundreds of times a minute: this measures
    // hashing throughput, not throttling (the bench host runs with IDENTA_LIMITS=off).
    let host = BenchHost::start().await;
    let (client, base) = (host.client.clone(), host.base.clone());
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base, measuring, stop) = (
                client.clone(),
                base.clone(),
                measuring.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let result = login(&client, &base)
                        .await
                        .and_then(|(latency, status)| status.is_success().then_some(latency));
                    if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        match result {
                            Some(latency) => latencies.push(latency),
                            None => failed += 1,
                        }
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    tokio::time::sleep(WARM_UP).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(MEASURE).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    let mut failed = 0;
    for c in clients {
        let (l, f) = c.await.unwrap();
        latencies.extend(l);
        failed += f;
    }
    latencies.sort();
    let per_s = latencies.len() as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    eprintln!(
        "logins over HTTP: {per_s:.1}/s with {CLIENTS} clients ({} ok, {failed} failed), p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    assert_eq!(failed, 0, "every login must succeed");
    println!(
        "login_http_per_s={per_s:.1} hash_bound_per_s={bound:.1} login_http_p50_ms={:.1} login_http_p99_ms={:.1} login_http_vs_hash_bound={:.3}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        per_s / bound
    );
    drop(host);
}
