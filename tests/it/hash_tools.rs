//! Password hashes made at test time by other implementations — Python's hashlib and hmac,
//! passlib, argon2-cffi, Debian's `argon2`, `htpasswd`, `openssl passwd` and `openssl enc`
//! (tests/support/hash_vectors.py) — in every layout Kratos verifies: for each format two
//! that must match (one password not ASCII) and one made from another password. Each is
//! imported, signed in with and re-hashed through identa's public API. Ignored unless asked
//! for (`cargo test -- --ignored`), where a missing tool fails the test by name.

use std::collections::BTreeMap;

use crate::common::{
    Backend, TestEnv, import_sign_in_and_upgrade, is_invalid_credentials, needs, sign_in_with,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with passlib and argon2-cffi, openssl, htpasswd (apache2-utils) and argon2: `python3 -m pip install passlib argon2-cffi`, `apt-get install openssl apache2-utils argon2`; run with `cargo test -- --ignored`"]
async fn tool_made_hashes_of_every_kratos_format_sign_in() {
    let env = TestEnv::new(Backend::SqliteMemory)
        .await
        .without_throttling();
    let vectors = needs::tool_made_hashes();
    // format -> (matching ASCII, matching non-ASCII, mismatching)
    let mut seen: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for (i, v) in vectors.iter().enumerate() {
        let format = v["format"].as_str().unwrap();
        let password = v["password"].as_str().unwrap();
        let hash = v["hash"].as_str().unwrap();
        let email = format!("tool{i}@example.com");
        let counts = seen.entry(format.to_owned()).or_default();
        if v["matches"] == true {
            import_sign_in_and_upgrade(&env, &email, password, hash).await;
            if password.is_ascii() {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        } else {
            let new = identa::identity::NewIdentity {
                traits: serde_json::json!({ "email": email }),
                ..Default::default()
            };
            env.identa.import_identity(new, hash).await.unwrap();
            let err = sign_in_with(&env, &email, password).await.unwrap_err();
            assert!(is_invalid_credentials(&err), "{format}: {hash}: {err:?}");
            counts.2 += 1;
        }
    }
    assert_eq!(seen.len(), 30, "{seen:?}");
    for (format, counts) in seen {
        assert!(
            counts.0 >= 1 && counts.1 >= 1 && counts.2 >= 1,
            "{format}: {counts:?}"
        );
    }
}
