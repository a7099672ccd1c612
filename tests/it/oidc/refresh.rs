//! Re-authentication (`refresh=true`) with a provider: only the providers the signed-in
//! identity has linked are offered, the provider is asked to sign the user in again
//! (`prompt=login`, `max_age=0`), its ID token must say so (`auth_time` no earlier than
//! the flow), and only that identity's own provider account refreshes its session
//! in place. Nothing is ever registered or linked on a refresh flow, and another
//! identity's provider account is refused as the password refresh refuses it.

use super::*;

impl Browser {
    /// Starts a re-authentication (a browser login flow with `refresh=true`).
    async fn start_refresh(&mut self) -> Value {
        let res = self
            .identa(
                "GET",
                "/self-service/login/browser?refresh=true",
                None,
                true,
            )
            .await;
        assert_eq!(res.status(), 200, "{}", body_text(&res));
        let flow = json_of(&res);
        assert_eq!(flow["refresh"], true, "{flow}");
        flow
    }

    /// Re-authenticates through the provider as `login` (asking for JSON): the
    /// callback's answer.
    async fn refresh_through_provider(&mut self, login: &str) -> http::Response<Bytes> {
        let flow = self.start_refresh().await;
        let to = self.press_provider("login", &flow).await;
        let callback = self.sign_in_at_provider_as_another(&to, login).await;
        self.identa("GET", &callback, None, true).await
    }

    /// Signs in at the provider as `login`, where the browser is signed in as another
    /// account (the provider first ends that session: its auto-submitting form is
    /// posted): the callback URL the provider sends the browser back to.
    async fn sign_in_at_provider_as_another(&self, authorization_url: &str, login: &str) -> String {
        let mut res = self.web.get(authorization_url).send().await.unwrap();
        for _ in 0..8 {
            if res.status().is_redirection() {
                return res.headers()["location"].to_str().unwrap().to_owned();
            }
            let page = res.url().clone();
            let html = res.text().await.unwrap();
            res = if html.contains(r#"name="prompt" value="login""#) {
                let form = [("prompt", "login"), ("login", login), ("password", "any")];
                self.web.post(page).form(&form).send().await.unwrap()
            } else if html.contains(r#"name="prompt" value="consent""#) {
                self.web
                    .post(page)
                    .form(&[("prompt", "consent")])
                    .send()
                    .await
                    .unwrap()
            } else if html.contains("/session/end/confirm") {
                let end = super::form_post::form_post_of(&html);
                self.web
                    .post(&end.action)
                    .form(&end.fields)
                    .send()
                    .await
                    .unwrap()
            } else {
                panic!("an unexpected page at the provider ({page}): {html}");
            };
        }
        panic!("the provider never sent the browser back");
    }

    /// This browser's session: its id and `authenticated_at`.
    async fn session_and_time(&mut self) -> (Value, Value) {
        let me = self.whoami().await;
        (me["id"].clone(), me["authenticated_at"].clone())
    }
}

/// The `provider` buttons of `flow`: their values.
fn provider_buttons(flow: &Value) -> Vec<String> {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["group"] == "oidc" && n["attributes"]["name"] == "provider")
        .map(|n| n["attributes"]["value"].as_str().unwrap().to_owned())
        .collect()
}

/// A refresh flow offers the providers the identity has linked, and none to an identity
/// with none (Kratos's `PopulateLoginMethodFirstFactorRefresh`), while a sign-in flow
/// offers every configured one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_refresh_offers_only_the_providers_the_identity_has_linked() {
    let (_env, _provider, identa) = with_provider().await;
    register_with_password(&identa, "pat@example.com").await;
    let mut pat = Browser::new(&identa);
    assert_eq!(provider_buttons(&pat.start_flow("login").await), [PROVIDER]);
    pat.sign_in_with_password("pat@example.com").await;
    let flow = pat.start_refresh().await;
    assert!(provider_buttons(&flow).is_empty(), "{flow}");
    node(&flow, "identifier"); // the password is offered (`node` fails without it)

    let mut rita = Browser::new(&identa);
    rita.provider_sign_up("rita").await;
    let flow = rita.start_refresh().await;
    assert_eq!(provider_buttons(&flow), [PROVIDER]);
    assert_eq!(node(&flow, "provider")["meta"]["label"]["id"], 1_010_002);
}

/// The provider is asked to sign the user in again (`prompt=login`: its login page is
/// shown although it has a session with the browser), and the callback refreshes the
/// same session: `authenticated_at` moves to now, `oidc` is added to its methods, no new
/// session, no new identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_refresh_through_the_provider_refreshes_the_same_session() {
    let (env, _provider, identa) = with_provider().await;
    let mut rita = Browser::new(&identa);
    let id = rita.provider_sign_up("rita").await;
    let (session, signed_in_at) = rita.session_and_time().await;
    // Within the provider's `auth_time` skew: the sign-in there is after the flow.
    env.clock.advance(chrono::Duration::seconds(30));

    let flow = rita.start_refresh().await;
    let to = rita.press_provider("login", &flow).await;
    let query: BTreeMap<String, String> = reqwest::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        query.get("prompt").map(String::as_str),
        Some("login"),
        "{to}"
    );
    assert_eq!(
        query.get("max_age").map(String::as_str),
        Some("0"),
        "the provider must sign the user in afresh and say when: {to}"
    );
    let page = rita.web.get(&to).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"name="prompt" value="login""#),
        "the provider asks for the login again: {html}"
    );
    let res = rita.through_provider(&to, "rita").await;
    assert_eq!(res.status(), 200, "{}", body_text(&res));
    assert!(
        json_of(&res).get("session_token").is_none(),
        "no new session"
    );

    let me = rita.whoami().await;
    assert_eq!(me["id"], session, "the same session");
    assert_eq!(me["identity"]["id"], id.as_str());
    assert_ne!(me["authenticated_at"], signed_in_at, "refreshed");
    let methods: Vec<&str> = me["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["oidc", "oidc"]);
    assert_eq!(identity_count(&identa).await, 1);

    // A sign-in flow is not offered the provider as a new sign-in meanwhile.
    let res = rita
        .identa("GET", "/self-service/login/browser", None, true)
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "session_already_available");
}

/// A provider account linked to nobody does not re-authenticate anyone, and nothing is
/// made for it: the flow says so (4000001), the session is not refreshed, no identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_refresh_with_an_unlinked_provider_account_creates_nothing() {
    let (env, _provider, identa) = with_provider().await;
    let mut rita = Browser::new(&identa);
    let id = rita.provider_sign_up("rita").await;
    let before = rita.session_and_time().await;
    // Within the provider's `auth_time` skew: the sign-in there is after the flow.
    env.clock.advance(chrono::Duration::seconds(30));

    let res = rita.refresh_through_provider("stranger").await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["refresh"], true);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("No account here signs in"), "{text}");

    assert_eq!(rita.session_and_time().await, before, "not refreshed");
    assert_eq!(rita.whoami().await["identity"]["id"], id.as_str());
    assert_eq!(identity_count(&identa).await, 1, "nothing registered");
    assert_eq!(
        linked(&identa, id.parse().unwrap()).await,
        [format!("{PROVIDER}:rita")],
        "nothing linked"
    );
}

/// Another identity's provider account is refused as the password refresh refuses
/// another identity (403 `security_identity_mismatch`): the session is not refreshed
/// and stays the same identity's. (Kratos would give the other identity a new session.)
/// The spent state is not accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_refresh_as_another_identity_is_refused_and_the_session_unchanged() {
    let (env, _provider, identa) = with_provider().await;
    let mut sam = Browser::new(&identa);
    sam.provider_sign_up("sam").await;
    let mut rita = Browser::new(&identa);
    let id = rita.provider_sign_up("rita").await;
    let before = rita.session_and_time().await;
    // Within the provider's `auth_time` skew: the sign-in there is after the flow.
    env.clock.advance(chrono::Duration::seconds(30));

    let flow = rita.start_refresh().await;
    let to = rita.press_provider("login", &flow).await;
    let callback = rita.sign_in_at_provider_as_another(&to, "sam").await;
    let res = rita.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 403, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "security_identity_mismatch");

    assert_eq!(rita.session_and_time().await, before, "not refreshed");
    assert_eq!(rita.whoami().await["identity"]["id"], id.as_str());
    assert_eq!(identity_count(&identa).await, 2);

    let res = rita.identa("GET", &callback, None, true).await;
    assert_eq!(res.status(), 400, "a replay: {}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "bad_request");
    assert_eq!(rita.session_and_time().await, before, "not refreshed");
}

/// A provider sign-in older than the refresh flow does not re-authenticate: here identa's
/// clock is 10 minutes ahead of the provider's, so the ID token's `auth_time` (the
/// provider's "now") predates the flow by more than the 60 s skew, as an answer from an
/// earlier sign-in would. The flow says the provider did not confirm a fresh sign-in
/// (4000001) and the session is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_refresh_whose_provider_sign_in_predates_the_flow_is_refused() {
    let (env, _provider, identa) = with_provider().await;
    let mut rita = Browser::new(&identa);
    rita.provider_sign_up("rita").await;
    let before = rita.session_and_time().await;
    env.clock.advance(chrono::Duration::minutes(10));

    let res = rita.refresh_through_provider("rita").await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(shown["refresh"], true);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(text.contains("did not confirm a fresh sign-in"), "{text}");
    assert_eq!(rita.session_and_time().await, before, "not refreshed");
}

/// GitHub has no ID token, so it cannot prove a fresh sign-in: pressing it on a refresh
/// flow is refused before the browser is sent there (4000001), and the session is
/// unchanged. (Kratos offers and takes it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_refresh_with_github_is_refused_at_start() {
    let (env, provider, _) = with_provider().await;
    let generic = OidcProvider::new(PROVIDER, &provider.issuer, "identa")
        .client_secret("identa-secret")
        .label("Test ID");
    let github = OidcProvider::github_at(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        "gh-client",
        "gh-secret",
    );
    let identa = env
        .another_engine(env.identa.config().clone())
        .oidc(OidcProviders::new().provider(generic).provider(github))
        .build()
        .unwrap();
    let mut rita = Browser::new(&identa);
    rita.provider_sign_up("rita").await;
    let before = rita.session_and_time().await;

    let flow = rita.start_refresh().await;
    assert_eq!(provider_buttons(&flow), [PROVIDER], "{flow}");
    let res = rita
        .identa(
            "POST",
            &format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()),
            Some(&[("csrf_token", &csrf_token(&flow)), ("provider", "github")]),
            true,
        )
        .await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    let shown = json_of(&res);
    assert_eq!(message_ids(&shown), vec![4_000_001]);
    let text = shown["ui"]["messages"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("cannot confirm that you signed in again"),
        "{text}"
    );
    assert_eq!(rita.session_and_time().await, before, "not refreshed");
}
