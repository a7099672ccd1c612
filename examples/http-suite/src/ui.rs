//! The server-rendered UI under `/ui`, read as HTML by a client with a cookie jar.

use reqwest::header::LOCATION;
use reqwest::{Client, StatusCode};

use crate::Host;
use crate::support::{PASSWORD, api_login, browser, mailed_code, whoami};

/// The value of the first `<input … name="<name>" value="…">` in a page.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

fn form_action(html: &str) -> Option<String> {
    let needle = "<form method=\"post\" action=\"";
    let at = html.find(needle)?;
    let rest = &html[at + needle.len()..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// Follows redirects by hand (so cookies set on each hop are kept and checked).
async fn follow(b: &Client, url: &str) -> (String, StatusCode, String) {
    let mut url = url.to_owned();
    for _ in 0..5 {
        let res = b.get(&url).send().await.unwrap();
        if res.status() == StatusCode::SEE_OTHER {
            url = res.headers()[LOCATION].to_str().unwrap().to_owned();
            if url.starts_with('/') {
                let origin: String = url_origin(&url_from_res(&res));
                url = format!("{origin}{url}");
            }
            continue;
        }
        let status = res.status();
        return (url, status, res.text().await.unwrap());
    }
    panic!("too many redirects from {url}");
}

fn url_from_res(res: &reqwest::Response) -> String {
    res.url().to_string()
}

fn url_origin(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(url.len());
    url[..end].to_owned()
}

/// Fills in the form on `page` (a flow's page) with `fields` and its CSRF token, submits
/// it, and follows the redirect it answers with; returns where that led (URL, status,
/// page).
async fn submit_form(
    b: &Client,
    page: &str,
    fields: &[(&str, &str)],
) -> (String, StatusCode, String) {
    let csrf = input_value(page, "csrf_token").expect("a CSRF token in the form");
    let action = form_action(page).expect("a form");
    let mut form = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(fields);
    let res = b.post(&action).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    follow(b, res.headers()[LOCATION].to_str().unwrap()).await
}

/// Signs up through the UI's registration form, which leads to the sign-in page (the
/// example hosts' registration is enumeration-safe: it signs no one in), verifies the
/// address on the verification page with the code mailed, and signs in; returns where
/// that led (URL, status, page).
async fn sign_up(b: &Client, host: &Host, email: &str, name: &str) -> (String, StatusCode, String) {
    let (url, status, html) = follow(b, &format!("{}/ui/registration", host.public)).await;
    assert_eq!(status, StatusCode::OK, "{url}");
    assert!(url.contains("/ui/registration?flow="), "{url}");
    assert!(html.contains("name=\"traits.email\""), "{html}");
    let fields = [
        ("traits.email", email),
        ("traits.name", name),
        ("password", PASSWORD),
        ("method", "password"),
    ];
    let (url, status, html) = submit_form(b, &html, &fields).await;
    assert_eq!(status, StatusCode::OK, "{url}");
    assert!(url.contains("/ui/login?flow="), "{url}");
    assert!(html.contains("<title>Sign in · identa</title>"), "{html}");
    // Signing in waits for a verified address: verify it with the code mailed.
    let (url, status, page) = follow(b, &format!("{}/ui/verification", host.public)).await;
    assert_eq!(status, StatusCode::OK, "{url}");
    let (url, status, page) = submit_form(b, &page, &[("email", email), ("method", "code")]).await;
    assert_eq!(status, StatusCode::OK, "{url}: {page}");
    let code = mailed_code(host, email).await;
    let (url, status, _) = submit_form(b, &page, &[("code", &code), ("method", "code")]).await;
    assert_eq!(status, StatusCode::OK, "{url}");
    let (_, _, html) = follow(b, &format!("{}/ui/login", host.public)).await;
    let fields = [
        ("identifier", email),
        ("password", PASSWORD),
        ("method", "password"),
    ];
    submit_form(b, &html, &fields).await
}

/// The addresses a person types land on a page: `/`, `/ui` and `/ui/` lead a signed-out
/// browser to the sign-in page and a signed-in one to the dashboard.
pub async fn ui_home(host: &Host) {
    let b = browser();
    let homes = ["/", "/ui", "/ui/"].map(|path| format!("{}{path}", host.public));
    for home in &homes {
        let (url, status, html) = follow(&b, home).await;
        assert_eq!(status, StatusCode::OK, "{home} led to {url}: {html}");
        assert!(url.contains("/ui/login?flow="), "{home} led to {url}");
        assert!(
            html.contains("<title>Sign in · identa</title>")
                && html.contains("name=\"identifier\""),
            "{home}: {html}"
        );
    }
    let (url, status, _) = sign_up(&b, host, "home@example.com", "Hana").await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/ui/dashboard"), "{url}");
    for home in &homes {
        let (url, status, html) = follow(&b, home).await;
        assert_eq!(status, StatusCode::OK, "{home} led to {url}: {html}");
        assert!(url.ends_with("/ui/dashboard"), "{home} led to {url}");
        assert!(
            html.contains("<title>Dashboard · identa</title>") && html.contains("home@example.com"),
            "{home}: {html}"
        );
    }
}

/// The server-rendered UI: sign up through the form, see the dashboard, revoke a session,
/// and see a wrong password's message on the login page.
pub async fn ui_pages(host: &Host) {
    let b = browser();
    let (url, status, html) = sign_up(&b, host, "ui@example.com", "Uma").await;
    assert_eq!(status, StatusCode::OK);
    assert!(url.ends_with("/ui/dashboard"), "{url}");
    assert!(
        html.contains("ui@example.com") && html.contains("this session"),
        "{html}"
    );

    // Another session shows up with a revoke button that works (and needs this site's form).
    let (_, login) = api_login(host, "ui@example.com", PASSWORD).await;
    let other = login["session_token"].as_str().unwrap().to_owned();
    let (_, _, html) = follow(&b, &format!("{}/ui/dashboard", host.public)).await;
    let session_id = input_value(&html, "session_id").expect("a revoke button");
    let csrf = input_value(&html, "csrf").unwrap();
    let res = b
        .post(format!("{}/ui/sessions/revoke", host.public))
        .form(&[("csrf", "forged"), ("session_id", session_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = b
        .post(format!("{}/ui/sessions/revoke", host.public))
        .form(&[("csrf", csrf.as_str()), ("session_id", session_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = whoami(host, &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Sign out, then a wrong password shows Kratos's message on the login page.
    let logout = html
        .find("Sign out")
        .and_then(|end| {
            html[..end]
                .rfind("href=\"")
                .map(|start| html[start + 6..end - 2].replace("&amp;", "&"))
        })
        .expect("a sign-out link");
    let (url, _, _) = follow(&b, &logout).await;
    assert!(url.contains("/ui/login"), "{url}");
    let (_, status, html) = follow(&b, &format!("{}/ui/login", host.public)).await;
    assert_eq!(status, StatusCode::OK);
    let fields = [
        ("identifier", "ui@example.com"),
        ("password", "not it at all"),
        ("method", "password"),
    ];
    let (_, status, html) = submit_form(&b, &html, &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-id=\"4000006\""), "{html}");
    assert!(
        html.contains("value=\"ui@example.com\""),
        "the identifier is kept"
    );
    // Signed out, the dashboard sends the browser to sign in.
    let (url, _, _) = follow(&b, &format!("{}/ui/dashboard", host.public)).await;
    assert!(url.contains("/ui/login?flow="), "{url}");
}
