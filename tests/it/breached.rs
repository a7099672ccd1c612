//! Breached passwords: refused wherever a password is set (4000034), from the offline
//! list by default, from a host's own source, and (feature `hibp`) from Have I Been
//! Pwned's range API, here a local server answering in its format.

use async_trait::async_trait;
use identa::ErrorKind;
use identa::credential::breached::{BreachedPasswords, Exposure};
use identa::credential::password::Password;
use identa::flow::FlowRequest;
use serde_json::json;

use crate::common::{
    PASSWORD, TestEnv, api_registration_flow, change_settings, has_account, invalid_flow,
    new_password, password_registration, register_with_password, submit_registration,
};

/// Among the most common passwords of the shipped list, and long enough for the policy.
const COMMON: &str = "password123";

/// What registering `email` with `password` through an API flow shows on the password
/// field: its message ids and the first message's context.
async fn registration_refusal(
    env: &TestEnv,
    email: &str,
    password: &str,
) -> (Vec<u32>, serde_json::Value) {
    let flow = api_registration_flow(env).await;
    let err = submit_registration(
        env,
        flow.id,
        password_registration(json!({ "email": email }), password),
        &FlowRequest::api(),
    )
    .await
    .unwrap_err();
    let shown = invalid_flow(err);
    let node = shown.ui.node("password").unwrap();
    let ids = node.messages.iter().map(|m| m.id).collect();
    let context = node
        .messages
        .first()
        .map(|m| json!(m)["context"].clone())
        .unwrap_or_default();
    (ids, context)
}

async fn common_passwords_are_refused_wherever_a_password_is_set(env: TestEnv) {
    // Registration through a flow: on the password field, with Kratos's context.
    let (ids, context) = registration_refusal(&env, "ada@example.com", COMMON).await;
    assert_eq!(ids, vec![4_000_034]);
    assert_eq!(context, json!({ "breaches": 1 }));
    assert!(
        !has_account(&env, "ada@example.com").await,
        "nothing created"
    );

    // The library's registration and an administrator setting a password.
    let err = env
        .identa
        .register(
            json!({ "email": "bea@example.com" }),
            &Password::new(COMMON),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordPolicy);
    assert_eq!(
        err.to_string(),
        "The password has been found in data breaches and must no longer be used."
    );
    let (identity, token) = register_with_password(&env, "cleo@example.com").await;
    let err = env
        .identa
        .set_password(identity.id, &Password::new(COMMON))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordPolicy);

    // A password change in settings.
    let err = change_settings(&env, &token, new_password(COMMON))
        .await
        .unwrap_err();
    let shown = invalid_flow(err);
    let ids: Vec<u32> = shown
        .ui
        .node("password")
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, vec![4_000_034]);

    // The policy's other rules come first; an uncommon password passes.
    let (ids, _) = registration_refusal(&env, "dora@example.com", "123456").await;
    assert_eq!(ids, vec![4_000_032], "too short is said before breached");
    env.identa
        .register(
            json!({ "email": "dora@example.com" }),
            &Password::new(PASSWORD),
        )
        .await
        .unwrap();
}

/// A source the host plugs in: every password it was given is breached, 7 times.
struct Known(Vec<&'static str>);

#[async_trait]
impl BreachedPasswords for Known {
    async fn exposure(&self, password: &Password) -> Exposure {
        if self.0.contains(&password.expose()) {
            Exposure::Breached { times: 7 }
        } else {
            Exposure::NotFound
        }
    }
}

async fn a_host_can_plug_in_its_own_breach_source(env: TestEnv) {
    let identa = env
        .another_engine(env.identa.config().clone())
        .breached_passwords(Known(vec!["leaked in our own incident"]))
        .build()
        .unwrap();
    let err = identa
        .register(
            json!({ "email": "eve@example.com" }),
            &Password::new("leaked in our own incident"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordPolicy);
    // The host's source replaces the offline list.
    identa
        .register(
            json!({ "email": "fay@example.com" }),
            &Password::new(COMMON),
        )
        .await
        .unwrap();
}

crate::on_every_backend!(
    common_passwords_are_refused_wherever_a_password_is_set,
    a_host_can_plug_in_its_own_breach_source,
);

#[cfg(feature = "hibp")]
mod hibp {
    use std::sync::{Arc, Mutex};

    use identa::credential::breached::{BreachedPasswords, Exposure, PwnedPasswords};
    use identa::credential::password::Password;
    use sha1::{Digest, Sha1};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The SHA-1 of `password` in upper-case hex: (first five, the other 35).
    fn split_sha1(password: &str) -> (String, String) {
        let hex: String = Sha1::digest(password.as_bytes())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        (hex[..5].to_owned(), hex[5..].to_owned())
    }

    /// A local server answering the range API's format: for the prefix of each listed
    /// password, its suffix with its count among padding lines (count 0) and another
    /// suffix. Records each request's head.
    async fn range_server(listed: Vec<(&'static str, u64)>) -> (String, Arc<Mutex<Vec<String>>>) {
        range_server_with(listed, 0, Length::Declared).await
    }

    /// How the server tells the answer's length.
    #[derive(Clone, Copy)]
    enum Length {
        /// In `Content-Length`.
        Declared,
        /// Not at all: the body ends when the connection closes.
        UntilClose,
    }

    /// [`range_server`] with `padding` more padding lines before the listed suffix.
    async fn range_server_with(
        listed: Vec<(&'static str, u64)>,
        padding: usize,
        length: Length,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                log.lock().unwrap().push(head.clone());
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut body = String::from("00000000000000000000000000000000000:0\r\n");
                for n in 0..padding {
                    body.push_str(&format!("{n:035X}:0\r\n"));
                }
                for (password, count) in &listed {
                    let (prefix, suffix) = split_sha1(password);
                    if path == format!("/range/{prefix}") {
                        body.push_str(&format!("{suffix}:{count}\r\n"));
                    }
                }
                body.push_str("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:2\r\n");
                let res = match length {
                    Length::Declared => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    Length::UntilClose => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n{body}"
                    ),
                };
                let _ = socket.write_all(res.as_bytes()).await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn the_range_api_is_asked_with_only_a_prefix() {
        let (url, seen) = range_server(vec![("correct horse battery staple", 3)]).await;
        let check = PwnedPasswords::at(url);
        let found = check
            .exposure(&Password::new("correct horse battery staple"))
            .await;
        assert_eq!(found, Exposure::Breached { times: 3 });
        let fresh = check
            .exposure(&Password::new("a password nobody has used yet 7"))
            .await;
        assert_eq!(fresh, Exposure::NotFound);

        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 2);
        let (prefix, suffix) = split_sha1("correct horse battery staple");
        let first = requests[0].to_ascii_lowercase();
        assert!(
            first.starts_with(&format!("get /range/{} ", prefix.to_ascii_lowercase())),
            "{first}"
        );
        assert!(first.contains("add-padding: true"), "{first}");
        assert!(
            !first.contains(&suffix.to_ascii_lowercase()),
            "the suffix stays here"
        );
        assert!(!first.contains("horse"), "the password stays here");

        // A second check of the same prefix is answered from the cache.
        check
            .exposure(&Password::new("correct horse battery staple"))
            .await;
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn max_breaches_accepts_rarely_seen_passwords() {
        let (url, _) = range_server(vec![("seen twice in breaches", 2)]).await;
        let check = PwnedPasswords::at(url).max_breaches(2);
        let seen_twice = check
            .exposure(&Password::new("seen twice in breaches"))
            .await;
        assert_eq!(seen_twice, Exposure::NotFound);
    }

    /// An answer over 1 MiB (a real one is about 40 KB) is not read, whether its length is
    /// declared or only found out while reading: the offline list answers instead.
    #[tokio::test]
    async fn an_oversized_answer_falls_back_to_the_offline_list() {
        let listed = "a password nobody has used yet 7";
        // 30,000 padding lines of 40 bytes: 1.2 MB.
        for length in [Length::Declared, Length::UntilClose] {
            let (url, _) = range_server_with(vec![(listed, 5)], 30_000, length).await;
            let check = PwnedPasswords::at(url);
            assert_eq!(
                check.exposure(&Password::new(listed)).await,
                Exposure::NotFound,
                "the oversized answer is not believed"
            );
            assert_eq!(
                check.exposure(&Password::new("password123")).await,
                Exposure::Breached { times: 1 },
                "the offline list answers"
            );
        }
        // Under the bound, the same answer is read.
        let (url, _) = range_server_with(vec![(listed, 5)], 1_000, Length::UntilClose).await;
        assert_eq!(
            PwnedPasswords::at(url)
                .exposure(&Password::new(listed))
                .await,
            Exposure::Breached { times: 5 }
        );
    }

    #[tokio::test]
    async fn an_unreachable_api_falls_back_to_the_offline_list() {
        // A port nothing listens on.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let check = PwnedPasswords::at(url);
        assert_eq!(
            check.exposure(&Password::new("password123")).await,
            Exposure::Breached { times: 1 }
        );
        assert_eq!(
            check
                .exposure(&Password::new("a password nobody has used yet 7"))
                .await,
            Exposure::NotFound
        );
    }
}
