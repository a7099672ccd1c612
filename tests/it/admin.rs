//! The admin API is for servers, not browsers: requests a web page can make (cross-site
//! marks, forms, untyped bodies) are refused before any route runs, and with tokens
//! configured only a caller presenting one gets in.

use std::net::IpAddr;

use bytes::Bytes;
use http::StatusCode;
use identa::http::{AdminApi, AdminAuth, AdminToken, ClientIp, HttpConfig};
use identa::store::PageRequest;
use serde_json::{Value, json};

use crate::common::{TestEnv, register};
use crate::on_every_backend;

/// The admin API's own address, as a server calling it names it in `Host`.
const ADMIN_HOST: &str = "127.0.0.1:4434";

const TOKEN_OLD: &str = "old-admin-token-0123456789abcdef0123456789";
const TOKEN_NEW: &str = "new-admin-token-0123456789abcdef0123456789";

pub(crate) fn admin(env: &TestEnv) -> AdminApi {
    AdminApi::new(env.identa.clone(), HttpConfig::default())
}

/// A request as a server on this machine sends it: `Host` the admin address, from a
/// loopback client (what the hosts put in `ClientIp`).
pub(crate) fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> http::Request<Bytes> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", ADMIN_HOST);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let mut req = req.body(Bytes::from(body.to_owned())).unwrap();
    req.extensions_mut()
        .insert(ClientIp(IpAddr::from([127, 0, 0, 1])));
    req
}

/// A JSON POST creating `email`, with `headers` added.
fn create(email: &str, headers: &[(&str, &str)]) -> http::Request<Bytes> {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let body = json!({ "traits": { "email": email } }).to_string();
    request("POST", "/admin/identities", &all, &body)
}

pub(crate) async fn answer(api: &AdminApi, req: http::Request<Bytes>) -> (StatusCode, Value) {
    let res = api.handle(req).await;
    let body = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
    (res.status(), body)
}

pub(crate) fn error_id(body: &Value) -> &str {
    body["error"]["id"].as_str().unwrap_or_default()
}

async fn identity_count(env: &TestEnv) -> usize {
    env.identa
        .list_identities(PageRequest::default())
        .await
        .unwrap()
        .items
        .len()
}

async fn a_web_page_cannot_create_identities(env: TestEnv) {
    let api = admin(&env);
    // A page's fetch of JSON carries its Origin and Sec-Fetch-Site.
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        // DNS rebinding: the page's own origin now points at the admin API.
        vec![("sec-fetch-site", "same-origin")],
        vec![
            ("origin", "http://localhost:4433"),
            ("sec-fetch-site", "same-site"),
        ],
    ] {
        let (status, body) = answer(&api, create("page@example.com", &headers)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {body}");
        assert_eq!(error_id(&body), "cross_site_request", "{body}");
        assert_eq!(body["error"]["code"], 403);
    }
    // A form post, with and without the browser's marks.
    let form = "traits.email=form%40example.com";
    let (status, body) = answer(
        &api,
        request(
            "POST",
            "/admin/identities",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            form,
        ),
    )
    .await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::FORBIDDEN, "cross_site_request")
    );
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        None,
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        let body = if content_type == Some("application/x-www-form-urlencoded") {
            form.to_owned()
        } else {
            json!({ "traits": { "email": "untyped@example.com" } }).to_string()
        };
        let (status, answer_body) =
            answer(&api, request("POST", "/admin/identities", &headers, &body)).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {answer_body}"
        );
        assert_eq!(error_id(&answer_body), "unsupported_media_type");
        assert!(
            answer_body["error"]["reason"]
                .as_str()
                .unwrap()
                .contains("Content-Type: application/json"),
            "{answer_body}"
        );
    }
    // An empty form still declares its type.
    let (status, _) = answer(
        &api,
        request(
            "POST",
            "/admin/recovery/code",
            &[("content-type", "application/x-www-form-urlencoded")],
            "",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(identity_count(&env).await, 0, "nothing was created");

    // A server's JSON (a charset is fine, and so is the admin API's own origin or a typed
    // URL's `Sec-Fetch-Site: none`) goes through.
    let (status, body) = answer(
        &api,
        request(
            "POST",
            "/admin/identities",
            &[("content-type", "Application/JSON; charset=utf-8")],
            &json!({ "traits": { "email": "server@example.com" } }).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let own_origin = format!("http://{ADMIN_HOST}");
    let (status, body) = answer(
        &api,
        create(
            "own-origin@example.com",
            &[("origin", &own_origin), ("sec-fetch-site", "none")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Over HTTP/2 the authority is in the URI, not in `Host`.
    let h2 = http::Request::post(format!("http://{ADMIN_HOST}/admin/identities"))
        .version(http::Version::HTTP_2)
        .header("content-type", "application/json")
        .header("origin", &own_origin)
        .body(Bytes::from(
            json!({ "traits": { "email": "h2@example.com" } }).to_string(),
        ))
        .unwrap();
    let mut h2 = h2;
    h2.extensions_mut()
        .insert(ClientIp(IpAddr::from([127, 0, 0, 1])));
    let (status, h2_body) = answer(&api, h2).await;
    assert_eq!(status, StatusCode::CREATED, "{h2_body}");
    assert_eq!(identity_count(&env).await, 3);
    // Body-less requests need no content type.
    let id = body["id"].as_str().unwrap();
    let (status, _) = answer(
        &api,
        request("DELETE", &format!("/admin/identities/{id}"), &[], ""),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
on_every_backend!(a_web_page_cannot_create_identities);

async fn a_web_page_cannot_read_the_outbox(env: TestEnv) {
    register(&env, "mail@example.com").await;
    let api = admin(&env);
    let messages = "/admin/courier/messages";
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.example")],
    ] {
        let (status, body) = answer(&api, request("GET", messages, &headers, "")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {body}");
        assert_eq!(error_id(&body), "cross_site_request");
        assert!(!body.to_string().contains("mail@example.com"));
    }
    // A person typing the URL (`none`) or a server (no marks) reads it.
    for headers in [vec![("sec-fetch-site", "none")], vec![]] {
        let (status, body) = answer(&api, request("GET", messages, &headers, "")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body[0]["recipient"], "mail@example.com");
    }
}
on_every_backend!(a_web_page_cannot_read_the_outbox);

async fn admin_tokens_are_required_and_rotate(env: TestEnv) {
    let tokens = vec![
        AdminToken::new(TOKEN_OLD).unwrap(),
        AdminToken::new(TOKEN_NEW).unwrap(),
    ];
    let api = admin(&env).with_auth(AdminAuth::Tokens(tokens));
    let list = "/admin/identities";
    let (status, body) = answer(&api, request("GET", list, &[], "")).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "{body}"
    );
    let res = api.handle(request("GET", list, &[], "")).await;
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let wrong = format!("Bearer {TOKEN_OLD}x");
    for auth in [wrong.as_str(), "Basic dXNlcjpwYXNz", "Bearer "] {
        let res = api
            .handle(request("GET", list, &[("authorization", auth)], ""))
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{auth}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
    // A wrong token creates nothing.
    let (status, _) = answer(
        &api,
        create("nobody@example.com", &[("authorization", &wrong)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(identity_count(&env).await, 0);
    // Both tokens work while they rotate; the scheme is case-insensitive.
    for auth in [format!("Bearer {TOKEN_OLD}"), format!("bearer {TOKEN_NEW}")] {
        let (status, body) =
            answer(&api, request("GET", list, &[("authorization", &auth)], "")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let auth = format!("Bearer {TOKEN_NEW}");
    let (status, _) = answer(&api, create("ok@example.com", &[("authorization", &auth)])).await;
    assert_eq!(status, StatusCode::CREATED);
    // A token does not let a web page in.
    let (status, _) = answer(
        &api,
        create(
            "page@example.com",
            &[("authorization", &auth), ("sec-fetch-site", "cross-site")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Health probes carry no token.
    let (status, _) = answer(&api, request("GET", "/health/ready", &[], "")).await;
    assert_eq!(status, StatusCode::OK);
    // Tokens answer any address.
    let mut remote = request("GET", list, &[("authorization", &auth)], "");
    remote
        .extensions_mut()
        .insert(ClientIp("203.0.113.7".parse::<IpAddr>().unwrap()));
    assert_eq!(api.handle(remote).await.status(), StatusCode::OK);
}
on_every_backend!(admin_tokens_are_required_and_rotate);

async fn without_tokens_only_this_machine_gets_in(env: TestEnv) {
    let api = admin(&env);
    let from = |ip: &str| {
        let mut req = request("GET", "/admin/identities", &[], "");
        req.extensions_mut()
            .insert(ClientIp(ip.parse::<IpAddr>().unwrap()));
        req
    };
    let (status, body) = answer(&api, from("10.0.0.5")).await;
    assert_loopback_only(status, &body, "admin tokens");
    for ip in ["127.0.0.1", "::1"] {
        let (status, _) = answer(&api, from(ip)).await;
        assert_eq!(status, StatusCode::OK, "{ip}");
    }
    // A host adapter that forgot `ClientIp` gets no answer: nothing says the caller is
    // on this machine.
    let mut unknown = request("GET", "/admin/identities", &[], "");
    unknown.extensions_mut().remove::<ClientIp>();
    let (status, body) = answer(&api, unknown).await;
    assert_loopback_only(status, &body, "ClientIp");
}

/// The token-less admin API's refusal, its reason naming `mentions`.
fn assert_loopback_only(status: StatusCode, body: &Value, mentions: &str) {
    assert_eq!(
        (status, error_id(body)),
        (StatusCode::FORBIDDEN, "admin_loopback_only"),
        "{body}"
    );
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(mentions), "{reason}");
}
on_every_backend!(without_tokens_only_this_machine_gets_in);

/// DNS rebinding: a page on `evil.example`, re-pointed at 127.0.0.1, reaches the admin
/// port from loopback, but its requests name `evil.example` in `Host`. Older browsers send
/// no `Origin` or `Sec-Fetch-Site` on such same-origin requests, so `Host` decides.
async fn a_rebound_domain_cannot_reach_a_loopback_admin_api(env: TestEnv) {
    let api = admin(&env);
    for host in [
        "evil.example",
        "evil.example:4434",
        "localhost.evil.example",
    ] {
        let mut req = request("GET", "/admin/courier/messages", &[], "");
        req.headers_mut()
            .insert("host", http::HeaderValue::from_str(host).unwrap());
        let (status, body) = answer(&api, req).await;
        assert_loopback_only(status, &body, "not as an IP address or localhost");
    }
    for host in [
        "127.0.0.1:4434",
        "localhost:4434",
        "LOCALHOST",
        "[::1]:4434",
    ] {
        let mut req = request("GET", "/admin/courier/messages", &[], "");
        req.headers_mut()
            .insert("host", http::HeaderValue::from_str(host).unwrap());
        let (status, body) = answer(&api, req).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
}
on_every_backend!(a_rebound_domain_cannot_reach_a_loopback_admin_api);

/// Metadata over the library's limit is refused through every admin write with a 400
/// that names the field and the limit (the admin body limit, 8 MiB, would let it in), and
/// nothing changes.
async fn admin_writes_refuse_oversized_metadata(env: TestEnv) {
    use identa::identity::MAX_METADATA_BYTES;
    let api = admin(&env);
    let json_body = [("content-type", "application/json")];
    let over = json!({ "blob": "x".repeat(MAX_METADATA_BYTES) });
    let assert_refused = |status: StatusCode, body: &Value, field: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_id(body), "bad_request", "{body}");
        let reason = body["error"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(field) && reason.contains(&format!("at most {MAX_METADATA_BYTES}")),
            "{body}"
        );
    };

    let doc = json!({ "traits": { "email": "ada@example.com" }, "metadata_public": over });
    let post = request("POST", "/admin/identities", &json_body, &doc.to_string());
    let (status, body) = answer(&api, post).await;
    assert_refused(status, &body, "metadata_public");
    let batch = json!({ "identities": [{ "create": {
        "traits": { "email": "ada@example.com" }, "metadata_admin": over } }] });
    let patch = request("PATCH", "/admin/identities", &json_body, &batch.to_string());
    let (status, body) = answer(&api, patch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no item created: {body}");
    let item = &body["identities"][0];
    assert_eq!(item["action"], "error", "{body}");
    assert_eq!(item["error"]["code"], 400, "{body}");
    let reason = item["error"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("metadata_admin"), "{body}");
    assert_eq!(identity_count(&env).await, 0);

    let (status, ada) = answer(&api, create("ada@example.com", &[])).await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    let path = format!("/admin/identities/{}", ada["id"].as_str().unwrap());
    let put = json!({ "schema_id": "default", "traits": { "email": "ada@example.com" },
        "state": "inactive", "metadata_admin": over });
    let (status, body) = answer(&api, request("PUT", &path, &json_body, &put.to_string())).await;
    assert_refused(status, &body, "metadata_admin");
    let patch = json!([{ "op": "add", "path": "/metadata_public", "value": over }]);
    let (status, body) = answer(
        &api,
        request("PATCH", &path, &json_body, &patch.to_string()),
    )
    .await;
    assert_refused(status, &body, "metadata_public");
    let (status, now) = answer(&api, request("GET", &path, &[], "")).await;
    assert_eq!((status, &now), (StatusCode::OK, &ada));
}

on_every_backend!(admin_writes_refuse_oversized_metadata);
