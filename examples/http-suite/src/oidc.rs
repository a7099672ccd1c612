//! Sign-in with OpenID Connect through a host configured with a provider
//! (`oidc_providers`): a real, certified OpenID provider (panva's `oidc-provider`,
//! `oidc/provider.mjs`) on loopback, driven once by a plain HTTP client and once by
//! headless Chromium through the host's UI.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use identa::credential::oidc::{ClaimsSource, ProviderTokens};
use identa_host::{BoxError, HostConfig, HostProvider, ProviderType, Running};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Client, StatusCode};

use crate::support::{browser, node, node_value, send};
use crate::{Host, tools, try_start_example_host};

/// The provider id the cases configure.
pub const PROVIDER: &str = "test";

/// The OpenID provider (`oidc/provider.mjs`), running until dropped.
pub struct OpenIdProvider {
    child: Child,
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OpenIdProvider {
    /// Starts the provider on `port`, its client `identa` (secret `identa-secret`)
    /// allowed `redirect_uris`; waits until it listens. Fails naming Node or the npm
    /// package when one is missing.
    pub fn start(port: u16, redirect_uris: &[String]) -> Self {
        Self::run("provider.mjs", port, redirect_uris, &[])
    }

    /// [`OpenIdProvider::start`], its ID tokens carrying `sub` only: the other claims
    /// are at its userinfo endpoint (`OIDC_ID_TOKEN_CLAIMS=sub_only`).
    pub fn start_with_claims_at_userinfo(port: u16, redirect_uris: &[String]) -> Self {
        Self::run(
            "provider.mjs",
            port,
            redirect_uris,
            &[("OIDC_ID_TOKEN_CLAIMS", "sub_only")],
        )
    }

    /// Starts the stand-in for GitHub (`oidc/github.mjs`: its OAuth2 endpoints and user
    /// API, client `identa`, secret `identa-secret`, user 4242 `octo@example.com`) on
    /// `port`, redirecting to `redirect_uri`, the user's addresses as `emails` says.
    pub fn github(port: u16, redirect_uri: &str, emails: GitHubEmails) -> Self {
        Self::run(
            "github.mjs",
            port,
            &[redirect_uri.to_owned()],
            &[("GITHUB_EMAILS", emails.as_env())],
        )
    }

    fn run(script: &str, port: u16, redirect_uris: &[String], envs: &[(&str, &str)]) -> Self {
        let dir = tools::npm_dir("oidc", "oidc-provider");
        let mut child = Command::new("node")
            .envs(envs.iter().copied())
            .arg(script)
            .arg(port.to_string())
            .arg(redirect_uris.join(","))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("this case needs Node (`node` on the PATH): apt-get install nodejs npm");
        let stdout = child.stdout.take().expect("the provider's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let issuer = loop {
            let line = lines
                .next()
                .expect("the OpenID provider exited before listening")
                .expect("the provider's output");
            if let Some(issuer) = line.strip_prefix("listening ") {
                break issuer.to_owned();
            }
        };
        // Drained until the provider exits: a closed pipe would end it at its next line.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, issuer }
    }
}

/// What the GitHub stand-in's `GET /user/emails` answers (its `GITHUB_EMAILS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitHubEmails {
    /// A verified primary address `octo@example.com` and a verified secondary one.
    Verified,
    /// The same, the primary address not verified.
    PrimaryUnverified,
    /// No address at all.
    None,
    /// 404, as GitHub answers a token granted without the `user:email` scope (the token
    /// endpoint grants an empty scope).
    ScopeMissing,
}

impl GitHubEmails {
    fn as_env(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::PrimaryUnverified => "primary_unverified",
            Self::None => "none",
            Self::ScopeMissing => "scope_missing",
        }
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The host's configuration entry for the provider at `issuer`, as an operator writes
/// it: a generic provider, its secret in an environment variable's place.
pub fn provider_entry(issuer: &str) -> HostProvider {
    HostProvider {
        id: PROVIDER.into(),
        provider: ProviderType::Generic,
        client_id: "identa".into(),
        client_secret: Some("identa-secret".into()),
        issuer_url: Some(issuer.into()),
        scope: Vec::new(),
        microsoft_tenant: None,
        github_api_url: None,
        label: Some("Test ID".into()),
        claims_source: ClaimsSource::IdToken,
        store_tokens: ProviderTokens::Discard,
        apple_key: None,
        id_token_audiences: Vec::new(),
    }
}

/// A host with the provider configured (`oidc_providers`), and the provider, which
/// redirects to the host's callback.
pub async fn host_with_provider<Fut>(start: impl Fn(HostConfig) -> Fut) -> (Host, OpenIdProvider)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let host = try_start_example_host(&start, |config| {
        config.oidc_providers = vec![provider_entry(&issuer)];
    })
    .await
    .expect("the host starts with an OpenID Connect provider");
    // Discovery happens at the first sign-in: the provider may start after the host.
    let callback = format!(
        "{}/self-service/methods/oidc/callback/{PROVIDER}",
        host.public
    );
    let provider = OpenIdProvider::start(port, &[callback]);
    (host, provider)
}

/// A person signs in at the provider as `login` with `client` (its cookies), from the
/// authorization URL `to`: the provider's login and consent pages submitted as they
/// come. The URL the provider sends the browser back to (the host's callback).
async fn sign_in_at_provider(client: &Client, issuer: &str, to: &str, login: &str) -> String {
    let mut url = to.to_owned();
    let mut form: Option<Vec<(&str, &str)>> = None;
    for _ in 0..12 {
        let res = match &form {
            Some(fields) => client.post(&url).form(fields).send().await,
            None => client.get(&url).send().await,
        }
        .expect("the provider answers");
        form = None;
        if res.status().is_redirection() {
            let next = res.headers()[LOCATION].to_str().unwrap().to_owned();
            let next = res.url().join(&next).unwrap().to_string();
            if !next.starts_with(issuer) {
                return next;
            }
            url = next;
            continue;
        }
        let html = res.text().await.unwrap();
        form = Some(if html.contains(r#"name="prompt" value="login""#) {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else if html.contains(r#"name="prompt" value="consent""#) {
            vec![("prompt", "consent")]
        } else {
            panic!("an unexpected page at the provider ({url}): {html}");
        });
    }
    panic!("the provider never sent the browser back");
}

/// Starts a browser flow of `kind` on `host` and reads it as JSON.
pub(crate) async fn start_flow(host: &Host, b: &Client, kind: &str) -> serde_json::Value {
    let (status, flow) = send(
        b.get(format!("{}/self-service/{kind}/browser", host.public))
            .header(ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    flow
}

/// Presses the button of provider `provider` on the `kind` flow `flow`: where the
/// browser is sent.
pub(crate) async fn press_provider(
    host: &Host,
    b: &Client,
    kind: &str,
    flow: &serde_json::Value,
    provider: &str,
) -> String {
    let res = b
        .post(format!(
            "{}/self-service/{kind}?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ))
        .form(&[
            ("csrf_token", node_value(flow, "csrf_token").as_str()),
            ("provider", provider),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    res.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The one identity the host's admin API lists.
pub(crate) async fn the_only_identity(host: &Host, b: &Client) -> serde_json::Value {
    let (status, listed) = send(b.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    listed[0].clone()
}

/// Asserts that `b` is signed in, with the provider, to the identity `made`.
pub(crate) async fn assert_signed_in_with_provider_as(
    host: &Host,
    b: &Client,
    made: &serde_json::Value,
) {
    let (status, me) = send(b.get(format!("{}/sessions/whoami", host.public))).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["identity"]["id"], made["id"],
        "the identity the sign-up made"
    );
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");
}

/// Presses the provider's button on a new browser flow of `kind` and signs in there as
/// `login`: the host's answer to the callback.
async fn through_the_provider(
    host: &Host,
    provider: &OpenIdProvider,
    b: &Client,
    kind: &str,
    login: &str,
) -> reqwest::Response {
    let flow = start_flow(host, b, kind).await;
    let button = node(&flow, "provider");
    assert_eq!(button["group"], "oidc", "{flow}");
    assert_eq!(button["attributes"]["value"], PROVIDER);
    let label = if kind == "login" {
        "Sign in with Test ID"
    } else {
        "Sign up with Test ID"
    };
    assert_eq!(button["meta"]["label"]["text"], label);
    let to = press_provider(host, b, kind, &flow, PROVIDER).await;
    assert!(to.starts_with(&provider.issuer), "{to}");
    assert!(to.contains("code_challenge_method=S256"), "{to}");
    let callback = sign_in_at_provider(b, &provider.issuer, &to, login).await;
    assert!(
        callback.starts_with(&format!(
            "{}/self-service/methods/oidc/callback/",
            host.public
        )),
        "{callback}"
    );
    b.get(&callback).send().await.unwrap()
}

/// A host configured with a provider (`oidc_providers`), over plain HTTP: the flows show
/// its button; a new provider account signs up through it and is signed in (the example
/// hosts' password sign-ups sign no one in — `registration.after` is `AccountOnly` while
/// sign-ups are enumeration-safe — but a provider that vouches for every address signs
/// in: `AfterProviderRegistration::IssueSessionWhenVouched`), its verified address stored
/// verified, and signs in through it from a fresh browser, to the identity the sign-up
/// made.
pub async fn oidc_sign_up_and_in<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let (host, provider) = host_with_provider(start).await;
    let email = "oidc-http@example.com";
    let b = browser();
    let res = through_the_provider(&host, &provider, &b, "registration", email).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let whoami = format!("{}/sessions/whoami", host.public);
    let (status, signed_up) = send(b.get(&whoami)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a vouched provider sign-up signs in: {signed_up}"
    );
    assert_eq!(signed_up["identity"]["traits"]["email"], email);
    let made = &the_only_identity(&host, &b).await;
    assert_eq!(made["traits"]["email"], email);
    assert_eq!(
        made["verifiable_addresses"][0]["verified"], true,
        "the provider vouched for the address"
    );

    let fresh = browser();
    let res = through_the_provider(&host, &provider, &fresh, "login", email).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("/ui/dashboard"),
        "to the host's default return URL"
    );
    assert_signed_in_with_provider_as(&host, &fresh, made).await;
}

/// Headless Chromium signs up and signs in with the provider through the host's UI: the
/// provider's button on the registration and sign-in pages, the provider's own login and
/// consent pages, and the dashboard naming the account. Needs what
/// [`real_browser`](crate::real_browser) needs, and `npm ci --prefix
/// examples/http-suite/oidc`.
pub async fn oidc_real_browser<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let (host, _provider) = host_with_provider(start).await;
    crate::run_browser_script(
        &host.public,
        &host.admin,
        "oidc.mjs",
        &["chromium OpenID Connect sign-up, sign-out, sign-in: ok"],
    )
    .await;
}

/// A provider whose ID tokens carry only `sub` (the specification's default), configured
/// with `claims_source: userinfo`: the sign-up reads the address and name from its
/// userinfo endpoint. (With the default `id_token` source the same sign-up is refused:
/// the provider shared no email address.)
pub async fn oidc_claims_from_userinfo<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let host = try_start_example_host(&start, |config| {
        config.oidc_providers = vec![HostProvider {
            claims_source: ClaimsSource::Userinfo,
            ..provider_entry(&issuer)
        }];
    })
    .await
    .expect("the host starts");
    let callback = format!(
        "{}/self-service/methods/oidc/callback/{PROVIDER}",
        host.public
    );
    let provider = OpenIdProvider::start_with_claims_at_userinfo(port, &[callback]);
    let email = "userinfo@example.com";
    let b = browser();
    let res = through_the_provider(&host, &provider, &b, "registration", email).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("/ui/dashboard"),
        "signed up, not sent back to the flow with an error"
    );
    let made = the_only_identity(&host, &b).await;
    assert_eq!(made["traits"]["email"], email, "from the userinfo endpoint");
    assert_eq!(made["verifiable_addresses"][0]["verified"], true);
}
