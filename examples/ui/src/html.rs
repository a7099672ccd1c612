//! HTML rendering: a page layout with a little CSS, flow forms built from the flows' UI
//! nodes, and the dashboard. Every value is escaped.

use serde_json::Value;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg: #1d2330; --muted: #667085; --line: #d8dde6; --accent: #3b5bdb; --bg: #f5f7fb; --err: #c92a2a; --ok: #2b8a3e; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 440px; margin: 6vh auto; padding: 0 16px; }
main.wide { max-width: 760px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 28px; box-shadow: 0 1px 2px rgba(16,24,40,.05); margin-bottom: 20px; }
h1 { font-size: 1.45rem; margin: 0 0 18px; }
h2 { font-size: 1.1rem; margin: 0 0 12px; }
label { display: block; margin: 0 0 14px; font-size: .9rem; color: var(--muted); }
input[type=text], input[type=email], input[type=password], input[type=tel], input[type=url], input[type=number], input[type=date] {
  display: block; width: 100%; margin-top: 4px; padding: 10px 12px; font: inherit; color: var(--fg);
  border: 1px solid var(--line); border-radius: 8px; background: #fff; }
input:focus { outline: 2px solid #c5d0fa; border-color: var(--accent); }
button { font: inherit; padding: 10px 16px; border-radius: 8px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; width: 100%; margin-top: 4px; }
button.secondary { background: #fff; color: var(--accent); }
button.small { width: auto; padding: 4px 10px; font-size: .85rem; }
.msg { padding: 10px 12px; border-radius: 8px; margin: 0 0 14px; font-size: .92rem; }
.msg.error { background: #fff5f5; color: var(--err); border: 1px solid #ffc9c9; }
.msg.info { background: #f1f4ff; color: #364fc7; border: 1px solid #d0d9ff; }
.msg.success { background: #ebfbee; color: var(--ok); border: 1px solid #b2f2bb; }
.field-msg { color: var(--err); font-size: .85rem; margin-top: 4px; }
.links { margin-top: 18px; font-size: .9rem; color: var(--muted); display: flex; gap: 16px; flex-wrap: wrap; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
td, th { text-align: left; padding: 8px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: .8rem; background: #edf2ff; color: #364fc7; }
.badge.ok { background: #ebfbee; color: var(--ok); }
.top { display: flex; justify-content: space-between; align-items: center; }
code { background: #f1f3f5; padding: 1px 5px; border-radius: 4px; }
"#;

/// A whole page.
pub fn page(title: &str, wide: bool, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · identa</title><style>{STYLE}</style></head>\
         <body><main{}>{body}</main></body></html>",
        esc(title),
        if wide { " class=\"wide\"" } else { "" }
    )
}

fn text_of(ui_text: &Value) -> String {
    ui_text["text"].as_str().unwrap_or_default().to_owned()
}

/// The messages of a form or node.
pub fn messages(list: &Value) -> String {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|m| {
                    let kind = match m["type"].as_str() {
                        Some("error") => "error",
                        Some("success") => "success",
                        _ => "info",
                    };
                    format!(
                        "<div class=\"msg {kind}\" data-id=\"{}\">{}</div>",
                        m["id"].as_i64().unwrap_or_default(),
                        esc(&text_of(m))
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn node_html(node: &Value) -> String {
    let attrs = &node["attributes"];
    let label = text_of(&node["meta"]["label"]);
    let node_messages: String = node["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    format!(
                        "<div class=\"field-msg\" data-id=\"{}\">{}</div>",
                        m["id"].as_i64().unwrap_or_default(),
                        esc(&text_of(m))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    match attrs["node_type"].as_str() {
        Some("input") => {
            let name = esc(attrs["name"].as_str().unwrap_or_default());
            let kind = attrs["type"].as_str().unwrap_or("text");
            let value = match &attrs["value"] {
                Value::String(s) => esc(s),
                Value::Null => String::new(),
                other => esc(&other.to_string()),
            };
            let required = if attrs["required"].as_bool() == Some(true)
                && kind != "submit"
                && kind != "hidden"
            {
                " required"
            } else {
                ""
            };
            let autocomplete = attrs["autocomplete"]
                .as_str()
                .map(|a| format!(" autocomplete=\"{}\"", esc(a)))
                .unwrap_or_default();
            match kind {
                "hidden" => format!("<input type=\"hidden\" name=\"{name}\" value=\"{value}\">"),
                // A WebAuthn button: webauthn.js reads its value and runs the ceremony.
                "button" if attrs["onclickTrigger"].is_string() => format!(
                    "<button type=\"button\" name=\"{name}\" value=\"{value}\" data-identa-trigger=\"{}\">{}</button>{node_messages}",
                    esc(attrs["onclickTrigger"].as_str().unwrap_or_default()),
                    esc(&label)
                ),
                "submit" | "button" => {
                    let class = if name == "email" {
                        " class=\"secondary\""
                    } else {
                        ""
                    };
                    format!(
                        "<button type=\"submit\" name=\"{name}\" value=\"{value}\"{class}>{}</button>{node_messages}",
                        esc(&label)
                    )
                }
                "checkbox" => format!(
                    "<label><input type=\"checkbox\" name=\"{name}\" value=\"true\"{}> {}</label>{node_messages}",
                    if attrs["value"] == Value::Bool(true) {
                        " checked"
                    } else {
                        ""
                    },
                    esc(&label)
                ),
                other => format!(
                    "<label>{}<input type=\"{}\" name=\"{name}\" value=\"{value}\"{required}{autocomplete}>{node_messages}</label>",
                    esc(&label),
                    esc(other)
                ),
            }
        }
        Some("text") => format!("<p><code>{}</code></p>", esc(&text_of(&attrs["text"]))),
        Some("img") => format!(
            "<p><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\"></p>",
            esc(attrs["src"].as_str().unwrap_or_default()),
            attrs["width"].as_u64().unwrap_or(256),
            attrs["height"].as_u64().unwrap_or(256),
            esc(&label)
        ),
        // The same script the node names, from this page's own origin.
        Some("script") => format!(
            "<script src=\"{}\" async></script>",
            identa::http::WEBAUTHN_SCRIPT_PATH
        ),
        Some("a") => format!(
            "<p><a href=\"{}\">{}</a></p>",
            esc(attrs["href"].as_str().unwrap_or_default()),
            esc(&text_of(&attrs["title"]))
        ),
        _ => String::new(),
    }
}

/// Whether node `n` belongs in the form of method group `g`: its own nodes and the
/// `default` group's — but a provider's button (`oidc`) takes only the hidden ones (the
/// CSRF token): a required identifier field would stop the button's form from being
/// sent, and the provider asks for what it needs itself.
fn in_form(n: &Value, g: &str) -> bool {
    match n["group"].as_str().unwrap_or("default") {
        "default" if g == "oidc" => n["attributes"]["type"] == "hidden",
        "default" => true,
        own => own == g,
    }
}

/// The forms of a flow: one per method group (the `default` group — CSRF token,
/// identifier — goes into each), so a button submits only its own inputs.
pub fn flow_forms(flow: &Value) -> String {
    let action = esc(flow["ui"]["action"].as_str().unwrap_or_default());
    let nodes: Vec<&Value> = flow["ui"]["nodes"]
        .as_array()
        .map(|n| n.iter().collect())
        .unwrap_or_default();
    let mut groups: Vec<&str> = Vec::new();
    for n in &nodes {
        let g = n["group"].as_str().unwrap_or("default");
        if g != "default" && !groups.contains(&g) {
            groups.push(g);
        }
    }
    // One form when there is one method; else one per method, so that a button submits
    // only its own inputs (and `required` on one method's input does not block another).
    let one_form = groups.len() <= 1;
    // Signing up with a passkey sends the traits too (on registration, where they are
    // not a profile form of their own).
    let traits_in_passkey_form = !groups.contains(&"profile");
    let render = |filter: &dyn Fn(&Value) -> bool, passkey: bool| -> String {
        nodes
            .iter()
            .filter(|n| {
                filter(n)
                    || (passkey
                        && traits_in_passkey_form
                        && n["attributes"]["name"]
                            .as_str()
                            .is_some_and(|name| name.starts_with("traits.")))
            })
            .map(|n| node_html(n))
            .collect()
    };
    if one_form || groups.is_empty() {
        return format!(
            "<form method=\"post\" action=\"{action}\">{}</form>",
            render(&|_| true, false)
        );
    }
    groups
        .iter()
        .map(|g| {
            let heading = match *g {
                "profile" => "Profile",
                "password" => "Password",
                "totp" => "Authenticator app",
                "lookup_secret" => "Backup recovery codes",
                "webauthn" => "Security keys",
                "passkey" => "Passkeys",
                "oidc" => "Other accounts",
                other => other,
            };
            format!(
                "<form method=\"post\" action=\"{action}\" class=\"card\"><h2>{}</h2>{}</form>",
                esc(heading),
                render(&|n| in_form(n, g), *g == "passkey")
            )
        })
        .collect()
}
