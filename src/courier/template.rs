//! Email templates: built-in English texts for every [`TemplateKind`], each overridable
//! by the host. A template is three strings (subject, plain text, HTML) with
//! `{{ name }}` placeholders; values are HTML-escaped in the HTML body. Unknown
//! placeholders are refused when a template is set, so a typo cannot ship silently.

use std::collections::HashMap;

use super::{Email, TemplateKind};

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["to", "code", "expires_in_minutes"];

/// One template: subject, text body and HTML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// The values a template is rendered with.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TemplateVars {
    /// The recipient address.
    pub to: String,
    /// The one-time code, for the `*_valid` templates.
    pub code: Option<String>,
    /// How long the code stays valid, in minutes.
    pub expires_in_minutes: i64,
    /// When the code stops working. The message is not worth delivering after it: the
    /// courier retries until then, and abandons it as expired after. `None` (mail without
    /// a code): the courier's [`RetryPolicy::max_age`](super::RetryPolicy::max_age).
    pub code_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for TemplateVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateVars")
            .field("to", &self.to)
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("expires_in_minutes", &self.expires_in_minutes)
            .field("code_expires_at", &self.code_expires_at)
            .finish()
    }
}

/// A template uses a placeholder that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "template {kind} uses unknown placeholder `{{{{ {name} }}}}`; known: to, code, expires_in_minutes"
)]
pub struct TemplateError {
    /// The template.
    pub kind: TemplateKind,
    /// The unknown name.
    pub name: String,
}

/// The templates in force: built-ins unless the host replaced them.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    overrides: HashMap<TemplateKind, Template>,
}

impl Templates {
    /// Replaces one template. Fails if it uses an unknown placeholder.
    pub fn set(&mut self, kind: TemplateKind, template: Template) -> Result<(), TemplateError> {
        for part in [&template.subject, &template.text, &template.html] {
            for name in placeholders(part) {
                if !PLACEHOLDERS.contains(&name) {
                    return Err(TemplateError {
                        kind,
                        name: name.to_owned(),
                    });
                }
            }
        }
        self.overrides.insert(kind, template);
        Ok(())
    }

    /// The template in force for `kind`.
    pub fn get(&self, kind: TemplateKind) -> Template {
        self.overrides
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| builtin(kind))
    }

    /// Renders `kind` with `vars` into an email to `vars.to`.
    pub fn render(&self, kind: TemplateKind, vars: &TemplateVars) -> Email {
        let t = self.get(kind);
        let value = |name: &str| -> String {
            match name {
                "to" => vars.to.clone(),
                "code" => vars.code.clone().unwrap_or_default(),
                "expires_in_minutes" => vars.expires_in_minutes.to_string(),
                _ => String::new(),
            }
        };
        Email {
            to: vars.to.clone(),
            subject: fill(&t.subject, |n| value(n).replace(['\r', '\n'], " ")),
            text: fill(&t.text, value),
            html: fill(&t.html, |n| escape_html(&value(n))),
        }
    }
}

/// The placeholder names used in `s`.
fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(after[..end].trim());
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}

fn fill(s: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str(&value(after[..end].trim()));
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn builtin(kind: TemplateKind) -> Template {
    let (subject, text, html) = match kind {
        TemplateKind::RecoveryCodeValid => (
            "Recover access to your account",
            "Hi,\n\nUse this code to recover access to your account: {{ code }}\n\nIt expires in {{ expires_in_minutes }} minutes. If you did not ask for it, ignore this email.\n",
            "<p>Hi,</p><p>Use this code to recover access to your account: <strong>{{ code }}</strong></p><p>It expires in {{ expires_in_minutes }} minutes. If you did not ask for it, ignore this email.</p>",
        ),
        TemplateKind::RecoveryCodeInvalid => (
            "Account access attempted",
            "Hi,\n\nSomeone asked to recover access to an account with this email address ({{ to }}), but no account uses it. If this was you, check whether you signed up with a different address. If not, ignore this email.\n",
            "<p>Hi,</p><p>Someone asked to recover access to an account with this email address ({{ to }}), but no account uses it. If this was you, check whether you signed up with a different address. If not, ignore this email.</p>",
        ),
        TemplateKind::VerificationCodeValid => (
            "Please verify your email address",
            "Hi,\n\nUse this code to verify your email address: {{ code }}\n\nIt expires in {{ expires_in_minutes }} minutes.\n",
            "<p>Hi,</p><p>Use this code to verify your email address: <strong>{{ code }}</strong></p><p>It expires in {{ expires_in_minutes }} minutes.</p>",
        ),
        TemplateKind::VerificationCodeInvalid => (
            "Someone tried to verify this email address",
            "Hi,\n\nSomeone asked to verify this email address ({{ to }}), but no account uses it. If this was not you, ignore this email.\n",
            "<p>Hi,</p><p>Someone asked to verify this email address ({{ to }}), but no account uses it. If this was not you, ignore this email.</p>",
        ),
        TemplateKind::RegistrationAttempted => (
            "Someone tried to sign up with this email address",
            "Hi,\n\nSomeone tried to create an account with this email address ({{ to }}), but it already has one, so nothing was changed. If this was you, sign in, or recover access to your account if you forgot your password. If not, ignore this email.\n",
            "<p>Hi,</p><p>Someone tried to create an account with this email address ({{ to }}), but it already has one, so nothing was changed. If this was you, sign in, or recover access to your account if you forgot your password. If not, ignore this email.</p>",
        ),
    };
    Template {
        subject: subject.to_owned(),
        text: text.to_owned(),
        html: html.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            to: "a<b>@example.com".into(),
            code: Some("123456".into()),
            expires_in_minutes: 15,
            code_expires_at: None,
        }
    }

    #[test]
    fn builtins_carry_the_code_and_escape_html() {
        let email = Templates::default().render(TemplateKind::RecoveryCodeValid, &vars());
        assert!(email.text.contains("123456"));
        assert!(email.html.contains("<strong>123456</strong>"));
        assert!(email.text.contains("15 minutes"));
        let invalid = Templates::default().render(TemplateKind::RecoveryCodeInvalid, &vars());
        assert!(invalid.html.contains("a&lt;b&gt;@example.com"));
        assert!(!invalid.text.contains("123456"));
    }

    #[test]
    fn overrides_replace_builtins_and_unknown_placeholders_are_refused() {
        let mut t = Templates::default();
        let custom = Template {
            subject: "Code {{code}}".into(),
            text: "{{ code }}!".into(),
            html: "<b>{{ code }}</b>".into(),
        };
        assert!(t.set(TemplateKind::VerificationCodeValid, custom).is_ok());
        let email = t.render(TemplateKind::VerificationCodeValid, &vars());
        assert_eq!(email.subject, "Code 123456");
        assert_eq!(email.text, "123456!");
        let bad = Template {
            subject: "{{ cod }}".into(),
            text: String::new(),
            html: String::new(),
        };
        let err = t.set(TemplateKind::RecoveryCodeValid, bad);
        assert_eq!(err.map_err(|e| e.name), Err("cod".to_owned()));
    }
}
