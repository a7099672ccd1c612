//! Sign-in with OpenID Connect against a real, certified OpenID provider: panva's
//! `oidc-provider` (examples/http-suite/oidc/provider.mjs) on loopback. identa's public
//! API runs in-process; a browser is played by a cookie jar for identa's routes and a
//! plain HTTP client (reqwest with a cookie store) for the provider's pages, whose login
//! and consent forms the test submits. The cases that need the provider need Node and
//! `npm ci --prefix examples/http-suite/oidc`, so they are ignored unless run with
//! `cargo test -- --ignored`; the provider-down case needs nothing and runs everywhere.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use identa::Identa;
use identa::credential::oidc::{OidcProvider, OidcProviders, ProviderTokens};
use identa::flow::FlowType;
use identa::flow::registration::RegistrationSubmission;
use identa::http::{HttpConfig, PublicApi};
use identa::identity::CredentialType;
use serde_json::{Value, json};

use crate::common::{Backend, PASSWORD, TestEnv};
use crate::on_every_backend;

/// The provider id the tests configure.
const PROVIDER: &str = "test";

/// The OpenID provider, running until dropped.
struct OpenIdProvider {
    child: Child,
    issuer: String,
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OpenIdProvider {
    /// Starts the provider on a free loopback port, its clients redirecting to `identa`'s
    /// callback.
    fn start(identa: &Identa) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(identa, port)
    }

    /// Starts the provider on `port`, with a signing key of its own.
    fn start_on(identa: &Identa, port: u16) -> Self {
        Self::start_with(identa, port, None)
    }

    /// Starts the provider on `port`, altering what it issues as `tamper` says
    /// (`OIDC_TAMPER` in provider.mjs).
    fn start_with(identa: &Identa, port: u16, tamper: Option<&str>) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/http-suite/oidc");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "this test needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`"
        );
        let mut command = Command::new("node");
        if let Some(tamper) = tamper {
            command.env("OIDC_TAMPER", tamper);
        }
        let mut child = command
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(identa.oidc().callback_url(PROVIDER))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("this test needs Node (`node` on the PATH)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let issuer = loop {
            let line = lines
                .next()
                .expect("the OpenID provider exited before listening")
                .unwrap();
            if let Some(issuer) = line.strip_prefix("listening ") {
                break issuer.to_owned();
            }
        };
        // Drained until the provider exits: a closed pipe would end it at its next line.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, issuer }
    }
}

/// A fresh SQLite environment, the OpenID provider, and an engine signing in with it as
/// client `identa`.
async fn with_provider() -> (TestEnv, OpenIdProvider, Identa) {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let identa = engine(&env, &provider.issuer, "identa");
    (env, provider, identa)
}

/// The same, with an engine that keeps the provider's tokens sealed
/// (`ProviderTokens::KeepEncrypted`).
async fn with_provider_keeping_tokens() -> (TestEnv, OpenIdProvider, Identa) {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let config = env.identa.config().clone();
    let identa = engine_keeping(
        &env,
        &provider.issuer,
        "identa",
        config,
        ProviderTokens::KeepEncrypted,
    );
    (env, provider, identa)
}

/// How many identities `identa`'s store holds.
async fn identity_count(identa: &Identa) -> usize {
    identa
        .list_identities(Default::default())
        .await
        .unwrap()
        .items
        .len()
}

/// An engine on `env`'s store and clock that signs in with `issuer` as client `client`.
fn engine(env: &TestEnv, issuer: &str, client: &str) -> Identa {
    engine_with(env, issuer, client, env.identa.config().clone())
}

/// The same, with `config`.
fn engine_with(env: &TestEnv, issuer: &str, client: &str, config: identa::Config) -> Identa {
    engine_keeping(env, issuer, client, config, ProviderTokens::Discard)
}

/// The same, keeping the provider's tokens as `tokens` says.
fn engine_keeping(
    env: &TestEnv,
    issuer: &str,
    client: &str,
    config: identa::Config,
    tokens: ProviderTokens,
) -> Identa {
    let provider = OidcProvider::new(PROVIDER, issuer, client)
        .client_secret(format!("{client}-secret"))
        .label("Test ID")
        .tokens(tokens);
    env.another_engine(config)
        .oidc(OidcProviders::new().provider(provider))
        .build()
        .unwrap()
}

/// A browser: identa's cookies, and an HTTP client (with its own cookie store) for the
/// provider's pages that stops at identa's callback.
struct Browser {
    api: PublicApi,
    public_url: String,
    cookies: BTreeMap<String, String>,
    web: reqwest::Client,
    /// The client address identa sees (`ClientIp`), if any.
    ip: Option<std::net::IpAddr>,
}

impl Browser {
    fn new(identa: &Identa) -> Self {
        let public_url = identa.config().flows.public_url.clone();
        // With its slash: a provider on port 44331 is not identa on 4433.
        let stop_at = format!("{}/", public_url.trim_end_matches('/'));
        let web = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.url().as_str().starts_with(&stop_at) {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .unwrap();
        Self {
            api: PublicApi::new(identa.clone(), HttpConfig::default()),
            public_url,
            cookies: BTreeMap::new(),
            web,
            ip: None,
        }
    }

    /// A request to identa with this browser's cookies (`json`: asking for JSON).
    async fn identa(
        &mut self,
        method: &str,
        path_and_query: &str,
        form: Option<&[(&str, &str)]>,
        json: bool,
    ) -> http::Response<Bytes> {
        let path = path_and_query
            .strip_prefix(&self.public_url)
            .unwrap_or(path_and_query);
        let mut req = http::Request::builder().method(method).uri(path);
        if json {
            req = req.header("accept", "application/json");
        }
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !cookie.is_empty() {
            req = req.header("cookie", cookie.join("; "));
        }
        let body = match form {
            Some(fields) => {
                req = req.header("content-type", "application/x-www-form-urlencoded");
                let mut encoded = reqwest::Url::parse("http://form/").unwrap();
                encoded.query_pairs_mut().extend_pairs(fields);
                Bytes::from(encoded.query().unwrap_or_default().to_owned())
            }
            None => Bytes::new(),
        };
        let mut req = req.body(body).unwrap();
        if let Some(ip) = self.ip {
            req.extensions_mut().insert(identa::http::ClientIp(ip));
        }
        let res = self.api.handle(req).await;
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        res
    }

    /// Starts a browser flow of `kind` (`login`, `registration`) and reads it as JSON.
    async fn start_flow(&mut self, kind: &str) -> Value {
        let res = self
            .identa("GET", &format!("/self-service/{kind}/browser"), None, true)
            .await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        json_of(&res)
    }

    /// Presses the provider's button on `flow`: where the browser is sent.
    async fn press_provider(&mut self, kind: &str, flow: &Value) -> String {
        let csrf = csrf_token(flow);
        let res = self
            .identa(
                "POST",
                &format!("/self-service/{kind}?flow={}", flow["id"].as_str().unwrap()),
                Some(&[("csrf_token", &csrf), ("provider", PROVIDER)]),
                false,
            )
            .await;
        assert_eq!(res.status(), 303, "{}", body_text(&res));
        location(&res)
    }

    /// Signs in at the provider as `login` (submitting its login and consent pages as
    /// they come): the callback URL the provider sends the browser back to.
    async fn sign_in_at_provider(&self, authorization_url: &str, login: &str) -> String {
        let mut res = self.web.get(authorization_url).send().await.unwrap();
        for _ in 0..5 {
            if res.status().is_redirection() {
                return res.headers()["location"].to_str().unwrap().to_owned();
            }
            let page = res.url().clone();
            let html = res.text().await.unwrap();
            let prompt = if html.contains(r#"name="prompt" value="login""#) {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else if html.contains(r#"name="prompt" value="consent""#) {
                vec![("prompt", "consent")]
            } else {
                panic!("an unexpected page at the provider ({page}): {html}");
            };
            res = self.web.post(page).form(&prompt).send().await.unwrap();
        }
        panic!("the provider never sent the browser back");
    }

    /// Cancels at the provider's login page: the callback URL carrying the refusal.
    async fn cancel_at_provider(&self, authorization_url: &str) -> String {
        let res = self.web.get(authorization_url).send().await.unwrap();
        let abort = format!("{}/abort", res.url().as_str().trim_end_matches('/'));
        let res = self.web.get(abort).send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        res.headers()["location"].to_str().unwrap().to_owned()
    }

    /// Who this browser is signed in as (`whoami` with its session cookie).
    async fn whoami(&mut self) -> Value {
        let res = self.identa("GET", "/sessions/whoami", None, true).await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        json_of(&res)
    }
}

fn json_of(res: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap()
}

fn body_text(res: &http::Response<Bytes>) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

fn location(res: &http::Response<Bytes>) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

fn csrf_token(flow: &Value) -> String {
    node(flow, "csrf_token")["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn node<'a>(flow: &'a Value, name: &str) -> &'a Value {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` node in {flow}"))
}

fn message_ids(flow: &Value) -> Vec<u64> {
    flow["ui"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

/// Replaces the last character of the query parameter `name` in `url`.
fn tampered(url: &str, name: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                let mut v = v.into_owned();
                let last = v.pop().unwrap();
                v.push(if last == 'A' { 'B' } else { 'A' });
                v
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

/// A provider account imported from Kratos (`credentials.oidc`, `<provider>:<subject>`)
/// signs in to its imported identity at the first provider sign-in: no new identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn an_imported_provider_account_signs_in_to_its_identity() {
    let (_env, _provider, identa) = with_provider().await;
    let new = identa::identity::NewIdentity {
        traits: json!({ "email": "ada@example.com" }),
        credentials: identa::identity::ImportedCredentials {
            oidc: vec![identa::identity::ImportedOidcAccount {
                provider: PROVIDER.into(),
                // The test provider's subject is the login name.
                subject: "ada@example.com".into(),
            }],
            ..Default::default()
        },
        ..Default::default()
    };
    let imported = identa.create_identity(new, None).await.unwrap();
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("login").await;
    let to = browser.press_provider("login", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "ada@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    let me = browser.whoami().await;
    assert_eq!(me["identity"]["id"], imported.id.to_string());
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");
    assert_eq!(identity_count(&identa).await, 1);
}

/// A new provider account registers (its verified email stored verified, the session
/// cookie set, sent to the return URL); the same account then signs in to the same
/// identity through a login flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_provider_account_signs_up_then_signs_in() {
    let (_env, provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);

    let flow = browser.start_flow("registration").await;
    let button = node(&flow, "provider");
    assert_eq!(button["group"], "oidc");
    assert_eq!(button["attributes"]["type"], "submit");
    assert_eq!(button["attributes"]["value"], PROVIDER);
    assert_eq!(button["meta"]["label"]["id"], 1_040_002);
    assert_eq!(button["meta"]["label"]["text"], "Sign up with Test ID");
    let to = browser.press_provider("registration", &flow).await;
    assert!(to.starts_with(&provider.issuer), "{to}");
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    assert!(to.contains("nonce="), "{to}");
    let callback = browser.sign_in_at_provider(&to, "ada@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(location(&res), HttpConfig::default().default_return_url);
    let me = browser.whoami().await;
    let id = me["identity"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me["identity"]["traits"]["email"], "ada@example.com");
    assert_eq!(
        me["identity"]["traits"]["name"],
        json!({ "first": "Test", "last": "ada" }),
        "the default mapper fills the schema's name.first / name.last"
    );
    assert_eq!(
        me["identity"]["verifiable_addresses"][0]["verified"], true,
        "the provider vouched for the address"
    );
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");
    let stored = identa.identity(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        stored.credential(CredentialType::Oidc).unwrap().identifiers,
        vec![format!("{PROVIDER}:ada@example.com")]
    );

    // Signed out (a new browser at identa, the same one at the provider): sign in, and
    // the flow's return_to survives the round trip through the provider.
    browser.cookies.clear();
    let return_to = "http://127.0.0.1:4433/after-sign-in";
    let res = browser
        .identa(
            "GET",
            &format!("/self-service/login/browser?return_to={return_to}"),
            None,
            true,
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let flow = json_of(&res);
    assert_eq!(node(&flow, "provider")["meta"]["label"]["id"], 1_010_002);
    let to = browser.press_provider("login", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "ada@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(location(&res), return_to);
    let me = browser.whoami().await;
    assert_eq!(
        me["identity"]["id"],
        id.as_str(),
        "the same identity signed in"
    );
    assert_eq!(identity_count(&identa).await, 1);
}

/// The provider goes down between the user's sign-in there and the callback: the code
/// exchange fails, the flow says so (4000001) and is kept — nothing is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_provider_down_at_the_code_exchange_is_a_flow_message() {
    let (_env, provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("login").await;
    let to = browser.press_provider("login", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "down@example.com").await;
    drop(provider);
    let res = browser.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["id"], flow["id"], "the same flow, kept");
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("token endpoint"), "{text}");
    assert!(!browser.cookies.contains_key("identa_session"));
}

/// An ID token whose signature was altered on its way from the token endpoint is refused
/// (the JWKS is read again once, since no key verifies it, then the sign-in is refused),
/// shown on the flow, and nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_tampered_id_token_signature_is_refused() {
    refused_at_the_callback("id_token_signature", "forged@example.com", "Signature").await;
}

/// An ID token issued (and validly signed by the provider) for another client is refused:
/// the audience must be identa's client id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn an_id_token_for_another_client_is_refused() {
    refused_at_the_callback("id_token_audience", "elsewhere@example.com", "audience").await;
}

/// A sign-up through a provider that alters its ID tokens as `tamper` says: refused at
/// the callback for the `reason` named, shown on the flow, nothing made.
async fn refused_at_the_callback(tamper: &str, login: &str, reason: &str) {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = OpenIdProvider::start_with(&env.identa, port, Some(tamper));
    let identa = engine(&env, &provider.issuer, "identa");
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, login).await;
    let res = browser.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001], "{shown}");
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("ID token was refused"), "{text}");
    assert!(text.contains(reason), "{text}");
    assert!(!browser.cookies.contains_key("identa_session"));
    assert!(
        identa
            .list_identities(Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// The provider rotates its signing key (a restart on the same issuer with a new key):
/// the ID token's `kid` is not in the JWKS identa cached at the first sign-in, so identa
/// reads the provider's keys again, once, and the sign-in goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_rotated_signing_key_is_fetched_again() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let issuer = provider.issuer.clone();
    let port: u16 = issuer.rsplit(':').next().unwrap().parse().unwrap();
    let identa = engine(&env, &issuer, "identa");
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "rot@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));

    drop(provider);
    let _rotated = OpenIdProvider::start_on(&env.identa, port);
    browser.cookies.clear();
    let flow = browser.start_flow("login").await;
    let to = browser.press_provider("login", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "rot@example.com").await;
    let res = browser.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(
        json_of(&res)["session"]["identity"]["traits"]["email"],
        "rot@example.com"
    );
}

/// A state that is not the flow's (tampered), a replayed callback, and a callback in
/// another browser (no CSRF cookie) are all refused; the right one still works once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_wrong_replayed_or_foreign_state_is_refused() {
    let (_env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "eve@example.com").await;

    let res = browser
        .identa("GET", &tampered(&callback, "state"), None, true)
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "bad_request");

    let mut other = Browser::new(&identa);
    let res = other.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "security_csrf_violation");

    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert!(browser.cookies.contains_key("identa_session"));

    let res = browser.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 400, "a replay: {}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "bad_request");
    assert_eq!(identity_count(&identa).await, 1);
}

/// The user cancels at the provider (`error=access_denied`): the flow shows it as a
/// message and can be used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn access_denied_at_the_provider_is_shown_on_the_flow() {
    let (_env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("login").await;
    let to = browser.press_provider("login", &flow).await;
    let callback = browser.cancel_at_provider(&to).await;
    assert!(callback.contains("error=access_denied"), "{callback}");

    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "the browser goes back to the form");
    assert!(location(&res).contains(flow["id"].as_str().unwrap()));
    let id = flow["id"].as_str().unwrap();
    let res = browser
        .identa(
            "GET",
            &format!("/self-service/login/flows?id={id}"),
            None,
            true,
        )
        .await;
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("access_denied"), "{text}");

    // The flow is kept: the button works again.
    let to = browser.press_provider("login", &shown).await;
    let callback = browser.sign_in_at_provider(&to, "ada@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303);
    browser.whoami().await;
}

/// Registers `email` with the test password (an API flow).
async fn register_with_password(identa: &Identa, email: &str) -> uuid::Uuid {
    let flow = identa
        .registration_flow()
        .create(FlowType::Api, &Default::default())
        .await
        .unwrap();
    let submission = RegistrationSubmission::Password {
        traits: json!({ "email": email }),
        password: identa::credential::password::Password::new(PASSWORD),
    };
    identa
        .registration_flow()
        .submit(flow.id, submission, &Default::default())
        .await
        .unwrap()
        .identity
        .id
}

/// The provider accounts linked to `id`.
async fn linked(identa: &Identa, id: uuid::Uuid) -> Vec<String> {
    identa
        .identity(id)
        .await
        .unwrap()
        .credential(CredentialType::Oidc)
        .map(|c| c.identifiers.clone())
        .unwrap_or_default()
}

impl Browser {
    /// Signs up at identa with the provider as `login`, whose email has an account here:
    /// the login flow identa answers with, holding the link.
    async fn offered_link(&mut self, login: &str) -> Value {
        let flow = self.start_flow("registration").await;
        let to = self.press_provider("registration", &flow).await;
        let res = self.through_provider(&to, login).await;
        assert_eq!(res.status(), 400, "{}", body_text(&res));
        let shown = json_of(&res);
        assert_eq!(shown["type"], "browser");
        assert_ne!(shown["id"], flow["id"], "a new login flow");
        assert!(!self.cookies.contains_key("identa_session"));
        shown
    }

    /// Submits `identifier` and `password` to the login flow `flow` (asking for JSON).
    async fn password_login(
        &mut self,
        flow: &Value,
        identifier: &str,
        password: &str,
    ) -> http::Response<Bytes> {
        let csrf = csrf_token(flow);
        let path = format!("/self-service/login?flow={}", flow["id"].as_str().unwrap());
        let form = [
            ("csrf_token", csrf.as_str()),
            ("method", "password"),
            ("identifier", identifier),
            ("password", password),
        ];
        self.identa("POST", &path, Some(&form), true).await
    }
}

/// A new provider account whose email already has an account is not linked and not
/// signed in: identa answers with a login flow showing Kratos's 1010016 ("sign in to add
/// your account"). A wrong password links nothing and the link waits; signing in to the
/// account links the provider in the same step, and the provider then signs in to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_taken_email_is_linked_only_after_signing_in_to_its_account() {
    let (_env, _provider, identa) = with_provider().await;
    let bob = register_with_password(&identa, "bob@example.com").await;

    let mut browser = Browser::new(&identa);
    let login = browser.offered_link("bob@example.com").await;
    assert_eq!(login["ui"]["messages"][0]["id"], 1_010_016, "{login}");
    let message = &login["ui"]["messages"][0];
    assert_eq!(message["context"]["provider"], "Test ID");
    assert_eq!(
        message["context"]["duplicate_identifier"],
        "bob@example.com"
    );
    assert_eq!(identity_count(&identa).await, 1);
    assert!(linked(&identa, bob).await.is_empty(), "never silently");

    let res = browser
        .password_login(&login, "bob@example.com", "wrong password")
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(message_ids(&json_of(&res)), vec![4_000_006]);
    assert!(linked(&identa, bob).await.is_empty());

    let res = browser
        .password_login(&login, "bob@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(json_of(&res)["session"]["identity"]["id"], bob.to_string());
    assert_eq!(
        linked(&identa, bob).await,
        [format!("{PROVIDER}:bob@example.com")]
    );

    // Signed out: the provider now signs in to bob's account.
    let mut fresh = Browser::new(&identa);
    fresh.web = browser.web.clone();
    let flow = fresh.start_flow("login").await;
    let to = fresh.press_provider("login", &flow).await;
    let callback = fresh.sign_in_at_provider(&to, "bob@example.com").await;
    let res = fresh.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(fresh.whoami().await["identity"]["id"], bob.to_string());
    assert_eq!(identity_count(&identa).await, 1);
}

/// A browser page (not JSON) is sent to the login UI of the flow holding the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_browser_is_sent_to_the_login_flow_holding_the_link() {
    let (_env, _provider, identa) = with_provider().await;
    register_with_password(&identa, "page@example.com").await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "page@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    let to = location(&res);
    assert!(to.contains("/login?flow="), "{to}");
    let id = to.rsplit_once("flow=").unwrap().1;
    let res = browser
        .identa(
            "GET",
            &format!("/self-service/login/flows?id={id}"),
            None,
            true,
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(message_ids(&json_of(&res)), vec![1_010_016]);
}

/// The link waits only for the account that has the address, in the browser it was
/// offered to, while the flow lives: another account's password is refused (4010009), a
/// request from another browser fails the CSRF check, and an expired flow links nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_pending_link_is_bound_to_its_account_browser_and_flow() {
    let (env, _provider, identa) = with_provider().await;
    let dana = register_with_password(&identa, "dana@example.com").await;
    let mallory = register_with_password(&identa, "mallory@example.com").await;

    let mut browser = Browser::new(&identa);
    let login = browser.offered_link("dana@example.com").await;

    let res = browser
        .password_login(&login, "mallory@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(message_ids(&json_of(&res)), vec![4_010_009]);
    assert!(!browser.cookies.contains_key("identa_session"));
    assert!(linked(&identa, mallory).await.is_empty());
    assert!(linked(&identa, dana).await.is_empty());

    let mut other = Browser::new(&identa);
    other.start_flow("login").await; // a CSRF cookie of its own
    let res = other
        .password_login(&login, "dana@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "security_csrf_violation");
    assert!(linked(&identa, dana).await.is_empty());

    env.clock
        .advance(identa.config().flows.login.lifespan + chrono::Duration::seconds(1));
    let res = browser
        .password_login(&login, "dana@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 410, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "self_service_flow_expired");
    assert!(linked(&identa, dana).await.is_empty());
}

impl Browser {
    /// Signs in to identa with `email` and the test password (a browser login flow).
    async fn sign_in_with_password(&mut self, email: &str) {
        let flow = self.start_flow("login").await;
        let res = self.password_login(&flow, email, PASSWORD).await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        assert!(self.cookies.contains_key("identa_session"));
    }

    /// Signs in (or up) at identa with the provider as `login`: the callback's answer.
    async fn provider_sign_in(&mut self, login: &str) -> http::Response<Bytes> {
        let flow = self.start_flow("login").await;
        let to = self.press_provider("login", &flow).await;
        self.through_provider(&to, login).await
    }

    /// Follows the provider's pages from `authorization_url` as `login` and comes back
    /// to identa's callback (asking for JSON): the callback's answer.
    async fn through_provider(
        &mut self,
        authorization_url: &str,
        login: &str,
    ) -> http::Response<Bytes> {
        let callback = self.sign_in_at_provider(authorization_url, login).await;
        self.identa("GET", &callback, None, true).await
    }

    /// Presses "Link" for the provider on the settings flow `flow`: where the browser
    /// is sent.
    async fn press_link(&mut self, flow: &Value) -> String {
        let csrf = csrf_token(flow);
        let path = format!(
            "/self-service/settings?flow={}",
            flow["id"].as_str().unwrap()
        );
        let form = [
            ("csrf_token", csrf.as_str()),
            ("method", "oidc"),
            ("link", PROVIDER),
        ];
        let res = self.identa("POST", &path, Some(&form), false).await;
        assert_eq!(res.status(), 303, "{}", body_text(&res));
        location(&res)
    }

    /// Links the provider account `login` in a new settings flow (the button, the
    /// provider, the callback): the callback's answer.
    async fn link_in_settings(&mut self, login: &str) -> http::Response<Bytes> {
        let flow = self.start_flow("settings").await;
        let to = self.press_link(&flow).await;
        self.through_provider(&to, login).await
    }

    /// Signs up at identa with the provider as `login` (a new account): the new
    /// identity's id, as `whoami` shows it.
    async fn provider_sign_up(&mut self, login: &str) -> String {
        let res = self.provider_sign_in(login).await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        self.whoami().await["identity"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Submits `fields` (with the flow's CSRF token) to the settings flow `flow`.
    async fn settings(&mut self, flow: &Value, fields: &[(&str, &str)]) -> http::Response<Bytes> {
        let csrf = csrf_token(flow);
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend_from_slice(fields);
        let path = format!(
            "/self-service/settings?flow={}",
            flow["id"].as_str().unwrap()
        );
        self.identa("POST", &path, Some(&form), true).await
    }
}

/// The settings form's `oidc` node named `name`, if there is one.
fn oidc_node<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["group"] == "oidc" && n["attributes"]["name"] == name)
}

/// Settings link a provider account (through the provider and the callback) and unlink
/// it: linked, the provider signs in to this identity; unlinked, it no longer does (it
/// signs up a new identity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn settings_link_a_provider_and_unlink_it() {
    let (_env, _provider, identa) = with_provider().await;
    let carol = register_with_password(&identa, "carol@example.com").await;
    let mut browser = Browser::new(&identa);
    browser.sign_in_with_password("carol@example.com").await;

    let flow = browser.start_flow("settings").await;
    let link = oidc_node(&flow, "link").expect("a link button");
    assert_eq!(link["attributes"]["value"], PROVIDER);
    assert_eq!(link["attributes"]["type"], "submit");
    assert_eq!(link["meta"]["label"]["id"], 1_050_002);
    assert_eq!(link["meta"]["label"]["text"], "Link Test ID");
    assert!(oidc_node(&flow, "unlink").is_none());
    let to = browser.press_link(&flow).await;
    let res = browser.through_provider(&to, "carol-elsewhere").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let saved = json_of(&res);
    assert_eq!(saved["state"], "success");
    assert_eq!(message_ids(&saved), vec![1_050_001]);
    let unlink = oidc_node(&saved, "unlink").expect("an unlink button");
    assert_eq!(unlink["meta"]["label"]["id"], 1_050_003);
    assert_eq!(
        linked(&identa, carol).await,
        [format!("{PROVIDER}:carol-elsewhere")]
    );

    let mut other = Browser::new(&identa);
    let res = other.provider_sign_in("carol-elsewhere").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(other.whoami().await["identity"]["id"], carol.to_string());

    let flow = browser.start_flow("settings").await;
    let res = browser
        .settings(&flow, &[("method", "oidc"), ("unlink", PROVIDER)])
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert!(oidc_node(&json_of(&res), "link").is_some());
    assert!(linked(&identa, carol).await.is_empty());

    let mut third = Browser::new(&identa);
    let res = third.provider_sign_in("carol-elsewhere").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_ne!(third.whoami().await["identity"]["id"], carol.to_string());
    assert_eq!(identity_count(&identa).await, 2, "a new identity signed up");
}

/// Linking and unlinking are refused with an old session (403
/// `session_refresh_required`), a provider account linked to another identity is not
/// linked (nothing changes), and the last way to sign in cannot be unlinked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn settings_refuse_an_old_session_a_foreign_account_and_the_last_method() {
    let (env, _provider, identa) = with_provider().await;
    // An identity that signs in only with the provider.
    let mut solo = Browser::new(&identa);
    let res = solo.provider_sign_in("solo").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let solo_id: uuid::Uuid = solo.whoami().await["identity"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let flow = solo.start_flow("settings").await;
    assert!(
        oidc_node(&flow, "unlink").is_none(),
        "no unlink for the last method"
    );
    let res = solo
        .settings(&flow, &[("method", "oidc"), ("unlink", PROVIDER)])
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("last remaining first factor"), "{text}");
    assert_eq!(linked(&identa, solo_id).await, [format!("{PROVIDER}:solo")]);

    // Dave cannot take solo's provider account.
    let dave = register_with_password(&identa, "dave@example.com").await;
    let mut browser = Browser::new(&identa);
    browser.sign_in_with_password("dave@example.com").await;
    let res = browser.link_in_settings("solo").await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("linked to another account"), "{text}");
    assert!(linked(&identa, dave).await.is_empty());
    assert_eq!(linked(&identa, solo_id).await, [format!("{PROVIDER}:solo")]);

    // An old session: re-authenticate first, for linking and unlinking alike.
    env.clock.advance(
        identa.config().flows.settings.privileged_session_max_age + chrono::Duration::seconds(1),
    );
    let flow = browser.start_flow("settings").await;
    let res = browser
        .settings(&flow, &[("method", "oidc"), ("link", PROVIDER)])
        .await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "session_refresh_required");
    let flow = solo.start_flow("settings").await;
    let res = solo
        .settings(&flow, &[("method", "oidc"), ("unlink", PROVIDER)])
        .await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "session_refresh_required");
    assert!(linked(&identa, dave).await.is_empty());
}

/// What an outsider sees of a sign-up's answer: status, the JSON's shape (no ids), and
/// whether a session cookie came with it.
fn outward(res: &http::Response<Bytes>, browser: &Browser) -> Value {
    let body = json_of(res);
    let address = &body["identity"]["verifiable_addresses"][0];
    json!({
        "status": res.status().as_u16(),
        "keys": body.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        "traits": body["identity"]["traits"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        "verified": address["verified"],
        "verification_status": address["status"],
        "continue_with": body["continue_with"]
            .as_array()
            .map(|c| c.iter().map(|c| c["action"].clone()).collect::<Vec<_>>()),
        "messages": body["ui"]["messages"],
        "session": browser.cookies.contains_key("identa_session"),
    })
}

/// Enumeration-safe registration covers provider sign-ups: an address the provider does
/// not vouch for gets the same answer whether it is taken or not (a new account, no
/// session, a verification to follow); one it vouches for is its owner's, who is offered
/// the link (1010016).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn an_unvouched_taken_address_is_answered_as_new_under_enumeration_safe_registration() {
    use identa::flow::{AfterRegistration, DuplicateRegistration};
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let mut config = env.identa.config().clone();
    config.flows.registration.duplicate = DuplicateRegistration::AnswerAsNew;
    config.flows.registration.after = AfterRegistration::AccountOnly;
    let identa = engine_with(&env, &provider.issuer, "identa", config);
    let kim = register_with_password(&identa, "unverified-kim@example.com").await;
    register_with_password(&identa, "vouched@example.com").await;

    let sign_up = |login: &'static str| {
        let identa = identa.clone();
        async move {
            let mut browser = Browser::new(&identa);
            let flow = browser.start_flow("registration").await;
            let to = browser.press_provider("registration", &flow).await;
            let callback = browser.sign_in_at_provider(&to, login).await;
            let res = browser.identa("GET", &callback, None, true).await;
            outward(&res, &browser)
        }
    };
    let taken = sign_up("unverified-kim@example.com").await;
    let free = sign_up("unverified-lee@example.com").await;
    assert_eq!(taken, free, "taken and free look alike");
    assert_eq!(free["status"], 200, "{free}");
    assert_eq!(free["session"], false);
    assert_eq!(free["verified"], false);
    assert_eq!(
        identity_count(&identa).await,
        3,
        "only the free address made an account"
    );
    assert!(linked(&identa, kim).await.is_empty());

    let mut browser = Browser::new(&identa);
    let login = browser.offered_link("vouched@example.com").await;
    assert_eq!(message_ids(&login), vec![1_010_016]);
}

/// A flood of callbacks from one client address is refused with the throttled answer
/// (429) before its code is sent to the provider — the provider is down here, and a
/// callback that reached it would be shown as such (400). The refused callback's sign-in
/// still waits, and another client address is not held back: from there it goes through
/// to the exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_flood_of_callbacks_from_one_address_is_throttled_before_the_provider() {
    use identa::throttle::{Limit, Limits, ThrottleConfig};
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let mut config = env.identa.config().clone();
    config.throttle = ThrottleConfig::On(Limits {
        login_attempts_per_ip: Limit::new(3, chrono::Duration::minutes(1)),
        ..Limits::default()
    });
    let identa = engine_with(&env, &provider.issuer, "identa", config);
    let mut browser = Browser::new(&identa);
    browser.ip = Some(std::net::IpAddr::from([192, 0, 2, 7]));
    // Four sign-ins started (the provider's metadata is cached from the first).
    let mut callbacks = Vec::new();
    for _ in 0..4 {
        let flow = browser.start_flow("login").await;
        let to = browser.press_provider("login", &flow).await;
        let state = reqwest::Url::parse(&to)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let mut callback = reqwest::Url::parse(&identa.oidc().callback_url(PROVIDER)).unwrap();
        callback
            .query_pairs_mut()
            .append_pair("state", &state)
            .append_pair("code", "bogus");
        callbacks.push(callback.to_string());
    }
    drop(provider);
    for callback in &callbacks[..3] {
        let res = browser.identa("GET", callback, None, true).await;
        assert_eq!(res.status(), 400, "{}", body_text(&res));
        assert_eq!(
            message_ids(&json_of(&res)),
            vec![4_000_001],
            "the exchange was tried"
        );
    }
    let res = browser.identa("GET", &callbacks[3], None, true).await;
    assert_eq!(res.status(), 429, "{}", body_text(&res));
    assert!(res.headers().contains_key("retry-after"));

    // Another address is not held back by this one.
    let mut other = Browser::new(&identa);
    other.ip = Some(std::net::IpAddr::from([192, 0, 2, 8]));
    other.cookies = browser.cookies.clone();
    let res = other.identa("GET", &callbacks[3], None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(message_ids(&json_of(&res)), vec![4_000_001]);
}

/// An ID token that expired by identa's clock (the provider's tokens live an hour; the
/// flow here lives three) is refused, shown on the flow, and nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn an_expired_id_token_is_refused() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let mut config = env.identa.config().clone();
    config.flows.registration.lifespan = chrono::Duration::hours(3);
    let identa = engine_with(&env, &provider.issuer, "identa", config);
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "late@example.com").await;
    env.clock.advance(chrono::Duration::hours(2));
    let res = browser.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001], "{shown}");
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("ID token was refused"), "{text}");
    assert!(!browser.cookies.contains_key("identa_session"));
    assert!(
        identa
            .list_identities(Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// The nonce check is on: an ID token whose `nonce` is not the one the flow keeps (the
/// flow's row is changed behind identa's back here, as only a forged token could
/// otherwise arrange) is refused, and nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_nonce_mismatch_is_refused() {
    use identa::store::{Commit, FlowStore, Write};
    let (env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "nonce@example.com").await;
    let id = flow["id"].as_str().unwrap().parse().unwrap();
    let mut record = env.store.flow(id).await.unwrap().unwrap();
    record.document["internal"]["oidc"]["nonce"] = json!("not-the-nonce-sent");
    record.version += 1;
    let commit = Commit {
        writes: vec![Write::UpdateFlow(record)],
    };
    env.store.commit(&commit, None).await.unwrap();

    let res = browser.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("ID token was refused") && text.contains("nonce"),
        "{text}"
    );
    assert!(!browser.cookies.contains_key("identa_session"));
}

/// A native app starts an API flow of `kind` with the session-token exchange and
/// `return_to` `back`, and submits the provider's button: the flow, its init code, and
/// the provider's URL the system browser is sent to (422
/// `browser_location_change_required`).
async fn native_start(app: &mut Browser, kind: &str, back: &str) -> (Value, String, String) {
    let res = app
        .identa(
            "GET",
            &format!(
                "/self-service/{kind}/api?return_session_token_exchange_code=true&return_to={back}"
            ),
            None,
            true,
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let flow = json_of(&res);
    let init_code = flow["session_token_exchange_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = flow["id"].as_str().unwrap();
    let res = app
        .identa(
            "POST",
            &format!("/self-service/{kind}?flow={id}"),
            Some(&[("method", "oidc"), ("provider", PROVIDER)]),
            true,
        )
        .await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let body = json_of(&res);
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    let to = body["redirect_browser_to"].as_str().unwrap().to_owned();
    (flow, init_code, to)
}

/// The system browser's callback for a native app's flow that returns to `back`: the
/// `code` it takes back to the app (a 303 to `back?code=`), with no session cookie.
async fn back_to_the_app(system_browser: &mut Browser, callback: &str, back: &str) -> String {
    let res = system_browser.identa("GET", callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    let returned = location(&res);
    assert!(!system_browser.cookies.contains_key("identa_session"));
    returned
        .strip_prefix(&format!("{back}?code="))
        .unwrap_or_else(|| panic!("not back to the app: {returned}"))
        .to_owned()
}

fn token_exchange(init_code: &str, return_to_code: &str) -> String {
    format!("/sessions/token-exchange?init_code={init_code}&return_to_code={return_to_code}")
}

/// A native sign-in through the system browser that ends in an error goes back to the
/// app as a successful one does (`return_to` with a `code`), and the exchange with both
/// codes answers 422 with the flow showing why, so the app can show it (Kratos's
/// `GET /sessions/token-exchange` answers the pending exchanger's flow with 422): here the
/// user cancels at the provider (`error=access_denied`), then, on an engine whose sign-up
/// is closed, the provider account is refused. Wrong codes still find nothing (404), and
/// nothing is made. The flow is kept: a later try that signs in gets its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_native_sign_in_that_fails_is_answered_to_the_app_with_the_flow() {
    let (env, provider, identa) = with_provider().await;
    let back = "http://127.0.0.1:4433/app-callback";

    // The user cancels at the provider.
    let mut app = Browser::new(&identa);
    let (flow, init_code, to) = native_start(&mut app, "login", back).await;
    let mut system_browser = Browser::new(&identa);
    let callback = system_browser.cancel_at_provider(&to).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let code = back_to_the_app(&mut system_browser, &callback, back).await;
    let res = app
        .identa("GET", &token_exchange(&init_code, "wrong"), None, true)
        .await;
    assert_eq!(res.status(), 404, "{}", body_text(&res));
    let res = app
        .identa("GET", &token_exchange(&init_code, &code), None, true)
        .await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["id"], flow["id"], "the app's own flow");
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("access_denied"), "{text}");
    assert!(shown.get("session_token").is_none());

    // The flow is kept: trying again and signing in, the app gets its session.
    let id = flow["id"].as_str().unwrap();
    let res = app
        .identa(
            "POST",
            &format!("/self-service/login?flow={id}"),
            Some(&[("method", "oidc"), ("provider", PROVIDER)]),
            true,
        )
        .await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let to = json_of(&res)["redirect_browser_to"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = system_browser
        .sign_in_at_provider(&to, "retry@example.com")
        .await;
    let again = back_to_the_app(&mut system_browser, &callback, back).await;
    let res = app
        .identa("GET", &token_exchange(&init_code, &code), None, true)
        .await;
    assert_eq!(
        res.status(),
        404,
        "the failure's code is spent: {}",
        body_text(&res)
    );
    let res = app
        .identa("GET", &token_exchange(&init_code, &again), None, true)
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(
        json_of(&res)["session"]["identity"]["traits"]["email"],
        "retry@example.com"
    );

    // The account is refused: sign-up is closed and the provider account is new.
    let mut config = env.identa.config().clone();
    config.flows.registration.enabled = false;
    let closed = engine_with(&env, &provider.issuer, "identa", config);
    let mut app = Browser::new(&closed);
    let (flow, init_code, to) = native_start(&mut app, "login", back).await;
    let mut system_browser = Browser::new(&closed);
    let callback = system_browser
        .sign_in_at_provider(&to, "stranger@example.com")
        .await;
    let code = back_to_the_app(&mut system_browser, &callback, back).await;
    let res = app
        .identa("GET", &token_exchange(&init_code, &code), None, true)
        .await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["id"], flow["id"]);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("sign-up is disabled"), "{text}");
    assert_eq!(identity_count(&closed).await, 1, "only retry@example.com");
}

/// A native app (an API flow started with `return_session_token_exchange_code=true`)
/// sends the system browser to the provider; the callback sends it back to the app's
/// `return_to` with a `code` and no session; the app fetches its session token once with
/// both codes. An API flow started without the exchange cannot use a provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_native_app_fetches_its_session_token_after_the_provider() {
    let (_env, provider, identa) = with_provider().await;
    let mut app = Browser::new(&identa);
    let back = "http://127.0.0.1:4433/app-callback";
    let res = app
        .identa(
            "GET",
            &format!(
                "/self-service/registration/api?return_session_token_exchange_code=true&return_to={back}"
            ),
            None,
            true,
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let flow = json_of(&res);
    let init_code = flow["session_token_exchange_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = flow["id"].as_str().unwrap();
    let res = app
        .identa(
            "POST",
            &format!("/self-service/registration?flow={id}"),
            Some(&[("method", "oidc"), ("provider", PROVIDER)]),
            true,
        )
        .await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let body = json_of(&res);
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    let to = body["redirect_browser_to"].as_str().unwrap().to_owned();
    assert!(to.starts_with(&provider.issuer), "{to}");

    // The system browser: signs in at the provider and comes back to the app.
    let mut system_browser = Browser::new(&identa);
    let callback = system_browser
        .sign_in_at_provider(&to, "app@example.com")
        .await;
    let res = system_browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    let returned = location(&res);
    let code = returned
        .strip_prefix(&format!("{back}?code="))
        .unwrap_or_else(|| panic!("{returned}"))
        .to_owned();
    assert!(!system_browser.cookies.contains_key("identa_session"));

    let exchange = |init: &str, back: &str| {
        format!("/sessions/token-exchange?init_code={init}&return_to_code={back}")
    };
    let res = app
        .identa("GET", &exchange(&init_code, "wrong"), None, true)
        .await;
    assert_eq!(res.status(), 404, "{}", body_text(&res));
    let res = app
        .identa("GET", &exchange(&init_code, &code), None, true)
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let body = json_of(&res);
    assert_eq!(
        body["session"]["identity"]["traits"]["email"],
        "app@example.com"
    );
    let token = body["session_token"].as_str().unwrap();
    let whoami = http::Request::get("/sessions/whoami")
        .header("x-session-token", token)
        .body(Bytes::new())
        .unwrap();
    assert_eq!(app.api.handle(whoami).await.status(), 200);
    let res = app
        .identa("GET", &exchange(&init_code, &code), None, true)
        .await;
    assert_eq!(res.status(), 404, "fetched once: {}", body_text(&res));

    // Without the exchange, an API flow has no way to receive the session: refused.
    let res = app
        .identa("GET", "/self-service/login/api", None, true)
        .await;
    let flow = json_of(&res);
    assert!(flow.get("session_token_exchange_code").is_none());
    let id = flow["id"].as_str().unwrap();
    let res = app
        .identa(
            "POST",
            &format!("/self-service/login?flow={id}"),
            Some(&[("provider", PROVIDER)]),
            true,
        )
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(
        json_of(&res)["error"]["id"],
        "self_service_flow_state_invalid"
    );
}

/// A provider that cannot be reached: the flow says so (400 with the flow, 4000001) and
/// is kept; nothing is a 500.
async fn an_unreachable_provider_is_a_flow_message(env: TestEnv) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let identa = engine(&env, &format!("http://127.0.0.1:{closed}"), "identa");
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("login").await;
    let id = flow["id"].as_str().unwrap();
    let csrf = csrf_token(&flow);
    let res = browser
        .identa(
            "POST",
            &format!("/self-service/login?flow={id}"),
            Some(&[("csrf_token", &csrf), ("provider", PROVIDER)]),
            true,
        )
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["id"], id, "the same flow, kept");
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("could not be reached"), "{text}");

    // An unknown provider id is refused the same way.
    let res = browser
        .identa(
            "POST",
            &format!("/self-service/login?flow={id}"),
            Some(&[("csrf_token", &csrf), ("provider", "nope")]),
            true,
        )
        .await;
    assert_eq!(res.status(), 400);
    let text = json_of(&res)["ui"]["messages"][0]["text"].clone();
    assert!(text.as_str().unwrap().contains("nope"), "{text}");

    // A callback without a state names no flow.
    let res = browser
        .identa(
            "GET",
            &format!("/self-service/methods/oidc/callback/{PROVIDER}?code=x"),
            None,
            true,
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_of(&res)["error"]["id"], "bad_request");
}

on_every_backend!(an_unreachable_provider_is_a_flow_message);

impl Browser {
    /// The login flow `id` as this browser reads it.
    async fn login_flow(&mut self, id: &str) -> Value {
        let res = self
            .identa(
                "GET",
                &format!("/self-service/login/flows?id={id}"),
                None,
                true,
            )
            .await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        json_of(&res)
    }
}

/// A password alone never links a provider account to an identity with a second factor
/// (Kratos links only once the required AAL is reached: `maybeLinkCredentials` in
/// selfservice/flow/login/hook.go). The password step signs in at `aal1` and sends the
/// browser to a second-factor flow holding the link; until its TOTP step, the provider
/// account does not sign in to the identity (it is offered the link again); after it,
/// it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider (`npm ci --prefix examples/http-suite/oidc`) and oathtool; run with `cargo test -- --ignored`"]
async fn a_waiting_link_is_taken_only_after_the_second_factor() {
    let (env, _provider, identa) = with_provider().await;
    let (erin, token) =
        crate::common::accounts::register_with_password(&env, "erin@example.com").await;
    let secret = crate::common::enrol_totp(&env, &token).await;

    let mut browser = Browser::new(&identa);
    let login = browser.offered_link("erin@example.com").await;
    let res = browser
        .password_login(&login, "erin@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let answer = json_of(&res);
    assert_eq!(answer["error"]["id"], "browser_location_change_required");
    let to = answer["redirect_browser_to"].as_str().unwrap();
    assert!(to.contains("/login?flow="), "{to}");
    assert!(
        browser.cookies.contains_key("identa_session"),
        "aal1 session"
    );
    assert!(linked(&identa, erin.id).await.is_empty(), "not at aal1");

    // The provider account does not sign in to erin yet: it is offered the link again.
    let mut outsider = Browser::new(&identa);
    let res = outsider.provider_sign_in("erin@example.com").await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(message_ids(&json_of(&res)), vec![1_010_016]);
    assert!(!outsider.cookies.contains_key("identa_session"));

    let id = to.rsplit_once("flow=").unwrap().1.to_owned();
    let second = browser.login_flow(&id).await;
    assert_eq!(second["requested_aal"], "aal2");
    assert!(message_ids(&second).contains(&1_900_003), "{second}");
    env.clock.advance(chrono::Duration::seconds(30));
    let code = crate::common::needs::oathtool_totp(&secret, env.clock_now());
    let csrf = csrf_token(&second);
    let form = [
        ("csrf_token", csrf.as_str()),
        ("method", "totp"),
        ("totp_code", code.as_str()),
    ];
    let res = browser
        .identa(
            "POST",
            &format!("/self-service/login?flow={id}"),
            Some(&form),
            true,
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(
        json_of(&res)["session"]["authenticator_assurance_level"],
        "aal2"
    );
    assert_eq!(
        linked(&identa, erin.id).await,
        [format!("{PROVIDER}:erin@example.com")]
    );

    // Now the provider account signs in to erin (no new identity), at aal1: on to her
    // second factor.
    let before = identity_count(&identa).await;
    let erins = identa.sessions(erin.id).await.unwrap().len();
    let mut fresh = Browser::new(&identa);
    let res = fresh.provider_sign_in("erin@example.com").await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let to = json_of(&res)["redirect_browser_to"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(to.ends_with("?aal=aal2"), "{to}");
    assert!(fresh.cookies.contains_key("identa_session"));
    assert_eq!(identity_count(&identa).await, before);
    assert_eq!(identa.sessions(erin.id).await.unwrap().len(), erins + 1);
    let res = fresh.identa("GET", &to, None, true).await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(json_of(&res)["requested_aal"], "aal2");
}

/// A waiting provider account that another account linked in the meantime is not
/// linked: the owner still signs in, the flow says the link was not made (1900004), and
/// nothing is stuck on the flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_waiting_link_taken_meanwhile_is_dropped_and_the_owner_signs_in() {
    let (_env, _provider, identa) = with_provider().await;
    let fay = register_with_password(&identa, "fay@example.com").await;
    let gus = register_with_password(&identa, "gus@example.com").await;
    let mut browser = Browser::new(&identa);
    let login = browser.offered_link("fay@example.com").await;

    // Meanwhile gus links the same provider account in his settings.
    let mut other = Browser::new(&identa);
    other.sign_in_with_password("gus@example.com").await;
    let res = other.link_in_settings("fay@example.com").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(
        linked(&identa, gus).await,
        [format!("{PROVIDER}:fay@example.com")]
    );

    let res = browser
        .password_login(&login, "fay@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(json_of(&res)["session"]["identity"]["id"], fay.to_string());
    assert!(linked(&identa, fay).await.is_empty());
    let shown = browser.login_flow(login["id"].as_str().unwrap()).await;
    assert_eq!(message_ids(&shown), vec![1_900_004]);
}

/// An account at a provider no longer configured signs in to nothing, so it does not
/// count as a way to sign in: the last configured provider account is not unlinked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn unlinking_the_last_configured_provider_is_refused() {
    let (env, provider, identa) = with_provider().await;
    // Imported while a provider `retired` was still configured.
    let retired = OidcProvider::new("retired", &provider.issuer, "identa")
        .client_secret("identa-secret")
        .label("Retired");
    let before = env
        .another_engine(env.identa.config().clone())
        .oidc(
            OidcProviders::new()
                .provider(
                    OidcProvider::new(PROVIDER, &provider.issuer, "identa")
                        .client_secret("identa-secret"),
                )
                .provider(retired),
        )
        .build()
        .unwrap();
    let new = identa::identity::NewIdentity {
        traits: json!({ "email": "hal@example.com" }),
        credentials: identa::identity::ImportedCredentials {
            oidc: vec![
                identa::identity::ImportedOidcAccount {
                    provider: PROVIDER.into(),
                    subject: "hal@example.com".into(),
                },
                identa::identity::ImportedOidcAccount {
                    provider: "retired".into(),
                    subject: "hal-at-retired".into(),
                },
            ],
            ..Default::default()
        },
        ..Default::default()
    };
    let hal = before.create_identity(new, None).await.unwrap();
    let mut browser = Browser::new(&identa);
    let res = browser.provider_sign_in("hal@example.com").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let flow = browser.start_flow("settings").await;
    assert!(oidc_node(&flow, "unlink").is_none(), "no unlink button");
    let res = browser
        .settings(&flow, &[("method", "oidc"), ("unlink", PROVIDER)])
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let text = json_of(&res)["ui"]["messages"][0]["text"].clone();
    assert!(
        text.as_str()
            .unwrap()
            .contains("last remaining first factor"),
        "{text}"
    );
    assert_eq!(linked(&identa, hal.id).await.len(), 2, "nothing removed");
}

/// A userinfo answer about another subject than the ID token's is refused (the
/// `openidconnect` crate checks the `sub`): nothing is made, no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_userinfo_about_another_subject_is_refused() {
    use identa::credential::oidc::ClaimsSource;
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = OpenIdProvider::start_with(&env.identa, port, Some("userinfo_sub"));
    let oidc = OidcProvider::new(PROVIDER, &provider.issuer, "identa")
        .client_secret("identa-secret")
        .claims_from(ClaimsSource::Userinfo);
    let identa = env
        .another_engine(env.identa.config().clone())
        .oidc(OidcProviders::new().provider(oidc))
        .build()
        .unwrap();
    let mut browser = Browser::new(&identa);
    let res = browser.provider_sign_in("uma@example.com").await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001], "{shown}");
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("userinfo"), "{text}");
    assert!(!browser.cookies.contains_key("identa_session"));
    assert_eq!(identity_count(&identa).await, 0);
}

/// Linking and unlinking in settings need the identity's highest assurance level: once
/// the identity has TOTP, its `aal1` session is refused (403 `session_aal2_required`) on
/// a settings flow it started before, and cannot start a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn settings_link_and_unlink_need_the_second_factor() {
    let (env, _provider, identa) = with_provider().await;
    let (ivy, token) =
        crate::common::accounts::register_with_password(&env, "ivy@example.com").await;
    let mut browser = Browser::new(&identa);
    browser.sign_in_with_password("ivy@example.com").await;
    let flow = browser.start_flow("settings").await;
    crate::common::enrol_totp(&env, &token).await;
    // Enrolled through another engine: past its session cache's `max_age` (60 s), this
    // engine sees the new factor.
    env.clock.advance(chrono::Duration::seconds(61));

    for fields in [
        [("method", "oidc"), ("link", PROVIDER)],
        [("method", "oidc"), ("unlink", PROVIDER)],
    ] {
        let res = browser.settings(&flow, &fields).await;
        assert_eq!(res.status(), 403, "{}", body_text(&res));
        assert_eq!(json_of(&res)["error"]["id"], "session_aal2_required");
    }
    let res = browser
        .identa("GET", "/self-service/settings/browser", None, true)
        .await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "session_aal2_required");
    assert!(linked(&identa, ivy.id).await.is_empty());
}

/// A settings link whose session grew too old between the button and the provider's
/// callback is refused at the callback (403 `session_refresh_required`): nothing linked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_settings_link_whose_session_aged_is_refused_at_the_callback() {
    let (env, _provider, identa) = with_provider().await;
    let jo = register_with_password(&identa, "jo@example.com").await;
    let mut browser = Browser::new(&identa);
    browser.sign_in_with_password("jo@example.com").await;
    let flow = browser.start_flow("settings").await;
    let to = browser.press_link(&flow).await;
    env.clock.advance(
        identa.config().flows.settings.privileged_session_max_age + chrono::Duration::seconds(1),
    );
    let res = browser.through_provider(&to, "jo-elsewhere").await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "session_refresh_required");
    assert!(linked(&identa, jo).await.is_empty());
}

/// The `config` column of every `oidc` credential row, as the database holds it.
async fn raw_oidc_configs(env: &TestEnv) -> Vec<String> {
    use identa::sea_orm::{ConnectionTrait, Statement};
    let db = env.store.connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT config FROM identa_identity_credentials WHERE credential_type = 'oidc'",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            row.try_get::<String>("", "config")
                .or_else(|_| row.try_get::<Value>("", "config").map(|v| v.to_string()))
                .unwrap()
        })
        .collect()
}

/// `GET /admin/identities/{id}` with `query`: the `oidc` credential as the admin API
/// shows it.
async fn admin_oidc(identa: &Identa, id: &str, query: &str) -> Value {
    let api = identa::http::AdminApi::new(identa.clone(), HttpConfig::default());
    let path = format!("/admin/identities/{id}{query}");
    let (status, body) =
        crate::admin::answer(&api, crate::admin::request("GET", &path, &[], "")).await;
    assert_eq!(status, 200, "{body}");
    body["credentials"]["oidc"].clone()
}

/// The claims of a JWT's payload (not verified: the test only reads what it says).
fn jwt_claims(jwt: &str) -> Value {
    use base64ct::Encoding as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&base64ct::Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap()
}

/// What the provider's userinfo endpoint answers to `access_token`.
async fn userinfo(issuer: &str, access_token: &str) -> (u16, Value) {
    let web = reqwest::Client::new();
    let discovery: Value = web
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    let res = web
        .get(discovery["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Off by default (unlike Kratos, which always keeps them): a provider sign-up stores no
/// token, and `include_credential=oidc` shows the entry with empty tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn provider_tokens_are_not_kept_by_default() {
    let (env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let id = browser.provider_sign_up("ada@example.com").await;

    let raw = raw_oidc_configs(&env).await;
    assert_eq!(raw.len(), 1);
    assert!(raw[0].contains("ada@example.com"), "{}", raw[0]);
    assert!(
        !raw[0].contains("initial_"),
        "no token is stored: {}",
        raw[0]
    );
    let shown = admin_oidc(&identa, &id, "?include_credential=oidc").await;
    assert_eq!(
        shown["config"]["providers"],
        json!([{ "provider": PROVIDER, "subject": "ada@example.com",
                 "initial_id_token": "", "initial_access_token": "", "initial_refresh_token": "" }])
    );
}

/// With `ProviderTokens::KeepEncrypted`, the tokens of the sign-up's code exchange are
/// stored sealed (no token text in the database row) and the admin API opens them with
/// `include_credential=oidc` only: the access token is the one the provider answers to,
/// the ID token the one it issued for this account and client. A later sign-in keeps
/// them (Kratos's `initial_*` tokens are written at sign-up and linking only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn kept_provider_tokens_are_sealed_at_rest_and_shown_to_the_admin_api_only() {
    let (env, provider, identa) = with_provider_keeping_tokens().await;
    let mut browser = Browser::new(&identa);
    let id = browser.provider_sign_up("ada@example.com").await;

    let shown = admin_oidc(&identa, &id, "?include_credential=oidc").await;
    let entry = &shown["config"]["providers"][0];
    assert_eq!(entry["provider"], PROVIDER);
    assert_eq!(entry["subject"], "ada@example.com");
    let access = entry["initial_access_token"].as_str().unwrap().to_owned();
    let id_token = entry["initial_id_token"].as_str().unwrap().to_owned();
    assert!(!access.is_empty() && !id_token.is_empty(), "{shown}");
    assert_eq!(
        entry["initial_refresh_token"], "",
        "no offline_access asked"
    );
    let (status, info) = userinfo(&provider.issuer, &access).await;
    assert_eq!(
        status, 200,
        "the provider takes the kept access token: {info}"
    );
    assert_eq!(info["sub"], "ada@example.com");
    let claims = jwt_claims(&id_token);
    assert_eq!(claims["sub"], "ada@example.com");
    assert_eq!(claims["aud"], "identa");
    assert_eq!(claims["iss"], provider.issuer.as_str());

    let raw = raw_oidc_configs(&env).await;
    assert_eq!(raw.len(), 1);
    assert!(raw[0].contains("initial_access_token"), "{}", raw[0]);
    for token in [&access, &id_token] {
        assert!(
            !raw[0].contains(token.as_str()),
            "a token in the clear: {}",
            raw[0]
        );
    }
    let payload = id_token.split('.').nth(1).unwrap();
    assert!(
        !raw[0].contains(payload),
        "the ID token's claims in the clear"
    );

    // Without include_credential (or with password only) no configuration is shown.
    for query in ["", "?include_credential=password"] {
        let hidden = admin_oidc(&identa, &id, query).await;
        assert!(hidden.get("config").is_none(), "{query}: {hidden}");
        assert_eq!(
            hidden["identifiers"],
            json!([format!("{PROVIDER}:ada@example.com")])
        );
    }
    // The list shows them too when asked.
    let api = identa::http::AdminApi::new(identa.clone(), HttpConfig::default());
    let (status, list) = crate::admin::answer(
        &api,
        crate::admin::request(
            "GET",
            &format!("/admin/identities?ids={id}&include_credential=oidc"),
            &[],
            "",
        ),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list[0]["credentials"]["oidc"]["config"]["providers"][0]["initial_access_token"],
        access.as_str()
    );

    // Signed out, signed in again: the tokens of the sign-up stay (Kratos's `initial_*`).
    let mut again = Browser::new(&identa);
    again.web = browser.web.clone();
    let res = again.provider_sign_in("ada@example.com").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert_eq!(again.whoami().await["identity"]["id"], id.as_str());
    let after = admin_oidc(&identa, &id, "?include_credential=oidc").await;
    assert_eq!(
        after["config"]["providers"][0]["initial_access_token"],
        access.as_str()
    );
}

/// A provider account linked after Kratos's 1010016 (signing in to the account with the
/// address) keeps its sign-up's tokens, sealed on the login flow meanwhile; one linked in
/// settings keeps the link's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_linked_provider_account_keeps_its_tokens() {
    let (env, provider, identa) = with_provider_keeping_tokens().await;
    let bob = register_with_password(&identa, "bob@example.com").await;
    let mut browser = Browser::new(&identa);
    let login = browser.offered_link("bob@example.com").await;
    assert_eq!(message_ids(&login), vec![1_010_016]);
    let res = browser
        .password_login(&login, "bob@example.com", PASSWORD)
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let shown = admin_oidc(&identa, &bob.to_string(), "?include_credential=oidc").await;
    let entry = &shown["config"]["providers"][0];
    assert_eq!(entry["subject"], "bob@example.com");
    let access = entry["initial_access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&provider.issuer, access).await.1["sub"],
        "bob@example.com"
    );
    assert_eq!(
        jwt_claims(entry["initial_id_token"].as_str().unwrap())["sub"],
        "bob@example.com"
    );

    let carol = register_with_password(&identa, "carol@example.com").await;
    let mut browser = Browser::new(&identa);
    browser.sign_in_with_password("carol@example.com").await;
    let res = browser.link_in_settings("carol-elsewhere").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let shown = admin_oidc(&identa, &carol.to_string(), "?include_credential=oidc").await;
    let entry = &shown["config"]["providers"][0];
    assert_eq!(entry["subject"], "carol-elsewhere");
    let access = entry["initial_access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&provider.issuer, access).await.1["sub"],
        "carol-elsewhere"
    );
    for raw in raw_oidc_configs(&env).await {
        assert!(!raw.contains(access), "a token in the clear: {raw}");
    }
}

mod apple;
mod form_post;
mod refresh;

/// A provider stand-in on loopback answering every request by its path: a discovery
/// document naming its own endpoints, an empty JWKS, and at `oversized` an answer over
/// 1 MiB (its length declared, or not: the body then ends when the connection closes).
mod oversized {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Which answer is over 1 MiB, and whether its length is declared.
    #[derive(Clone, Copy, Debug)]
    pub(super) enum Oversized {
        Discovery,
        Jwks,
        Token,
    }

    /// Starts the stand-in: its issuer URL.
    pub(super) async fn provider(oversized: Oversized, declared: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let base = issuer.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                // The request's body (the token request's form), read so the client is
                // not cut off while sending it.
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = socket.read_exact(&mut body).await;
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default().to_owned();
                let huge = || format!("{{\"padding\":\"{}\"}}", "x".repeat((1 << 20) + 1));
                let answer = match (path.as_str(), oversized) {
                    ("/.well-known/openid-configuration", Oversized::Discovery)
                    | ("/jwks", Oversized::Jwks)
                    | ("/token", Oversized::Token) => huge(),
                    ("/.well-known/openid-configuration", _) => serde_json::json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": format!("{base}/token"),
                        "jwks_uri": format!("{base}/jwks"),
                        "userinfo_endpoint": format!("{base}/me"),
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                    })
                    .to_string(),
                    ("/jwks", _) => r#"{"keys":[]}"#.to_owned(),
                    _ => "{}".to_owned(),
                };
                let length = if declared {
                    format!("content-length: {}\r\n", answer.len())
                } else {
                    String::new()
                };
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n{answer}"
                );
                let _ = socket.write_all(res.as_bytes()).await;
            }
        });
        issuer
    }
}

/// Every answer a provider gives is read up to 1 MiB: a discovery document, a JWKS or a
/// token response over it (declared or not) is refused as the provider's fault, shown on
/// the flow (400, 4000001, saying it is over 1 MiB) — never read whole, never a 500.
async fn a_provider_answer_over_one_mib_is_a_flow_message(env: TestEnv) {
    use oversized::Oversized;
    for (what, declared) in [
        (Oversized::Discovery, true),
        (Oversized::Discovery, false),
        (Oversized::Jwks, true),
        (Oversized::Jwks, false),
        (Oversized::Token, true),
        (Oversized::Token, false),
    ] {
        let issuer = oversized::provider(what, declared).await;
        let identa = engine(&env, &issuer, "identa");
        let mut browser = Browser::new(&identa);
        let flow = browser.start_flow("login").await;
        let id = flow["id"].as_str().unwrap();
        let csrf = csrf_token(&flow);
        let pressed = browser
            .identa(
                "POST",
                &format!("/self-service/login?flow={id}"),
                Some(&[("csrf_token", &csrf), ("provider", PROVIDER)]),
                true,
            )
            .await;
        let res = match what {
            Oversized::Discovery | Oversized::Jwks => pressed,
            // Discovery went through: the browser goes to the provider, and comes back
            // with a code the token endpoint answers too much to.
            Oversized::Token => {
                assert_eq!(pressed.status(), 422, "{}", body_text(&pressed));
                let to = json_of(&pressed)["redirect_browser_to"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let url = reqwest::Url::parse(&to).unwrap();
                let state = url
                    .query_pairs()
                    .find(|(k, _)| k == "state")
                    .unwrap()
                    .1
                    .into_owned();
                browser
                    .identa(
                        "GET",
                        &format!("/self-service/methods/oidc/callback/{PROVIDER}?state={state}&code=a-code"),
                        None,
                        true,
                    )
                    .await
            }
        };
        assert_eq!(
            res.status(),
            400,
            "{what:?} {declared}: {}",
            body_text(&res)
        );
        let shown = json_of(&res);
        assert_eq!(shown["id"], id, "the same flow, kept");
        assert_eq!(message_ids(&shown), vec![4_000_001]);
        let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
        assert!(text.contains("over 1 MiB"), "{what:?} {declared}: {text}");
    }
}

on_every_backend!(a_provider_answer_over_one_mib_is_a_flow_message);

/// A userinfo answer over 1 MiB (a provider configured to read its claims there) is
/// refused at the callback: 400, 4000001 naming the bound, nothing made, no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_userinfo_answer_over_one_mib_is_refused() {
    use identa::credential::oidc::ClaimsSource;
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = OpenIdProvider::start_with(&env.identa, port, Some("userinfo_oversized"));
    let oidc = OidcProvider::new(PROVIDER, &provider.issuer, "identa")
        .client_secret("identa-secret")
        .claims_from(ClaimsSource::Userinfo);
    let identa = env
        .another_engine(env.identa.config().clone())
        .oidc(OidcProviders::new().provider(oidc))
        .build()
        .unwrap();
    let mut browser = Browser::new(&identa);
    let res = browser.provider_sign_in("big@example.com").await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001], "{shown}");
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("userinfo") && text.contains("over 1 MiB"),
        "{text}"
    );
    assert!(!browser.cookies.contains_key("identa_session"));
    assert_eq!(identity_count(&identa).await, 0);
}

/// Two identities, each signed up through its own account at the same provider with
/// `ProviderTokens::KeepEncrypted`: `include_credential=oidc` shows each identity its own
/// tokens — the access token the provider answers to for that account, the ID token issued
/// about it — and never the other's, also after both signed in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn two_accounts_at_one_provider_keep_their_own_tokens() {
    let (_env, provider, identa) = with_provider_keeping_tokens().await;
    let mut ada_browser = Browser::new(&identa);
    let mut bob_browser = Browser::new(&identa);
    let ada = ada_browser.provider_sign_up("ada@example.com").await;
    let bob = bob_browser.provider_sign_up("bob@example.com").await;
    assert_ne!(ada, bob);

    // Each identity's entry: its own subject and tokens, (access, ID token).
    let tokens_of = |shown: &Value| {
        let entries = shown["config"]["providers"].as_array().unwrap().clone();
        assert_eq!(entries.len(), 1, "{shown}");
        let entry = &entries[0];
        (
            entry["subject"].as_str().unwrap().to_owned(),
            entry["initial_access_token"].as_str().unwrap().to_owned(),
            entry["initial_id_token"].as_str().unwrap().to_owned(),
        )
    };
    let mut kept = Vec::new();
    for (id, login) in [(&ada, "ada@example.com"), (&bob, "bob@example.com")] {
        let (subject, access, id_token) =
            tokens_of(&admin_oidc(&identa, id, "?include_credential=oidc").await);
        assert_eq!(subject, login);
        let (status, info) = userinfo(&provider.issuer, &access).await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["sub"], login, "the access token is {login}'s");
        assert_eq!(
            jwt_claims(&id_token)["sub"],
            login,
            "the ID token is {login}'s"
        );
        kept.push((access, id_token));
    }
    assert_ne!(kept[0].0, kept[1].0);
    assert_ne!(kept[0].1, kept[1].1);

    // Both sign in again, in the other order: each keeps its own tokens.
    for (browser, login) in [
        (&mut bob_browser, "bob@example.com"),
        (&mut ada_browser, "ada@example.com"),
    ] {
        let mut again = Browser::new(&identa);
        again.web = browser.web.clone();
        let res = again.provider_sign_in(login).await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
    }
    for (id, (access, id_token)) in [&ada, &bob].into_iter().zip(&kept) {
        let shown = admin_oidc(&identa, id, "?include_credential=oidc").await;
        let (_, now_access, now_id_token) = tokens_of(&shown);
        assert_eq!((&now_access, &now_id_token), (access, id_token), "{shown}");
    }
}

/// Under enumeration-safe registration (as the example hosts run it: `AnswerAsNew`,
/// `after: AccountOnly`, unverified accounts refused as wrong passwords), a provider
/// sign-up whose every address the provider vouches for signs in (as Kratos's oidc method
/// with its `session` after-registration hook), while an unvouched one gets no session —
/// the same answer whether its address is free or taken. `AfterProviderRegistration::AsAfter`
/// follows `registration.after` instead: no session at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_vouched_provider_sign_up_signs_in_under_enumeration_safe_registration() {
    use identa::flow::{
        AfterProviderRegistration, AfterRegistration, DuplicateRegistration, UnverifiedSignIn,
    };
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let provider = OpenIdProvider::start(&env.identa);
    let mut config = env.identa.config().clone();
    config.flows.registration.duplicate = DuplicateRegistration::AnswerAsNew;
    config.flows.registration.after = AfterRegistration::AccountOnly;
    config.flows.login.unverified = UnverifiedSignIn::RefuseAsWrongCredentials;
    assert_eq!(
        config.flows.registration.after_provider,
        AfterProviderRegistration::IssueSessionWhenVouched,
        "the default"
    );
    let identa = engine_with(&env, &provider.issuer, "identa", config.clone());
    register_with_password(&identa, "unverified-kim@example.com").await;

    let sign_up = |identa: Identa, login: &'static str| async move {
        let mut browser = Browser::new(&identa);
        let flow = browser.start_flow("registration").await;
        let to = browser.press_provider("registration", &flow).await;
        let callback = browser.sign_in_at_provider(&to, login).await;
        let res = browser.identa("GET", &callback, None, true).await;
        (outward(&res, &browser), browser)
    };

    // Vouched: signed in, the address stored verified.
    let (vouched, mut browser) = sign_up(identa.clone(), "vouched-new@example.com").await;
    assert_eq!(vouched["status"], 200, "{vouched}");
    assert_eq!(vouched["session"], true, "{vouched}");
    assert_eq!(vouched["verified"], true);
    let whoami = browser.whoami().await;
    assert_eq!(
        whoami["identity"]["traits"]["email"],
        "vouched-new@example.com"
    );
    assert_eq!(whoami["authentication_methods"][0]["method"], "oidc");

    // Unvouched: no session, free or taken alike.
    let (free, _) = sign_up(identa.clone(), "unverified-lee@example.com").await;
    let (taken, _) = sign_up(identa.clone(), "unverified-kim@example.com").await;
    assert_eq!(free, taken, "taken and free look alike");
    assert_eq!(free["status"], 200, "{free}");
    assert_eq!(free["session"], false);
    assert_eq!(free["verified"], false);

    // `AsAfter`: the vouched sign-up follows `after: AccountOnly`.
    config.flows.registration.after_provider = AfterProviderRegistration::AsAfter;
    let as_after = engine_with(&env, &provider.issuer, "identa", config);
    let (vouched, _) = sign_up(as_after, "vouched-other@example.com").await;
    assert_eq!(vouched["status"], 200, "{vouched}");
    assert_eq!(vouched["session"], false, "{vouched}");
    assert_eq!(vouched["verified"], true);
}

/// An identity that signs in with a provider and has TOTP (as in Kratos: the provider is
/// a first factor; `session.whoami.required_aal` is `highest_available` by default):
/// the provider sign-in makes an `aal1` session and sends the browser to a login flow
/// asking for `aal2` (422 `browser_location_change_required`, as Kratos's login hook does
/// when whoami would need a higher level); whoami refuses that session with 403
/// `session_aal2_required` and the same kind of redirect; the TOTP step on the second
/// flow raises the session to `aal2`, whose methods are `oidc` then `totp`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider (`npm ci --prefix examples/http-suite/oidc`) and oathtool; run with `cargo test -- --ignored`"]
async fn a_provider_sign_in_with_totp_is_aal1_until_the_second_factor() {
    let (env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let res = browser.through_provider(&to, "tess@example.com").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let token =
        identa::session::SessionToken::from_client(browser.cookies["identa_session"].clone());
    let secret = crate::common::enrol_totp(&env, &token).await;

    let mut browser = Browser::new(&identa);
    let res = browser.provider_sign_in("tess@example.com").await;
    assert_eq!(res.status(), 422, "{}", body_text(&res));
    let answer = json_of(&res);
    assert_eq!(answer["error"]["id"], "browser_location_change_required");
    let to = answer["redirect_browser_to"].as_str().unwrap().to_owned();
    assert!(to.ends_with("/self-service/login/browser?aal=aal2"), "{to}");
    assert!(
        browser.cookies.contains_key("identa_session"),
        "aal1 session"
    );

    let res = browser.identa("GET", "/sessions/whoami", None, true).await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    let refused = json_of(&res);
    assert_eq!(refused["error"]["id"], "session_aal2_required");
    assert_eq!(refused["redirect_browser_to"], to.as_str());

    let res = browser.identa("GET", &to, None, true).await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let second = json_of(&res);
    assert_eq!(second["requested_aal"], "aal2");
    assert!(message_ids(&second).contains(&1_010_004), "{second}");
    let id = second["id"].as_str().unwrap().to_owned();
    env.clock.advance(chrono::Duration::seconds(30));
    let code = crate::common::needs::oathtool_totp(&secret, env.clock_now());
    let csrf = csrf_token(&second);
    let form = [
        ("csrf_token", csrf.as_str()),
        ("method", "totp"),
        ("totp_code", code.as_str()),
    ];
    let res = browser
        .identa(
            "POST",
            &format!("/self-service/login?flow={id}"),
            Some(&form),
            true,
        )
        .await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    let me = browser.whoami().await;
    assert_eq!(me["authenticator_assurance_level"], "aal2");
    let methods: Vec<&str> = me["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["oidc", "totp"]);
    assert_eq!(identity_count(&identa).await, 1);

    // A browser page is redirected there (303), with its aal1 session cookie.
    let mut page = Browser::new(&identa);
    let flow = page.start_flow("login").await;
    let to = page.press_provider("login", &flow).await;
    let callback = page.sign_in_at_provider(&to, "tess@example.com").await;
    let res = page.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert!(
        location(&res).ends_with("/self-service/login/browser?aal=aal2"),
        "{}",
        location(&res)
    );
    assert!(page.cookies.contains_key("identa_session"));
}

/// An authorization code replayed at the provider: the code of a completed sign-up is
/// presented again, in the same browser, with the state of a NEW flow (so identa's
/// spent-state check passes and the code reaches the provider's token endpoint). The
/// provider refuses it with `invalid_grant` — the code is spent, and it was also issued
/// for the first flow's PKCE challenge, so this shows a code the provider refuses is
/// shown on the new flow (400, 4000001) and makes nothing (no identity, no session); it
/// does not single out the provider's one-use rule (identa's own replay refusal is
/// `a_wrong_replayed_or_foreign_state_is_refused`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_replayed_authorization_code_is_refused_by_the_provider() {
    let (_env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let callback = browser.sign_in_at_provider(&to, "once@example.com").await;
    let res = browser.identa("GET", &callback, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(identity_count(&identa).await, 1);
    let query = |url: &str, name: &str| {
        reqwest::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no `{name}` in {url}"))
    };
    let spent_code = query(&callback, "code");

    // Signed out at identa, the same browser starts a new flow: its own state, the old code.
    browser.cookies.remove("identa_session");
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let state = query(&to, "state");
    let mut replay = reqwest::Url::parse(&identa.oidc().callback_url(PROVIDER)).unwrap();
    replay
        .query_pairs_mut()
        .append_pair("code", &spent_code)
        .append_pair("state", &state);
    let res = browser.identa("GET", replay.as_str(), None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["id"], flow["id"], "the new flow shows why");
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(!browser.cookies.contains_key("identa_session"));
    assert_eq!(identity_count(&identa).await, 1, "nothing made");
}
