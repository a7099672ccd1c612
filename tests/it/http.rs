//! The HTTP layer driven in-process with an injected clock: the answers that need time to
//! pass (expired flows, stale sign-ins) and browser error pages.

use bytes::Bytes;
use chrono::Duration;
use identa::courier::TemplateKind;
use identa::http::{HttpConfig, PublicApi};
use identa::session::SessionToken;
use serde_json::{Value, json};

use crate::common::mail::code_sent_to;
use crate::common::{PASSWORD, TestEnv, enrol_totp};
use crate::on_every_backend;

fn get(path: &str) -> http::Request<Bytes> {
    http::Request::get(path)
        .header("accept", "application/json")
        .body(Bytes::new())
        .unwrap()
}

/// A GET that presents a session token, as an API client sends one.
fn get_with_token(path: &str, token: &str) -> http::Request<Bytes> {
    http::Request::get(path)
        .header("x-session-token", token)
        .body(Bytes::new())
        .unwrap()
}

/// Where a form for `flow` (a flow's JSON) posts: `path?flow=<id>`.
fn flow_url(path: &str, flow: &Value) -> String {
    format!("{path}?flow={}", flow["id"].as_str().unwrap())
}

/// Signs `email` up with [`PASSWORD`] through the API registration endpoints: the session
/// token the answer carries.
async fn sign_up(api: &PublicApi, email: &str) -> String {
    let flow = json_of(&api.handle(get("/self-service/registration/api")).await);
    let done = json_of(
        &api.handle(post(
            &flow_url("/self-service/registration", &flow),
            json!({ "method": "password", "traits": { "email": email }, "password": PASSWORD }),
            None,
        ))
        .await,
    );
    done["session_token"].as_str().unwrap().to_owned()
}

fn post(path: &str, body: Value, token: Option<&str>) -> http::Request<Bytes> {
    let mut req = http::Request::post(path)
        .header("content-type", "application/json")
        .header("accept", "application/json");
    if let Some(token) = token {
        req = req.header("x-session-token", token);
    }
    req.body(Bytes::from(body.to_string())).unwrap()
}

fn json_of(res: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(res.body()).unwrap()
}

async fn expired_flows_answer_410_with_a_fresh_flow(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let flow = json_of(&api.handle(get("/self-service/login/api")).await);
    env.clock.advance(Duration::minutes(61));
    let res = api
        .handle(post(
            &flow_url("/self-service/login", &flow),
            json!({ "method": "password", "identifier": "a@example.com", "password": "whatever" }),
            None,
        ))
        .await;
    assert_eq!(res.status(), 410);
    let body = json_of(&res);
    assert_eq!(body["error"]["id"], "self_service_flow_expired");
    let fresh = body["use_flow_id"].as_str().unwrap();
    assert_ne!(fresh, flow["id"].as_str().unwrap());
    let res = api
        .handle(get(&format!("/self-service/login/flows?id={fresh}")))
        .await;
    assert_eq!(res.status(), 200, "the replacement flow exists");
}

/// An expired refresh login is replaced by a refresh login (the session it was for is still
/// valid): not by a sign-in flow, which a signed-in user would be refused.
async fn an_expired_refresh_flow_is_replaced_by_a_refresh(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let token = sign_up(&api, "again@example.com").await;
    let with_token = |req: http::Request<Bytes>| {
        let (mut parts, body) = req.into_parts();
        parts
            .headers
            .insert("x-session-token", token.parse().unwrap());
        http::Request::from_parts(parts, body)
    };
    let flow = json_of(
        &api.handle(with_token(get("/self-service/login/api?refresh=true")))
            .await,
    );
    assert_eq!(flow["refresh"], true);
    env.clock.advance(Duration::minutes(61));
    let res = api
        .handle(post(
            &flow_url("/self-service/login", &flow),
            json!({ "method": "password", "identifier": "again@example.com", "password": PASSWORD }),
            Some(&token),
        ))
        .await;
    assert_eq!(res.status(), 410, "{}", String::from_utf8_lossy(res.body()));
    let fresh = json_of(&res)["use_flow_id"].as_str().unwrap().to_owned();
    let replacement = json_of(
        &api.handle(with_token(get(&format!(
            "/self-service/login/flows?id={fresh}"
        ))))
        .await,
    );
    assert_eq!(replacement["refresh"], true, "{replacement}");
}

async fn stale_sessions_are_sent_to_re_authenticate(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let token = sign_up(&api, "old@example.com").await;
    let settings = api
        .handle(get_with_token("/self-service/settings/api", &token))
        .await;
    let settings = json_of(&settings);
    env.clock.advance(Duration::minutes(20));
    let res = api
        .handle(post(
            &flow_url("/self-service/settings", &settings),
            json!({ "method": "password", "password": "another long passphrase" }),
            Some(&token),
        ))
        .await;
    assert_eq!(res.status(), 403);
    let body = json_of(&res);
    assert_eq!(body["error"]["id"], "session_refresh_required");
    let to = body["redirect_browser_to"].as_str().unwrap();
    assert!(
        to.contains("/self-service/login/browser?refresh=true"),
        "{to}"
    );
}

async fn browser_errors_go_to_the_error_page(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let res = api
        .handle(
            http::Request::get("/self-service/login/browser")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let flow_id = location.rsplit("flow=").next().unwrap();
    // A form post without the CSRF token, from a page (no JSON asked for).
    let res = api
        .handle(
            http::Request::post(format!("/self-service/login?flow={flow_id}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &cookie)
                .body(Bytes::from("method=password&identifier=a%40b.c&password=x"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 303);
    let error_page = res.headers()["location"].to_str().unwrap();
    assert!(
        error_page.starts_with("http://127.0.0.1:4433/ui/error?id="),
        "{error_page}"
    );
    let id = error_page.rsplit("id=").next().unwrap();
    let stored = api
        .handle(get(&format!("/self-service/errors?id={id}")))
        .await;
    assert_eq!(stored.status(), 200);
    assert_eq!(json_of(&stored)["error"]["id"], "security_csrf_violation");
    // Another instance on the same database shows it too (the error page may be served
    // by any of them).
    let other = PublicApi::new(
        env.second_engine(identa::SessionCacheConfig::Disabled)
            .await,
        HttpConfig::default(),
    );
    let stored = other
        .handle(get(&format!("/self-service/errors?id={id}")))
        .await;
    assert_eq!(stored.status(), 200);
    assert_eq!(json_of(&stored)["error"]["id"], "security_csrf_violation");
    // Pruning drops errors older than a day.
    env.clock.advance(Duration::days(2));
    env.identa.prune().await.unwrap();
    let gone = other
        .handle(get(&format!("/self-service/errors?id={id}")))
        .await;
    assert_eq!(gone.status(), 404);
}

on_every_backend!(
    expired_flows_answer_410_with_a_fresh_flow,
    an_expired_refresh_flow_is_replaced_by_a_refresh,
    stale_sessions_are_sent_to_re_authenticate,
    browser_errors_go_to_the_error_page,
);

/// A cross-site form post carries the browser's cookies; an API flow must not take its
/// session from them.
async fn api_flows_ignore_session_cookies(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let token = sign_up(&api, "victim@example.com").await;
    let with_cookie = |path: &str| {
        http::Request::get(path)
            .header("cookie", format!("identa_session={token}"))
            .header("accept", "application/json")
            .body(Bytes::new())
            .unwrap()
    };
    // With only the cookie, an API settings flow sees no session.
    let res = api.handle(with_cookie("/self-service/settings/api")).await;
    assert_eq!(res.status(), 401);
    // And an API login flow is not refused as "already signed in".
    let res = api.handle(with_cookie("/self-service/login/api")).await;
    assert_eq!(res.status(), 200);
    // The same token in the header works.
    let res = api
        .handle(get_with_token("/self-service/settings/api", &token))
        .await;
    assert_eq!(res.status(), 200);
}

on_every_backend!(api_flows_ignore_session_cookies);

/// An HTML form sends strings; traits declared as numbers or booleans get those types.
async fn form_values_take_the_schema_types(env: TestEnv) {
    let mut schemas = identa::identity::SchemaRegistry::new();
    schemas
        .add(
            "default",
            json!({
                "type": "object",
                "properties": { "traits": { "type": "object", "required": ["email"], "properties": {
                    "email": { "type": "string", "format": "email",
                        "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } } },
                    "age": { "type": "integer", "minimum": 0 },
                    "newsletter": { "type": "boolean" }
                } } }
            }),
        )
        .unwrap();
    let identa = env
        .another_engine(env.identa.config().clone())
        .schemas(schemas)
        .build()
        .unwrap();
    let api = PublicApi::new(identa.clone(), HttpConfig::default());
    let flow = json_of(&api.handle(get("/self-service/registration/api")).await);
    let res = api
        .handle(
            http::Request::post(flow_url("/self-service/registration", &flow))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(Bytes::from(
                    "method=password&traits.email=form%40example.com&traits.age=42&traits.newsletter=on&password=a+long+and+unusual+passphrase",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let body = json_of(&res);
    assert_eq!(body["identity"]["traits"]["age"], 42);
    assert_eq!(body["identity"]["traits"]["newsletter"], true);
}

on_every_backend!(form_values_take_the_schema_types);

/// Signs `email` in with [`PASSWORD`] through the API login endpoints: the session token.
async fn sign_in(api: &PublicApi, email: &str) -> String {
    let flow = json_of(&api.handle(get("/self-service/login/api")).await);
    let done = json_of(
        &api.handle(post(
            &flow_url("/self-service/login", &flow),
            json!({ "method": "password", "identifier": email, "password": PASSWORD }),
            None,
        ))
        .await,
    );
    done["session_token"].as_str().unwrap().to_owned()
}

/// Kratos's 403 `session_aal2_required`, pointing a browser at a second-factor login.
fn assert_aal2_required(res: &http::Response<Bytes>) {
    assert_eq!(res.status(), 403, "{}", String::from_utf8_lossy(res.body()));
    let body = json_of(res);
    assert_eq!(body["error"]["id"], "session_aal2_required");
    let to = body["redirect_browser_to"].as_str().unwrap();
    assert!(to.ends_with("/self-service/login/browser?aal=aal2"), "{to}");
}

async fn whoami_refuses_a_session_that_has_not_used_its_second_factor(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let first = sign_up(&api, "two@example.com").await;
    enrol_totp(&env, &SessionToken::from_client(&first)).await;
    let password_only = sign_in(&api, "two@example.com").await;
    let res = api
        .handle(get_with_token("/sessions/whoami", &password_only))
        .await;
    assert_aal2_required(&res);
    // An identity without a second factor passes with its password-only session.
    let plain = sign_up(&api, "one@example.com").await;
    let res = api.handle(get_with_token("/sessions/whoami", &plain)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(&res)["authenticator_assurance_level"], "aal1");
}

async fn a_session_awaiting_its_second_factor_can_sign_out(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let first = sign_up(&api, "leaving@example.com").await;
    enrol_totp(&env, &SessionToken::from_client(&first)).await;
    // By the browser logout URL.
    let by_url = sign_in(&api, "leaving@example.com").await;
    assert_aal2_required(
        &api.handle(get_with_token("/sessions/whoami", &by_url))
            .await,
    );
    let res = api
        .handle(get_with_token("/self-service/logout/browser", &by_url))
        .await;
    assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(res.body()));
    let logout_token = json_of(&res)["logout_token"].as_str().unwrap().to_owned();
    let res = api
        .handle(
            http::Request::get(format!("/self-service/logout?token={logout_token}"))
                .header("x-session-token", &by_url)
                .header("accept", "application/json")
                .body(Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 204, "{}", String::from_utf8_lossy(res.body()));
    let res = api
        .handle(get_with_token("/sessions/whoami", &by_url))
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(json_of(&res)["error"]["id"], "session_inactive");
    // By the API logout.
    let by_api = sign_in(&api, "leaving@example.com").await;
    let res = api
        .handle(
            http::Request::delete("/self-service/logout/api")
                .header("content-type", "application/json")
                .body(Bytes::from(json!({ "session_token": by_api }).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 204, "{}", String::from_utf8_lossy(res.body()));
    let res = api
        .handle(get_with_token("/sessions/whoami", &by_api))
        .await;
    assert_eq!(res.status(), 401);
}

on_every_backend!(
    whoami_refuses_a_session_that_has_not_used_its_second_factor,
    a_session_awaiting_its_second_factor_can_sign_out,
);

/// `req` as coming from client address `ip` (what the hosts set from the connection).
fn from_ip(mut req: http::Request<Bytes>, ip: &str) -> http::Request<Bytes> {
    req.extensions_mut()
        .insert(identa::http::ClientIp(ip.parse().unwrap()));
    req
}

/// An API client over its limit gets Kratos's error shape with 429 and `Retry-After`;
/// the same wrong password from another address is still answered.
async fn throttled_api_logins_answer_429_with_retry_after(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let api = &api;
    let attempt = |ip: &'static str| async move {
        let flow = json_of(
            &api.handle(from_ip(get("/self-service/login/api"), ip))
                .await,
        );
        let body = json!({
            "method": "password",
            "identifier": "nobody@example.com",
            "password": "guess",
        });
        api.handle(from_ip(
            post(&flow_url("/self-service/login", &flow), body, None),
            ip,
        ))
        .await
    };
    for _ in 0..5 {
        assert_eq!(attempt("192.0.2.1").await.status(), 400);
    }
    let res = attempt("192.0.2.1").await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    let body = json_of(&res);
    assert_eq!(body["error"]["id"], "too_many_requests");
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["status"], "Too Many Requests");
    assert_eq!(attempt("192.0.2.2").await.status(), 400);
}

/// A browser page over its limit is sent back to the flow, which shows why (4900001).
async fn throttled_browser_logins_show_the_flow_again(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let ip = "192.0.2.1";
    let started = api
        .handle(from_ip(
            http::Request::get("/self-service/login/browser")
                .body(Bytes::new())
                .unwrap(),
            ip,
        ))
        .await;
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let flow_id = location.rsplit("flow=").next().unwrap().to_owned();
    let show = || {
        http::Request::get(format!("/self-service/login/flows?id={flow_id}"))
            .header("accept", "application/json")
            .header("cookie", &cookie)
            .body(Bytes::new())
            .unwrap()
    };
    let flow = json_of(&api.handle(show()).await);
    let csrf = flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "csrf_token")
        .unwrap()["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = format!(
        "method=password&identifier=nobody%40example.com&password=guess&csrf_token={}",
        form_urlencoded::byte_serialize(csrf.as_bytes()).collect::<String>()
    );
    for _ in 0..6 {
        let res = api
            .handle(from_ip(
                http::Request::post(format!("/self-service/login?flow={flow_id}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", &cookie)
                    .body(Bytes::from(form.clone()))
                    .unwrap(),
                ip,
            ))
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], location.as_str());
    }
    let shown = json_of(&api.handle(show()).await);
    assert_eq!(shown["ui"]["messages"][0]["id"], 4_900_001, "{shown}");
    assert_eq!(shown["ui"]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(shown["state"], flow["state"]);
}

on_every_backend!(
    throttled_api_logins_answer_429_with_retry_after,
    throttled_browser_logins_show_the_flow_again,
);

/// A wrong recovery or verification code is answered as Kratos answers it: 200 with the
/// flow showing 4060006 / 4070006, which Kratos front ends render as a flow; the flow stays
/// usable. Input to fix is still a 400 with the flow.
async fn wrong_codes_answer_200_with_the_flow(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    sign_up(&api, "coda@example.com").await;
    for (kind, message) in [("recovery", 4_060_006), ("verification", 4_070_006)] {
        let path = format!("/self-service/{kind}");
        let flow = json_of(&api.handle(get(&format!("{path}/api"))).await);
        let bad = api
            .handle(post(
                &flow_url(&path, &flow),
                json!({ "method": "code", "email": "not an address" }),
                None,
            ))
            .await;
        assert_eq!(bad.status(), 400, "{kind}: {}", json_of(&bad));
        let sent = api
            .handle(post(
                &flow_url(&path, &flow),
                json!({ "method": "code", "email": "coda@example.com" }),
                None,
            ))
            .await;
        assert_eq!(sent.status(), 200, "{kind}");
        assert_eq!(json_of(&sent)["state"], "sent_email");
        let template = match kind {
            "recovery" => TemplateKind::RecoveryCodeValid,
            _ => TemplateKind::VerificationCodeValid,
        };
        let code = code_sent_to(&env, "coda@example.com", template).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let refused = api
            .handle(post(
                &flow_url(&path, &flow),
                json!({ "method": "code", "code": wrong }),
                None,
            ))
            .await;
        assert_eq!(refused.status(), 200, "{kind}");
        let shown = json_of(&refused);
        assert_eq!(shown["id"], flow["id"], "{kind}: the same flow");
        assert_eq!(shown["state"], "sent_email", "{kind}");
        assert_eq!(shown["ui"]["messages"][0]["id"], message, "{kind}: {shown}");
        let accepted = api
            .handle(post(
                &flow_url(&path, &flow),
                json!({ "method": "code", "code": code }),
                None,
            ))
            .await;
        assert_eq!(accepted.status(), 200, "{kind}: {}", json_of(&accepted));
        assert_eq!(json_of(&accepted)["state"], "passed_challenge", "{kind}");
    }
}

on_every_backend!(wrong_codes_answer_200_with_the_flow);
/// A settings flow's password check over HTTP: five new passwords refused from one address
/// (400, 4000039: the same as the current one), then 429 `too_many_requests` with
/// `Retry-After` before the sixth is looked at.
async fn throttled_settings_password_checks_answer_429(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let token = sign_up(&api, "ada@example.com").await;
    let ip = "192.0.2.1";
    let flow = json_of(
        &api.handle(from_ip(
            get_with_token("/self-service/settings/api", &token),
            ip,
        ))
        .await,
    );
    let change = |password: &str| {
        from_ip(
            post(
                &flow_url("/self-service/settings", &flow),
                json!({ "method": "password", "password": password }),
                Some(&token),
            ),
            ip,
        )
    };
    for _ in 0..5 {
        let res = api.handle(change(PASSWORD)).await;
        assert_eq!(res.status(), 400);
        assert!(json_of(&res).to_string().contains("4000039"));
    }
    let res = api.handle(change("an entirely new passphrase")).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(json_of(&res)["error"]["id"], "too_many_requests");
}

on_every_backend!(throttled_settings_password_checks_answer_429);
/// What one of several racing code submissions over HTTP was answered: the winner's 200,
/// the flow showing it was already completed (400 with `completed`), or, when the flow was
/// completed while this submission was judged, Kratos's error shape with 409
/// `concurrent_update` — never a 500.
fn racing_answer(res: &http::Response<Bytes>, completed: u32) -> &'static str {
    let body = json_of(res);
    match res.status().as_u16() {
        200 => "won",
        400 if body["ui"]["messages"][0]["id"] == json!(completed) => "completed",
        409 if body["error"]["id"] == "concurrent_update"
            && body["error"]["code"] == 409
            && body["error"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("changed by another request")) =>
        {
            "conflict"
        }
        _ => panic!(
            "unexpected answer to a racing code: {} {body}",
            res.status()
        ),
    }
}

/// One recovery code and one verification code, each submitted by several clients at once
/// over Kratos's API: exactly one wins; every other is told why in Kratos's shape, and a
/// flow completed under a submission's feet is a 409 `concurrent_update`, not a 500.
async fn racing_code_submissions_are_answered_in_kratos_shape(env: TestEnv) {
    use crate::common::race::{ROUNDS, released_together};
    use identa::courier::TemplateKind;
    let api = std::sync::Arc::new(PublicApi::new(env.identa.clone(), HttpConfig::default()));
    for round in 0..ROUNDS {
        let address = format!("race{round}@example.com");
        sign_up(&api, &address).await;
        for (kind, template, completed) in [
            ("recovery", TemplateKind::RecoveryCodeValid, 4_060_001),
            (
                "verification",
                TemplateKind::VerificationCodeValid,
                4_070_002,
            ),
        ] {
            let flow = json_of(&api.handle(get(&format!("/self-service/{kind}/api"))).await);
            let url = flow_url(&format!("/self-service/{kind}"), &flow);
            let sent = api
                .handle(post(
                    &url,
                    json!({ "method": "code", "email": address }),
                    None,
                ))
                .await;
            assert_eq!(
                sent.status(),
                200,
                "{}",
                String::from_utf8_lossy(sent.body())
            );
            let code = crate::common::code_sent_to(&env, &address, template).await;
            let answers = released_together(|_| {
                let (api, url, code) = (api.clone(), url.clone(), code.clone());
                async move {
                    api.handle(post(&url, json!({ "method": "code", "code": code }), None))
                        .await
                }
            })
            .await;
            let kinds: Vec<&str> = answers
                .iter()
                .map(|a| racing_answer(a, completed))
                .collect();
            assert_eq!(
                kinds.iter().filter(|k| **k == "won").count(),
                1,
                "{kind}, round {round}: {kinds:?}"
            );
        }
    }
}

crate::on_pooled_backends!(racing_code_submissions_are_answered_in_kratos_shape);

/// `GET /sessions/whoami` answers from the cache entry's rendered JSON (the default
/// cache): each change that drops the entry — an identity update, a session extended,
/// the identity disabled, the session revoked — shows in the very next answer, and the
/// answer is byte for byte the library's `whoami` rendered as JSON.
async fn whoami_over_http_shows_each_change_in_the_next_answer(env: TestEnv) {
    let api = PublicApi::new(env.identa.clone(), HttpConfig::default());
    let token = sign_up(&api, "cached@example.com").await;
    let whoami = || api.handle(get_with_token("/sessions/whoami", &token));
    let first = whoami().await;
    assert_eq!(first.status(), 200);
    let me = env
        .identa
        .whoami(&SessionToken::from_client(&token))
        .await
        .unwrap();
    assert_eq!(
        first.body().as_ref(),
        serde_json::to_vec(&json!(me)).unwrap().as_slice()
    );
    assert_eq!(
        first.headers()["x-kratos-authenticated-identity-id"],
        me.identity.id.to_string().as_str()
    );
    assert_eq!(
        whoami().await.body(),
        first.body(),
        "served again, unchanged"
    );

    env.identa
        .update_identity(
            me.identity.id,
            identa::identity::IdentityUpdate {
                metadata_public: Some(Some(json!({ "plan": "gold" }))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let updated = json_of(&whoami().await);
    assert_eq!(updated["identity"]["metadata_public"]["plan"], "gold");

    env.clock.advance(Duration::hours(1));
    let extended = env.identa.extend_session(me.session.id).await.unwrap();
    let answer = json_of(&whoami().await);
    assert_eq!(
        answer["expires_at"],
        json!(extended.expires_at),
        "the extended expiry, not the cached one"
    );

    crate::common::set_identity_state(
        &env,
        me.identity.id,
        identa::identity::IdentityState::Inactive,
    )
    .await;
    let disabled = whoami().await;
    assert_eq!(disabled.status(), 401);
    assert_eq!(json_of(&disabled)["error"]["id"], "session_inactive");
    crate::common::set_identity_state(
        &env,
        me.identity.id,
        identa::identity::IdentityState::Active,
    )
    .await;
    assert_eq!(whoami().await.status(), 200);

    env.identa
        .revoke_session(me.identity.id, me.session.id)
        .await
        .unwrap();
    let revoked = whoami().await;
    assert_eq!(revoked.status(), 401);
    assert_eq!(json_of(&revoked)["error"]["id"], "session_inactive");
}

on_every_backend!(whoami_over_http_shows_each_change_in_the_next_answer);
