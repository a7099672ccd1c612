//! GitHub through a host configured with `provider: github` at a stand-in that speaks
//! GitHub's documented OAuth2 and user API (`oidc/github.mjs`), over plain HTTP: the
//! sign-up and sign-in, and what the user's addresses (`GitHubEmails`) make of them.

use std::future::Future;

use identa::credential::oidc::{ClaimsSource, ProviderTokens};
use identa_host::{BoxError, HostConfig, HostProvider, ProviderType, Running};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::enumeration::shape;
use crate::oidc::{
    GitHubEmails, OpenIdProvider, assert_signed_in_with_provider_as, free_port, press_provider,
    start_flow, the_only_identity,
};
use crate::support::{
    api_register, api_sign_up, api_verify, app, browser, message_ids, node, send,
};
use crate::{Host, try_start_example_host};

/// A host configured with GitHub (id `github`) at the stand-in, which runs with `emails`.
struct WithGitHub {
    host: Host,
    /// The stand-in's base URL: its web and API root alike.
    web: String,
    _github: OpenIdProvider,
}

impl WithGitHub {
    async fn start<Fut>(start: impl Fn(HostConfig) -> Fut, emails: GitHubEmails) -> Self
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
                apple_key: None,
                id_token_audiences: Vec::new(),
            }];
        })
        .await
        .expect("the host starts with GitHub");
        let github = OpenIdProvider::github(port, &Self::callback(&host), emails);
        Self {
            host,
            web,
            _github: github,
        }
    }

    fn callback(host: &Host) -> String {
        format!("{}/self-service/methods/oidc/callback/github", host.public)
    }

    /// `b` presses GitHub's button on a new browser flow of `kind`, and GitHub approves:
    /// the host's callback URL GitHub sends the browser to.
    async fn at_github(&self, b: &Client, kind: &str) -> String {
        let flow = start_flow(&self.host, b, kind).await;
        let button = node(&flow, "provider");
        assert_eq!(button["attributes"]["value"], "github", "{flow}");
        assert_eq!(button["meta"]["label"]["context"]["provider"], "GitHub");
        let to = press_provider(&self.host, b, kind, &flow, "github").await;
        assert!(
            to.starts_with(&format!("{}/login/oauth/authorize?", self.web)),
            "{to}"
        );
        assert!(to.contains("scope=user%3Aemail"), "{to}");
        let res = b.get(&to).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FOUND, "approved at GitHub");
        let back = res.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(back.starts_with(&Self::callback(&self.host)), "{back}");
        back
    }

    /// A browser through GitHub on a new flow of `kind`: the host answers the callback
    /// with a redirect. The browser, with the cookies it was given.
    async fn through_github(&self, kind: &str) -> Client {
        let b = browser();
        let back = self.at_github(&b, kind).await;
        let res = b.get(&back).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        b
    }

    /// [`WithGitHub::through_github`] by a front end asking for JSON: the callback's
    /// answer, whether it set a session cookie, and the browser.
    async fn through_github_as_json(&self, kind: &str) -> (StatusCode, Value, bool, Client) {
        let b = browser();
        let back = self.at_github(&b, kind).await;
        let res = b.get(&back).header(ACCEPT, "application/json").send().await;
        let res = res.unwrap();
        let signed_in = res
            .cookies()
            .any(|c| c.name() == "identa_session" && !c.value().is_empty());
        let (status, body) = crate::support::body(res).await;
        (status, body, signed_in, b)
    }

    async fn identities(&self) -> Vec<Value> {
        let (status, listed) =
            send(app().get(format!("{}/admin/identities", self.host.admin))).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        listed.as_array().cloned().unwrap_or_default()
    }
}

/// GitHub through a host, over plain HTTP: the button, the authorization with PKCE, the
/// code exchange, `GET /user` and `GET /user/emails`; the account signs up with its
/// primary address (verified, as GitHub says) and signs in again to the same identity,
/// whose credential is `github:<numeric user id>`.
pub async fn github_sign_up_and_in<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let gh = WithGitHub::start(start, GitHubEmails::Verified).await;
    let b = gh.through_github("registration").await;
    let made = &the_only_identity(&gh.host, &b).await;
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

    let b = gh.through_github("login").await;
    assert_signed_in_with_provider_as(&gh.host, &b, made).await;
}

/// GitHub names the account's primary address but has not verified it. A sign-up stores
/// it unverified, with the provider account, and offers its verification as a password
/// sign-up does (a verification flow in `continue_with`, a code mailed; the code verifies
/// it). And such a provider account is not offered to link to an existing identity with
/// that address (no 1010016): under the hosts' enumeration-safe registration the answer,
/// in a registration or a login flow, is the one a new address gets, nothing is made or
/// linked, and the address's owner is mailed `registration_attempted`.
pub async fn github_unverified_primary<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let email = "octo@example.com";
    let gh = WithGitHub::start(&start, GitHubEmails::PrimaryUnverified).await;
    let (status, new, signed_in, b) = gh.through_github_as_json("registration").await;
    assert_eq!(status, StatusCode::OK, "{new}");
    assert!(!signed_in, "registration signs no one in");
    assert_eq!(
        new["continue_with"][0]["action"], "show_verification_ui",
        "{new}"
    );
    let made = gh.identities().await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["traits"]["email"], email);
    assert_eq!(
        made[0]["verifiable_addresses"][0]["verified"], false,
        "GitHub did not vouch for it"
    );
    assert_eq!(
        made[0]["credentials"]["oidc"]["identifiers"],
        serde_json::json!(["github:4242"])
    );
    // As for a password sign-up: the same answer's shape, and the code mailed verifies it.
    let (status, by_password) = api_sign_up(&gh.host, "ada@example.com").await;
    assert_eq!(status, StatusCode::OK, "{by_password}");
    assert_eq!(
        by_password["continue_with"][0]["action"],
        new["continue_with"][0]["action"]
    );
    let verification = &new["continue_with"][0]["flow"];
    let (status, flow) = send(
        b.get(format!(
            "{}/self-service/verification/flows?id={}",
            gh.host.public,
            verification["id"].as_str().unwrap()
        ))
        .header(ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(flow["state"], "sent_email", "a code is on its way");
    api_verify(&gh.host, email).await;
    let made = gh.identities().await;
    let octo = made.iter().find(|i| i["traits"]["email"] == email).unwrap();
    assert_eq!(octo["verifiable_addresses"][0]["verified"], true);

    // The address has an account: GitHub's unvouched answer is not offered to link.
    let gh = WithGitHub::start(&start, GitHubEmails::PrimaryUnverified).await;
    api_register(&gh.host, email).await;
    for kind in ["registration", "login"] {
        let (status, answer, signed_in, _) = gh.through_github_as_json(kind).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {answer}");
        assert!(!signed_in, "{kind}");
        assert!(!message_ids(&answer).contains(&1_010_016), "{answer}");
        assert_eq!(
            shape(&answer),
            shape(&new),
            "{kind}: looks like a new address"
        );
    }
    let all = gh.identities().await;
    assert_eq!(all.len(), 1, "nothing made: {all:?}");
    assert_eq!(all[0]["credentials"]["oidc"], Value::Null, "nothing linked");
    let (status, listed) =
        send(app().get(format!("{}/admin/courier/messages", gh.host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let attempted = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == email && m["template_type"] == "registration_attempted")
        .count();
    assert_eq!(attempted, 2, "the owner is told of each attempt: {listed}");
}

/// GitHub names no address the sign-up can use — `/user/emails` lists none, or answers
/// 404 because the token was granted without the `user:email` scope: the sign-up is
/// refused with a message on the flow (4000001) that says what to do, not a 500, and
/// nothing is made. A browser is sent back to the flow's page.
pub async fn github_without_addresses<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    for (emails, says) in [
        (
            GitHubEmails::None,
            "github did not share an email address; allow the `email` scope, or configure a claims mapper",
        ),
        (
            GitHubEmails::ScopeMissing,
            "access was granted without the `user:email` scope; ask for that scope in the provider's configuration, then sign in again",
        ),
    ] {
        let gh = WithGitHub::start(&start, emails).await;
        let (status, answer, signed_in, _) = gh.through_github_as_json("registration").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{emails:?}: {answer}");
        assert!(!signed_in);
        assert_eq!(message_ids(&answer), [4_000_001], "{emails:?}: {answer}");
        let text = answer["ui"]["messages"][0]["text"].as_str().unwrap();
        assert!(text.contains(says), "{emails:?}: {text}");
        assert!(gh.identities().await.is_empty(), "nothing made");

        let b = browser();
        let back = gh.at_github(&b, "login").await;
        let res = b.get(&back).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{emails:?}");
        let to = res.headers()[LOCATION].to_str().unwrap();
        assert!(to.contains("/ui/login?flow="), "{emails:?}: {to}");
    }
}
