//! Throttling as a client meets it, with the hosts' default limits: an API client gets 429
//! in Kratos's error shape with `Retry-After`; a browser is sent back to its flow, whose
//! page says why.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, RETRY_AFTER};
use serde_json::json;

use crate::Host;
use crate::support::{Flow, PASSWORD, api_login, app, body, browser, node_value, send};

/// Five wrong passwords for one identifier from one address, then a sixth attempt.
pub async fn throttled_logins(host: &Host) {
    for _ in 0..5 {
        let (status, flow) = api_login(host, "nobody@example.com", "a wrong guess").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{flow}");
    }
    let (_, flow) = Flow::Login.start(host, None).await;
    let res = app()
        .post(Flow::Login.submit_url(host, &flow))
        .json(&json!({
            "method": "password",
            "identifier": "nobody@example.com",
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    let (_, err) = body(res).await;
    assert_eq!(err["error"]["id"], "too_many_requests", "{err}");
    assert_eq!(err["error"]["code"], 429);

    // A browser (same address, another identifier): back to the flow, which says why.
    let b = browser();
    let res = b
        .get(format!("{}/self-service/login/browser", host.public))
        .send()
        .await
        .unwrap();
    let page = res.headers()[LOCATION].to_str().unwrap().to_owned();
    let flow_id = page.rsplit("flow=").next().unwrap().to_owned();
    let flow_url = format!("{}/self-service/login/flows?id={flow_id}", host.public);
    let (_, flow) = send(b.get(&flow_url).header(ACCEPT, "application/json")).await;
    let csrf = node_value(&flow, "csrf_token");
    let form = [
        ("method", "password"),
        ("identifier", "someone@example.com"),
        ("password", "a wrong guess"),
        ("csrf_token", csrf.as_str()),
    ];
    let submit = format!("{}/self-service/login?flow={flow_id}", host.public);
    for _ in 0..6 {
        let res = b.post(&submit).form(&form).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[LOCATION].to_str().unwrap(), page);
    }
    let (_, shown) = send(b.get(&flow_url).header(ACCEPT, "application/json")).await;
    assert_eq!(shown["ui"]["messages"][0]["id"], 4_900_001, "{shown}");
    let (status, html) = body(b.get(&page).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.as_str().unwrap().contains("Too many attempts"),
        "{html}"
    );
}
