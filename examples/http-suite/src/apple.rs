//! Sign in with Apple through a host configured with `provider: apple` (Kratos's
//! `apple_team_id`, `apple_private_key_id`, `apple_private_key`) at a stand-in speaking
//! Apple's protocol (`oidc/apple.mjs`): the client secret the host mints is verified
//! there, and Apple's answer comes as a cross-site form post.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use identa::credential::oidc::{AppleKey, ClaimsSource, ProviderTokens};
use identa_host::{BoxError, HostConfig, HostProvider, ProviderType, Running};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Client, StatusCode};

use crate::form_post::form_of;
use crate::oidc::free_port;
use crate::support::{app, browser, node, node_value, send};
use crate::{tools, try_start_example_host};

/// The stand-in's developer account, and the P-256 key it knows (made for these tests
/// only).
const TEAM: &str = "TEAM123456";
const KEY_ID: &str = "KEY1234567";
const SERVICES_ID: &str = "com.example.identa";
const DEVELOPER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOSE0x4jW8Bo9jJep
jFomTQ89Q0ae3AsLrFohuRvZ1XChRANCAATZEZ5iJgmZBRnyXOvw+MLkfkxcooAe
9eWQnHdo4AxwLVeDHxikWwmsd6VkHIHxCj5e5tCotR4hcig3YC+3rW35
-----END PRIVATE KEY-----
";

/// The Apple stand-in, running until dropped.
struct AppleStandIn(Child);

impl Drop for AppleStandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl AppleStandIn {
    fn start(port: u16, redirect_uri: &str) -> Self {
        let dir = tools::npm_dir("oidc", "jose");
        let mut child = Command::new("node")
            .env("APPLE_PRIVATE_KEY", DEVELOPER_KEY)
            .arg("apple.mjs")
            .arg(port.to_string())
            .arg(redirect_uri)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("this case needs Node (`node` on the PATH): apt-get install nodejs npm");
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        loop {
            let line = lines
                .next()
                .expect("the Apple stand-in exited before listening")
                .expect("its output");
            if line.starts_with("listening ") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Self(child)
    }
}

/// Apple through a host over plain HTTP: the button, Apple asked for `email name` by form
/// post, the cross-site post (no cookies) turned into a GET with the browser's cookies,
/// the code exchanged with a client secret the stand-in verifies; the account signs up
/// with its verified relay address as `apple:<subject>`, then signs in to that identity.
pub async fn apple_sign_up_and_in<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let host = try_start_example_host(&start, |config| {
        config.oidc_providers = vec![HostProvider {
            id: "apple".into(),
            provider: ProviderType::Apple,
            client_id: SERVICES_ID.into(),
            client_secret: None,
            issuer_url: Some(issuer.clone()),
            scope: Vec::new(),
            microsoft_tenant: None,
            github_api_url: None,
            label: None,
            claims_source: ClaimsSource::IdToken,
            store_tokens: ProviderTokens::Discard,
            apple_key: Some(AppleKey::new(TEAM, KEY_ID, DEVELOPER_KEY)),
            id_token_audiences: Vec::new(),
        }];
    })
    .await
    .expect("the host starts with Apple");
    let callback = format!("{}/self-service/methods/oidc/callback/apple", host.public);
    let _apple = AppleStandIn::start(port, &callback);
    let through_apple = |b: Client, kind: &'static str| {
        let host = &host;
        let issuer = &issuer;
        let callback = &callback;
        async move {
            let (status, flow) = send(
                b.get(format!("{}/self-service/{kind}/browser", host.public))
                    .header(ACCEPT, "application/json"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{flow}");
            let button = node(&flow, "provider");
            assert_eq!(button["attributes"]["value"], "apple", "{flow}");
            assert_eq!(button["meta"]["label"]["context"]["provider"], "Apple");
            let res = b
                .post(format!(
                    "{}/self-service/{kind}?flow={}",
                    host.public,
                    flow["id"].as_str().unwrap()
                ))
                .form(&[
                    ("csrf_token", node_value(&flow, "csrf_token").as_str()),
                    ("provider", "apple"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
            assert!(to.starts_with(&format!("{issuer}/auth/authorize?")), "{to}");
            assert!(to.contains("response_mode=form_post"), "{to}");
            let page = b.get(&to).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK, "approved at Apple");
            let (action, fields) = form_of(&page.text().await.unwrap());
            assert_eq!(&action, callback);
            // Apple's page posts cross-site: no SameSite=Lax cookie goes with it.
            let res = app().post(&action).form(&fields).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let get = res.headers()[LOCATION].to_str().unwrap().to_owned();
            assert!(
                !get.contains("user="),
                "Apple's unsigned `user` is dropped: {get}"
            );
            let res = b.get(&get).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            assert!(
                res.headers()[LOCATION]
                    .to_str()
                    .unwrap()
                    .ends_with("/ui/dashboard"),
                "signed up or in, not sent back with an error"
            );
            b
        }
    };
    let b = through_apple(browser(), "registration").await;
    let (status, listed) = send(b.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let made = &listed[0];
    assert_eq!(made["traits"]["email"], "ada@privaterelay.appleid.com");
    assert_eq!(
        made["verifiable_addresses"][0]["verified"], true,
        "Apple's \"email_verified\": \"true\""
    );
    assert_eq!(
        made["credentials"]["oidc"]["identifiers"],
        serde_json::json!(["apple:000123.4f6b0c1e"])
    );

    let b = through_apple(browser(), "login").await;
    let (status, me) = send(b.get(format!("{}/sessions/whoami", host.public))).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["identity"]["id"], made["id"],
        "the identity the sign-up made"
    );
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");
}
