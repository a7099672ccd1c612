//! A host behind a reverse proxy (`IDENTA_TRUSTED_PROXIES`): the suite's client plays the
//! proxy (it connects from 127.0.0.1) and the clients behind it (in `X-Forwarded-For`).
//! Trusted, each forwarded client has its own throttle counts; untrusted, the header is
//! ignored and every "client" shares the peer's.

use std::future::Future;

use identa_host::{BoxError, HostConfig, Running, TrustedProxies};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Flow, app, send};
use crate::{Host, try_start_example_host};

/// One wrong password for `nobody@example.com` through a new native login flow, the
/// submission carrying `X-Forwarded-For: forwarded_for`: its status.
async fn wrong_password(host: &Host, forwarded_for: &str) -> StatusCode {
    let (_, flow) = Flow::Login.start(host, None).await;
    let req = app()
        .post(Flow::Login.submit_url(host, &flow))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({
            "method": "password",
            "identifier": "nobody@example.com",
            "password": "a wrong guess",
        }));
    let (status, body) = send(req).await;
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::TOO_MANY_REQUESTS,
        "{status} {body}"
    );
    status
}

/// Behind a trusted proxy, two clients get separate counts (the right-most untrusted
/// address is the client, whatever the client itself put to its left), and a header that
/// is not an address falls back to the proxy's own; an untrusted peer's header is ignored.
pub async fn trusted_proxies<Fut>(start: impl Fn(HostConfig) -> Fut)
where
    Fut: Future<Output = Result<Running, BoxError>>,
{
    let host = try_start_example_host(&start, |config| {
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1, ::1").unwrap();
    })
    .await
    .expect("the host starts behind a trusted proxy");
    for _ in 0..5 {
        assert_eq!(
            wrong_password(&host, "198.51.100.1").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        wrong_password(&host, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy, claiming to be the first: its own count.
    assert_eq!(
        wrong_password(&host, "198.51.100.1, 198.51.100.2").await,
        StatusCode::BAD_REQUEST
    );
    // A header that is not an address: the proxy's own address, never a 500.
    for _ in 0..5 {
        assert_eq!(
            wrong_password(&host, "not an address").await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        wrong_password(&host, "").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(host);

    // The peer (127.0.0.1) is not a trusted proxy here: its header changes nothing.
    let host = try_start_example_host(&start, |config| {
        config.trusted_proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
    })
    .await
    .expect("the host starts");
    for i in 0..5 {
        assert_eq!(
            wrong_password(&host, &format!("198.51.100.{i}")).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        wrong_password(&host, "198.51.100.99").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
