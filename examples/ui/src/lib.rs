//! A small server-rendered UI for identa's flows — plain HTML forms, no JavaScript — that
//! every example host mounts under `/ui`. It is a front end like any other: it reads flows
//! and sessions from the public API (in-process calls with the browser's cookies) and its
//! forms post to the API, which redirects back here.
//!
//! Pages: `/ui/login`, `/ui/registration`, `/ui/settings`, `/ui/recovery`,
//! `/ui/verification` (each `?flow=<id>`; without one a new flow is started), `/ui/error`,
//! and `/ui/dashboard` (the signed-in identity and its sessions, with revoke buttons).
//! `/ui` and the site's root `/` lead to the dashboard, which sends a signed-out browser
//! to sign in: the address a person types lands on a page.

pub mod html;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use identa::http::PublicApi;
use identa::http::request::Incoming;
use serde_json::Value;

use html::{esc, flow_forms, messages, page};

/// The UI, answering paths under `/ui`.
#[derive(Debug, Clone)]
pub struct Ui {
    api: Arc<PublicApi>,
    /// [`CSP`], with the origins a form post may be redirected to.
    csp: HeaderValue,
}

type Response = http::Response<Bytes>;

/// The pages' content security policy: scripts and form posts to this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'";

fn html_response(status: StatusCode, body: String) -> Response {
    let mut res = http::Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    res.headers_mut()
        .insert("content-security-policy", HeaderValue::from_static(CSP));
    res
}

fn redirect(location: &str) -> Response {
    identa::http::response::redirect(location)
}

impl Ui {
    /// The UI over `api`.
    pub fn new(api: Arc<PublicApi>) -> Self {
        Self {
            api,
            csp: HeaderValue::from_static(CSP),
        }
    }

    /// Lets the pages' forms lead to these origins too (`scheme://host[:port]`): a
    /// browser applies `form-action` to the redirects after a form post, and an OpenID
    /// Connect provider's button is answered with a redirect to the provider.
    /// Anything that is not an origin is left out.
    pub fn allow_form_redirects_to<S: AsRef<str>>(
        mut self,
        origins: impl IntoIterator<Item = S>,
    ) -> Self {
        let extra: Vec<String> = origins
            .into_iter()
            .map(|o| o.as_ref().to_owned())
            .filter(|o| {
                (o.starts_with("https://") || o.starts_with("http://"))
                    && o.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:/[]".contains(c))
                    && o.matches('/').count() == 2
            })
            .collect();
        if !extra.is_empty() {
            let csp = CSP.replace(
                "form-action 'self'",
                &format!("form-action 'self' {}", extra.join(" ")),
            );
            if let Ok(value) = HeaderValue::from_str(&csp) {
                self.csp = value;
            }
        }
        self
    }

    fn public_url(&self) -> String {
        self.api
            .identa()
            .config()
            .flows
            .public_url
            .trim_end_matches('/')
            .to_owned()
    }

    /// Calls the public API in-process with the browser's cookies, asking for JSON.
    async fn call(
        &self,
        from: &identa::http::Request,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "application/json");
        if let Some(cookie) = from.headers().get(header::COOKIE) {
            builder = builder.header(header::COOKIE, cookie.clone());
        }
        let bytes = match &body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v).unwrap_or_default())
            }
            None => Bytes::new(),
        };
        let Ok(req) = builder.body(bytes) else {
            return (StatusCode::BAD_REQUEST, Value::Null);
        };
        let res = self.api.handle(req).await;
        let status = res.status();
        (
            status,
            serde_json::from_slice(res.body()).unwrap_or(Value::Null),
        )
    }

    /// Whether [`Ui::handle`] answers `path`: the root `/`, `/ui` and everything under
    /// `/ui/` (with or without a trailing slash). A host routes these paths to the UI.
    pub fn serves(path: &str) -> bool {
        path == "/" || path == "/ui" || path.starts_with("/ui/")
    }

    /// Answers a request for `/` or under `/ui`, or `None` for other paths.
    pub async fn handle(&self, req: identa::http::Request) -> Option<Response> {
        let inc = Incoming::new(&req);
        let path = inc.path().to_owned();
        // The site's root is the UI's home, as `/ui` is.
        let rest = match path.as_str() {
            "/" => "",
            _ => path.strip_prefix("/ui")?,
        };
        let res = match (req.method().clone(), rest.trim_start_matches('/')) {
            (Method::GET, "") => redirect("/ui/dashboard"),
            (
                Method::GET,
                kind @ ("login" | "registration" | "settings" | "recovery" | "verification"),
            ) => self.flow_page(&req, &inc, kind).await,
            (Method::GET, "error") => self.error_page(&req, &inc).await,
            (Method::GET, "dashboard") => self.dashboard(&req, &inc).await,
            (Method::POST, "sessions/revoke") => self.revoke(&req, &inc).await,
            _ => html_response(
                StatusCode::NOT_FOUND,
                page(
                    "Not found",
                    false,
                    "<div class=\"card\"><h1>Not found</h1><p><a href=\"/ui/dashboard\">Home</a></p></div>",
                ),
            ),
        };
        let mut res = res;
        if res.headers().contains_key("content-security-policy") {
            res.headers_mut()
                .insert("content-security-policy", self.csp.clone());
        }
        Some(res)
    }

    async fn flow_page(
        &self,
        req: &identa::http::Request,
        inc: &Incoming<'_>,
        kind: &str,
    ) -> Response {
        let start = format!("{}/self-service/{kind}/browser", self.public_url());
        let Some(id) = inc.query("flow") else {
            return redirect(&start);
        };
        let (status, flow) = self
            .call(
                req,
                Method::GET,
                &format!("/self-service/{kind}/flows?id={}", urlencode(id)),
                None,
            )
            .await;
        if status != StatusCode::OK {
            // Unknown, foreign or gone: start over.
            return redirect(&start);
        }
        let title = match kind {
            "login" if flow["refresh"] == Value::Bool(true) => "Confirm it is you",
            "login" => "Sign in",
            "registration" => "Create an account",
            "settings" => "Account settings",
            "recovery" => "Recover your account",
            _ => "Verify your email address",
        };
        let links = match kind {
            // A session that must use its second factor may also give up and sign out.
            "login" if flow["requested_aal"] == "aal2" => {
                let (_, logout) = self
                    .call(req, Method::GET, "/self-service/logout/browser", None)
                    .await;
                format!(
                    "<a href=\"{}\">Sign out</a>",
                    esc(logout["logout_url"].as_str().unwrap_or("/ui/login"))
                )
            }
            "login" => {
                "<a href=\"/ui/registration\">Create an account</a><a href=\"/ui/recovery\">Forgot your password?</a>".to_owned()
            }
            "registration" => "<a href=\"/ui/login\">Already have an account? Sign in</a>".to_owned(),
            "settings" => "<a href=\"/ui/dashboard\">Back to your dashboard</a>".to_owned(),
            _ => "<a href=\"/ui/login\">Back to sign in</a>".to_owned(),
        };
        let done = matches!(flow["state"].as_str(), Some("passed_challenge"));
        let forms = if done {
            String::new()
        } else {
            flow_forms(&flow)
        };
        let body = if kind == "settings" {
            format!(
                "<div class=\"card\"><h1>{}</h1>{}<div class=\"links\">{links}</div></div>{forms}",
                esc(title),
                messages(&flow["ui"]["messages"])
            )
        } else {
            format!(
                "<div class=\"card\"><h1>{}</h1>{}{forms}<div class=\"links\">{links}</div></div>",
                esc(title),
                messages(&flow["ui"]["messages"])
            )
        };
        html_response(StatusCode::OK, page(title, false, &body))
    }

    async fn error_page(&self, req: &identa::http::Request, inc: &Incoming<'_>) -> Response {
        let id = inc.query("id").unwrap_or_default();
        let (status, err) = self
            .call(
                req,
                Method::GET,
                &format!("/self-service/errors?id={}", urlencode(id)),
                None,
            )
            .await;
        let reason = if status == StatusCode::OK {
            err["error"]["reason"]
                .as_str()
                .unwrap_or("Something went wrong.")
                .to_owned()
        } else {
            "Something went wrong.".to_owned()
        };
        let body = format!(
            "<div class=\"card\"><h1>That did not work</h1><div class=\"msg error\">{}</div>\
             <div class=\"links\"><a href=\"/ui/login\">Sign in</a><a href=\"/ui/dashboard\">Dashboard</a></div></div>",
            esc(&reason)
        );
        html_response(StatusCode::OK, page("Error", false, &body))
    }

    async fn dashboard(&self, req: &identa::http::Request, inc: &Incoming<'_>) -> Response {
        let (status, me) = self.call(req, Method::GET, "/sessions/whoami", None).await;
        if status != StatusCode::OK {
            // A session that must complete its second factor is sent to that step.
            return match me["redirect_browser_to"].as_str() {
                Some(step_up) => redirect(step_up),
                None => redirect(&format!("{}/self-service/login/browser", self.public_url())),
            };
        }
        let (_, others) = self.call(req, Method::GET, "/sessions", None).await;
        let (_, logout) = self
            .call(req, Method::GET, "/self-service/logout/browser", None)
            .await;
        let csrf = inc.cookie(identa::http::CSRF_COOKIE).unwrap_or_default();
        let identity = &me["identity"];
        let traits: String = identity["traits"]
            .as_object()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| {
                        let shown = v
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string());
                        format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&shown))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let addresses: String = identity["verifiable_addresses"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| {
                        let verified = a["verified"].as_bool() == Some(true);
                        format!(
                            "<tr><td>{}</td><td><span class=\"badge{}\">{}</span>{}</td></tr>",
                            esc(a["value"].as_str().unwrap_or_default()),
                            if verified { " ok" } else { "" },
                            if verified { "verified" } else { "not verified" },
                            if verified {
                                String::new()
                            } else {
                                " <a href=\"/ui/verification\">verify</a>".to_owned()
                            }
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let session_row = |s: &Value, current: bool| {
            let device = s["devices"][0]["user_agent"]
                .as_str()
                .unwrap_or("unknown device");
            let action = if current {
                "<span class=\"badge ok\">this session</span>".to_owned()
            } else {
                format!(
                    "<form method=\"post\" action=\"/ui/sessions/revoke\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <input type=\"hidden\" name=\"session_id\" value=\"{}\"><button class=\"small secondary\" type=\"submit\">Revoke</button></form>",
                    esc(csrf),
                    esc(s["id"].as_str().unwrap_or_default())
                )
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&when(s["authenticated_at"].as_str().unwrap_or_default())),
                esc(device),
                action
            )
        };
        let aal = esc(me["authenticator_assurance_level"]
            .as_str()
            .unwrap_or("aal1"));
        let aal_class = if aal == "aal2" { " ok" } else { "" };
        let step_up = if aal == "aal2" {
            String::new()
        } else {
            format!(
                "<a href=\"{}/self-service/login/browser?aal=aal2\">Use your second factor</a>",
                esc(&self.public_url())
            )
        };
        let mut sessions = session_row(&me, true);
        if let Some(list) = others.as_array() {
            for s in list.iter().filter(|s| s["active"].as_bool() == Some(true)) {
                sessions.push_str(&session_row(s, false));
            }
        }
        let body = format!(
            "<div class=\"card\"><div class=\"top\"><h1>Welcome</h1><a href=\"{}\">Sign out</a></div>\
             <table>{traits}</table><div class=\"links\"><a href=\"/ui/settings\">Account settings</a></div></div>\
             <div class=\"card\"><h2>Email addresses</h2><table>{addresses}</table></div>\
             <div class=\"card\"><h2>Two-factor authentication</h2><p>This session: <span class=\"badge{aal_class}\">{aal}</span></p>\
             <div class=\"links\"><a href=\"/ui/settings\">Authenticator app and backup codes</a>{step_up}</div></div>\
             <div class=\"card\"><h2>Sessions</h2><table><tr><th>Signed in</th><th>Device</th><th></th></tr>{sessions}</table></div>",
            esc(logout["logout_url"].as_str().unwrap_or("/ui/login")),
        );
        html_response(StatusCode::OK, page("Dashboard", true, &body))
    }

    async fn revoke(&self, req: &identa::http::Request, inc: &Incoming<'_>) -> Response {
        let form = inc.body(4096).unwrap_or_default();
        let submitted = form["csrf"].as_str().unwrap_or_default();
        let cookie = inc.cookie(identa::http::CSRF_COOKIE).unwrap_or_default();
        // Double submit: only a page of this site can know the cookie's value.
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(submitted.as_bytes(), cookie.as_bytes()).into();
        if cookie.is_empty() || !same {
            return html_response(
                StatusCode::FORBIDDEN,
                page(
                    "Forbidden",
                    false,
                    "<div class=\"card\"><h1>Forbidden</h1><div class=\"msg error\">The form is not from this site. Reload the dashboard and try again.</div></div>",
                ),
            );
        }
        let id = form["session_id"].as_str().unwrap_or_default();
        let _ = self
            .call(
                req,
                Method::DELETE,
                &format!("/sessions/{}", urlencode(id)),
                None,
            )
            .await;
        redirect("/ui/dashboard")
    }
}

/// `2026-11-22T15:47:41.125384Z` → `2026-11-22 15:47 UTC`.
fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
