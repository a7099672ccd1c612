//! `whoami` over HTTP against its floor. The same process seeds a SQLite file through the
//! axum host's own engine (1,000 identities, 100,000 sessions; `IDENTA_BENCH_SESSIONS`
//! changes the count), then serves two things on loopback:
//!
//! - the axum host (`identa_axum::start`, defaults but for cheap password hashing and
//!   `synchronous=NORMAL`, which only the seeding writes feel), answering
//!   `GET /sessions/whoami`;
//! - the *floor*: a minimal axum server that reads the same session row joined to its
//!   identity's state by token hash with a prepared rusqlite statement (one read-only
//!   connection per worker thread), makes the same freshness checks (active, not
//!   expired, identity active), and answers the bytes identa answered for that session
//!   (taken once from identa's own answers), with the same headers.
//!
//! Its own load generator (raw keep-alive HTTP/1.1 on tokio, requests built beforehand)
//! then drives each in turn, identa first, from 2 threads with 32 connections each, every
//! connection cycling through its own share of the tokens: a warm-up, then a fixed
//! measuring time. Every answer must be a 200. It prints rates, p50 and p99, and the ratio.
//!
//! `cargo bench -p identa-axum --bench whoami_http` — ends with one `name=value` line.

#[allow(dead_code)] // the login helpers are the login benches'
mod support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use identa::credential::password::{Password, PasswordConfig};
use identa::identity::Aal;
use identa::session::{AuthenticationMethod, SessionToken};
use identa::store::SqliteDurability;
use identa_axum::{HostConfig, start};
use identa_host::{HostLimits, Throttling};
use serde_json::json;
use support::percentile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDENTITIES: usize = 1_000;
const SESSIONS: usize = 100_000;
const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
const CLIENT_THREADS: usize = 2;
const CONNECTIONS_PER_THREAD: usize = 32;
const IDENTITY_HEADER: &str = "x-kratos-authenticated-identity-id";

/// The floor's read: the session row by token hash, with its identity's state.
const FLOOR_QUERY: &str = "SELECT s.id, s.active, s.expires_at, i.state \
     FROM identa_sessions s JOIN identa_identities i ON i.id = s.identity_id \
     WHERE s.token_hash = ?1";

/// What the floor answers for a session: identa's bytes and its identity header.
struct Answer {
    body: Bytes,
    identity: HeaderValue,
}

struct Floor {
    path: PathBuf,
    /// Session id (as stored) → the answer identa gave for it.
    answers: HashMap<Box<[u8]>, Answer>,
}

thread_local! {
    static FLOOR_DB: RefCell<Option<rusqlite::Connection>> = const { RefCell::new(None) };
}

fn refused() -> Response {
    (StatusCode::UNAUTHORIZED, "session_inactive").into_response()
}

/// A timestamp as sea-orm's SQLite backend stores it.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn floor_whoami(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let Some(token) = headers.get("x-session-token").and_then(|v| v.to_str().ok()) else {
        return refused();
    };
    let hash = SessionToken::from_client(token).hash();
    let now = identa::Clock::now(&identa::SystemClock);
    let found = FLOOR_DB.with(|db| {
        let mut db = db.borrow_mut();
        let conn = db.get_or_insert_with(|| {
            rusqlite::Connection::open_with_flags(
                &floor.path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .unwrap()
        });
        let mut stmt = conn.prepare_cached(FLOOR_QUERY).unwrap();
        let mut rows = stmt.query([hash.as_bytes().as_slice()]).unwrap();
        let row = rows.next().unwrap()?;
        let usable = row.get::<_, bool>(1).unwrap()
            && row
                .get_ref(2)
                .unwrap()
                .as_str()
                .ok()
                .and_then(parse_time)
                .is_some_and(|expires| expires > now)
            && row.get_ref(3).unwrap().as_str().ok() == Some("active");
        let id = row.get_ref(0).unwrap().as_blob().unwrap();
        usable.then(|| floor.answers.get(id)).flatten()
    });
    let Some(answer) = found else {
        return refused();
    };
    let mut res = Response::new(axum::body::Body::from(answer.body.clone()));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(IDENTITY_HEADER, answer.identity.clone());
    res
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends one pre-built request and reads its answer; true for a 200.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    stream.write_all(request).await?;
    buf.clear();
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let ok = head.starts_with("HTTP/1.1 200");
            while buf.len() < end + 4 + length {
                if stream.read_buf(buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            return Ok(ok);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

struct Measured {
    per_s: f64,
    p50: Duration,
    p99: Duration,
    answered: usize,
}

/// Drives `addr` with every request in `requests` (spread over the connections) from
/// its own runtime: a warm-up, then `MEASURE`.
fn drive(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>) -> Measured {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CLIENT_THREADS)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let connections = CLIENT_THREADS * CONNECTIONS_PER_THREAD;
        let measuring = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let (requests, measuring, stop) =
                    (requests.clone(), measuring.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut buf = Vec::with_capacity(16 * 1024);
                    let mut latencies = Vec::with_capacity(200_000);
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let ok = exchange(&mut stream, &requests[i], &mut buf).await.unwrap();
                        let took = started.elapsed();
                        assert!(ok, "every whoami must answer 200");
                        if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                            latencies.push(took);
                        }
                        i = (i + connections) % requests.len();
                    }
                    latencies
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
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        latencies.sort();
        Measured {
            per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            answered: latencies.len(),
        }
    })
}

fn request(token: &SessionToken) -> Vec<u8> {
    format!(
        "GET /sessions/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nX-Session-Token: {}\r\n\r\n",
        token.expose()
    )
    .into_bytes()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sessions: usize = std::env::var("IDENTA_BENCH_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SESSIONS);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identa.db");
    let config = HostConfig {
        database_url: format!("sqlite://{}?mode=rwc", path.display()),
        sqlite_synchronous: SqliteDurability::Normal,
        public_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        secrets_file: None,
        password: PasswordConfig::insecure_fast_for_tests(),
        limits: HostLimits {
            throttling: Throttling::Off,
            ..HostLimits::default()
        },
        ..HostConfig::default()
    };
    let running = start(config).await.unwrap();
    let base = format!("http://{}", running.public_addr);

    let seeding = Instant::now();
    let identa = running.identa.clone();
    let pw = Password::new("bench password 123");
    let mut identities = Vec::with_capacity(IDENTITIES);
    for n in 0..IDENTITIES {
        let traits = json!({ "email": format!("user{n}@example.com") });
        identities.push(identa.register(traits, &pw).await.unwrap());
    }
    let mut tokens = Vec::with_capacity(sessions);
    for n in 0..sessions {
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
    eprintln!(
        "seeded {IDENTITIES} identities, {sessions} sessions in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    // identa's answer for every session, taken over HTTP (which also warms its cache, as
    // in a running service where every session has been seen once).
    let client = reqwest::Client::new();
    let mut answers = HashMap::with_capacity(sessions);
    for token in &tokens {
        let res = client
            .get(format!("{base}/sessions/whoami"))
            .header("x-session-token", token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let identity = res.headers()[IDENTITY_HEADER].clone();
        let body = res.bytes().await.unwrap();
        let me: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let id = uuid_bytes(me["id"].as_str().unwrap());
        answers.insert(
            id,
            Answer {
                body,
                identity: HeaderValue::from_bytes(identity.as_bytes()).unwrap(),
            },
        );
    }

    let floor = Arc::new(Floor {
        path: path.clone(),
        answers,
    });
    let app = axum::Router::new()
        .route("/sessions/whoami", axum::routing::get(floor_whoami))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let floor_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Same bytes out: the floor's answer is identa's, headers included.
    for token in tokens.iter().take(100) {
        let get = |base: String| {
            let client = client.clone();
            async move {
                let res = client
                    .get(format!("{base}/sessions/whoami"))
                    .header("x-session-token", token.expose())
                    .send()
                    .await
                    .unwrap();
                let headers = [
                    header::CONTENT_TYPE.as_str(),
                    "cache-control",
                    IDENTITY_HEADER,
                ]
                .map(|h| res.headers()[h].clone());
                (res.status(), headers, res.bytes().await.unwrap())
            }
        };
        assert_eq!(
            get(base.clone()).await,
            get(format!("http://{floor_addr}")).await
        );
    }

    let requests = Arc::new(tokens.iter().map(request).collect::<Vec<_>>());
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let load_before = load();
    let (identa_addr, floor_requests) = (running.public_addr, requests.clone());
    let ours = tokio::task::spawn_blocking(move || drive(identa_addr, requests))
        .await
        .unwrap();
    let floor = tokio::task::spawn_blocking(move || drive(floor_addr, floor_requests))
        .await
        .unwrap();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    eprintln!(
        "whoami over HTTP ({} connections, {sessions} sessions; load average before {load_before}, after {}):\n  identa {:.0}/s ({} answers), p50 {:.0} µs, p99 {:.0} µs\n  floor  {:.0}/s ({} answers), p50 {:.0} µs, p99 {:.0} µs",
        CLIENT_THREADS * CONNECTIONS_PER_THREAD,
        load(),
        ours.per_s,
        ours.answered,
        us(ours.p50),
        us(ours.p99),
        floor.per_s,
        floor.answered,
        us(floor.p50),
        us(floor.p99),
    );
    println!(
        "whoami_http_per_s={:.0} whoami_http_floor_per_s={:.0} whoami_http_vs_floor={:.3} whoami_http_p50_us={:.0} whoami_http_p99_us={:.0} whoami_http_floor_p50_us={:.0} whoami_http_floor_p99_us={:.0}",
        ours.per_s,
        floor.per_s,
        ours.per_s / floor.per_s,
        us(ours.p50),
        us(ours.p99),
        us(floor.p50),
        us(floor.p99),
    );
    drop(running);
}

/// A session id as the SQLite store keeps it (16 bytes).
fn uuid_bytes(text: &str) -> Box<[u8]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
