//! Forged session tokens (issue 16): what `whoami` costs for a token no configured cookie
//! secret tagged, on a SQLite file holding 1,000 live sessions, and whether a flood of
//! them touches the database.
//!
//! - `identa_whoami_forged_token`: a random token of the right shape;
//! - `identa_whoami_flipped_tag`: a real token with one bit of its tag flipped;
//! - `identa_whoami_cached` (for scale): a real token, answered from the cache.
//!
//! Then 10,000 distinct garbage tokens (random right-shaped ones, real ones with a flipped
//! tag bit, random text) go through `whoami` on an engine whose store counts every
//! statement it runs; the bench prints `garbage_tokens_store_reads=<n>` (0 is the claim)
//! and `garbage_tokens_per_s=<rate>` on one thread.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use criterion::{Criterion, criterion_group, criterion_main};
use identa::credential::password::{Password, PasswordConfig};
use identa::identity::SchemaRegistry;
use identa::session::SessionToken;
use identa::store::SeaOrmStore;
use identa::{Config, Identa};
use serde_json::json;
use tokio::runtime::Runtime;

const SESSIONS: usize = 1_000;
const GARBAGE: usize = 10_000;

fn engine(store: SeaOrmStore, config: Config) -> Identa {
    let mut schemas = SchemaRegistry::new();
    schemas
        .add(
            "default",
            json!({ "type": "object", "properties": { "traits": { "type": "object",
                "properties": { "email": { "type": "string", "format": "email",
                    "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } } } } } } }),
        )
        .unwrap();
    Identa::builder()
        .store(store)
        .schemas(schemas)
        .config(config)
        .build()
        .unwrap()
}

fn random_shape() -> SessionToken {
    let bytes: [u8; 48] = rand::random();
    SessionToken::from_client(format!(
        "identa_st_{}",
        Base64UrlUnpadded::encode_string(&bytes)
    ))
}

fn flipped(token: &SessionToken, bit: usize) -> SessionToken {
    let body = &token.expose()["identa_st_".len()..];
    let mut bytes = Base64UrlUnpadded::decode_vec(body).unwrap();
    let last = bytes.len() - 1 - (bit / 8) % 16;
    bytes[last] ^= 1 << (bit % 8);
    SessionToken::from_client(format!(
        "identa_st_{}",
        Base64UrlUnpadded::encode_string(&bytes)
    ))
}

fn forged_tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = Config {
        password: PasswordConfig::insecure_fast_for_tests(),
        ..Config::default()
    };
    let store = rt.block_on(SeaOrmStore::connect(&url)).unwrap();
    let identa = engine(store.clone(), config.clone());
    let tokens = seed(&rt, &identa);

    let forged = random_shape();
    let flipped_tag = flipped(&tokens[0], 0);
    rt.block_on(identa.whoami(&tokens[1])).unwrap();
    let mut group = c.benchmark_group("forged_tokens_sqlite");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("identa_whoami_forged_token", |b| {
        b.iter(|| assert!(rt.block_on(identa.whoami(&forged)).is_err()))
    });
    group.bench_function("identa_whoami_flipped_tag", |b| {
        b.iter(|| assert!(rt.block_on(identa.whoami(&flipped_tag)).is_err()))
    });
    group.bench_function("identa_whoami_cached", |b| {
        b.iter(|| rt.block_on(identa.whoami(&tokens[1])).unwrap())
    });
    group.finish();

    flood(&rt, &store, config, &tokens);
}

fn seed(rt: &Runtime, identa: &Identa) -> Vec<SessionToken> {
    rt.block_on(async {
        let ada = identa
            .register(
                json!({ "email": "ada@example.com" }),
                &Password::new("bench password 123"),
            )
            .await
            .unwrap();
        let mut tokens = Vec::with_capacity(SESSIONS);
        for _ in 0..SESSIONS {
            let (_, token) = identa.issue_session(&ada, Vec::new(), None).await.unwrap();
            tokens.push(token);
        }
        tokens
    })
}

/// 10,000 distinct garbage tokens through `whoami` on a counted store.
fn flood(rt: &Runtime, store: &SeaOrmStore, config: Config, tokens: &[SessionToken]) {
    let (counted, reads) = store.counting_statements();
    let identa = engine(counted, config);
    let garbage: Vec<SessionToken> = (0..GARBAGE)
        .map(|n| match n % 3 {
            0 => random_shape(),
            1 => flipped(&tokens[n % tokens.len()], n),
            _ => SessionToken::from_client(format!("{:x}", rand::random::<u128>())),
        })
        .collect();
    let started = Instant::now();
    rt.block_on(async {
        for token in &garbage {
            assert!(identa.whoami(token).await.is_err());
        }
    });
    let elapsed = started.elapsed();
    let reads = reads.load(Ordering::SeqCst);
    println!("garbage_tokens_store_reads={reads}");
    println!(
        "garbage_tokens_per_s={:.0}",
        GARBAGE as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(reads, 0, "forged tokens reached the database");
}

criterion_group!(benches, forged_tokens);
criterion_main!(benches);
