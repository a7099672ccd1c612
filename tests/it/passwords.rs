//! Password sign-in: the policy at registration, failures that reveal nothing, and a full
//! hashing queue answered 503 without spending the flow.

use identa::credential::password::Password;
use identa::identity::{Identity, IdentityState};
use identa::{Error, ErrorKind};
use serde_json::json;

use crate::common::{
    TestEnv, create_account, has_account, is_invalid_credentials, set_identity_state, sign_in_with,
};

/// The password the accounts below are made with (not the suite's, on purpose).
const STURDY: &str = "a sturdy passphrase 42";

/// Registers ada@example.com with `password`.
async fn ada_with(env: &TestEnv, password: &str) -> Identity {
    env.identa
        .register(
            json!({ "email": "ada@example.com" }),
            &Password::new(password),
        )
        .await
        .unwrap()
}

/// Why signing in as `identifier` with `password` was refused.
async fn refused_sign_in(env: &TestEnv, identifier: &str, password: &str) -> Error {
    sign_in_with(env, identifier, password).await.unwrap_err()
}

async fn wrong_password_and_unknown_user_look_alike(env: TestEnv) {
    ada_with(&env, STURDY).await;
    let wrong = refused_sign_in(&env, "ada@example.com", "not the passphrase").await;
    let unknown = refused_sign_in(&env, "nobody@example.com", STURDY).await;
    assert!(is_invalid_credentials(&wrong), "{wrong:?}");
    assert!(is_invalid_credentials(&unknown), "{unknown:?}");
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(!wrong.to_string().contains("ada"));

    // Garbage of every shape is refused the same way, without a panic.
    for identifier in ["", " ", "\u{0}", &"a".repeat(100_000)] {
        let err = refused_sign_in(&env, identifier, STURDY).await;
        assert!(is_invalid_credentials(&err), "{err:?}");
    }
    let err = refused_sign_in(&env, "ada@example.com", &"p".repeat(1 << 20)).await;
    assert!(is_invalid_credentials(&err), "{err:?}");
}

async fn policy_is_enforced_at_registration(env: TestEnv) {
    let reg = |email: &str, pw: &str| {
        let identa = env.identa.clone();
        let traits = json!({ "email": email });
        let pw = Password::new(pw);
        async move { identa.register(traits, &pw).await }
    };
    let short = reg("a@example.com", "short").await.unwrap_err();
    assert_eq!(short.kind(), ErrorKind::PasswordPolicy);
    assert!(short.to_string().contains("at least 8"), "{short}");
    let similar = reg("alice@example.com", "alice@example.com1")
        .await
        .unwrap_err();
    assert_eq!(similar.kind(), ErrorKind::PasswordPolicy);
    assert!(
        reg("alice@example.com", "purple monkey dishwasher")
            .await
            .is_ok()
    );
}

async fn disabled_identity_cannot_log_in(env: TestEnv) {
    let ada = ada_with(&env, STURDY).await;
    set_identity_state(&env, ada.id, IdentityState::Inactive).await;
    let err = refused_sign_in(&env, "ada@example.com", STURDY).await;
    assert_eq!(err.kind(), ErrorKind::IdentityDisabled);
    // A wrong password on a disabled account still says only "invalid credentials".
    let err = refused_sign_in(&env, "ada@example.com", "wrong wrong wrong").await;
    assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
}

async fn set_password_replaces_the_old_one(env: TestEnv) {
    let new = "another sturdy phrase 7";
    let ada = ada_with(&env, STURDY).await;
    env.identa
        .set_password(ada.id, &Password::new(new))
        .await
        .unwrap();
    let refused = refused_sign_in(&env, "ada@example.com", STURDY).await;
    assert!(is_invalid_credentials(&refused), "{refused:?}");
    sign_in_with(&env, "ada@example.com", new).await.unwrap();
    let err = env
        .identa
        .set_password(ada.id, &Password::new("short"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordPolicy);
}

/// The hashes of Kratos's own hasher tests (tests/data/kratos-hash-vectors.json) that
/// match their password: (algorithm, password, hash).
fn kratos_vectors() -> Vec<(String, String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kratos-hash-vectors.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["kratos_hasher_test"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["matches"] == true)
        .map(|v| {
            let field = |k: &str| v[k].as_str().unwrap().to_owned();
            (field("algorithm"), field("password"), field("hash"))
        })
        .collect()
}

/// A stored hash Kratos verifies but identa cannot (MD5, PBKDF2, scrypt, SSHA, SHA-crypt:
/// identa verifies only argon2 and bcrypt) refuses even the right password, as plain
/// invalid credentials that tell nothing more.
async fn an_unverifiable_stored_hash_is_just_invalid_credentials(env: TestEnv) {
    use identa::credential::password::{PasswordConfig, PasswordError, PasswordHasher};
    let hasher = PasswordHasher::new(PasswordConfig::insecure_fast_for_tests()).unwrap();
    use identa::store::IdentityStore;
    let mut ada = create_account(&env, "ada@example.com").await;
    let wanted = ["md5", "pbkdf2-sha256", "scrypt", "ssha", "sha512-crypt"];
    let vectors: Vec<_> = kratos_vectors()
        .into_iter()
        .filter(|(alg, ..)| wanted.contains(&alg.as_str()))
        .collect();
    for alg in wanted {
        assert!(vectors.iter().any(|(a, ..)| a == alg), "no {alg} vector");
    }
    for (alg, password, hash) in vectors {
        let password = Password::new(password);
        // identa cannot verify it at all (rather than verifying it and finding a mismatch).
        let verdict = hasher.verify(&password, Some(&hash)).await;
        assert!(
            matches!(verdict, Err(PasswordError::UnsupportedHash { .. })),
            "{alg}: {verdict:?}"
        );
        ada.credentials
            .get_mut(&identa::identity::CredentialType::Password)
            .unwrap()
            .config = json!({ "hashed_password": hash });
        env.store.replace_identity(&ada).await.unwrap();
        let err = env
            .identa
            .login("ada@example.com", &password, None)
            .await
            .unwrap_err();
        assert!(is_invalid_credentials(&err), "{alg}: {err:?}");
    }
}

async fn imported_kratos_hashes_sign_in_and_are_upgraded(env: TestEnv) {
    // From Kratos's own hasher tests (tests/data/kratos-hash-vectors.json): bcrypt, its
    // default hasher, and argon2i; both for the password "test".
    let vectors = kratos_vectors();
    let vector = |alg: &str| {
        vectors
            .iter()
            .find(|(a, password, _)| a == alg && password == "test")
            .map(|(.., hash)| hash.clone())
            .unwrap()
    };
    for (email, hash) in [
        ("bcrypt@example.com", vector("bcrypt")),
        ("argon2i@example.com", vector("argon2i")),
    ] {
        let new = identa::identity::NewIdentity {
            traits: json!({ "email": email }),
            ..Default::default()
        };
        let imported = env.identa.import_identity(new, &hash).await.unwrap();
        assert_eq!(
            imported
                .credential(identa::identity::CredentialType::Password)
                .unwrap()
                .hashed_password(),
            Some(hash.as_str())
        );
        assert_eq!(
            refused_sign_in(&env, email, "wrong").await.kind(),
            ErrorKind::InvalidCredentials
        );
        sign_in_with(&env, email, "test").await.unwrap();
        // The first successful login re-hashes with identa's argon2id parameters.
        let stored = env.identa.identity(imported.id).await.unwrap();
        let now = stored
            .credential(identa::identity::CredentialType::Password)
            .unwrap()
            .hashed_password()
            .unwrap()
            .to_owned();
        assert!(now.starts_with("$argon2id$"), "{now}");
        sign_in_with(&env, email, "test").await.unwrap();
    }
    // Hashes identa cannot verify are refused at import, with a clear error.
    for bad in [
        "plaintext",
        "$2a$16$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        "$md5$CY9rzUYh03PK3k6DJie09g==",
    ] {
        let new = identa::identity::NewIdentity {
            traits: json!({ "email": "bad@example.com" }),
            ..Default::default()
        };
        let err = env.identa.import_identity(new, bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
    }
    assert!(!has_account(&env, "bad@example.com").await);
}

crate::on_every_backend!(
    imported_kratos_hashes_sign_in_and_are_upgraded,
    an_unverifiable_stored_hash_is_just_invalid_credentials,
    wrong_password_and_unknown_user_look_alike,
    policy_is_enforced_at_registration,
    disabled_identity_cannot_log_in,
    set_password_replaces_the_old_one,
);

/// Holds the runtime's only blocking thread (where argon2 runs) until opened: a
/// verification that got the hasher's one slot then waits here, keeping the slot.
struct Gate(std::sync::mpsc::Sender<()>);

impl Gate {
    async fn close() -> Self {
        let (release, closed) = std::sync::mpsc::channel::<()>();
        let (started, on) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            started.send(()).unwrap();
            let _ = closed.recv();
        });
        on.await.unwrap();
        Self(release)
    }

    fn open(self) {
        self.0.send(()).unwrap();
    }
}

/// Runs `test` on a runtime with one blocking thread, so a [`Gate`] can hold it.
fn on_one_blocking_thread(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

/// An engine whose hasher has one slot and no queue: while one password is being checked,
/// another is refused at once.
async fn one_slot_no_queue() -> TestEnv {
    let config = identa::Config {
        password: identa::credential::password::PasswordConfig {
            memory_budget_kib: 1,
            max_waiting_per_slot: 0,
            ..identa::credential::password::PasswordConfig::insecure_fast_for_tests()
        },
        ..crate::common::test_config()
    };
    let env = TestEnv::with_config(crate::common::Backend::SqliteMemory, config).await;
    create_account(&env, "ada@example.com").await;
    env
}

/// Answers of two racing submissions, in the order they came; the timeout only turns a
/// hang into a failure.
async fn next<T>(answers: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, T)>) -> (usize, T) {
    tokio::time::timeout(std::time::Duration::from_secs(60), answers.recv())
        .await
        .expect("an answer")
        .unwrap()
}

/// Two sign-ins through the engine while the hasher's only slot is taken by one of them:
/// the other is refused at once with `service_busy` (nothing was checked), and its flow
/// signs in when submitted again after the queue drained.
#[test]
fn a_full_hashing_queue_refuses_sign_in_and_leaves_the_flow_usable() {
    use identa::flow::FlowRequest;
    use identa::flow::FlowType;
    use identa::flow::login::LoginIntent;
    on_one_blocking_thread(async {
        let env = one_slot_no_queue().await;
        let req = FlowRequest::api();
        let mut flows = Vec::new();
        for _ in 0..2 {
            let flow = env
                .identa
                .login_flow()
                .create(FlowType::Api, &req, LoginIntent::SignIn)
                .await
                .unwrap();
            flows.push(flow.id);
        }
        let gate = Gate::close().await;
        let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
        for (i, flow) in flows.iter().copied().enumerate() {
            let (identa, tx) = (env.identa.clone(), tx.clone());
            tokio::spawn(async move {
                let login =
                    crate::common::password_login("ada@example.com", crate::common::PASSWORD);
                let answer = identa
                    .login_flow()
                    .submit(flow, login, &FlowRequest::api())
                    .await;
                tx.send((i, answer)).unwrap();
            });
        }
        let (busy, refused) = next(&mut answers).await;
        let err = refused.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{err:?}");
        assert_eq!(err.kind().as_str(), "service_busy");
        gate.open();
        let (_, signed_in) = next(&mut answers).await;
        assert!(signed_in.unwrap().token.is_some());
        let again = env
            .identa
            .login_flow()
            .submit(
                flows[busy],
                crate::common::password_login("ada@example.com", crate::common::PASSWORD),
                &req,
            )
            .await
            .unwrap();
        assert!(again.token.is_some());
    });
}

/// The same over Kratos's API: 503 with `Retry-After` and Kratos's error shape, then the
/// same flow answers 200 with a session once the queue drained.
#[test]
fn a_full_hashing_queue_answers_503_with_retry_after_over_http() {
    use bytes::Bytes;
    use identa::http::{HttpConfig, PublicApi};
    fn request(method: &str, path: &str, body: Option<serde_json::Value>) -> http::Request<Bytes> {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())))
            .unwrap()
    }
    fn submit(flow: &str) -> http::Request<Bytes> {
        request(
            "POST",
            &format!("/self-service/login?flow={flow}"),
            Some(json!({
                "method": "password",
                "identifier": "ada@example.com",
                "password": crate::common::PASSWORD,
            })),
        )
    }
    fn json_of(res: &http::Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(res.body()).unwrap()
    }
    on_one_blocking_thread(async {
        let env = one_slot_no_queue().await;
        let api = std::sync::Arc::new(PublicApi::new(env.identa.clone(), HttpConfig::default()));
        let mut flows = Vec::new();
        for _ in 0..2 {
            let flow = json_of(
                &api.handle(request("GET", "/self-service/login/api", None))
                    .await,
            );
            flows.push(flow["id"].as_str().unwrap().to_owned());
        }
        let gate = Gate::close().await;
        let (tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
        for (i, flow) in flows.iter().cloned().enumerate() {
            let (api, tx) = (api.clone(), tx.clone());
            tokio::spawn(async move {
                tx.send((i, api.handle(submit(&flow)).await)).unwrap();
            });
        }
        let (busy, res) = next(&mut answers).await;
        assert_eq!(res.status(), 503, "{}", String::from_utf8_lossy(res.body()));
        assert_eq!(res.headers()["retry-after"], "1");
        let body = json_of(&res);
        assert_eq!(body["error"]["id"], "service_busy");
        assert_eq!(body["error"]["code"], 503);
        gate.open();
        let (_, res) = next(&mut answers).await;
        assert_eq!(res.status(), 200);
        let res = api.handle(submit(&flows[busy])).await;
        assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
        assert!(json_of(&res)["session_token"].is_string());
    });
}
