//! Legitimate logins while a flood of wrong passwords hits the host: what the bounded
//! hashing queue buys. The axum host runs on loopback (SQLite file, default argon2
//! parameters, throttling off: every client here is 127.0.0.1, and what is measured is the
//! queue bound, not the per-address limits, which a flood from many addresses would get
//! past). One legitimate client signs in again and again (create a native login flow,
//! submit the right password), first on an idle host, then while 400 concurrent flooders
//! submit wrong passwords for unknown accounts to their own flows without pause. Each
//! phase runs for a fixed time. Before either, the legitimate client signs in once, as a
//! user would: from then on the host knows its (identifier, address) pair, and its
//! password checks wait in the hasher's priority lane (docs/security.md#known-pairs); the
//! flooders' unknown identifiers are never known. It prints the legitimate submissions'
//! p50 and p99 (answered
//! ones: signed in, or refused at once with 503 while the queue is full) and how many were
//! refused, then one `name=value` line with the ratio of the p99s.
//!
//! `cargo bench -p identa-axum --bench login_flood`. The load generator shares the
//! machine's cores with the host, so the flood also costs the host CPU outside hashing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{BenchHost, login, percentile};

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
const FLOODERS: usize = 400;

/// Runs the legitimate client for the warm-up and measuring time: the answered
/// latencies (sorted), and how many were refused with 503.
async fn legitimate(client: &reqwest::Client, base: &str) -> (Vec<Duration>, u64, u64) {
    let warm_until = Instant::now() + WARM_UP;
    while Instant::now() < warm_until {
        let _ = login(client, base).await;
    }
    let until = Instant::now() + MEASURE;
    let (mut latencies, mut ok, mut busy) = (Vec::new(), 0u64, 0u64);
    while Instant::now() < until {
        if let Some((latency, status)) = login(client, base).await {
            latencies.push(latency);
            match status {
                StatusCode::OK => ok += 1,
                StatusCode::SERVICE_UNAVAILABLE => busy += 1,
                other => panic!("a legitimate login was answered {other}"),
            }
        }
    }
    latencies.sort();
    (latencies, ok, busy)
}

fn report(phase: &str, latencies: &[Duration], ok: u64, busy: u64) -> (f64, f64) {
    let p50 = percentile(latencies, 0.50).as_secs_f64() * 1e3;
    let p99 = percentile(latencies, 0.99).as_secs_f64() * 1e3;
    eprintln!(
        "{phase}: {ok} signed in, {busy} refused busy (503); p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    (p50, p99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let host = BenchHost::start().await;
    let (client, base) = (&host.client, &host.base);
    // The honest way to a known pair: one successful sign-in from this address.
    let first = login(client, base).await.map(|(_, status)| status);
    assert_eq!(
        first,
        Some(StatusCode::OK),
        "the first sign-in must succeed"
    );
    let (idle, ok, busy) = legitimate(client, base).await;
    let (idle_p50, idle_p99) = report("idle", &idle, ok, busy);

    let stop = Arc::new(AtomicBool::new(false));
    let (answered, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|i| {
            let (client, base, stop) = (reqwest::Client::new(), base.clone(), stop.clone());
            let (answered, refused) = (answered.clone(), refused.clone());
            tokio::spawn(async move {
                let Ok(res) = client
                    .get(format!("{base}/self-service/login/api"))
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(flow) = res.json::<Value>().await else {
                    return;
                };
                let url = format!("{base}/self-service/login?flow={}", flow["id"].as_str().unwrap_or_default());
                let body = json!({ "method": "password", "identifier": format!("nobody{i}@example.com"), "password": "a wrong guess" });
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(res) = client.post(&url).json(&body).send().await {
                        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                        let _ = res.bytes().await;
                    }
                }
            })
        })
        .collect();
    let (flooded, ok, busy) = legitimate(client, base).await;
    stop.store(true, Ordering::Relaxed);
    let (flood_p50, flood_p99) = report("under flood", &flooded, ok, busy);
    for f in flooders {
        let _ = f.await;
    }
    let (answered, refused) = (
        answered.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    eprintln!(
        "flood: {answered} wrong-password submissions answered, {refused} of them refused busy (503)"
    );
    println!(
        "login_flood_idle_p50_ms={idle_p50:.1} login_flood_idle_p99_ms={idle_p99:.1} login_flood_p50_ms={flood_p50:.1} login_flood_p99_ms={flood_p99:.1} login_flood_legit_busy={busy} login_flood_legit_ok={ok} login_flood_p99_vs_idle={:.2}",
        flood_p99 / idle_p99
    );
    drop(host);
}
