//! Password hashing at the default parameters (argon2id, m = 19456 KiB, t = 2, p = 1):
//! one hash, one verify, and two verifications at once (the concurrency bound at work).

use criterion::{Criterion, criterion_group, criterion_main};
use identa::credential::password::{Password, PasswordConfig, PasswordHasher};

fn hashing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let hasher = PasswordHasher::new(PasswordConfig::default()).unwrap();
    let password = Password::new("correct horse battery staple");
    let stored = rt.block_on(hasher.hash(&password)).unwrap();

    let mut group = c.benchmark_group("argon2id_default");
    group.sample_size(20);
    group.bench_function("hash", |b| {
        b.iter(|| rt.block_on(hasher.hash(&password)).unwrap())
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            assert!(
                rt.block_on(hasher.verify(&password, Some(&stored)))
                    .unwrap()
            )
        })
    });
    group.bench_function("verify_unknown_user_dummy", |b| {
        b.iter(|| assert!(!rt.block_on(hasher.verify(&password, None)).unwrap()))
    });
    group.bench_function("verify_x2_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (a, b) = tokio::join!(
                    hasher.verify(&password, Some(&stored)),
                    hasher.verify(&password, Some(&stored))
                );
                assert!(a.unwrap() && b.unwrap());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
