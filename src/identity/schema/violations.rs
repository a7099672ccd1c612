//! What is wrong with a schema or with traits: [`SchemaError`], the [`TraitViolation`]s
//! that jsonschema's errors become (named like UI inputs, with Kratos message ids), and
//! the helpers that keep user values short when they are quoted in a message.

use std::fmt;
use std::path::PathBuf;

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

/// How much of a user's value an error message may quote.
pub(super) const QUOTE_MAX: usize = 64;
/// How long any message built from a schema may grow.
pub(super) const MESSAGE_MAX: usize = 200;

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
    /// Kratos's UI message id for this kind of violation.
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
    /// The field as a UI input name: `traits.email`, `traits.name.first`,
    /// `traits.emails.0`, or `traits` for the object itself.
    pub path: String,
    /// The kind of rule.
    pub kind: ViolationKind,
    /// What is wrong, for a person (user values are quoted truncated).
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
        /// Every violation found, in schema order.
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

/// Shortens a user-supplied value for quoting in a message.
pub(super) fn quote(s: &str) -> String {
    truncate(s, QUOTE_MAX)
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or_default()),
        None => s.to_owned(),
    }
}

pub(super) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Turns a jsonschema error on `{"traits": …}` into a violation named like the UI input.
pub(super) fn violation(e: &ValidationError<'_>) -> TraitViolation {
    let mut path = e
        .instance_path()
        .iter()
        .map(|segment| segment.to_string())
        .collect::<Vec<_>>()
        .join(".");
    if path.is_empty() {
        path = "traits".to_owned();
    }
    let instance = e.instance();
    let text = || quote(instance.as_str().unwrap_or_default());
    let length = || instance.as_str().map_or(0, |s| s.chars().count());
    let (kind, message) = match e.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), quote);
            path = format!("{path}.{name}");
            (
                ViolationKind::Required,
                format!("Property {name} is missing."),
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
            format!("{:?} is not valid {format:?}", text()),
        ),
        ValidationErrorKind::Pattern { pattern } => (
            ViolationKind::Pattern,
            format!("{:?} does not match pattern {:?}", text(), quote(pattern)),
        ),
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.as_str().to_owned(),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let got = json_type_name(instance);
            (
                ViolationKind::Type,
                format!("expected {expected}, but got {got}"),
            )
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let names: Vec<String> = unexpected
                .iter()
                .map(|u| format!("{:?}", quote(u)))
                .collect();
            (
                ViolationKind::Other,
                truncate(
                    &format!("additionalProperties {} not allowed", names.join(", ")),
                    MESSAGE_MAX,
                ),
            )
        }
        // Everything else: jsonschema's wording, with the value itself left out.
        _ => (
            ViolationKind::Other,
            truncate(&e.masked_with("The value").to_string(), MESSAGE_MAX),
        ),
    };
    TraitViolation {
        path,
        kind,
        message,
    }
}

#[cfg(test)]
mod tests {
    use crate::identity::schema::ViolationKind;
    use crate::identity::schema::fixtures::{kratos_minimal, kratos_person, schema, violations};
    use serde_json::json;

    #[test]
    fn violations_name_their_fields() {
        let s = schema(kratos_minimal());
        let err = s.validate(&json!({"username": "ada"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the traits are invalid: traits.email: Property email is missing."
        );
        let err = s
            .validate(&json!({"username": "ab", "email": "a@b.io"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the traits are invalid: traits.username: length must be >= 3, but got 2"
        );
        let err = s
            .validate(&json!({"username": "ada", "email": "x"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"the traits are invalid: traits.email: "x" is not valid "email""#
        );
        let err = s
            .validate(&json!({"username": 5, "email": "a@b.io"}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the traits are invalid: traits.username: expected string, but got integer"
        );
        let err = s.validate(&json!("nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the traits are invalid: traits: expected object, but got string"
        );
        let err = s.validate(&json!(null)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the traits are invalid: traits: expected object, but got null"
        );
        let nested = schema(kratos_person());
        assert_eq!(
            violations(nested.validate(&json!({"email": "a@b.io", "name": {"first": 1}}))),
            vec![("traits.name.first".to_owned(), ViolationKind::Type)]
        );
        assert_eq!(
            violations(nested.validate(&json!({"email": "a@b.io", "name": {}}))),
            vec![("traits.name.first".to_owned(), ViolationKind::Required)]
        );
        assert_eq!(ViolationKind::Required.message_id(), 4_000_002);
        assert_eq!(ViolationKind::MaxLength.message_id(), 4_000_017);
        assert_eq!(ViolationKind::Pattern.message_id(), 4_000_004);
    }

    #[test]
    fn every_violation_is_reported() {
        let s = schema(kratos_minimal());
        assert_eq!(
            violations(s.validate(&json!({}))),
            vec![
                ("traits.username".to_owned(), ViolationKind::Required),
                ("traits.email".to_owned(), ViolationKind::Required),
            ]
        );
        let long = "y".repeat(40);
        let found = violations(s.validate(&json!({"username": long, "email": "nope", "extra": 1})));
        assert_eq!(found.len(), 3, "{found:?}");
        for expected in [
            ("traits.username".to_owned(), ViolationKind::MaxLength),
            ("traits.email".to_owned(), ViolationKind::Format),
            ("traits".to_owned(), ViolationKind::Other),
        ] {
            assert!(found.contains(&expected), "{found:?}");
        }
    }

    #[test]
    fn long_values_are_not_echoed_whole() {
        let s = schema(kratos_minimal());
        let long = "x".repeat(10_000);
        let err = s
            .validate(&json!({"username": "ada", "email": long, long.clone(): 1}))
            .unwrap_err();
        assert!(err.to_string().len() < 500, "{err}");
        assert!(err.to_string().contains("…"), "{err}");
        let enumerated = schema(json!({"properties":{"traits":{"properties":{
            "plan":{"enum":["free","pro"]}}}}}));
        let err = enumerated.validate(&json!({"plan": long})).unwrap_err();
        assert!(!err.to_string().contains("xxx"), "{err}");
    }
}
