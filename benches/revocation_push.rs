//! How long a revocation takes to reach another instance on PostgreSQL: two engines, each
//! on its own pool, on one database. Engine A signs a user in; engine B caches the session
//! (its bound on reading the event log is an hour, so only the push can tell it); A signs
//! the user out, and B's `whoami` is retried (yielding between tries) until it refuses.
//! The time from A's logout returning (its transaction committed) to B's refusal is the
//! push latency. Prints the median, p99 and maximum over the rounds, and one line of
//! name=value pairs:
//!
//! ```text
//! IDENTA_BENCH_POSTGRES_URL=postgres://user:pass@127.0.0.1/db \
//!   cargo bench --features postgres --bench revocation_push
//! ```

#[cfg(feature = "postgres")]
mod support;

#[cfg(feature = "postgres")]
#[tokio::main(worker_threads = 2)]
async fn main() {
    use std::time::{Duration, Instant};

    use identa::credential::password::{Password, PasswordConfig};
    use identa::{Config, SessionCacheConfig};
    use serde_json::json;

    const ROUNDS: usize = 200;

    let Ok(base) = std::env::var("IDENTA_BENCH_POSTGRES_URL") else {
        eprintln!("revocation push skipped: set IDENTA_BENCH_POSTGRES_URL");
        return;
    };
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    {
        use sea_orm::sqlx;
        let pool = sqlx::PgPool::connect(&base).await.unwrap();
        // The schema name is generated here, never input.
        let create = sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"));
        sqlx::query(create).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let config = |cache| {
        let mut config = Config {
            password: PasswordConfig::insecure_fast_for_tests(),
            ..Config::default()
        };
        config.session.cache = cache;
        config
    };
    let a = support::email_engine(&url, config(SessionCacheConfig::default())).await;
    let hour = Duration::from_secs(3_600);
    let b = support::email_engine(
        &url,
        config(SessionCacheConfig::InProcess {
            max_staleness: hour,
            max_age: hour,
            capacity: 100_000,
        }),
    )
    .await;
    assert!(
        identa::testing::session_push_listening(&b).await,
        "B is not listening"
    );

    let pw = Password::new("bench password 123");
    a.register(json!({ "email": "ada@example.com" }), &pw)
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let login = a.login("ada@example.com", &pw, None).await.unwrap();
        b.whoami(&login.token).await.unwrap();
        b.whoami(&login.token).await.unwrap();
        a.logout(&login.token).await.unwrap();
        let committed = Instant::now();
        while b.whoami(&login.token).await.is_ok() {
            assert!(
                committed.elapsed() < Duration::from_secs(10),
                "never refused"
            );
            tokio::task::yield_now().await;
        }
        latencies.push(committed.elapsed());
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p50 = ms(latencies[ROUNDS / 2]);
    let p99 = ms(latencies[ROUNDS * 99 / 100]);
    let max = ms(latencies[ROUNDS - 1]);
    println!(
        "commit on A to refusal on B over {ROUNDS} rounds: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"
    );
    println!(
        "revocation_push_p50_ms={p50:.3} revocation_push_p99_ms={p99:.3} revocation_push_max_ms={max:.3}"
    );
}

#[cfg(not(feature = "postgres"))]
fn main() {
    eprintln!("revocation push skipped: build with --features postgres");
}
