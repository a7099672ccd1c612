//! Password sign-in: the policy at registration, and failures that reveal nothing.

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
