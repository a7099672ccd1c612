//! `response_mode=form_post`: the provider POSTs its answer to the callback from its own
//! site, so the browser sends no `SameSite=Lax` cookie with it. The POST is turned into a
//! 303 to the same callback as a GET (Kratos's `redirectToGET`), which carries the cookie
//! and runs the usual checks.

use super::*;

/// A provider's form post: the callback it is posted to and its fields, read from the
/// auto-submitting page oidc-provider answers with.
pub(super) struct FormPost {
    pub(super) action: String,
    pub(super) fields: Vec<(String, String)>,
}

/// Undoes oidc-provider's HTML escaping of attribute values.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the attribute `name` in `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + tag.get(start..)?.find('"')?;
    tag.get(start..end).map(unescape)
}

/// Reads the auto-submitting form of a form-post page.
pub(super) fn form_post_of(html: &str) -> FormPost {
    let form = html
        .split("<form")
        .nth(1)
        .unwrap_or_else(|| panic!("no form in {html}"));
    let action = attribute(form, "action").unwrap();
    let fields = form
        .split("<input")
        .skip(1)
        .map(|tag| {
            (
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap_or_default(),
            )
        })
        .collect();
    FormPost { action, fields }
}

impl Browser {
    /// Signs in at the provider as `login`, asking it to answer with a form post: the
    /// form it has the browser post back.
    async fn sign_in_posting_back(&self, authorization_url: &str, login: &str) -> FormPost {
        let url = format!("{authorization_url}&response_mode=form_post");
        let mut res = self.web.get(url).send().await.unwrap();
        for _ in 0..5 {
            assert!(
                !res.status().is_redirection(),
                "a redirect, not a form post"
            );
            let page = res.url().clone();
            let html = res.text().await.unwrap();
            let prompt = if html.contains(r#"name="prompt" value="login""#) {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else if html.contains(r#"name="prompt" value="consent""#) {
                vec![("prompt", "consent")]
            } else if html.contains("<form method=\"post\"") {
                return form_post_of(&html);
            } else {
                panic!("an unexpected page at the provider ({page}): {html}");
            };
            res = self.web.post(page).form(&prompt).send().await.unwrap();
        }
        panic!("the provider never posted back");
    }

    /// Posts `fields` to `action` as the provider's page does: cross-site, so without
    /// identa's `SameSite=Lax` cookies.
    async fn post_cross_site(
        &self,
        action: &str,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> http::Response<Bytes> {
        let path = action.strip_prefix(&self.public_url).unwrap_or(action);
        let req = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", content_type)
            .header("origin", "http://provider.example")
            .body(body.into())
            .unwrap();
        self.api.handle(req).await
    }
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut form = reqwest::Url::parse("http://form/").unwrap();
    form.query_pairs_mut().extend_pairs(fields);
    form.query().unwrap_or_default().to_owned()
}

/// A provider account signs up through a form-post callback: the POST (no cookie) is
/// answered with a 303 to the GET callback carrying code and state, and that GET (with
/// the browser's cookies) registers and signs in as a query callback does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Node and the OpenID provider: `npm ci --prefix examples/http-suite/oidc`; run with `cargo test -- --ignored`"]
async fn a_form_post_callback_signs_up_through_a_get_with_the_cookie() {
    let (_env, _provider, identa) = with_provider().await;
    let mut browser = Browser::new(&identa);
    let flow = browser.start_flow("registration").await;
    let to = browser.press_provider("registration", &flow).await;
    let posted = browser.sign_in_posting_back(&to, "ada@example.com").await;
    assert_eq!(posted.action, identa.oidc().callback_url(PROVIDER));
    let fields: Vec<(&str, &str)> = posted
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = browser
        .post_cross_site(
            &posted.action,
            "application/x-www-form-urlencoded",
            form_body(&fields),
        )
        .await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert!(
        res.headers().get("set-cookie").is_none(),
        "the POST sets nothing"
    );
    let get = location(&res);
    let query: BTreeMap<String, String> = reqwest::Url::parse(&get)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let sent = |name: &str| {
        posted
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    };
    assert_eq!(query.get("code"), sent("code"));
    assert_eq!(query.get("state"), sent("state"));
    assert_eq!(
        query.keys().collect::<Vec<_>>(),
        ["code", "state"],
        "only the known parameters are carried (oidc-provider also posts `iss`)"
    );
    assert!(get.starts_with(&format!("{}?", identa.oidc().callback_url(PROVIDER))));

    let res = browser.identa("GET", &get, None, false).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(location(&res), HttpConfig::default().default_return_url);
    let me = browser.whoami().await;
    assert_eq!(me["identity"]["traits"]["email"], "ada@example.com");
    assert_eq!(me["authentication_methods"][0]["method"], "oidc");

    // The same GET again: its state was spent.
    let res = browser.identa("GET", &get, None, true).await;
    assert_eq!(res.status(), 400, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "bad_request");
}

/// The turned-around POST carries only `code`, `state`, `error` and `error_description`
/// (the first value of each), reads at most 16 KiB of a form and nothing else, and
/// answers only for a provider id.
#[tokio::test]
async fn a_form_post_callback_is_bounded_and_keeps_only_the_known_parameters() {
    let env = TestEnv::new(Backend::SqliteMemory).await;
    let identa = engine(&env, "http://127.0.0.1:9/never-asked", "identa");
    let browser = Browser::new(&identa);
    let action = identa.oidc().callback_url(PROVIDER);
    let form = "application/x-www-form-urlencoded";

    let body = form_body(&[
        ("state", "flow.first"),
        (
            "user",
            r#"{"name":{"firstName":"Ada"},"email":"ada@example.com"}"#,
        ),
        ("id_token", "a.b.c"),
        ("code", "the code"),
        ("state", "flow.second"),
        ("error_description", "a & b"),
    ]);
    let res = browser.post_cross_site(&action, form, body).await;
    assert_eq!(res.status(), 303, "{}", body_text(&res));
    assert_eq!(
        location(&res),
        format!("{action}?code=the+code&state=flow.first&error_description=a+%26+b")
    );

    let nothing = browser.post_cross_site(&action, form, "").await;
    assert_eq!(nothing.status(), 303);
    assert_eq!(
        location(&nothing),
        action,
        "the GET then refuses the missing state"
    );

    let large = form_body(&[("code", &"x".repeat(16 * 1024))]);
    let res = browser.post_cross_site(&action, form, large).await;
    assert_eq!(res.status(), 413, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "request_too_large");

    let res = browser
        .post_cross_site(&action, "application/json", r#"{"code":"c","state":"s"}"#)
        .await;
    assert_eq!(res.status(), 415, "{}", body_text(&res));
    assert_eq!(json_of(&res)["error"]["id"], "unsupported_media_type");

    let res = browser
        .post_cross_site(
            "/self-service/methods/oidc/callback/bad%2Fid",
            form,
            "code=c",
        )
        .await;
    assert_eq!(res.status(), 404, "{}", body_text(&res));
}
