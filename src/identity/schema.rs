//! Identity schemas in Kratos's format: a JSON Schema whose `traits` property describes
//! the profile, annotated with the `ory.sh/kratos` extension that says which traits sign
//! in (`credentials.password.identifier`) and which are addresses to verify or recover
//! through (`verification.via`, `recovery.via`).
//!
//! A schema is checked once, when it is added to the [`SchemaRegistry`]: it must be valid
//! JSON Schema (against its meta-schema), Kratos-shaped, and its extension well-formed.
//! Nothing is ever fetched over the network. Validating traits then reports every
//! violation with the field's UI name (`traits.email`) and a Kratos message id, and
//! extracts the normalised identifiers and addresses.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::normalize;

/// The extension key on trait properties.
const EXTENSION: &str = "ory.sh/kratos";
/// Formats Kratos accepts on a trait that carries `verification`.
const VERIFIABLE_FORMATS: &[&str] = &["email", "tel", "date", "time", "date-time", "no-validate"];
/// How much of a user's value an error message may quote.
const QUOTE_MAX: usize = 64;

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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

impl FromStr for AddressVia {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            other => Err(format!("unknown address channel `{}`", quote(other))),
        }
    }
}

/// A normalised address and its channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressSpec {
    /// The normalised address.
    pub value: String,
    /// Its channel.
    pub via: AddressVia,
}

/// What the extension marks in a set of traits, normalised and deduplicated, in
/// property-name order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtractedTraits {
    /// Values that sign in with a password.
    pub password_identifiers: Vec<String>,
    /// Addresses to verify.
    pub verifiable_addresses: Vec<AddressSpec>,
    /// Addresses to send recovery messages to.
    pub recovery_addresses: Vec<AddressSpec>,
    /// Values that identify a WebAuthn credential holder.
    pub webauthn_identifiers: Vec<String>,
    /// Addresses one-time sign-in codes go to.
    pub code_identifiers: Vec<AddressSpec>,
    /// The TOTP account name, if a trait is marked as one.
    pub totp_account_name: Option<String>,
}

/// A trait property, for generating forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitField {
    /// Dotted path below `traits` (`email`, `name.first`).
    pub path: String,
    /// The JSON type (`string`, `number`, `boolean`, `array`…).
    pub json_type: String,
    /// The `format`, if any.
    pub format: Option<String>,
    /// The `title`, if any.
    pub title: Option<String>,
    /// Whether the parent object requires it.
    pub required: bool,
}

/// What kind of rule a trait broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    /// A required property is missing.
    Required,
    /// Too short.
    MinLength,
    /// Too long.
    MaxLength,
    /// Not of the declared format.
    Format,
    /// Does not match the pattern.
    Pattern,
    /// Of the wrong JSON type.
    Type,
    /// Any other rule.
    Other,
}

impl ViolationKind {
    /// Kratos's message id for this kind of violation.
    pub fn message_id(&self) -> u32 {
        match self {
            Self::Required => 4_000_002,
            Self::MinLength => 4_000_003,
            Self::MaxLength => 4_000_017,
            Self::Format | Self::Pattern => 4_000_004,
            Self::Type | Self::Other => 4_000_001,
        }
    }
}

/// One broken rule in a set of traits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitViolation {
    /// The field as a UI input name: `traits.email`, `traits.name.first`, or `traits`.
    pub path: String,
    /// The kind of rule.
    pub kind: ViolationKind,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for TraitViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Errors of schema loading and trait validation.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// No schema has this id.
    #[error("identity schema `{id}` is not registered; register it with SchemaRegistry::add")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The schema was refused when it was added.
    #[error("identity schema `{id}` is invalid: {reason}")]
    Invalid {
        /// The schema's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A schema file could not be read.
    #[error("cannot read identity schema file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The traits break the schema.
    #[error("the traits are invalid: {}", join(violations))]
    Traits {
        /// Every violation found.
        violations: Vec<TraitViolation>,
    },
}

fn join(violations: &[TraitViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Registered identity schemas by id; the first added is the default.
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    schemas: BTreeMap<String, Arc<IdentitySchema>>,
    default_id: Option<String>,
}

impl SchemaRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks and adds a schema. The first schema added becomes the default.
    pub fn add(&mut self, id: impl Into<String>, schema: Value) -> Result<(), SchemaError> {
        let id = id.into();
        let compiled = IdentitySchema::compile(id.clone(), schema)?;
        self.default_id.get_or_insert_with(|| id.clone());
        self.schemas.insert(id, Arc::new(compiled));
        Ok(())
    }

    /// Reads a schema from a JSON file, checks it and adds it.
    pub fn add_file(
        &mut self,
        id: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<(), SchemaError> {
        let path = path.as_ref();
        let id = id.into();
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
            path: path.to_owned(),
            source,
        })?;
        let schema = serde_json::from_str(&text).map_err(|e| SchemaError::Invalid {
            id: id.clone(),
            reason: format!("{} is not JSON: {e}", path.display()),
        })?;
        self.add(id, schema)
    }

    /// Makes a registered schema the default.
    pub fn set_default(&mut self, id: &str) -> Result<(), SchemaError> {
        if !self.schemas.contains_key(id) {
            return Err(SchemaError::NotFound { id: quote(id) });
        }
        self.default_id = Some(id.to_owned());
        Ok(())
    }

    /// The default schema's id.
    pub fn default_id(&self) -> Option<&str> {
        self.default_id.as_deref()
    }

    /// A schema by id.
    pub fn get(&self, id: &str) -> Result<Arc<IdentitySchema>, SchemaError> {
        self.schemas
            .get(id)
            .cloned()
            .ok_or_else(|| SchemaError::NotFound { id: quote(id) })
    }

    /// The registered ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.schemas.keys().map(String::as_str)
    }
}

/// One step from a schema property to a value inside the traits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Items,
}

/// The `ory.sh/kratos` extension on one trait property.
#[derive(Debug, Clone, Default, Deserialize)]
struct Extension {
    #[serde(default)]
    credentials: CredentialsExt,
    verification: Option<ViaExt>,
    recovery: Option<ViaExt>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct CredentialsExt {
    password: Option<IdentifierExt>,
    webauthn: Option<IdentifierExt>,
    totp: Option<TotpExt>,
    code: Option<CodeExt>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct IdentifierExt {
    #[serde(default)]
    identifier: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct TotpExt {
    #[serde(default)]
    account_name: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct CodeExt {
    #[serde(default)]
    identifier: bool,
    via: Option<AddressVia>,
}

#[derive(Debug, Clone, Deserialize)]
struct ViaExt {
    via: AddressVia,
}

/// A trait property carrying the extension.
#[derive(Debug, Clone)]
struct MarkedField {
    path: Vec<Step>,
    ext: Extension,
}

/// A checked identity schema.
pub struct IdentitySchema {
    id: String,
    raw: Value,
    validator: jsonschema::Validator,
    marked: Vec<MarkedField>,
}

impl fmt::Debug for IdentitySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySchema")
            .field("id", &self.id)
            .field("marked_fields", &self.marked.len())
            .finish_non_exhaustive()
    }
}

impl IdentitySchema {
    fn compile(id: String, raw: Value) -> Result<Self, SchemaError> {
        let invalid = |reason: String| SchemaError::Invalid {
            id: id.clone(),
            reason,
        };
        jsonschema::meta::validate(&raw).map_err(|e| {
            invalid(format!(
                "not valid JSON Schema at `{}`: {e}",
                e.instance_path()
            ))
        })?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&raw)
            .map_err(|e| invalid(format!("cannot be compiled: {e}")))?;
        let traits = raw
            .get("properties")
            .and_then(|p| p.get("traits"))
            .ok_or_else(|| {
                invalid(
                    "it has no `properties.traits`; Kratos schemas describe `{\"traits\": …}`"
                        .into(),
                )
            })?;
        let has_properties = traits
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty());
        if !has_properties {
            return Err(invalid(
                "`properties.traits` must declare at least one property".into(),
            ));
        }
        let mut marked = Vec::new();
        collect_marked(traits, &mut Vec::new(), &mut marked).map_err(invalid)?;
        Ok(Self {
            id,
            raw,
            validator,
            marked,
        })
    }

    /// The schema's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The schema as given.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Validates traits against the schema, reporting every violation, then extracts
    /// the normalised identifiers and addresses.
    pub fn validate(&self, traits: &Value) -> Result<ExtractedTraits, SchemaError> {
        let document = serde_json::json!({ "traits": traits });
        let violations: Vec<TraitViolation> = self
            .validator
            .iter_errors(&document)
            .map(|e| violation(&e))
            .collect();
        if !violations.is_empty() {
            return Err(SchemaError::Traits { violations });
        }
        Ok(self.extract(traits))
    }

    fn extract(&self, traits: &Value) -> ExtractedTraits {
        let mut out = ExtractedTraits::default();
        for field in &self.marked {
            let mut values = Vec::new();
            collect_strings(traits, &field.path, &mut values);
            let creds = &field.ext.credentials;
            for value in values {
                if creds.password.as_ref().is_some_and(|p| p.identifier) {
                    push_unique(&mut out.password_identifiers, normalize::identifier(value));
                }
                if creds.webauthn.as_ref().is_some_and(|p| p.identifier) {
                    push_unique(&mut out.webauthn_identifiers, normalize::identifier(value));
                }
                if let Some(code) = creds.code.as_ref().filter(|c| c.identifier) {
                    let via = code.via.unwrap_or(AddressVia::Email);
                    push_unique(&mut out.code_identifiers, spec(value, via));
                }
                if creds.totp.as_ref().is_some_and(|t| t.account_name)
                    && out.totp_account_name.is_none()
                {
                    out.totp_account_name = Some(value.trim().to_owned());
                }
                if let Some(v) = &field.ext.verification {
                    push_unique(&mut out.verifiable_addresses, spec(value, v.via));
                }
                if let Some(r) = &field.ext.recovery {
                    push_unique(&mut out.recovery_addresses, spec(value, r.via));
                }
            }
        }
        out
    }

    /// The trait properties, depth first, for generating forms.
    pub fn trait_fields(&self) -> Vec<TraitField> {
        let mut out = Vec::new();
        if let Some(traits) = self.raw.get("properties").and_then(|p| p.get("traits")) {
            collect_fields(traits, "", &mut out);
        }
        out
    }
}

fn spec(value: &str, via: AddressVia) -> AddressSpec {
    AddressSpec {
        value: normalize::address(value, via),
        via,
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Walks the traits schema, parsing the extension wherever it appears.
fn collect_marked(
    node: &Value,
    path: &mut Vec<Step>,
    out: &mut Vec<MarkedField>,
) -> Result<(), String> {
    let here = || dotted(path);
    if let Some(ext) = node.get(EXTENSION) {
        let parsed: Extension = serde_json::from_value(ext.clone())
            .map_err(|e| format!("`{EXTENSION}` on `traits{}` is malformed: {e}", here()))?;
        if parsed.verification.is_some() {
            let format = node.get("format").and_then(Value::as_str);
            if !format.is_some_and(|f| VERIFIABLE_FORMATS.contains(&f)) {
                return Err(format!(
                    "`traits{}` is verifiable, so it must declare a `format` (one of {})",
                    here(),
                    VERIFIABLE_FORMATS.join(", ")
                ));
            }
        }
        out.push(MarkedField {
            path: path.clone(),
            ext: parsed,
        });
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            path.push(Step::Key(key.clone()));
            collect_marked(child, path, out)?;
            path.pop();
        }
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        path.push(Step::Items);
        collect_marked(items, path, out)?;
        path.pop();
    }
    Ok(())
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
        None => {
            if let Some(s) = value.as_str() {
                out.push(s);
            }
        }
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

fn collect_fields(node: &Value, prefix: &str, out: &mut Vec<TraitField>) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (key, child) in props {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let json_type = match child.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("string")
                .to_owned(),
            _ => "string".to_owned(),
        };
        if json_type == "object" {
            collect_fields(child, &path, out);
            continue;
        }
        out.push(TraitField {
            path,
            json_type,
            format: child
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_owned),
            title: child
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned),
            required: required.contains(&key.as_str()),
        });
    }
}

/// Shortens a user-supplied value for quoting in a message.
fn quote(s: &str) -> String {
    let mut out: String = s.chars().take(QUOTE_MAX).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn violation(e: &jsonschema::ValidationError<'_>) -> TraitViolation {
    let mut path = e
        .instance_path()
        .iter()
        .map(|seg| seg.to_string())
        .collect::<Vec<_>>()
        .join(".");
    if path.is_empty() {
        path = "traits".to_owned();
    }
    let instance = e.instance();
    let length = || instance.as_str().map_or(0, |s| s.chars().count());
    let (kind, message) = match e.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            path = format!("{path}.{name}");
            (
                ViolationKind::Required,
                format!("Property {} is missing.", quote(&name)),
            )
        }
        ValidationErrorKind::MinLength { limit } => (
            ViolationKind::MinLength,
            format!("length must be >= {limit}, but got {}", length()),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            ViolationKind::MaxLength,
            format!("length must be <= {limit}, but got {}", length()),
        ),
        ValidationErrorKind::Format { format } => (
            ViolationKind::Format,
            format!(
                "{:?} is not valid {format:?}",
                quote(instance.as_str().unwrap_or_default())
            ),
        ),
        ValidationErrorKind::Pattern { pattern } => (
            ViolationKind::Pattern,
            format!(
                "{:?} does not match pattern {pattern:?}",
                quote(instance.as_str().unwrap_or_default())
            ),
        ),
        ValidationErrorKind::Type { kind } => (
            ViolationKind::Type,
            format!("expected {kind:?}, but got {}", json_type_name(instance))
                .replace("Single(", "")
                .replace(')', "")
                .to_lowercase(),
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => (
            ViolationKind::Other,
            format!(
                "unknown properties: {}",
                unexpected
                    .iter()
                    .map(|u| quote(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        _ => (ViolationKind::Other, quote(&e.to_string())),
    };
    TraitViolation {
        path,
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kratos_minimal() -> Value {
        json!({"$schema":"http://json-schema.org/draft-07/schema#","$id":"https://example.invalid/person.schema.json",
         "type":"object","properties":{"traits":{"type":"object","required":["username","email"],
          "additionalProperties":false,"properties":{
           "username":{"type":"string","minLength":3,"maxLength":32,
             "ory.sh/kratos":{"credentials":{"password":{"identifier":true}}}},
           "email":{"type":"string","format":"email","ory.sh/kratos":{
             "credentials":{"password":{"identifier":true},"code":{"identifier":true,"via":"email"}},
             "verification":{"via":"email"},"recovery":{"via":"email"}}}}}}})
    }

    fn registry() -> SchemaRegistry {
        let mut r = SchemaRegistry::new();
        r.add("person", kratos_minimal()).unwrap();
        r
    }

    fn violations(r: Result<ExtractedTraits, SchemaError>) -> Vec<(String, ViolationKind)> {
        match r {
            Err(SchemaError::Traits { violations }) => {
                violations.into_iter().map(|v| (v.path, v.kind)).collect()
            }
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn kratos_schema_validates_and_extracts() {
        let r = registry();
        assert_eq!(r.default_id(), Some("person"));
        let s = r.get("person").unwrap();
        let x = s
            .validate(&json!({"username": " Ada ", "email": "Ada@Example.COM"}))
            .unwrap();
        // Properties are visited in key order.
        assert_eq!(x.password_identifiers, vec!["ada@example.com", "ada"]);
        let email = AddressSpec {
            value: "ada@example.com".into(),
            via: AddressVia::Email,
        };
        assert_eq!(x.verifiable_addresses, vec![email.clone()]);
        assert_eq!(x.recovery_addresses, vec![email.clone()]);
        assert_eq!(x.code_identifiers, vec![email]);
    }

    #[test]
    fn nested_and_array_fields_are_extracted() {
        let mut r = SchemaRegistry::new();
        r.add(
            "s",
            json!({"type":"object","properties":{"traits":{"type":"object","properties":{
            "contact":{"type":"object","properties":{"emails":{"type":"array","items":{
                "type":"string","format":"email","ory.sh/kratos":{"verification":{"via":"email"},
                "credentials":{"password":{"identifier":true}}}}}}},
            "phone":{"type":"string","format":"tel","ory.sh/kratos":{"recovery":{"via":"sms"},
                "credentials":{"totp":{"account_name":true}}}}}}}}),
        )
        .unwrap();
        let x = r
            .get("s")
            .unwrap()
            .validate(&json!({
            "contact": {"emails": ["A@x.io", "b@x.io", "a@X.io"]}, "phone": "+1 (555) 010-99"}))
            .unwrap();
        assert_eq!(x.password_identifiers, vec!["a@x.io", "b@x.io"]);
        assert_eq!(x.verifiable_addresses.len(), 2);
        assert_eq!(
            x.recovery_addresses,
            vec![AddressSpec {
                value: "+155501099".into(),
                via: AddressVia::Sms
            }]
        );
        assert_eq!(x.totp_account_name.as_deref(), Some("+1 (555) 010-99"));
    }

    #[test]
    fn violations_name_their_fields() {
        let s = registry().get("person").unwrap();
        assert_eq!(
            violations(s.validate(&json!({"username": "ada"}))),
            vec![("traits.email".to_owned(), ViolationKind::Required)]
        );
        let found = violations(s.validate(&json!({"username": "ab", "email": "nope", "extra": 1})));
        assert!(
            found.contains(&("traits.username".into(), ViolationKind::MinLength)),
            "{found:?}"
        );
        assert!(
            found.contains(&("traits.email".into(), ViolationKind::Format)),
            "{found:?}"
        );
        assert!(
            found.contains(&("traits".into(), ViolationKind::Other)),
            "{found:?}"
        );
        assert_eq!(
            violations(s.validate(&json!({"username": 5, "email": "a@b.io"}))),
            vec![("traits.username".to_owned(), ViolationKind::Type)]
        );
        let err = s
            .validate(&json!({"username": "ab", "email": "a@b.io"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the traits are invalid: traits.username: length must be >= 3, but got 2"
        );
        assert_eq!(ViolationKind::Required.message_id(), 4_000_002);
        let err = s.validate(&json!("nope")).unwrap_err();
        assert!(err.to_string().contains("traits: expected object"), "{err}");
    }

    #[test]
    fn long_values_are_not_echoed_whole() {
        let s = registry().get("person").unwrap();
        let long = "x".repeat(10_000);
        let err = s
            .validate(&json!({"username": "ada", "email": long}))
            .unwrap_err();
        assert!(err.to_string().len() < 400, "{err}");
    }

    #[test]
    fn invalid_schemas_are_refused_at_load() {
        let mut r = SchemaRegistry::new();
        let cases = [
            json!({"type": 12}),
            json!({"type": "object", "properties": {"name": {"type": "string"}}}),
            json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {}}}}),
            json!({"properties": {"traits": {"properties": {"e": {"type": "string", "format": "email",
                "ory.sh/kratos": {"verification": {"via": "pigeon"}}}}}}}),
            json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                "ory.sh/kratos": {"credentials": {"password": {"identifier": "yes"}}}}}}}}),
            json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                "ory.sh/kratos": {"verification": {"via": "email"}}}}}}}),
            json!({"properties": {"traits": {"properties": {"e": {"$ref": "https://example.invalid/remote.json"}}}}}),
        ];
        for schema in cases {
            let err = r.add("bad", schema.clone()).unwrap_err();
            assert!(
                matches!(err, SchemaError::Invalid { .. }),
                "{schema}: {err:?}"
            );
            assert!(
                err.to_string()
                    .starts_with("identity schema `bad` is invalid"),
                "{err}"
            );
        }
        assert_eq!(r.default_id(), None);
        assert!(matches!(r.get("bad"), Err(SchemaError::NotFound { .. })));
        assert!(r.set_default("bad").is_err());
    }

    #[test]
    fn schemas_load_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("person.json");
        std::fs::write(&path, kratos_minimal().to_string()).unwrap();
        let mut r = SchemaRegistry::new();
        r.add_file("person", &path).unwrap();
        r.add("other", kratos_minimal()).unwrap();
        r.set_default("other").unwrap();
        assert_eq!(r.ids().collect::<Vec<_>>(), vec!["other", "person"]);
        assert_eq!(r.default_id(), Some("other"));
        assert!(matches!(
            r.add_file("x", dir.path().join("missing.json")),
            Err(SchemaError::Read { .. })
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            r.add_file("x", &path),
            Err(SchemaError::Invalid { .. })
        ));
    }

    #[test]
    fn trait_fields_describe_the_form() {
        let s = registry().get("person").unwrap();
        let fields = s.trait_fields();
        let email = fields.iter().find(|f| f.path == "email").unwrap();
        assert_eq!(email.format.as_deref(), Some("email"));
        assert!(email.required);
        assert_eq!(fields.len(), 2);
    }
}
