//! The `ory.sh/kratos` extension: parsing and checking it on each trait property when a
//! schema is loaded, and extracting what it marks (sign-in identifiers, addresses to
//! verify or recover through, code addresses, the TOTP account name) from valid traits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::violations::quote;
use super::{IdentitySchema, MAX_DEPTH};
use crate::identity::normalize;

/// The extension key on trait properties.
const EXTENSION: &str = "ory.sh/kratos";
/// Formats Kratos accepts on a trait that is verified or recovered through.
const ADDRESS_FORMATS: &[&str] = &["email", "tel", "date", "time", "date-time", "no-validate"];

/// The channel an address is reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressVia {
    /// An email address.
    Email,
    /// A phone number (text messages).
    Sms,
}

impl AddressVia {
    /// The stable string stored in the database and sent over the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

impl fmt::Display for AddressVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AddressVia {
    type Err = UnknownAddressVia;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            other => Err(UnknownAddressVia(quote(other))),
        }
    }
}

/// A string that names no [`AddressVia`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown address channel `{0}`; expected `email` or `sms`")]
pub struct UnknownAddressVia(String);

/// A normalised address and its channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressSpec {
    /// The normalised address.
    pub value: String,
    /// Its channel.
    pub via: AddressVia,
}

/// What the extension marks in a set of traits: normalised, deduplicated, in schema
/// order (properties in key order, array items in order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtractedTraits {
    /// Values that sign in with a password (`credentials.password.identifier`).
    pub password_identifiers: Vec<String>,
    /// Addresses to verify (`verification.via`).
    pub verifiable_addresses: Vec<AddressSpec>,
    /// Addresses to send recovery messages to (`recovery.via`).
    pub recovery_addresses: Vec<AddressSpec>,
    /// Values that identify a WebAuthn credential holder (`credentials.webauthn.identifier`).
    pub webauthn_identifiers: Vec<String>,
    /// Addresses one-time sign-in codes go to (`credentials.code.identifier` and `via`).
    pub code_identifiers: Vec<AddressSpec>,
    /// The TOTP account name (`credentials.totp.account_name`; the first such value),
    /// trimmed but otherwise as typed.
    pub totp_account_name: Option<String>,
}

impl IdentitySchema {
    pub(super) fn extract(&self, traits: &Value) -> ExtractedTraits {
        let mut out = ExtractedTraits::default();
        for MarkedField { path, marks } in &self.marked {
            let mut values = Vec::new();
            collect_strings(traits, path, &mut values);
            // A value that normalises to nothing (blank, only invisible characters)
            // identifies no one.
            for value in values {
                let identifier = normalize::identifier(value);
                if identifier.is_empty() {
                    continue;
                }
                if marks.password {
                    push_unique(&mut out.password_identifiers, identifier.clone());
                }
                if marks.webauthn {
                    push_unique(&mut out.webauthn_identifiers, identifier);
                }
                if marks.totp && out.totp_account_name.is_none() {
                    out.totp_account_name = Some(value.trim().to_owned());
                }
                let addresses = [
                    (marks.code, &mut out.code_identifiers),
                    (marks.verification, &mut out.verifiable_addresses),
                    (marks.recovery, &mut out.recovery_addresses),
                ];
                for (via, list) in addresses {
                    let Some(via) = via else { continue };
                    let value = normalize::address(value, via);
                    if !value.is_empty() {
                        push_unique(list, AddressSpec { value, via });
                    }
                }
            }
        }
        out
    }
}

/// The `ory.sh/kratos` extension on one trait property, as written. Unknown keys are
/// refused, as by Kratos's extension meta-schema.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extension {
    #[serde(default)]
    credentials: CredentialsExt,
    verification: Option<ViaExt>,
    recovery: Option<ViaExt>,
    #[expect(dead_code)]
    organizations: Option<OrganizationsExt>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsExt {
    password: Option<IdentifierExt>,
    webauthn: Option<IdentifierExt>,
    #[expect(dead_code)]
    passkey: Option<PasskeyExt>,
    totp: Option<TotpExt>,
    code: Option<CodeExt>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifierExt {
    #[serde(default)]
    identifier: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyExt {
    #[serde(default)]
    #[expect(dead_code)]
    display_name: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpExt {
    #[serde(default)]
    account_name: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeExt {
    #[serde(default)]
    identifier: bool,
    via: Option<AddressVia>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViaExt {
    via: AddressVia,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganizationsExt {
    #[expect(dead_code)]
    matcher: OrganizationMatcher,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OrganizationMatcher {
    EmailDomain,
}

/// What one property is marked as, once checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Marks {
    password: bool,
    webauthn: bool,
    totp: bool,
    code: Option<AddressVia>,
    verification: Option<AddressVia>,
    recovery: Option<AddressVia>,
}

impl Marks {
    /// Parses and checks the extension found on `node`, a property at `traits{at}`.
    fn parse(node: &Value, extension: &Value, at: &str) -> Result<Self, String> {
        let ext = Extension::deserialize(extension)
            .map_err(|e| format!("`{EXTENSION}` on `traits{at}` is malformed: {e}"))?;
        let code = match ext.credentials.code {
            Some(CodeExt {
                identifier: true,
                via: None,
            }) => {
                return Err(format!(
                    "`traits{at}` is a code identifier, so `{EXTENSION}` must set \
                     `credentials.code.via` to \"email\" or \"sms\""
                ));
            }
            Some(CodeExt { identifier, via }) => via.filter(|_| identifier),
            None => None,
        };
        let marks = Self {
            password: ext.credentials.password.is_some_and(|p| p.identifier),
            webauthn: ext.credentials.webauthn.is_some_and(|w| w.identifier),
            totp: ext.credentials.totp.is_some_and(|t| t.account_name),
            code,
            verification: ext.verification.map(|v| v.via),
            recovery: ext.recovery.map(|r| r.via),
        };
        let format = node.get("format").and_then(Value::as_str);
        if (marks.verification.is_some() || marks.recovery.is_some())
            && !format.is_some_and(|f| ADDRESS_FORMATS.contains(&f))
        {
            return Err(format!(
                "`traits{at}` is an address to verify or recover through, so it must declare \
                 a `format`, one of {} (\"no-validate\" to opt out)",
                ADDRESS_FORMATS.join(", ")
            ));
        }
        Ok(marks)
    }

    fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// One step from the traits to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Items,
}

/// A trait property carrying the extension.
#[derive(Debug, Clone)]
pub(super) struct MarkedField {
    path: Vec<Step>,
    marks: Marks,
}

/// Walks a traits subschema through `properties`, `items` and local `$ref`s, parsing
/// the extension wherever it appears.
pub(super) fn collect_marked(
    root: &Value,
    node: &Value,
    path: &mut Vec<Step>,
    depth: usize,
    out: &mut Vec<MarkedField>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "`traits{}` nests more than {MAX_DEPTH} levels deep (is a `$ref` recursive?)",
            dotted(path)
        ));
    }
    if let Some(extension) = node.get(EXTENSION) {
        let marks = Marks::parse(node, extension, &dotted(path))?;
        if marks.any() {
            out.push(MarkedField {
                path: path.clone(),
                marks,
            });
        }
    }
    if let Some(target) = local_ref(root, node)? {
        collect_marked(root, target, path, depth + 1, out)?;
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            path.push(Step::Key(key.clone()));
            collect_marked(root, child, path, depth + 1, out)?;
            path.pop();
        }
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        path.push(Step::Items);
        collect_marked(root, items, path, depth + 1, out)?;
        path.pop();
    }
    Ok(())
}

/// The subschema a `$ref` on `node` points to. Only references into the schema itself
/// (`#/definitions/…`) can carry extension marks that we follow.
pub(super) fn local_ref<'s>(root: &'s Value, node: &Value) -> Result<Option<&'s Value>, String> {
    let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
        return Ok(None);
    };
    // A reference may spell out the schema's own `$id` before the fragment.
    let base = root.get("$id").and_then(Value::as_str);
    let fragment = base
        .and_then(|id| reference.strip_prefix(id.trim_end_matches('#')))
        .unwrap_or(reference);
    fragment
        .strip_prefix('#')
        .and_then(|pointer| root.pointer(pointer))
        .map(Some)
        .ok_or_else(|| {
            format!(
                "`$ref` \"{}\" inside traits must be a JSON pointer into this schema, \
                 like \"#/definitions/email\"",
                quote(reference)
            )
        })
}

fn dotted(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!(".{k}"),
            Step::Items => "[]".to_owned(),
        })
        .collect()
}

/// The string values at `path` inside `value` (arrays fan out).
fn collect_strings<'v>(value: &'v Value, path: &[Step], out: &mut Vec<&'v str>) {
    match path.split_first() {
        None => out.extend(value.as_str()),
        Some((Step::Key(key), rest)) => {
            if let Some(child) = value.get(key) {
                collect_strings(child, rest, out);
            }
        }
        Some((Step::Items, rest)) => {
            for item in value.as_array().into_iter().flatten() {
                collect_strings(item, rest, out);
            }
        }
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::schema::ViolationKind;
    use crate::identity::schema::fixtures::{
        email, kratos_minimal, kratos_person, schema, violations,
    };
    use serde_json::json;

    #[test]
    fn minimal_schema_validates_and_extracts() {
        let x = schema(kratos_minimal())
            .validate(&json!({"username": " Ada ", "email": "Ada@Example.COM"}))
            .unwrap();
        // Properties are visited in key order.
        assert_eq!(x.password_identifiers, vec!["ada@example.com", "ada"]);
        assert_eq!(x.verifiable_addresses, vec![email("ada@example.com")]);
        assert_eq!(x.recovery_addresses, vec![email("ada@example.com")]);
        assert_eq!(x.code_identifiers, vec![email("ada@example.com")]);
        assert!(x.webauthn_identifiers.is_empty());
        assert_eq!(x.totp_account_name, None);
        // Full-width forms fold to ASCII (the email format itself wants an ASCII `@`).
        let x = schema(kratos_minimal())
            .validate(&json!({"username": "Ａｌｉｃｅ", "email": "alice@example.com"}))
            .unwrap();
        assert_eq!(x.password_identifiers, vec!["alice@example.com", "alice"]);
        let x = schema(kratos_minimal())
            .validate(&json!({"username": "\u{200B}   ", "email": "alice@example.com"}))
            .unwrap();
        assert_eq!(x.password_identifiers, vec!["alice@example.com"]);
    }

    #[test]
    fn person_schema_validates_and_extracts() {
        let s = schema(kratos_person());
        let x = s
            .validate(&json!({"email": "Alice@Example.COM", "name": {"first": "Alice"}}))
            .unwrap();
        assert_eq!(x.password_identifiers, vec!["alice@example.com"]);
        assert_eq!(x.webauthn_identifiers, vec!["alice@example.com"]);
        assert_eq!(x.verifiable_addresses, vec![email("alice@example.com")]);
        assert_eq!(x.totp_account_name.as_deref(), Some("Alice@Example.COM"));
    }

    #[test]
    fn nested_array_and_referenced_fields_are_extracted() {
        let s = schema(
            json!({"definitions":{"phone":{"type":"string","format":"tel",
            "ory.sh/kratos":{"recovery":{"via":"sms"},"verification":{"via":"sms"},
              "credentials":{"code":{"identifier":true,"via":"sms"}}}}},
          "type":"object","properties":{"traits":{"type":"object","properties":{
            "contact":{"type":"object","properties":{"emails":{"type":"array","items":{
                "type":"string","format":"email","ory.sh/kratos":{"verification":{"via":"email"},
                "credentials":{"password":{"identifier":true}}}}}}},
            "phone":{"$ref":"https://example.invalid/p.json#/definitions/phone"}}}},
          "$id":"https://example.invalid/p.json"}),
        );
        let x = s
            .validate(&json!({
                "contact": {"emails": ["A@x.io", "b@x.io", "a@X.io"]}, "phone": "+1 (555) 010-99"}))
            .unwrap();
        assert_eq!(x.password_identifiers, vec!["a@x.io", "b@x.io"]);
        let sms = AddressSpec {
            value: "+155501099".into(),
            via: AddressVia::Sms,
        };
        assert_eq!(
            x.verifiable_addresses,
            vec![email("a@x.io"), email("b@x.io"), sms.clone()]
        );
        assert_eq!(x.recovery_addresses, vec![sms.clone()]);
        assert_eq!(x.code_identifiers, vec![sms]);
        assert_eq!(
            violations(
                s.validate(&json!({"contact": {"emails": ["ok@x.io", "nope"]}, "phone": "555"}))
            ),
            vec![
                ("traits.contact.emails.1".to_owned(), ViolationKind::Format),
                ("traits.phone".to_owned(), ViolationKind::Format),
            ]
        );
    }
    #[test]
    fn address_via_round_trips() {
        for via in [AddressVia::Email, AddressVia::Sms] {
            assert_eq!(via.as_str().parse::<AddressVia>(), Ok(via));
            assert_eq!(serde_json::to_value(via).unwrap(), json!(via.as_str()));
        }
        assert!("fax".parse::<AddressVia>().is_err());
    }
}
