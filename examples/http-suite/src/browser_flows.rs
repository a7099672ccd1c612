//! Browser flows over plain HTTP: redirects to the UI, cookies, CSRF, form posts, logout.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE};

use crate::Host;
use crate::support::{Flow, PASSWORD, api_verify, app, browser, node_value, send};

/// A browser: redirects to the UI, cookies, CSRF, form posts, logout.
pub async fn browser_flows(host: &Host) {
    let b = browser();
    let res = b
        .get(format!("{}/self-service/registration/browser", host.public))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("/registration?flow="), "{location}");
    assert!(
        res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().contains("HttpOnly"))
    );
    let flow_id = location.rsplit("flow=").next().unwrap().to_owned();
    let flow_url = format!(
        "{}/self-service/registration/flows?id={flow_id}",
        host.public
    );
    let (status, flow) = send(b.get(&flow_url).header(ACCEPT, "application/json")).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    assert_eq!(flow["type"], "browser");
    let csrf = node_value(&flow, "csrf_token");
    // Another browser (no cookie) cannot read or submit it.
    let (status, _) = send(app().get(&flow_url)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = [
        ("method", "password"),
        ("traits.email", "browser@example.com"),
        ("traits.name", "Bea"),
        ("password", PASSWORD),
    ];
    let submit = format!("{}/self-service/registration?flow={flow_id}", host.public);
    let (status, err) = send(
        b.post(&submit)
            .header(ACCEPT, "application/json")
            .form(&form),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["id"], "security_csrf_violation");
    // The form post with the token: 303 to the default return URL, and no session (the
    // example hosts' registration is enumeration-safe: the user signs in next).
    let mut with_token = form.to_vec();
    with_token.push(("csrf_token", &csrf));
    let res = b.post(&submit).form(&with_token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("/dashboard")
    );
    assert!(
        !res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("identa_session=")),
        "no session after registration"
    );
    let whoami = format!("{}/sessions/whoami", host.public);
    let (status, _) = send(b.get(&whoami)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Sign-in waits for a verified address.
    api_verify(host, "browser@example.com").await;
    let login = format!("{}/self-service/login/browser", host.public);
    let res = sign_in(&b, host, &login).await;
    let session_cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("identa_session="))
        .expect("a session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    let (status, me) = send(b.get(&whoami)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["identity"]["traits"]["name"], "Bea");
    // The host's own protected route sees the same session.
    let app_me = format!("{}/app/me", host.public);
    let (status, mine) = send(b.get(&app_me)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["email"], "browser@example.com");
    let (status, _) = send(app().get(&app_me)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Logged in: a new login flow goes to the default return URL instead.
    let res = b.get(&login).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()[LOCATION]
            .to_str()
            .unwrap()
            .ends_with("/dashboard")
    );
    // Logout through the logout URL.
    let (status, logout) =
        send(b.get(format!("{}/self-service/logout/browser", host.public))).await;
    assert_eq!(status, StatusCode::OK, "{logout}");
    let url = logout["logout_url"].as_str().unwrap();
    assert!(url.contains("/self-service/logout?token="));
    let res = b.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = send(b.get(&whoami)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A login through the browser form again.
    sign_in(&b, host, &login).await;
    let (status, _) = send(b.get(&whoami)).await;
    assert_eq!(status, StatusCode::OK);
}

/// A login through the browser form as `browser@example.com`: its 303 answer.
async fn sign_in(b: &reqwest::Client, host: &Host, login: &str) -> reqwest::Response {
    let (status, flow) = send(b.get(login).header(ACCEPT, "application/json")).await;
    assert_eq!(status, StatusCode::OK, "{flow}");
    let csrf = node_value(&flow, "csrf_token");
    let res = b
        .post(Flow::Login.submit_url(host, &flow))
        .form(&[
            ("method", "password"),
            ("identifier", "browser@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    res
}
