//! Password sign-in: the policy at registration, failures that reveal nothing, password
//! hashes imported from Kratos (every format it verifies, the cost bounds, the re-hash at
//! the first sign-in), and a full hashing queue answered 503 without spending the flow.

use identa::credential::password::Password;
use identa::identity::{Identity, IdentityState};
use identa::{Error, ErrorKind};
use serde_json::json;

use crate::common::{
    TestEnv, create_account, has_account, import_sign_in_and_upgrade, is_invalid_credentials,
    set_identity_state, sign_in_with, stored_hash,
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

/// A stored hash in a format neither Kratos nor identa verifies (crypt's bare `$1$`, Apache's
/// `$apr1$`, unsalted `{SHA}`, plain text), or one over the cost bounds that reached the
/// database without the import's check, refuses even the right password, as plain invalid
/// credentials that tell nothing more.
async fn an_unverifiable_stored_hash_is_just_invalid_credentials(env: TestEnv) {
    use identa::credential::password::{PasswordConfig, PasswordError, PasswordHasher};
    use identa::store::IdentityStore;
    let hasher = PasswordHasher::new(PasswordConfig::insecure_fast_for_tests()).unwrap();
    let mut ada = create_account(&env, "ada@example.com").await;
    for (password, hash) in [
        ("password", "$1$saltstri$qQY4WxjABChYG1ccLpfkz/"),
        ("password", "$apr1$saltstri$KbmdckUzuN1qd7Gpo8DEL."),
        ("test", "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="),
        ("plaintext", "plaintext"),
        (
            "test",
            "$2a$16$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6",
        ),
    ] {
        let password = Password::new(password);
        // identa cannot verify it at all (rather than verifying it and finding a mismatch).
        let verdict = hasher.verify(&password, Some(hash)).await;
        assert!(
            matches!(
                verdict,
                Err(PasswordError::UnsupportedHash { .. } | PasswordError::CostOutOfBounds { .. })
            ),
            "{hash}: {verdict:?}"
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
        assert!(is_invalid_credentials(&err), "{hash}: {err:?}");
    }
}

async fn imported_kratos_hashes_sign_in_and_are_upgraded(env: TestEnv) {
    let env = env.without_throttling();
    // Every matching vector of Kratos's own hasher tests (tests/data/kratos-hash-vectors.json)
    // but PBKDF2 over SHA-3 (`sha224`, `sha384`): 100,000 SHA-3 iterations take seconds in
    // an unoptimised build, so those two are checked once, by the hasher, in
    // `credential::password::tests::kratos_vectors`, and through sign-in with cheaper
    // tool-made hashes in `hash_tools`.
    let vectors = kratos_vectors();
    let mut checked = std::collections::BTreeSet::new();
    for (i, (alg, password, hash)) in vectors.iter().enumerate() {
        if alg == "pbkdf2-sha224" || alg == "pbkdf2-sha384" {
            continue;
        }
        let email = format!("user{i}@example.com");
        import_sign_in_and_upgrade(&env, &email, password, hash).await;
        checked.insert(alg.as_str());
    }
    // 24 algorithms, less the two above and hmac-sha1, whose only vector is a mismatch.
    assert_eq!(checked.len(), 21, "{checked:?}");
}

/// An imported hash asking for more work than identa's bounds is refused at import,
/// naming the parameter; so is one in no format identa verifies.
async fn costly_or_unknown_hashes_are_refused_at_import(env: TestEnv) {
    let salt_hash = "c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA";
    for (bad, named) in [
        (
            "$2a$16$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6".to_owned(),
            "bcrypt hash's cost=16 exceeds identa's bound of 15",
        ),
        (
            format!("$argon2id$v=19$m=1048577,t=1,p=1${salt_hash}"),
            "argon2id hash's m=1048577 exceeds identa's bound of 1048576",
        ),
        (
            format!("$argon2i$v=19$m=64,t=11,p=1${salt_hash}"),
            "argon2i hash's t=11 exceeds identa's bound of 10",
        ),
        (
            format!("$argon2id$v=19$m=256,t=1,p=17${salt_hash}"),
            "argon2id hash's p=17 exceeds identa's bound of 16",
        ),
        (
            "$pbkdf2-sha256$i=10000001,l=32$c2FsdA$aGFzaA".to_owned(),
            "pbkdf2 hash's i=10000001 exceeds identa's bound of 10000000",
        ),
        (
            "$scrypt$ln=2097152,r=8,p=1$c2FsdA==$aGFzaA==".to_owned(),
            "scrypt hash's ln=2097152 exceeds identa's bound of 1048576",
        ),
        (
            "$scrypt$ln=16384,r=33,p=1$c2FsdA==$aGFzaA==".to_owned(),
            "scrypt hash's r=33 exceeds identa's bound of 32",
        ),
        (
            "$scrypt$ln=16384,r=8,p=17$c2FsdA==$aGFzaA==".to_owned(),
            "scrypt hash's p=17 exceeds identa's bound of 16",
        ),
        (
            "$firescrypt$ln=21,r=8,p=1$c2FsdA==$aGFzaA==$Bw==$aGFzaA==".to_owned(),
            "firescrypt hash's ln=21 exceeds identa's bound of 20",
        ),
        (
            "$sha512-crypt$rounds=10000001$saltsalt$uuNasMW.RYxlGzIRFU1Was70BPSa933AjxhZIGJdJBOlqJAHlgqa0yuiuq5JHF/ryNGryJkj87G9i3G2HPSXg1".to_owned(),
            "sha512-crypt hash's rounds=10000001 exceeds identa's bound of 10000000",
        ),
        // Each parameter within its bound, but not their product: the total work.
        (
            format!("$argon2id$v=19$m=1048576,t=9,p=1${salt_hash}"),
            "argon2id hash's m·t=9437184 exceeds identa's bound of 8388608",
        ),
        (
            "$scrypt$ln=1048576,r=8,p=16$c2FsdA==$aGFzaA==".to_owned(),
            "scrypt hash's N·r·p=134217728 exceeds identa's bound of 16777216",
        ),
        (
            "$firescrypt$ln=20,r=8,p=16$c2FsdA==$aGFzaA==$Bw==$aGFzaA==".to_owned(),
            "firescrypt hash's N·r·p=134217728 exceeds identa's bound of 16777216",
        ),
        (
            "$pbkdf2-sha256$i=6000000,l=64$c2FsdA$aGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaA".to_owned(),
            "pbkdf2 hash's i·blocks (blocks: the hash's length ÷ the digest's, rounded up)=12000000 exceeds identa's bound of 10000000",
        ),
        (
            "plaintext".to_owned(),
            "hashed_password is not a hash identa can verify",
        ),
        (
            "$md5$c2hvcnQ=".to_owned(),
            "hashed_password is not a hash identa can verify",
        ),
    ] {
        let new = identa::identity::NewIdentity {
            traits: json!({ "email": "bad@example.com" }),
            ..Default::default()
        };
        let err = env.identa.import_identity(new, &bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        assert!(err.to_string().contains(named), "{bad}: {err}");
    }
    assert!(!has_account(&env, "bad@example.com").await);
}

/// The re-hash is written in the commit that issues the session: when that commit fails
/// (here the host's after-login hook fails), the imported hash stays as it was.
async fn a_rehash_commits_with_the_session(env: TestEnv) {
    use identa::flow::FlowRequest;
    use identa::flow::FlowType;
    use identa::flow::login::LoginIntent;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct FailingOnce(AtomicBool);
    #[async_trait::async_trait]
    impl identa::hook::Hooks for FailingOnce {
        async fn after(
            &self,
            event: &identa::hook::AfterEvent<'_>,
            _tx: &identa::store::Transaction<'_>,
        ) -> Result<(), identa::hook::HookError> {
            if matches!(event, identa::hook::AfterEvent::Login { .. })
                && self.0.swap(false, Ordering::SeqCst)
            {
                return Err(identa::hook::HookError::failed("the audit log is down"));
            }
            Ok(())
        }
    }
    // Kratos's md5-crypt vector for "test".
    let hash = "$md5-crypt$TVEiiKNb$SN6/pUaRQS/E8Jh46As2C/";
    let new = identa::identity::NewIdentity {
        traits: json!({ "email": "ada@example.com" }),
        ..Default::default()
    };
    let ada = env.identa.import_identity(new, hash).await.unwrap();
    let identa = env.engine_with_hooks(std::sync::Arc::new(FailingOnce(AtomicBool::new(true))));
    let req = FlowRequest::api();
    let submit = || async {
        let flow = identa
            .login_flow()
            .create(FlowType::Api, &req, LoginIntent::SignIn)
            .await
            .unwrap();
        identa
            .login_flow()
            .submit(
                flow.id,
                crate::common::password_login("ada@example.com", "test"),
                &req,
            )
            .await
    };
    let refused = crate::common::invalid_flow(submit().await.unwrap_err());
    assert_eq!(refused.ui.messages[0].id, 5_000_001);
    assert_eq!(
        stored_hash(&env, ada.id).await,
        hash,
        "no session, no re-hash"
    );
    submit().await.unwrap();
    assert!(stored_hash(&env, ada.id).await.starts_with("$argon2id$"));
}

crate::on_every_backend!(
    imported_kratos_hashes_sign_in_and_are_upgraded,
    costly_or_unknown_hashes_are_refused_at_import,
    a_rehash_commits_with_the_session,
    an_unverifiable_stored_hash_is_just_invalid_credentials,
    wrong_password_and_unknown_user_look_alike,
    policy_is_enforced_at_registration,
    disabled_identity_cannot_log_in,
    set_password_replaces_the_old_one,
);

/// Through the admin API (Kratos's `POST /admin/identities` with
/// `credentials.password.config.hashed_password`), a hash over the cost bounds is a 400
/// naming the parameter, and nothing is created; one within them is created and signs in.
#[cfg(feature = "http")]
async fn the_admin_api_refuses_a_costly_hash_naming_the_parameter(env: TestEnv) {
    use crate::admin::{admin, answer, error_id, request};
    let api = admin(&env);
    let create = |email: &str, hash: &str| {
        let body = json!({
            "traits": { "email": email },
            "credentials": { "password": { "config": { "hashed_password": hash } } },
        });
        request(
            "POST",
            "/admin/identities",
            &[("content-type", "application/json")],
            &body.to_string(),
        )
    };
    let costly = "$scrypt$ln=16384,r=64,p=1$c2FsdA==$aGFzaA==";
    let (status, body) = answer(&api, create("costly@example.com", costly)).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_id(&body), "bad_request", "{body}");
    let reason = body["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("hashed_password: the scrypt hash's r=64 exceeds identa's bound of 32"),
        "{reason}"
    );
    assert!(!has_account(&env, "costly@example.com").await);

    // Every parameter within its bound, and the memory (1 GiB), but not the work.
    let heavy = "$scrypt$ln=1048576,r=8,p=16$c2FsdA==$aGFzaA==";
    let (status, body) = answer(&api, create("heavy@example.com", heavy)).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_id(&body), "bad_request", "{body}");
    let reason = body["error"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "hashed_password: the scrypt hash's N·r·p=134217728 exceeds identa's bound of 16777216"
        ),
        "{reason}"
    );
    assert!(!has_account(&env, "heavy@example.com").await);

    // Kratos's scrypt vector for "test" (N = 16384, r = 8, p = 1) is within the bounds.
    let fine = "$scrypt$ln=16384,r=8,p=1$2npRo7P03Mt8keSoMbyD/tKFWyUzjiQf2svUaNDSrhA=$MiCzNcIplSMqSBrm4HckjYqYhaVPPjTARTzwB1cVNYE=";
    let (status, body) = answer(&api, create("fine@example.com", fine)).await;
    assert_eq!(status, http::StatusCode::CREATED, "{body}");
    sign_in_with(&env, "fine@example.com", "test")
        .await
        .unwrap();
}

#[cfg(feature = "http")]
crate::on_every_backend!(the_admin_api_refuses_a_costly_hash_naming_the_parameter);

/// The argon2 work signing in as `identifier` with `password` spends, and whether it signed
/// in.
async fn argon2_work_of_sign_in(env: &TestEnv, identifier: &str, password: &str) -> (u64, bool) {
    let hasher = env.identa.password_hasher();
    let before = hasher.argon2_work();
    let signed_in = sign_in_with(env, identifier, password).await.is_ok();
    (hasher.argon2_work() - before, signed_in)
}

async fn an_imported_fast_hash_costs_what_an_unknown_account_costs(env: TestEnv) {
    // A dummy of 1,024 argon2 blocks (m = 1 MiB, t = 1), dearer than md5-crypt's work.
    let mut env = env;
    let config = identa::Config {
        password: identa::credential::password::PasswordConfig {
            memory_kib: 1024,
            ..identa::credential::password::PasswordConfig::insecure_fast_for_tests()
        },
        ..crate::common::test_config()
    };
    env.identa = env.another_engine(config).build().unwrap();
    // `openssl passwd -1 -salt saltstri password`
    let md5 = "$md5-crypt$saltstri$qQY4WxjABChYG1ccLpfkz/";
    let new = identa::identity::NewIdentity {
        traits: json!({ "email": "ada@example.com" }),
        ..Default::default()
    };
    env.identa.import_identity(new, md5).await.unwrap();

    // A wrong password for the imported account and any password for an unknown one spend
    // the same argon2 work: the dummy's.
    let unknown = argon2_work_of_sign_in(&env, "nobody@example.com", "password").await;
    let wrong = argon2_work_of_sign_in(&env, "ada@example.com", "not the password").await;
    assert_eq!(unknown, (1024, false));
    assert_eq!(wrong, unknown);
    // The right one too, and then the re-hash; after it, the account is argon2id at the
    // configured parameters, the dummy's work without padding.
    let right = argon2_work_of_sign_in(&env, "ada@example.com", "password").await;
    assert_eq!(right, (1024 + 1024, true));
    assert_eq!(
        argon2_work_of_sign_in(&env, "ada@example.com", "not the password").await,
        unknown
    );
}

crate::on_every_backend!(an_imported_fast_hash_costs_what_an_unknown_account_costs);

/// Kratos's own bcrypt vector at its default cost, 12, for the password "test".
const KRATOS_BCRYPT_12: &str = "$2a$12$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6";
/// A bcrypt verification's estimated work at cost 12 (64 argon2 blocks a round).
const BCRYPT_12_WORK: u64 = 64 << 12;

/// How a refused API sign-in answered, and the work it spent.
#[cfg(feature = "http")]
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    /// The work of every format the engine's hasher spent ([`PasswordHasher::work`]).
    work: u64,
    /// The status the shown flow is answered with.
    status: http::StatusCode,
    /// Every message id it shows.
    message_ids: Vec<u32>,
}

/// Signs in through an API flow of `env.identa` as `identifier` with a wrong `password`.
#[cfg(feature = "http")]
async fn refused_api_sign_in(env: &TestEnv, identifier: &str, password: &str) -> Refusal {
    let hasher = env.identa.password_hasher();
    let before = hasher.work();
    let err = crate::common::api_login(env, identifier, password)
        .await
        .unwrap_err();
    let work = hasher.work() - before;
    let flow = crate::common::invalid_flow(err);
    Refusal {
        work,
        status: identa::http::response::status_of_shown_flow(&flow),
        message_ids: crate::common::all_message_ids(&flow),
    }
}

/// An identity for `email` with an imported `hash`.
fn hashed_import(email: &str, hash: &str) -> identa::IdentityImport {
    identa::IdentityImport {
        identity: identa::identity::NewIdentity {
            traits: json!({ "email": email }),
            ..Default::default()
        },
        password: identa::PasswordImport::Hashed(hash.to_owned()),
    }
}

#[cfg(feature = "http")]
async fn an_unknown_identifier_does_at_least_the_imported_accounts_work(env: TestEnv) {
    create_account(&env, "grace@example.com").await;
    let dummy = env.identa.password_hasher().config().memory_kib as u64;
    let before = refused_api_sign_in(&env, "nobody@example.com", "test").await;
    assert_eq!(before.work, dummy);

    let new = identa::identity::NewIdentity {
        traits: json!({ "email": "ada@example.com" }),
        ..Default::default()
    };
    env.identa
        .import_identity(new, KRATOS_BCRYPT_12)
        .await
        .unwrap();

    // An unknown identifier now spends the dummy's work and then a bcrypt-12 dummy's: at
    // least the imported account's, and exactly what its wrong password costs (its bcrypt,
    // then the argon2 dummy), with the same answer.
    let unknown = refused_api_sign_in(&env, "nobody@example.com", "test").await;
    let wrong = refused_api_sign_in(&env, "ada@example.com", "not the password").await;
    assert!(unknown.work >= BCRYPT_12_WORK, "{unknown:?}");
    assert_eq!(unknown.work, dummy + BCRYPT_12_WORK);
    assert_eq!(wrong, unknown);
    assert_eq!(unknown.status, http::StatusCode::BAD_REQUEST);
    assert_eq!(unknown.message_ids, vec![4_000_006]);
    // identa's own accounts are padded alike.
    let own = refused_api_sign_in(&env, "grace@example.com", "not the password").await;
    assert_eq!(own, unknown);
    // The imported account still signs in, and is re-hashed.
    sign_in_with(&env, "ada@example.com", "test").await.unwrap();
}

#[cfg(feature = "http")]
async fn a_second_engine_pads_to_an_import_made_by_the_first(env: TestEnv) {
    let mut env = env;
    let importer = env.identa.clone();
    let cache = identa::SessionCacheConfig::Disabled;
    // One engine checked a password before the import (it read the floor then), another
    // has not checked any yet.
    env.identa = env.second_engine(cache).await;
    let dummy = env.identa.password_hasher().config().memory_kib as u64;
    assert_eq!(
        refused_api_sign_in(&env, "nobody@example.com", "test")
            .await
            .work,
        dummy
    );
    let early = env.identa.clone();
    let fresh = env.second_engine(cache).await;

    let answers = importer
        .import_identities(vec![hashed_import("ada@example.com", KRATOS_BCRYPT_12)])
        .await
        .unwrap();
    assert!(answers[0].is_ok(), "{answers:?}");

    // The engine that never checked reads the raised floor on its first check.
    env.identa = fresh;
    let unknown = refused_api_sign_in(&env, "nobody@example.com", "test").await;
    let wrong = refused_api_sign_in(&env, "ada@example.com", "not the password").await;
    assert_eq!(unknown.work, dummy + BCRYPT_12_WORK);
    assert_eq!(wrong, unknown);

    // The one that read it before the import pads to it once it reads again.
    env.identa = early;
    assert_eq!(
        refused_api_sign_in(&env, "nobody@example.com", "test")
            .await
            .work,
        dummy
    );
    env.clock
        .advance(identa::credential::password::COST_FLOOR_REREAD);
    assert_eq!(
        refused_api_sign_in(&env, "nobody@example.com", "test").await,
        unknown
    );
}

#[cfg(feature = "http")]
async fn an_import_of_cheap_hashes_leaves_unknown_identifiers_at_the_dummys_work(env: TestEnv) {
    use identa::store::IdentityStore;
    // A dummy of 1,024 argon2 blocks, dearer than md5-crypt's padding work (2 × 250).
    let mut env = env;
    let config = identa::Config {
        password: identa::credential::password::PasswordConfig {
            memory_kib: 1024,
            ..identa::credential::password::PasswordConfig::insecure_fast_for_tests()
        },
        ..crate::common::test_config()
    };
    env.identa = env.another_engine(config).build().unwrap();
    let answers = env
        .identa
        .import_identities(vec![
            hashed_import(
                "ada@example.com",
                "$md5-crypt$saltstri$qQY4WxjABChYG1ccLpfkz/",
            ),
            hashed_import("bob@example.com", "{SSHA}KgGQxw5j5bj+gcWQsNai3vy03vBzYWx0"),
        ])
        .await
        .unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(env.store.password_cost_floor().await.unwrap(), None);
    let dummy = env.identa.password_hasher().config().memory_kib as u64;
    let unknown = refused_api_sign_in(&env, "nobody@example.com", "password").await;
    assert_eq!(unknown.work, dummy);
    // The md5-crypt account is padded with the dummy: its work and answer are the same.
    let wrong = refused_api_sign_in(&env, "ada@example.com", "not the password").await;
    assert_eq!(
        wrong,
        Refusal {
            work: dummy + 250,
            ..unknown
        }
    );
}

#[cfg(feature = "http")]
crate::on_every_backend!(
    an_unknown_identifier_does_at_least_the_imported_accounts_work,
    a_second_engine_pads_to_an_import_made_by_the_first,
    an_import_of_cheap_hashes_leaves_unknown_identifiers_at_the_dummys_work,
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
