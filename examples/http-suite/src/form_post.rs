//! A provider answering with `response_mode=form_post` (as Apple does when it shares the
//! email or name): its page posts the answer to the host's callback from the provider's
//! site, so without the host's `SameSite=Lax` cookies. The host turns that POST into a
//! 303 to the same callback as a GET, which the browser follows with its cookies.

use std::future::Future;

use identa_host::{BoxError, HostConfig, Running};
use reqwest::header::{ACCEPT, LOCATION};
use reqwest::{Client, StatusCode};

use crate::oidc::{PROVIDER, host_with_provider};
use crate::support::{app, browser, node_value, send};

/// Undoes the HTML escaping of an attribute value.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
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

/// The action and fields of the first form on a page (a provider's auto-submitting
/// form-post page).
pub(crate) fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let form = html
        .split("<form")
        .nth(1)
        .unwrap_or_else(|| panic!("no form in {html}"));
    let action = attribute(form, "action").expect("the form's action");
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
        .collect();
    (action, fields)
}

/// Signs in at the provider as `login` from `to` (the authorization URL, asking for a
/// form post), submitting its login and consent pages: the form it posts back.
async fn sign_in_posting_back(
    client: &Client,
    to: &str,
    login: &str,
) -> (String, Vec<(String, String)>) {
    let mut res = client.get(to).send().await.expect("the provider answers");
    for _ in 0..12 {
        if res.status().is_redirection() {
            let next = res.headers()[LOCATION].to_str().unwrap().to_owned();
            let next = res.url().join(&next).unwrap();
            res = client.get(next).send().await.expect("the provider answers");
            continue;
        }
        let page = res.url().clone();
        let html = res.text().await.unwrap();
        let fields = if html.contains(r#"name="prompt" value="login""#) {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else if html.contains(r#"name="prompt" value="consent""#) {
            vec![("prompt", "consent")]
        } else if html.contains("<form method=\"post\"") {
            return form_of(&html);
        } else {
            panic!("an unexpected page at the provider ({page}): {html}");
        };
        res = client
            .post(page)
            .form(&fields)
            .send()
            .await
            .expect("the provider answers");
    }
    panic!("the provider never posted back");
}

/// A provider account signs up through a host with the provider answering by form post:
/// the cross-site POST (no cookies) gets a 303 to the GET callback carrying only `code`
/// and `state`, and the browser's GET (its cookies) makes the identity.
pub async fn oidc_form_post<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let (host, _provider) = host_with_provider(start).await;
    let b = browser();
    let (status, flow) = send(
        b.get(format!("{}/self-service/registration/browser", host.public))
            .header(ACCEPT, "application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let res = b
        .post(format!(
            "{}/self-service/registration?flow={}",
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
    let email = "form-post@example.com";
    let (action, fields) =
        sign_in_posting_back(&b, &format!("{to}&response_mode=form_post"), email).await;
    let callback = format!(
        "{}/self-service/methods/oidc/callback/{PROVIDER}",
        host.public
    );
    assert_eq!(action, callback);

    // The provider's page posts cross-site: the browser sends no SameSite=Lax cookie.
    let res = app().post(&action).form(&fields).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let get = res.headers()[LOCATION].to_str().unwrap().to_owned();
    let query: Vec<(String, String)> = reqwest::Url::parse(&get)
        .expect("an absolute URL")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["code", "state"], "{get}");
    assert!(get.starts_with(&format!("{callback}?")), "{get}");

    let res = b.get(&get).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("/ui/dashboard"),
        "signed up, not sent to an error page"
    );
    let (status, listed) = send(b.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["traits"]["email"], email);
}
