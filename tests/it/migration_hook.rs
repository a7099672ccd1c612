//! The password migration hook (Kratos's `use_password_migration_hook`): identities
//! imported without a hash sign in the first time through the host's hook, which then
//! never hears of them again; a wrong answer is a wrong password (and throttled as one),
//! a hook that is down changes nothing; the hook hears only of marked identities. The
//! admin API imports and shows the marker as Kratos does; with feature `migration-hook`,
//! the HTTP hook speaks Kratos's protocol to a local server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use identa::credential::password::Password;
use identa::credential::password::migration::{MigrationError, PasswordMigration, Verdict};
use identa::identity::{CredentialType, NewIdentity, StoredPassword};
use identa::{ErrorKind, IdentityImport, PasswordImport};
use serde_json::json;
use uuid::Uuid;

use crate::common::{
    PASSWORD, TestEnv, all_message_ids, api_login, change_settings, invalid_flow, new_password,
    register_with_password, stored_hash,
};
use crate::on_every_backend;
use crate::throttle::{assert_invalid_credentials, login_from, retry_after};

/// A password with letters beyond ASCII, as users of the old system have them.
const OLD_PASSWORD: &str = "Grüße aus Köln, 東京 ✓";

/// The system being left: a table of (identifier, password), and what it was asked.
#[derive(Default)]
struct OldSystem {
    passwords: HashMap<String, String>,
    down: Mutex<bool>,
    asked: Mutex<Vec<(Uuid, String)>>,
}

impl OldSystem {
    fn with(identifier: &str, password: &str) -> Arc<Self> {
        Arc::new(Self {
            passwords: HashMap::from([(identifier.to_owned(), password.to_owned())]),
            ..Self::default()
        })
    }

    fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }

    fn asked(&self) -> Vec<(Uuid, String)> {
        self.asked.lock().unwrap().clone()
    }
}

/// The engine's handle on an [`OldSystem`] the test keeps too.
struct Shared(Arc<OldSystem>);

#[async_trait]
impl PasswordMigration for Shared {
    async fn verify(
        &self,
        identity_id: Uuid,
        identifier: &str,
        password: &Password,
    ) -> Result<Verdict, MigrationError> {
        self.0
            .asked
            .lock()
            .unwrap()
            .push((identity_id, identifier.to_owned()));
        if *self.0.down.lock().unwrap() {
            return Err(MigrationError::Unavailable("connection refused".into()));
        }
        Ok(match self.0.passwords.get(identifier) {
            Some(p) if p == password.expose() => Verdict::Match,
            _ => Verdict::NoMatch,
        })
    }
}

/// `env` with an engine that asks `old` (same store, clock and configuration).
fn with_hook(mut env: TestEnv, old: &Arc<OldSystem>) -> TestEnv {
    env.identa = env
        .another_engine(env.identa.config().clone())
        .password_migration(Shared(old.clone()))
        .build()
        .unwrap();
    env
}

/// Imports `email` through the library's batch import, its password awaiting migration.
async fn import_awaiting(env: &TestEnv, email: &str) -> Uuid {
    let mut answers = env
        .identa
        .import_identities(vec![IdentityImport {
            identity: NewIdentity {
                traits: json!({ "email": email }),
                ..NewIdentity::default()
            },
            password: PasswordImport::MigrationHook,
        }])
        .await
        .unwrap();
    answers.remove(0).unwrap().id
}

/// Whether identity `id`'s password still awaits migration.
async fn awaits_migration(env: &TestEnv, id: Uuid) -> bool {
    let identity = env.identa.identity(id).await.unwrap();
    let credential = identity.credential(CredentialType::Password).unwrap();
    credential.stored_password() == Some(StoredPassword::AwaitingMigration)
}

async fn the_first_sign_in_migrates_and_the_hook_is_never_asked_again(env: TestEnv) {
    let old = OldSystem::with("ada@example.com", OLD_PASSWORD);
    let env = with_hook(env, &old);
    let id = import_awaiting(&env, "ada@example.com").await;
    assert!(awaits_migration(&env, id).await);

    // A wrong password: exactly the wrong-credentials answer, nothing stored.
    let shown = invalid_flow(
        api_login(&env, "ada@example.com", "not the old password")
            .await
            .unwrap_err(),
    );
    assert_eq!(all_message_ids(&shown), vec![4_000_006]);
    assert!(awaits_migration(&env, id).await);

    // The right one (not ASCII): signed in, and identa's own hash stored with the session.
    let logged_in = api_login(&env, "ada@example.com", OLD_PASSWORD)
        .await
        .unwrap();
    assert_eq!(logged_in.session.identity.id, id);
    let hash = stored_hash(&env, id).await;
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    assert_eq!(
        old.asked(),
        vec![
            (id, "ada@example.com".to_owned()),
            (id, "ada@example.com".to_owned())
        ]
    );

    // The old system goes away: the stored hash answers from now on.
    old.set_down(true);
    api_login(&env, "ada@example.com", OLD_PASSWORD)
        .await
        .unwrap();
    assert_invalid_credentials(api_login(&env, "ada@example.com", "not the old password").await);
    assert_eq!(old.asked().len(), 2, "never asked again");
    assert_eq!(stored_hash(&env, id).await, hash, "hashed once");
}

async fn a_hook_that_is_down_changes_nothing_and_says_so(env: TestEnv) {
    let old = OldSystem::with("ada@example.com", OLD_PASSWORD);
    let env = with_hook(env, &old);
    let id = import_awaiting(&env, "ada@example.com").await;
    old.set_down(true);
    // More tries than the failure limit of one address: none counts as a failure.
    for _ in 0..6 {
        let err = login_from(&env.identa, "192.0.2.1", "ada@example.com", OLD_PASSWORD)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PasswordMigrationUnavailable);
        assert_eq!(err.kind().as_str(), "password_migration_hook_unavailable");
        assert!(err.to_string().contains("could not be reached"), "{err}");
        assert!(!err.to_string().contains(OLD_PASSWORD));
    }
    assert!(awaits_migration(&env, id).await);
    old.set_down(false);
    login_from(&env.identa, "192.0.2.1", "ada@example.com", OLD_PASSWORD)
        .await
        .unwrap();
    assert!(!awaits_migration(&env, id).await);
}

async fn a_wrong_answer_counts_as_a_wrong_password(env: TestEnv) {
    let old = OldSystem::with("ada@example.com", OLD_PASSWORD);
    let env = with_hook(env, &old);
    import_awaiting(&env, "ada@example.com").await;
    for _ in 0..5 {
        assert_invalid_credentials(
            login_from(&env.identa, "192.0.2.1", "ada@example.com", "a wrong guess").await,
        );
    }
    // Refused before the hook is asked: the sixth try never reaches it.
    retry_after(login_from(&env.identa, "192.0.2.1", "ada@example.com", OLD_PASSWORD).await);
    assert_eq!(old.asked().len(), 5);
}

async fn the_hook_hears_only_of_marked_identities(env: TestEnv) {
    let old = OldSystem::with("ada@example.com", OLD_PASSWORD);
    let env = with_hook(env, &old);
    register_with_password(&env, "bea@example.com").await;
    api_login(&env, "bea@example.com", PASSWORD).await.unwrap();
    assert_invalid_credentials(api_login(&env, "bea@example.com", OLD_PASSWORD).await);
    // An unknown identifier, even one the old system knows: no oracle.
    assert_invalid_credentials(api_login(&env, "ada@example.com", OLD_PASSWORD).await);
    assert!(old.asked().is_empty(), "{:?}", old.asked());
    // The library's sign-in without a flow asks it for a marked identity too.
    let id = import_awaiting(&env, "ada@example.com").await;
    env.identa
        .login("ada@example.com", &Password::new(OLD_PASSWORD), None)
        .await
        .unwrap();
    assert_eq!(old.asked(), vec![(id, "ada@example.com".to_owned())]);
}

async fn without_a_hook_a_marked_identity_is_told_what_is_missing(env: TestEnv) {
    let id = import_awaiting(&env, "ada@example.com").await;
    let err = api_login(&env, "ada@example.com", OLD_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordMigrationNotConfigured);
    assert!(
        err.to_string()
            .contains("IdentaBuilder::password_migration"),
        "{err}"
    );
    assert!(awaits_migration(&env, id).await);
}

async fn a_recovered_identity_sets_its_own_password_and_leaves_the_hook(env: TestEnv) {
    let old = OldSystem::with("ada@example.com", OLD_PASSWORD);
    let env = with_hook(env, &old);
    let id = import_awaiting(&env, "ada@example.com").await;
    let token = crate::recovery::recover(&env, "ada@example.com").await;
    change_settings(&env, &token, new_password("a fresh passphrase of her own"))
        .await
        .unwrap();
    assert!(!awaits_migration(&env, id).await);
    api_login(&env, "ada@example.com", "a fresh passphrase of her own")
        .await
        .unwrap();
    assert_invalid_credentials(api_login(&env, "ada@example.com", OLD_PASSWORD).await);
    assert!(old.asked().is_empty(), "{:?}", old.asked());
}

on_every_backend!(
    a_recovered_identity_sets_its_own_password_and_leaves_the_hook,
    the_first_sign_in_migrates_and_the_hook_is_never_asked_again,
    a_hook_that_is_down_changes_nothing_and_says_so,
    a_wrong_answer_counts_as_a_wrong_password,
    the_hook_hears_only_of_marked_identities,
    without_a_hook_a_marked_identity_is_told_what_is_missing,
);

/// The admin API: Kratos's import body with `use_password_migration_hook`, on create and
/// in a batch; the export shows the marker; a hook that is down is a 502.
#[cfg(feature = "http")]
mod admin {
    use std::net::IpAddr;

    use bytes::Bytes;
    use http::StatusCode;
    use identa::ErrorKind;
    use identa::http::response::status_of;
    use identa::http::{AdminApi, ClientIp, HttpConfig};
    use serde_json::{Value, json};

    use super::{OLD_PASSWORD, OldSystem, awaits_migration, with_hook};
    use crate::common::{TestEnv, api_login};
    use crate::on_every_backend;

    async fn call(
        api: &AdminApi,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:4434")
            .header("content-type", "application/json")
            .body(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        req.extensions_mut()
            .insert(ClientIp(IpAddr::from([127, 0, 0, 1])));
        let res = api.handle(req).await;
        let body = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
        (res.status(), body)
    }

    fn migrating(email: &str) -> Value {
        json!({
            "traits": { "email": email },
            "credentials": { "password": { "config": { "use_password_migration_hook": true } } }
        })
    }

    async fn kratos_import_bodies_with_the_migration_hook(env: TestEnv) {
        let old = OldSystem::with("ada@example.com", OLD_PASSWORD);
        let env = with_hook(env, &old);
        let api = AdminApi::new(env.identa.clone(), HttpConfig::default());

        let (status, created) = call(
            &api,
            "POST",
            "/admin/identities",
            Some(migrating("ada@example.com")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
        assert!(awaits_migration(&env, id).await);
        assert!(created["credentials"]["password"].get("config").is_none());
        let (_, shown) = call(
            &api,
            "GET",
            &format!("/admin/identities/{id}?include_credential=password"),
            None,
        )
        .await;
        assert_eq!(
            shown["credentials"]["password"]["config"],
            json!({ "hashed_password": "", "use_password_migration_hook": true })
        );

        // A batch; Kratos's own export shape (an empty hash beside the flag) re-imports.
        let mut exported = migrating("bea@example.com");
        exported["credentials"]["password"]["config"]["hashed_password"] = json!("");
        let (status, answer) = call(
            &api,
            "PATCH",
            "/admin/identities",
            Some(json!({ "identities": [{ "create": exported }] })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let bea: uuid::Uuid = answer["identities"][0]["identity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(awaits_migration(&env, bea).await);

        // The flag imports no password: beside one it is refused, naming both.
        let mut both = migrating("cleo@example.com");
        both["credentials"]["password"]["config"]["password"] = json!(OLD_PASSWORD);
        let (status, refused) = call(&api, "POST", "/admin/identities", Some(both)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            refused["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("use_password_migration_hook"),
            "{refused}"
        );

        // Signed in through the hook: the export shows identa's hash.
        api_login(&env, "ada@example.com", OLD_PASSWORD)
            .await
            .unwrap();
        let (_, shown) = call(
            &api,
            "GET",
            &format!("/admin/identities/{id}?include_credential=password"),
            None,
        )
        .await;
        let config = &shown["credentials"]["password"]["config"];
        assert!(
            config.get("use_password_migration_hook").is_none(),
            "{config}"
        );
        assert!(
            config["hashed_password"]
                .as_str()
                .unwrap()
                .starts_with("$argon2id$")
        );
    }

    on_every_backend!(kratos_import_bodies_with_the_migration_hook);

    #[test]
    fn a_hook_that_is_down_is_a_bad_gateway_as_in_kratos() {
        assert_eq!(
            status_of(ErrorKind::PasswordMigrationUnavailable),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status_of(ErrorKind::PasswordMigrationNotConfigured),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

/// [`HttpPasswordMigration`] against a local server that checks passwords against a
/// table, as an old system's migration endpoint would (Kratos's protocol).
#[cfg(feature = "migration-hook")]
mod over_http {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use identa::credential::password::Password;
    use identa::credential::password::migration::{
        HttpPasswordMigration, MigrationError, PasswordMigration, Verdict,
    };
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use uuid::Uuid;

    use super::{OLD_PASSWORD, awaits_migration, import_awaiting};
    use crate::common::{TestEnv, api_login};
    use crate::on_every_backend;

    /// What the server answers for a request it does not match by password.
    #[derive(Clone, Copy)]
    enum Mode {
        /// Kratos's protocol: 200 `{"status":"password_match"}`, else 200 with another
        /// status, 403 for `forbidden@example.com`.
        Table,
        /// 500 for everything.
        Broken,
    }

    /// A local hook: reads one request per connection, checks `identifier`/`password`
    /// against `table`, and records each request (head and body).
    async fn hook_server(
        table: Vec<(&'static str, &'static str)>,
        mode: Mode,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/migrate", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                let request = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break String::from_utf8_lossy(&raw).to_string();
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break text;
                        }
                    }
                };
                log.lock().unwrap().push(request.clone());
                let body: Value = request
                    .split_once("\r\n\r\n")
                    .and_then(|(_, b)| serde_json::from_str(b).ok())
                    .unwrap_or(Value::Null);
                let identifier = body["identifier"].as_str().unwrap_or_default();
                let password = body["password"].as_str().unwrap_or_default();
                let (status, answer) = match mode {
                    Mode::Broken => ("500 Internal Server Error", json!({ "error": "boom" })),
                    Mode::Table if identifier == "forbidden@example.com" => {
                        ("403 Forbidden", json!({}))
                    }
                    Mode::Table if table.contains(&(identifier, password)) => {
                        ("200 OK", json!({ "status": "password_match" }))
                    }
                    Mode::Table => ("200 OK", json!({ "status": "password_mismatch" })),
                };
                let answer = answer.to_string();
                let res = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(res.as_bytes()).await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn kratos_protocol_over_http() {
        let (url, seen) = hook_server(vec![("ada@example.com", OLD_PASSWORD)], Mode::Table).await;
        let hook = HttpPasswordMigration::new(&url)
            .unwrap()
            .authorization("Bearer hook-secret");
        let ask = |identifier: &'static str, password: &'static str| {
            let hook = &hook;
            async move {
                hook.verify(Uuid::new_v4(), identifier, &Password::new(password))
                    .await
            }
        };
        assert_eq!(
            ask("ada@example.com", OLD_PASSWORD).await,
            Ok(Verdict::Match)
        );
        assert_eq!(
            ask("ada@example.com", "Gruesse aus Koeln").await,
            Ok(Verdict::NoMatch)
        );
        assert_eq!(
            ask("forbidden@example.com", OLD_PASSWORD).await,
            Ok(Verdict::NoMatch)
        );

        // What the hook received: a JSON POST with the identifier and the password as
        // typed (UTF-8), and the authorization header.
        let first = seen.lock().unwrap()[0].clone();
        let (head, body) = first.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /migrate "), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("authorization: bearer hook-secret"), "{head}");
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            json!({ "identifier": "ada@example.com", "password": OLD_PASSWORD })
        );
        assert!(!format!("{hook:?}").contains("hook-secret"));
    }

    /// What `hook` answers for ada typing her old system's password.
    async fn ada_with_her_old_password(
        hook: &HttpPasswordMigration,
    ) -> Result<Verdict, MigrationError> {
        hook.verify(
            Uuid::new_v4(),
            "ada@example.com",
            &Password::new(OLD_PASSWORD),
        )
        .await
    }

    #[tokio::test]
    async fn a_broken_or_absent_hook_is_unavailable_not_a_wrong_password() {
        let (url, _) = hook_server(vec![("ada@example.com", OLD_PASSWORD)], Mode::Broken).await;
        let hook = HttpPasswordMigration::new(&url).unwrap();
        let got = ada_with_her_old_password(&hook).await;
        assert!(
            matches!(&got, Err(MigrationError::Unavailable(why)) if why.contains("500")),
            "{got:?}"
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let hook = HttpPasswordMigration::with_timeout(
            format!("http://{closed}/"),
            Duration::from_secs(1),
        )
        .unwrap();
        let got = ada_with_her_old_password(&hook).await;
        assert!(
            matches!(got, Err(MigrationError::Unavailable(_))),
            "{got:?}"
        );
    }

    async fn a_sign_in_migrates_through_the_http_hook(mut env: TestEnv) {
        let (url, seen) = hook_server(vec![("ada@example.com", OLD_PASSWORD)], Mode::Table).await;
        env.identa = env
            .another_engine(env.identa.config().clone())
            .password_migration(HttpPasswordMigration::new(&url).unwrap())
            .build()
            .unwrap();
        let id = import_awaiting(&env, "ada@example.com").await;
        api_login(&env, "ada@example.com", OLD_PASSWORD)
            .await
            .unwrap();
        assert!(!awaits_migration(&env, id).await);
        api_login(&env, "ada@example.com", OLD_PASSWORD)
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    on_every_backend!(a_sign_in_migrates_through_the_http_hook);
}
