//! Peak memory under a burst of logins: 200 concurrent password logins at the default
//! argon2 parameters (m = 19456 KiB), then the process's peak resident set (VmHWM) is
//! compared with the target, (concurrency bound × argon2 memory) + 64 MiB. Every login
//! must complete: the bound queues, it does not fail open. The queue is made deep enough
//! for all 200 and throttling is off (they all try one account): this measures memory,
//! not the queue bound (see `login_flood` in examples/axum).
//!
//! `cargo bench --bench login_memory` prints one `name=value` line and exits non-zero if
//! the target is missed.

use std::time::Instant;

mod support;

use identa::Config;
use identa::credential::password::Password;
use serde_json::json;

const LOGINS: usize = 200;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut config = Config {
        throttle: identa::throttle::ThrottleConfig::Off,
        ..Config::default()
    };
    config.password.max_waiting_per_slot = LOGINS;
    let bound = config.password.concurrency() as u64;
    let target_kib = bound * u64::from(config.password.memory_kib) + 64 * 1024;
    let identa = support::email_engine("sqlite::memory:", config).await;
    let pw = "correct horse battery staple";
    identa
        .register(json!({ "email": "ada@example.com" }), &Password::new(pw))
        .await
        .unwrap();
    let start = Instant::now();
    let logins: Vec<_> = (0..LOGINS)
        .map(|n| {
            let identa = identa.clone();
            tokio::spawn(async move {
                // Every other login uses a wrong password: both paths hash.
                let attempt = if n % 2 == 0 { pw } else { "not the password" };
                identa
                    .login("ada@example.com", &Password::new(attempt), None)
                    .await
                    .is_ok()
                    == (n % 2 == 0)
            })
        })
        .collect();
    let mut done = 0;
    for login in logins {
        assert!(login.await.unwrap(), "a login answered wrongly");
        done += 1;
    }
    let elapsed = start.elapsed();
    let peak = peak_rss_kib().unwrap_or(0);
    println!(
        "login_memory: {done} logins in {:.2} s, concurrency bound {bound}, peak RSS {:.1} MiB, target {:.1} MiB",
        elapsed.as_secs_f64(),
        peak as f64 / 1024.0,
        target_kib as f64 / 1024.0
    );
    println!(
        "login_memory_peak_mib={:.1} login_memory_target_mib={:.1} logins_per_s={:.1}",
        peak as f64 / 1024.0,
        target_kib as f64 / 1024.0,
        done as f64 / elapsed.as_secs_f64()
    );
    if done != LOGINS || peak > target_kib {
        std::process::exit(1);
    }
}
