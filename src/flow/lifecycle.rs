//! The start and the checks every flow shares: a new flow (with the CSRF node of browser
//! flows and an allowed `return_to`), and the checks a submission or a read passes before
//! any flow rule runs (kind, expiry, CSRF).

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::ui::{InputType, Node, NodeGroup, UiContainer};
use super::{Facts, Flow, FlowError, FlowKind, FlowRequest, FlowState, FlowType, Internal};
use super::{FlowsConfig, Result, csrf};
use crate::identity::Aal;
use crate::secret::Keyring;

/// A new flow of `kind` for `req` (not stored), with the CSRF node for browser flows.
pub(crate) fn new_flow(
    facts: &dyn Facts,
    kind: FlowKind,
    flow_type: FlowType,
    req: &FlowRequest,
    lifespan: Duration,
    state: FlowState,
) -> Result<Flow> {
    let now = facts.now();
    let id = Uuid::new_v4();
    let mut nodes = Vec::new();
    if flow_type == FlowType::Browser {
        let cookie = req
            .csrf_cookie
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(FlowError::NoCsrfCookie)?;
        nodes.push(
            Node::input(NodeGroup::Default, "csrf_token", InputType::Hidden)
                .required()
                .with_value(csrf::token(facts.keyring(), cookie, id)),
        );
    }
    if let Some(url) = &req.return_to
        && !return_to_allowed(facts.config(), url)
    {
        let shown: String = url.chars().take(200).collect();
        return Err(FlowError::ReturnToForbidden(shown));
    }
    Ok(Flow {
        id,
        kind,
        flow_type,
        state,
        issued_at: now,
        expires_at: now + lifespan,
        updated_at: now,
        request_url: req.url.clone().unwrap_or_default(),
        return_to: req.return_to.clone(),
        ui: UiContainer {
            action: String::new(),
            method: "POST".into(),
            nodes,
            messages: Vec::new(),
        },
        continue_with: Vec::new(),
        refresh: false,
        requested_aal: Aal::Aal1,
        identity_id: None,
        session_id: None,
        version: 0,
        #[cfg(feature = "oidc")]
        session_token_exchange_code: None,
        internal: Internal::default(),
    })
}

/// Whether `url` may be a flow's `return_to`: a path on this site (`/dashboard`), or a URL
/// at or below the public URL or an entry of `allowed_return_urls`.
fn return_to_allowed(config: &FlowsConfig, url: &str) -> bool {
    if url.chars().any(|c| c.is_control() || c == '\\') {
        return false;
    }
    if url.starts_with('/') {
        return !url.starts_with("//");
    }
    let below = |entry: &str| {
        let entry = entry.trim();
        !entry.is_empty()
            && url.strip_prefix(entry).is_some_and(|rest| {
                rest.is_empty() || entry.ends_with('/') || rest.starts_with(['/', '?', '#'])
            })
    };
    below(&config.public_url) || config.allowed_return_urls.iter().any(|e| below(e))
}

/// Checks a flow read for a submission: it must be of `kind`, not be expired at `now`,
/// and pass the CSRF check. Clears the messages of the previous submission.
pub(crate) fn check_submit(
    mut flow: Flow,
    kind: FlowKind,
    req: &FlowRequest,
    keyring: &Keyring,
    now: DateTime<Utc>,
) -> Result<Flow> {
    if flow.kind != kind {
        return Err(FlowError::WrongKind {
            id: flow.id,
            actual: flow.kind,
            expected: kind,
        });
    }
    if flow.is_expired(now) {
        return Err(FlowError::Expired {
            flow_id: flow.id,
            kind,
            expired_at: flow.expires_at,
        });
    }
    csrf::check(keyring, &flow, req).map_err(FlowError::Csrf)?;
    flow.ui.clear_messages();
    Ok(flow)
}

/// Checks that `req` may see `flow`: a browser flow only shows to the browser it was made
/// for (its CSRF cookie must match the token the flow renders).
pub(crate) fn check_view(flow: &Flow, req: &FlowRequest, keyring: &Keyring) -> Result<()> {
    if flow.flow_type != FlowType::Browser {
        return Ok(());
    }
    let rendered = flow
        .value("csrf_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let probe = FlowRequest {
        csrf_cookie: req.csrf_cookie.clone(),
        csrf_token: Some(rendered),
        ..FlowRequest::default()
    };
    csrf::check(keyring, flow, &probe).map_err(FlowError::Csrf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_allowed_sites() {
        let config = FlowsConfig {
            public_url: "https://id.example.com".into(),
            allowed_return_urls: vec!["https://app.example.com".into()],
            ..FlowsConfig::default()
        };
        for ok in [
            "/dashboard",
            "https://id.example.com/ui",
            "https://app.example.com",
            "https://app.example.com/welcome?x=1",
        ] {
            assert!(return_to_allowed(&config, ok), "{ok} refused");
        }
        for refused in [
            "//evil.example",
            "https://app.example.com.evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/a\nb",
        ] {
            assert!(!return_to_allowed(&config, refused), "{refused} allowed");
        }
    }
}
