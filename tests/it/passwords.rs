//! Password sign-in: the policy at registration, and failures that reveal nothing.

use identa::credential::password::Password;
use identa::identity::{IdentityState, IdentityUpdate};
use identa::{Error, ErrorKind};
use serde_json::json;

use crate::common::{PASSWORD, TestEnv};

async fn wrong_password_and_unknown_user_look_alike(env: TestEnv) {
    env.identa
        .register(
            json!({ "email": "ada@example.com" }),
            &Password::new("a sturdy passphrase 42"),
        )
        .await
        .unwrap();
    let wrong = env
        .identa
        .login(
            "ada@example.com",
            &Password::new("not the passphrase"),
            None,
        )
        .await
        .unwrap_err();
    let unknown = env
        .identa
        .login(
            "nobody@example.com",
            &Password::new("a sturdy passphrase 42"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        wrong,
        Error::Flow(identa::flow::FlowError::InvalidCredentials)
    ));
    assert!(matches!(
        unknown,
        Error::Flow(identa::flow::FlowError::InvalidCredentials)
    ));
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(!wrong.to_string().contains("ada"));

    // Garbage of every shape is refused the same way, without a panic.
    for identifier in ["", " ", "\u{0}", &"a".repeat(100_000)] {
        let err = env
            .identa
            .login(identifier, &Password::new("a sturdy passphrase 42"), None)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Flow(identa::flow::FlowError::InvalidCredentials)
        ));
    }
    let err = env
        .identa
        .login("ada@example.com", &Password::new("p".repeat(1 << 20)), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Flow(identa::flow::FlowError::InvalidCredentials)
    ));
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
    let pw = Password::new("a sturdy passphrase 42");
    let ada = env
        .identa
        .register(json!({ "email": "ada@example.com" }), &pw)
        .await
        .unwrap();
    env.identa
        .update_identity(
            ada.id,
            IdentityUpdate {
                state: Some(IdentityState::Inactive),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = env
        .identa
        .login("ada@example.com", &pw, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IdentityDisabled);
    // A wrong password on a disabled account still says only "invalid credentials".
    let err = env
        .identa
        .login("ada@example.com", &Password::new("wrong wrong wrong"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
}

async fn set_password_replaces_the_old_one(env: TestEnv) {
    let old = Password::new("a sturdy passphrase 42");
    let new = Password::new("another sturdy phrase 7");
    let ada = env
        .identa
        .register(json!({ "email": "ada@example.com" }), &old)
        .await
        .unwrap();
    env.identa.set_password(ada.id, &new).await.unwrap();
    let refused = env
        .identa
        .login("ada@example.com", &old, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Flow(identa::flow::FlowError::InvalidCredentials)
        ),
        "{refused:?}"
    );
    assert!(
        env.identa
            .login("ada@example.com", &new, None)
            .await
            .is_ok()
    );
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
    let mut ada = env
        .identa
        .register(
            json!({ "email": "ada@example.com" }),
            &Password::new(PASSWORD),
        )
        .await
        .unwrap();
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
        assert!(
            matches!(
                err,
                Error::Flow(identa::flow::FlowError::InvalidCredentials)
            ),
            "{alg}: {err:?}"
        );
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
            env.identa
                .login(email, &Password::new("wrong"), None)
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidCredentials
        );
        env.identa
            .login(email, &Password::new("test"), None)
            .await
            .unwrap();
        // The first successful login re-hashes with identa's argon2id parameters.
        let stored = env.identa.identity(imported.id).await.unwrap();
        let now = stored
            .credential(identa::identity::CredentialType::Password)
            .unwrap()
            .hashed_password()
            .unwrap()
            .to_owned();
        assert!(now.starts_with("$argon2id$"), "{now}");
        env.identa
            .login(email, &Password::new("test"), None)
            .await
            .unwrap();
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
    assert!(
        env.identa
            .identity_by_identifier("bad@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

crate::on_every_backend!(
    imported_kratos_hashes_sign_in_and_are_upgraded,
    an_unverifiable_stored_hash_is_just_invalid_credentials,
    wrong_password_and_unknown_user_look_alike,
    policy_is_enforced_at_registration,
    disabled_identity_cannot_log_in,
    set_password_replaces_the_old_one,
);
