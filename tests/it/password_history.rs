//! Password history (`PasswordConfig::history`, off by default as in Kratos): a new
//! password equal to one of the last N is refused in settings and after a recovery
//! (4000900), the history keeps only N hashes and goes with the identity.

use std::num::NonZeroU8;

use identa::credential::password::{PasswordConfig, PasswordHistory};
use identa::session::SessionToken;
use identa::store::IdentityStore;
use uuid::Uuid;

use crate::common::{
    PASSWORD, TestEnv, api_login, change_settings, invalid_flow, new_password, node_message_ids,
    register_with_password, test_config,
};
use crate::on_every_backend;
use crate::recovery::recover;

const A: &str = "first replacement passphrase";
const B: &str = "second replacement passphrase";
const C: &str = "third replacement passphrase";

/// `env` with an engine keeping the last `n` passwords (same store, clock and secrets).
fn keeping(mut env: TestEnv, n: u8) -> TestEnv {
    let mut config = env.identa.config().clone();
    config.password.history = PasswordHistory::Last(NonZeroU8::new(n).unwrap());
    env.identa = env.another_engine(config).build().unwrap();
    env
}

/// Sets `password` as the session of `token`; the message ids on the password field
/// when it is refused.
async fn change(env: &TestEnv, token: &SessionToken, password: &str) -> Result<(), Vec<u32>> {
    match change_settings(env, token, new_password(password)).await {
        Ok(_) => Ok(()),
        Err(err) => Err(node_message_ids(&invalid_flow(err), "password")),
    }
}

/// The history entries of identity `id`, as the store keeps them.
async fn history_rows(env: &TestEnv, id: Uuid) -> usize {
    let rows = env.store.password_history(id, u8::MAX).await.unwrap();
    for hash in &rows {
        assert!(hash.starts_with("$argon2id$"), "kept as a hash: {hash}");
    }
    rows.len()
}

async fn the_last_n_passwords_are_refused_until_they_fall_out(env: TestEnv) {
    let env = keeping(env, 2);
    let (ada, token) = register_with_password(&env, "ada@example.com").await;
    change(&env, &token, A).await.unwrap();
    change(&env, &token, B).await.unwrap();
    change(&env, &token, C).await.unwrap();
    // History: B, A (the registration's password pruned); C is the current one.
    assert_eq!(history_rows(&env, ada.id).await, 2);
    assert_eq!(change(&env, &token, A).await, Err(vec![4_000_900]));
    assert_eq!(change(&env, &token, B).await, Err(vec![4_000_900]));
    assert_eq!(change(&env, &token, C).await, Err(vec![4_000_039]));
    api_login(&env, "ada@example.com", C).await.unwrap();
    // Out of the window: accepted again.
    change(&env, &token, PASSWORD).await.unwrap();
    assert_eq!(history_rows(&env, ada.id).await, 2, "pruned beyond 2");
    // Now the history is C, B: A fell out.
    assert_eq!(change(&env, &token, B).await, Err(vec![4_000_900]));
    change(&env, &token, A).await.unwrap();
    api_login(&env, "ada@example.com", A).await.unwrap();

    // The history goes with the identity.
    env.identa.delete_identity(ada.id).await.unwrap();
    assert_eq!(history_rows(&env, ada.id).await, 0);
}

async fn a_recovered_account_cannot_go_back_to_a_recent_password(env: TestEnv) {
    let env = keeping(env, 3);
    let (ada, token) = register_with_password(&env, "ada@example.com").await;
    change(&env, &token, A).await.unwrap();
    let recovered = recover(&env, "ada@example.com").await;
    assert_eq!(
        change(&env, &recovered, PASSWORD).await,
        Err(vec![4_000_900])
    );
    change(&env, &recovered, B).await.unwrap();
    api_login(&env, "ada@example.com", B).await.unwrap();
    assert_eq!(history_rows(&env, ada.id).await, 2);
}

async fn by_default_no_history_is_kept_and_reuse_is_accepted(env: TestEnv) {
    assert_eq!(test_config().password.history, PasswordHistory::Off);
    assert_eq!(PasswordConfig::default().history, PasswordHistory::Off);
    let (ada, token) = register_with_password(&env, "ada@example.com").await;
    change(&env, &token, A).await.unwrap();
    change(&env, &token, PASSWORD).await.unwrap();
    api_login(&env, "ada@example.com", PASSWORD).await.unwrap();
    assert_eq!(history_rows(&env, ada.id).await, 0);
}

async fn a_replaced_imported_hash_is_not_kept_in_the_history(env: TestEnv) {
    let env = keeping(env, 3);
    // `openssl passwd -1 -salt saltstri password`: an imported md5-crypt hash, never
    // re-hashed because the user comes back through recovery, not a password sign-in.
    let md5 = "$md5-crypt$saltstri$qQY4WxjABChYG1ccLpfkz/";
    let new = identa::identity::NewIdentity {
        traits: serde_json::json!({ "email": "ada@example.com" }),
        ..Default::default()
    };
    let ada = env.identa.import_identity(new, md5).await.unwrap();
    let token = recover(&env, "ada@example.com").await;
    change(&env, &token, A).await.unwrap();
    let rows = env.store.password_history(ada.id, u8::MAX).await.unwrap();
    assert!(rows.is_empty(), "the md5-crypt hash is not kept: {rows:?}");
    // From then on the replaced argon2id hashes are kept as usual.
    change(&env, &token, B).await.unwrap();
    assert_eq!(history_rows(&env, ada.id).await, 1, "A, as argon2id");
    assert_eq!(change(&env, &token, A).await, Err(vec![4_000_900]));
}

on_every_backend!(
    a_replaced_imported_hash_is_not_kept_in_the_history,
    the_last_n_passwords_are_refused_until_they_fall_out,
    a_recovered_account_cannot_go_back_to_a_recent_password,
    by_default_no_history_is_kept_and_reuse_is_accepted,
);

#[test]
fn a_history_longer_than_24_is_refused_at_build() {
    let config = PasswordConfig {
        history: PasswordHistory::Last(NonZeroU8::new(25).unwrap()),
        ..PasswordConfig::insecure_fast_for_tests()
    };
    let err = identa::credential::password::PasswordHasher::new(config).unwrap_err();
    assert!(err.to_string().contains("at most 24"), "{err}");
    let config = PasswordConfig {
        history: PasswordHistory::Last(NonZeroU8::new(24).unwrap()),
        ..PasswordConfig::insecure_fast_for_tests()
    };
    identa::credential::password::PasswordHasher::new(config).unwrap();
}
