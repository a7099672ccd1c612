//! Sign in with Apple against a local stand-in speaking Apple's protocol
//! (`examples/http-suite/oidc/apple.mjs`): the client secret is an ES256 JWT identa mints
//! from the developer key for each token request, which the stand-in verifies; Apple
//! answers by form post and says `"email_verified": "true"` as a string.

use base64ct::{Base64, Encoding};
use identa::credential::oidc::AppleKey;

use super::form_post::form_post_of;
use super::*;

/// The stand-in's developer account.
const TEAM: &str = "TEAM123456";
const KEY_ID: &str = "KEY1234567";
const SERVICES_ID: &str = "com.example.identa";

/// A P-256 key Apple does not know.
const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOSE0x4jW8Bo9jJep
jFomTQ89Q0ae3AsLrFohuRvZ1XChRANCAATZEZ5iJgmZBRnyXOvw+MLkfkxcooAe
9eWQnHdo4AxwLVeDHxikWwmsd6VkHIHxCj5e5tCotR4hcig3YC+3rW35
-----END PRIVATE KEY-----
";

/// The Apple stand-in, running until dropped, and the developer key it made.
struct AppleStandIn {
    child: Child,
    issuer: String,
    key: String,
}

impl Drop for AppleStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AppleStandIn {
    fn start(identa: &Identa) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/http-suite/oidc");
        assert!(
            std::path::Path::new(dir).join("node_modules/jose").exists(),
            "this test needs Node and `jose`: `npm ci --prefix examples/http-suite/oidc`"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("node")
            .arg("apple.mjs")
            .arg(port.to_string())
            .arg(identa.oidc().callback_url("apple"))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("this test needs Node (`node` on the PATH)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut key = None;
        let issuer = loop {
            let line = lines
                .next()
                .expect("the Apple stand-in exited before listening")
                .unwrap();
            if let Some(pem) = line.strip_prefix("key ") {
                key = Some(String::from_utf8(Base64::decode_vec(pem).unwrap()).unwrap());
            }
            if let Some(issuer) = line.strip_prefix("listening ") {
                break issuer.to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            issuer,
            key: key.expect("the stand-in printed its developer key"),
        }
    }
}

/// An engine on `env` signing in with Apple at `apple`, its client secrets signed with
/// `pem`.
fn apple_engine(env: &TestEnv, apple: &AppleStandIn, pem: &str) -> Identa {
    let key = AppleKey::new(TEAM, KEY_ID, pem);
    env.another_engine(env.identa.config().clone())
        .oidc(OidcProviders::new().provider(OidcProvider::apple_at(
            &apple.issuer,
            SERVICES_ID,
            key,
        )))
        .build()
        .unwrap()
}

impl Browser {
    /// Presses the Apple button on a new browser flow of `kind`, approves at Apple, and
    /// posts Apple's form back cross-site: the flow, and the GET callback identa turned
    /// the post into. Asserts what Apple was asked for and what it posted.
    async fn through_apple(&mut self, kind: &str) -> (Value, String) {
        let flow = self.start_flow(kind).await;
        let button = node(&flow, "provider");
        assert_eq!(button["attributes"]["value"], "apple");
        let res = self
            .identa(
                "POST",
                &format!("/self-service/{kind}?flow={}", flow["id"].as_str().unwrap()),
                Some(&[("csrf_token", &csrf_token(&flow)), ("provider", "apple")]),
                false,
            )
            .await;
        assert_eq!(res.status(), 303, "{}", body_text(&res));
        let to = location(&res);
        assert!(to.contains("response_mode=form_post"), "{to}");
        assert!(to.contains("scope=openid+email+name"), "{to}");
        let page = self.web.get(&to).send().await.unwrap();
        assert_eq!(page.status(), 200, "Apple approves at once");
        let posted = form_post_of(&page.text().await.unwrap());
        let names: Vec<&str> = posted.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.starts_with(&["code", "state"]), "{names:?}");
        let fields: Vec<(&str, &str)> = posted
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut form = reqwest::Url::parse("http://form/").unwrap();
        form.query_pairs_mut().extend_pairs(&fields);
        let req = http::Request::builder()
            .method("POST")
            .uri(posted.action.strip_prefix(&self.public_url).unwrap())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(form.query().unwrap().to_owned()))
            .unwrap();
        let res = self.api.handle(req).await;
        assert_eq!(res.status(), 303, "{}", body_text(&res));
        (flow, location(&res))
    }
}

/// A new Apple account signs up (the minted client secret accepted, the form post turned
/// into a GET with the cookie, Apple's string `"true"` read as verified) and signs in
/// again to the same identity, as `apple:<subject>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and jose: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn an_apple_account_signs_up_and_in_with_a_minted_client_secret() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let apple = AppleStandIn::start(&env.identa);
    let identa = apple_engine(&env, &apple, &apple.key);
    let mut browser = Browser::new(&identa);
    let (_, callback) = browser.through_apple("registration").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(location(&res), HttpConfig::default().default_return_url);
    let me = browser.whoami().await;
    assert_eq!(
        me["identity"]["traits"]["email"],
        "ada@privaterelay.appleid.com"
    );
    assert_eq!(
        me["identity"]["verifiable_addresses"][0]["verified"], true,
        "Apple's \"email_verified\": \"true\" is a string"
    );
    let id: uuid::Uuid = me["identity"]["id"].as_str().unwrap().parse().unwrap();
    let stored = identa.identity(id).await.unwrap();
    assert_eq!(
        stored.credential(CredentialType::Oidc).unwrap().identifiers,
        vec!["apple:000123.4f6b0c1e".to_owned()]
    );

    browser.cookies.clear();
    let (_, callback) = browser.through_apple("login").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(browser.whoami().await["identity"]["id"], id.to_string());
    assert_eq!(identity_count(&identa).await, 1);
}

/// A client secret Apple refuses — signed with a key it does not know, or expired by the
/// time it arrives — is a message on the flow saying what to check; nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and jose: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_client_secret_apple_refuses_is_a_clear_flow_message() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let apple = AppleStandIn::start(&env.identa);

    let wrong_key = apple_engine(&env, &apple, OTHER_KEY);
    let expired = apple_engine(&env, &apple, &apple.key);
    for (identa, back) in [
        (wrong_key, None),
        (expired, Some(chrono::Duration::minutes(10))),
    ] {
        let mut browser = Browser::new(&identa);
        let (flow, callback) = browser.through_apple("registration").await;
        if let Some(back) = back {
            // identa's clock runs behind: the five-minute secret it mints has expired by
            // Apple's.
            env.clock.set(env.clock_now() - back);
        }
        let res = browser.identa("GET", &callback, None, true).await;
        assert_eq!(res.status(), 400, "{}", body_text(&res));
        let shown = json_of(&res);
        assert_eq!(shown["id"], flow["id"], "the same flow, kept");
        assert_eq!(message_ids(&shown), vec![4_000_001]);
        let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
        assert!(text.contains("invalid_client"), "{text}");
        assert!(text.contains("Apple refused the client secret"), "{text}");
        assert!(text.contains("apple_private_key"), "{text}");
        assert!(!browser.cookies.contains_key("identa_session"));
        assert_eq!(identity_count(&identa).await, 0);
    }
}

/// An ID token as Apple's SDK hands it to a native app: for `aud`, with `nonce` (none:
/// without one).
async fn native_id_token(apple: &AppleStandIn, nonce: Option<&str>, aud: &str) -> String {
    let mut form = vec![("aud", aud)];
    if let Some(nonce) = nonce {
        form.push(("nonce", nonce));
    }
    let res = reqwest::Client::new()
        .post(format!("{}/test/native-id-token", apple.issuer))
        .form(&form)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    body["id_token"].as_str().unwrap().to_owned()
}

impl Browser {
    /// Starts an API flow of `kind` (a native app: no cookies) and submits
    /// `fields` with `method=oidc` to it: the answer.
    async fn native_oidc(&mut self, kind: &str, fields: &[(&str, &str)]) -> http::Response<Bytes> {
        self.cookies.clear();
        let res = self
            .identa("GET", &format!("/self-service/{kind}/api"), None, true)
            .await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        let flow = json_of(&res);
        let mut form = vec![("method", "oidc")];
        form.extend_from_slice(fields);
        let id = flow["id"].as_str().unwrap().to_owned();
        self.identa(
            "POST",
            &format!("/self-service/{kind}?flow={id}"),
            Some(&form),
            true,
        )
        .await
    }
}

/// Kratos's native sign-in: an app submits the ID token Apple's SDK gave it, with the
/// nonce it asked for, to a registration API flow (a new account: registered, its session
/// token in the answer), then to a login API flow (the same identity signs in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and jose: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_native_app_signs_up_and_in_with_an_apple_id_token() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let apple = AppleStandIn::start(&env.identa);
    let identa = apple_engine(&env, &apple, &apple.key);
    let mut app = Browser::new(&identa);

    let token = native_id_token(&apple, Some("nonce-of-the-app-1"), SERVICES_ID).await;
    let res = app
        .native_oidc(
            "registration",
            &[
                ("provider", "apple"),
                ("id_token", &token),
                ("id_token_nonce", "nonce-of-the-app-1"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let registered = json_of(&res);
    assert!(registered["session_token"].is_string(), "{registered}");
    let id = registered["identity"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        registered["identity"]["traits"]["email"],
        "ada@privaterelay.appleid.com"
    );
    assert_eq!(
        registered["identity"]["verifiable_addresses"][0]["verified"],
        true
    );

    let token = native_id_token(&apple, Some("nonce-of-the-app-2"), SERVICES_ID).await;
    let res = app
        .native_oidc(
            "login",
            &[
                ("provider", "apple"),
                ("id_token", &token),
                ("id_token_nonce", "nonce-of-the-app-2"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let signed_in = json_of(&res);
    assert_eq!(signed_in["session"]["identity"]["id"], id.as_str());
    assert_eq!(
        signed_in["session"]["authentication_methods"][0]["method"],
        "oidc"
    );
    let token = signed_in["session_token"].as_str().unwrap();
    let whoami = http::Request::builder()
        .uri("/sessions/whoami")
        .header("x-session-token", token)
        .body(Bytes::new())
        .unwrap();
    let res = app.api.handle(whoami).await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(json_of(&res)["identity"]["id"], id.as_str());
    assert_eq!(identity_count(&identa).await, 1);
}

/// What a native ID token must be: Apple's (signed by its JWKS, for this client), with
/// the nonce the app submits — each refusal on the flow with Kratos's reason, nothing
/// made — and only on an API flow of a provider that takes them (Kratos's "does not
/// support id_token verification" for a generic provider).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and jose: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_native_id_token_is_refused_unless_apples_for_this_client_and_nonce() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let apple = AppleStandIn::start(&env.identa);
    let key = AppleKey::new(TEAM, KEY_ID, apple.key.as_str());
    let identa = env
        .another_engine(env.identa.config().clone())
        .oidc(
            OidcProviders::new()
                .provider(
                    OidcProvider::apple_at(&apple.issuer, SERVICES_ID, key)
                        .id_token_audiences(["com.example.ios"]),
                )
                .provider(OidcProvider::new("corp", &apple.issuer, SERVICES_ID)),
        )
        .build()
        .unwrap();
    let mut app = Browser::new(&identa);
    let with_nonce = native_id_token(&apple, Some("n-1"), SERVICES_ID).await;
    let without_nonce = native_id_token(&apple, None, SERVICES_ID).await;
    let other_client = native_id_token(&apple, Some("n-1"), "com.example.other").await;
    let (head, rest) = with_nonce.split_once('.').unwrap();
    let (body, signature) = rest.split_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{body}.{flipped}{}", &signature[1..]);
    for (provider, token, nonce, reason) in [
        (
            "apple",
            with_nonce.as_str(),
            "n-2",
            "does not match the nonce from the id_token",
        ),
        (
            "apple",
            with_nonce.as_str(),
            "",
            "No nonce was provided but is required",
        ),
        (
            "apple",
            without_nonce.as_str(),
            "n-1",
            "No nonce was included in the id_token",
        ),
        ("apple", other_client.as_str(), "n-1", "audience"),
        ("apple", forged.as_str(), "n-1", "ignature"),
        ("apple", "not-a-token", "n-1", "not an ID token"),
        (
            "corp",
            with_nonce.as_str(),
            "n-1",
            "The provider corp does not support id_token verification",
        ),
    ] {
        let fields = [
            ("provider", provider),
            ("id_token", token),
            ("id_token_nonce", nonce),
        ];
        let res = app.native_oidc("login", &fields).await;
        assert_eq!(res.status(), 400, "{reason}: {}", body_text(&res));
        let shown = json_of(&res);
        assert_eq!(message_ids(&shown), vec![4_000_001], "{reason}: {shown}");
        let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
        assert!(text.contains(reason), "{reason}: {text}");
        assert!(shown.get("session_token").is_none());
    }
    assert_eq!(identity_count(&identa).await, 0);

    // A further audience (an iOS app's bundle id) is taken.
    let ios = native_id_token(&apple, Some("n-ios"), "com.example.ios").await;
    let fields = [
        ("provider", "apple"),
        ("id_token", ios.as_str()),
        ("id_token_nonce", "n-ios"),
    ];
    let res = app.native_oidc("registration", &fields).await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(identity_count(&identa).await, 1);

    // A browser flow signs in through Apple's page, not with a token.
    let flow = app.start_flow("login").await;
    let res = app
        .identa(
            "POST",
            &format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()),
            Some(&[
                ("csrf_token", &csrf_token(&flow)),
                ("method", "oidc"),
                ("provider", "apple"),
                ("id_token", &with_nonce),
                ("id_token_nonce", "n-1"),
            ]),
            true,
        )
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let text = body_text(&res);
    assert!(text.contains("is for native apps (API flows)"), "{text}");
    assert_eq!(
        json_of(&res)["error"]["id"],
        "self_service_flow_state_invalid"
    );
    assert_eq!(identity_count(&identa).await, 1);
}
