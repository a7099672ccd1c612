//! Password hashing at the default parameters (argon2id, m = 19456 KiB, t = 2, p = 1):
//! identa's hash and verify, one and two at a time, side by side with the C reference
//! (libargon2 through Python's argon2-cffi, driven as a long-lived subprocess so process
//! start-up is not timed). The reference is skipped, with a note, when argon2-cffi is not
//! installed (`pip install argon2-cffi`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use identa::credential::password::{Password, PasswordConfig, PasswordHasher};

/// The C reference, answering timing requests over a pipe.
struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reference {
    fn start() -> Option<Self> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/argon2_ref.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut ready = String::new();
        stdout.read_line(&mut ready).ok()?;
        (ready.trim() == "ready").then_some(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn time(&mut self, command: &str, n: u64) -> Duration {
        writeln!(self.stdin, "{command} {n}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        Duration::from_nanos(line.trim().parse().unwrap())
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    group.bench_function("identa_hash", |b| {
        b.iter(|| rt.block_on(hasher.hash(&password)).unwrap())
    });
    group.bench_function("identa_verify", |b| {
        b.iter(|| {
            assert!(
                rt.block_on(hasher.verify(&password, Some(&stored)))
                    .unwrap()
            )
        })
    });
    group.bench_function("identa_verify_unknown_user_dummy", |b| {
        b.iter(|| assert!(!rt.block_on(hasher.verify(&password, None)).unwrap()))
    });
    group.bench_function("identa_verify_x2_concurrent", |b| {
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
    match Reference::start() {
        Some(mut reference) => {
            group.bench_function("c_reference_verify", |b| {
                b.iter_custom(|iters| reference.time("verify", iters))
            });
            group.bench_function("c_reference_verify_x2_concurrent", |b| {
                b.iter_custom(|iters| reference.time("verify2", iters))
            });
        }
        None => eprintln!(
            "C reference skipped: `python3 -c 'import argon2'` failed (pip install argon2-cffi)"
        ),
    }
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
