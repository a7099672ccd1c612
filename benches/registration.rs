//! Registration of a new address against one that already has an account, with
//! enumeration-safe registration on (`DuplicateRegistration::AnswerAsNew`) and the default
//! argon2 parameters: both hash the password and commit one transaction, so their medians
//! should be within noise of each other. Each iteration creates an API registration flow
//! and submits it, on a SQLite file.
//!
//! `cargo bench --bench registration`

use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use identa::credential::password::Password;
use identa::flow::registration::RegistrationSubmission;
use identa::flow::{AfterRegistration, DuplicateRegistration, FlowRequest, FlowType};
use identa::identity::SchemaRegistry;
use identa::store::SeaOrmStore;
use identa::{Config, Identa};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

async fn engine(url: &str) -> Identa {
    let mut schemas = SchemaRegistry::new();
    schemas
        .add(
            "default",
            json!({ "type": "object", "properties": { "traits": { "type": "object",
                "properties": { "email": { "type": "string", "format": "email",
                    "ory.sh/kratos": {
                        "credentials": { "password": { "identifier": true } },
                        "verification": { "via": "email" },
                        "recovery": { "via": "email" } } } } } } }),
        )
        .unwrap();
    let mut config = Config::default();
    config.flows.registration.duplicate = DuplicateRegistration::AnswerAsNew;
    config.flows.registration.after = AfterRegistration::AccountOnly;
    Identa::builder()
        .store(SeaOrmStore::connect(url).await.unwrap())
        .schemas(schemas)
        .config(config)
        .build()
        .unwrap()
}

async fn sign_up(identa: &Identa, email: &str) {
    let req = FlowRequest::api();
    let reg = identa.registration_flow();
    let flow = reg.create(FlowType::Api, &req).await.unwrap();
    let submission = RegistrationSubmission::Password {
        traits: json!({ "email": email }),
        password: Password::new(PASSWORD),
    };
    let done = reg.submit(flow.id, submission, &req).await.unwrap();
    assert!(done.login.is_none());
}

fn registration(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let identa = rt.block_on(engine(&url));
    rt.block_on(sign_up(&identa, "taken@example.com"));
    let next = AtomicUsize::new(0);

    let mut group = c.benchmark_group("registration_default_argon2");
    group.sample_size(30);
    group.bench_function("new_address", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            rt.block_on(sign_up(&identa, &format!("new{n}@example.com")))
        })
    });
    group.bench_function("taken_address_answered_as_new", |b| {
        b.iter(|| rt.block_on(sign_up(&identa, "taken@example.com")))
    });
    group.finish();
}

criterion_group!(benches, registration);
criterion_main!(benches);
