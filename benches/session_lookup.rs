//! `whoami` (token -> session + identity) on a SQLite file holding 100,000 sessions
//! of 1,000 identities.

use criterion::{Criterion, criterion_group, criterion_main};
use identa::config::PasswordConfig;
use identa::session::AuthenticationMethod;
use identa::{Aal, Config, Identa, Password, SchemaRegistry, SeaOrmStore, SessionToken};
use serde_json::json;

const IDENTITIES: usize = 1_000;
const SESSIONS: usize = 100_000;

fn session_lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (identa, tokens) = rt.block_on(async {
        let mut schemas = SchemaRegistry::new();
        schemas
            .add(
                "default",
                json!({ "type": "object", "properties": { "traits": { "type": "object",
                    "properties": { "email": { "type": "string", "format": "email",
                        "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } } } } } } }),
            )
            .unwrap();
        let identa = Identa::builder()
            .store(SeaOrmStore::connect(&url).await.unwrap())
            .schemas(schemas)
            .config(Config {
                password: PasswordConfig::insecure_fast_for_tests(),
                ..Config::default()
            })
            .build()
            .unwrap();
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
            let (_, token) = identa.issue_session(identity, vec![method], None).await.unwrap();
            tokens.push(token);
        }
        (identa, tokens)
    });

    let mut group = c.benchmark_group("session_lookup_sqlite_100k");
    let mut i = 0usize;
    group.bench_function("identa_whoami", |b| {
        b.iter(|| {
            i = (i + 7919) % SESSIONS;
            rt.block_on(identa.whoami(&tokens[i])).unwrap()
        })
    });
    let unknown = SessionToken::generate();
    group.bench_function("identa_whoami_unknown_token", |b| {
        b.iter(|| assert!(rt.block_on(identa.whoami(&unknown)).is_err()))
    });
    group.finish();
}

criterion_group!(benches, session_lookup);
criterion_main!(benches);
