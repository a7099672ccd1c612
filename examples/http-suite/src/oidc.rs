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
    /// `port`, redirecting to `redirect_uri`.
    pub fn github(port: u16, redirect_uri: &str) -> Self {
        Self::run("github.mjs", port, &[redirect_uri.to_owned()], &[])
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

/// Presses the provider's button on a new browser flow of `kind` and signs in there as
/// `login`: the host's answer to the callback.
async fn through_the_provider(
    host: &Host,
    provider: &OpenIdProvider,
    b: &Client,
    kind: &str,
    login: &str,
) -> reqwest::Response {
    let (status, flow) = send(
        b.get(format!("{}/self-service/{kind}/browser", host.public))
            .header(ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let button = node(&flow, "provider");
    assert_eq!(button["group"], "oidc", "{flow}");
    assert_eq!(button["attributes"]["value"], PROVIDER);
    let label = if kind == "login" {
        "Sign in with Test ID"
    } else {
        "Sign up with Test ID"
    };
    assert_eq!(button["meta"]["label"]["text"], label);
    let res = b
        .post(format!(
            "{}/self-service/{kind}?flow={}",
            host.public,
            flow["id"].as_str().unwrap()
        ))
        .form(&[
            ("csrf_token", node_value(&flow, "csrf_token").as_str()),
            ("provider", PROVIDER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
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
    let (status, listed) = send(b.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let made = &listed[0];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
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
    let (status, me) = send(fresh.get(&whoami)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["identity"]["id"], made["id"],
        "the identity the sign-up made"
    );
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");
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

/// GitHub through a host configured with `provider: github` at a stand-in speaking
/// GitHub's documented OAuth2 and user API (`oidc/github.mjs`), over plain HTTP: the
/// button, the authorization with PKCE, the code exchange, `GET /user` and
/// `GET /user/emails`; the account signs up with its primary address (verified, as
/// GitHub says) and signs in again to the same identity, whose credential is
/// `github:<numeric user id>`.
pub async fn github_sign_up_and_in<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let port = free_port();
    let web = format!("http://127.0.0.1:{port}");
    let host = try_start_example_host(&start, |config| {
        config.oidc_providers = vec![HostProvider {
            id: "github".into(),
            provider: ProviderType::GitHub,
            client_id: "identa".into(),
            client_secret: Some("identa-secret".into()),
            issuer_url: Some(web.clone()),
            scope: Vec::new(),
            microsoft_tenant: None,
            github_api_url: Some(web.clone()),
            label: None,
            claims_source: ClaimsSource::IdToken,
            store_tokens: ProviderTokens::Discard,
        }];
    })
    .await
    .expect("the host starts with GitHub");
    let callback = format!("{}/self-service/methods/oidc/callback/github", host.public);
    let _github = OpenIdProvider::github(port, &callback);
    let through_github = |b: Client, kind: &'static str| {
        let host = &host;
        let web = &web;
        let callback = &callback;
        async move {
            let (status, flow) = send(
                b.get(format!("{}/self-service/{kind}/browser", host.public))
                    .header(ACCEPT, "application/json"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{flow}");
            let button = node(&flow, "provider");
            assert_eq!(button["attributes"]["value"], "github", "{flow}");
            assert_eq!(button["meta"]["label"]["context"]["provider"], "GitHub");
            let res = b
                .post(format!(
                    "{}/self-service/{kind}?flow={}",
                    host.public,
                    flow["id"].as_str().unwrap()
                ))
                .form(&[
                    ("csrf_token", node_value(&flow, "csrf_token").as_str()),
                    ("provider", "github"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
            assert!(
                to.starts_with(&format!("{web}/login/oauth/authorize?")),
                "{to}"
            );
            assert!(to.contains("scope=user%3Aemail"), "{to}");
            let res = b.get(&to).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::FOUND, "approved at GitHub");
            let back = res.headers()[LOCATION].to_str().unwrap().to_owned();
            assert!(back.starts_with(callback.as_str()), "{back}");
            let res = b.get(&back).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            b
        }
    };
    let b = through_github(browser(), "registration").await;
    let (status, listed) = send(b.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let made = &listed[0];
    assert_eq!(
        made["traits"]["email"], "octo@example.com",
        "the primary address"
    );
    assert_eq!(made["traits"]["name"], "Octo Cat");
    assert_eq!(made["verifiable_addresses"][0]["verified"], true);
    assert_eq!(
        made["credentials"]["oidc"]["identifiers"],
        serde_json::json!(["github:4242"]),
        "the numeric user id is the subject"
    );

    let b = through_github(browser(), "login").await;
    let (status, me) = send(b.get(format!("{}/sessions/whoami", host.public))).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["identity"]["id"], made["id"],
        "the identity the sign-up made"
    );
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");
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
    let (status, listed) = send(b.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(
        listed[0]["traits"]["email"], email,
        "from the userinfo endpoint"
    );
    assert_eq!(listed[0]["verifiable_addresses"][0]["verified"], true);
}
