//! Identity schemas in Kratos's format: a JSON Schema whose `traits` property describes
//! the profile, annotated with the `ory.sh/kratos` extension that says which traits sign
//! in (`credentials.password.identifier`, `credentials.code.identifier`…) and which are
//! addresses to verify or recover through (`verification.via`, `recovery.via`).
//!
//! A schema is checked once, when it is added to the [`SchemaRegistry`]: it must name a
//! supported draft (draft-07, the default when `$schema` is absent, or 2019-09/2020-12…),
//! be valid against that draft's meta-schema, be Kratos-shaped (`properties.traits` with
//! at least one property), and carry a well-formed extension. Schemas are self-contained:
//! nothing is ever fetched, so a remote `$ref` is refused at load time.
//!
//! [`IdentitySchema::validate`] then reports every violation with the field's UI name
//! (`traits.email`) and a Kratos message id, and extracts the normalised identifiers and
//! addresses (see [`super::normalize`]).
//!
//! The module is split by concept: [`SchemaRegistry`] in `registry`, the extension and
//! what it extracts from traits in `extension`, violations and errors in `violations`,
//! and the coercion of form-encoded traits in `form`.

mod extension;
mod form;
mod registry;
mod violations;

use std::fmt;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

use super::normalize;
use extension::{MarkedField, collect_marked, local_ref};
use violations::{MESSAGE_MAX, QUOTE_MAX, json_type_name, quote, truncate, violation};

pub use extension::{AddressSpec, AddressVia, ExtractedTraits, UnknownAddressVia};
pub use registry::SchemaRegistry;
pub use violations::{SchemaError, TraitViolation, ViolationKind};

/// How deep traits may nest (counting `$ref` hops); also stops `$ref` cycles.
const MAX_DEPTH: usize = 32;

/// A trait property, for generating forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitField {
    /// Dotted path below `traits` (`email`, `name.first`).
    pub path: String,
    /// The JSON type (`string`, `number`, `boolean`, `array`…; `string` if undeclared).
    pub json_type: String,
    /// The `format`, if any.
    pub format: Option<String>,
    /// The `title`, if any.
    pub title: Option<String>,
    /// Whether its parent object requires it.
    pub required: bool,
}

/// A checked identity schema.
pub struct IdentitySchema {
    id: String,
    raw: Value,
    validator: Validator,
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
        // Building also validates the schema against its draft's meta-schema.
        let validator = jsonschema::options()
            .with_draft(draft_of(&raw).map_err(invalid)?)
            .offline()
            .should_validate_formats(true)
            .with_format("tel", is_phone_number)
            .with_format("no-validate", |_: &str| true)
            .build(&raw)
            .map_err(|e| invalid(schema_problem(&e)))?;
        let traits = traits_schema(&raw).map_err(invalid)?;
        let mut marked = Vec::new();
        collect_marked(&raw, traits, &mut Vec::new(), 0, &mut marked).map_err(invalid)?;
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

    /// Validates traits against the schema (which describes `{"traits": …}`), reporting
    /// every violation, then extracts the normalised identifiers and addresses.
    ///
    /// Traits are always a JSON object, whatever the schema says.
    pub fn validate(&self, traits: &Value) -> Result<ExtractedTraits, SchemaError> {
        if !traits.is_object() {
            return Err(SchemaError::Traits {
                violations: vec![TraitViolation {
                    path: "traits".to_owned(),
                    kind: ViolationKind::Type,
                    message: format!("expected object, but got {}", json_type_name(traits)),
                }],
            });
        }
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

    /// The trait properties, depth first (nested objects are flattened to `name.first`),
    /// for generating forms.
    pub fn trait_fields(&self) -> Vec<TraitField> {
        let mut out = Vec::new();
        if let Some(traits) = self.raw.pointer("/properties/traits") {
            collect_fields(&self.raw, traits, "", 0, &mut out);
        }
        out
    }
}

/// The draft named by `$schema`; Kratos's draft-07 when there is none.
fn draft_of(raw: &Value) -> Result<Draft, String> {
    let Some(uri) = raw.get("$schema") else {
        return Ok(Draft::Draft7);
    };
    match uri.as_str().map(Draft::from_schema_uri) {
        Some(Draft::Unknown) | None => Err(format!(
            "`$schema` {} is not a supported draft; use \
             \"http://json-schema.org/draft-07/schema#\" or \
             \"https://json-schema.org/draft/2020-12/schema\"",
            truncate(&uri.to_string(), QUOTE_MAX)
        )),
        Some(draft) => Ok(draft),
    }
}

/// Why jsonschema refused to compile a schema.
fn schema_problem(e: &ValidationError<'_>) -> String {
    if let ValidationErrorKind::Referencing(cause) = e.kind() {
        return format!(
            "remote `$ref`s are never fetched, so inline the referenced schema under \
             `definitions` ({})",
            truncate(&cause.to_string(), MESSAGE_MAX)
        );
    }
    let at = e.instance_path().as_str();
    let at = if at.is_empty() { "/" } else { at };
    truncate(
        &format!("not valid JSON Schema at `{at}`: {e}"),
        MESSAGE_MAX,
    )
}

/// The `traits` subschema, checked against Kratos's identity meta-schema.
fn traits_schema(raw: &Value) -> Result<&Value, String> {
    let traits = raw
        .pointer("/properties/traits")
        .ok_or("it has no `properties.traits`; an identity schema describes `{\"traits\": {…}}`")?;
    if traits.get("type").is_some_and(|t| t != "object") {
        return Err("`properties.traits.type` must be \"object\"".into());
    }
    let properties = traits
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
        .ok_or("`properties.traits.properties` must declare at least one trait")?;
    if let Some((name, _)) = properties.iter().find(|(_, s)| !s.is_object()) {
        return Err(format!(
            "trait `{}` must be described by a schema object",
            quote(name)
        ));
    }
    Ok(traits)
}

/// Kratos's `tel` format: an international number, `+` and 7 to 15 digits once spaces,
/// dashes, dots and parentheses are removed.
fn is_phone_number(value: &str) -> bool {
    normalize::address(value, AddressVia::Sms)
        .strip_prefix('+')
        .is_some_and(|digits| {
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        })
}

fn collect_fields(
    root: &Value,
    node: &Value,
    prefix: &str,
    depth: usize,
    out: &mut Vec<TraitField>,
) {
    // `$ref`s were checked at load time; a property's own keywords win over its target's.
    let target = local_ref(root, node).ok().flatten();
    let keyword = |name: &str| node.get(name).or_else(|| target.and_then(|t| t.get(name)));
    let Some(props) = keyword("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = keyword("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (key, child) in props {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let child_target = local_ref(root, child).ok().flatten();
        let attr = |name: &str| {
            child
                .get(name)
                .or_else(|| child_target.and_then(|t| t.get(name)))
        };
        let json_type = match attr("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("string"),
            _ => "string",
        };
        if json_type == "object" && depth < MAX_DEPTH {
            collect_fields(root, child, &path, depth + 1, out);
            continue;
        }
        let text = |name: &str| attr(name).and_then(Value::as_str).map(str::to_owned);
        out.push(TraitField {
            json_type: json_type.to_owned(),
            format: text("format"),
            title: text("title"),
            required: required.contains(&key.as_str()),
            path,
        });
    }
}

#[cfg(test)]
mod fixtures {
    //! Schemas and helpers the tests of every file here share.

    use std::sync::Arc;

    use super::*;
    use serde_json::json;

    /// The "minimal example schema" of the Kratos reference, §5.
    pub(super) fn kratos_minimal() -> Value {
        json!({"$schema":"http://json-schema.org/draft-07/schema#","$id":"https://example.invalid/person.schema.json",
         "type":"object","properties":{"traits":{"type":"object","required":["username","email"],
          "additionalProperties":false,"properties":{
           "username":{"type":"string","minLength":3,"maxLength":32,
             "ory.sh/kratos":{"credentials":{"password":{"identifier":true}}}},
           "email":{"type":"string","format":"email","ory.sh/kratos":{
             "credentials":{"password":{"identifier":true},"code":{"identifier":true,"via":"email"}},
             "verification":{"via":"email"},"recovery":{"via":"email"}}}}}}})
    }

    /// A Kratos quickstart-style schema: email identifier, a nested name, 2020-12.
    pub(super) fn kratos_person() -> Value {
        json!({"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Person",
         "type":"object","properties":{"traits":{"type":"object","required":["email"],
          "properties":{
           "email":{"type":"string","format":"email","title":"E-Mail","minLength":3,
             "ory.sh/kratos":{"credentials":{"password":{"identifier":true},
               "webauthn":{"identifier":true},"totp":{"account_name":true}},
               "verification":{"via":"email"},"recovery":{"via":"email"}}},
           "name":{"type":"object","required":["first"],"properties":{
             "first":{"type":"string","title":"First name"},
             "last":{"type":"string","title":"Last name"}}}}}}})
    }

    pub(super) fn schema(value: Value) -> Arc<IdentitySchema> {
        let mut r = SchemaRegistry::new();
        r.add("s", value).unwrap();
        r.get("s").unwrap()
    }

    pub(super) fn email(value: &str) -> AddressSpec {
        AddressSpec {
            value: value.into(),
            via: AddressVia::Email,
        }
    }

    pub(super) fn violations(
        r: Result<ExtractedTraits, SchemaError>,
    ) -> Vec<(String, ViolationKind)> {
        match r {
            Err(SchemaError::Traits { violations }) => {
                violations.into_iter().map(|v| (v.path, v.kind)).collect()
            }
            other => panic!("expected violations, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{email, kratos_person, schema};
    use super::*;
    use serde_json::json;

    fn refusal(value: Value) -> String {
        let err = SchemaRegistry::new().add("bad", value).unwrap_err();
        assert!(matches!(err, SchemaError::Invalid { .. }), "{err:?}");
        err.to_string()
    }
    #[test]
    fn invalid_schemas_are_refused_at_load() {
        let cases = [
            (json!({"type": 12}), "not valid JSON Schema"),
            (
                json!({"$schema": "http://json-schema.org/draft-07/schema#",
                    "properties": {"traits": {"properties": {"e": {"minLength": "3"}}}}}),
                "not valid JSON Schema at `/properties/traits/properties/e/minLength`",
            ),
            (
                json!({"$schema": "https://example.invalid/meta"}),
                "not a supported draft",
            ),
            (
                json!({"type": "object", "properties": {"name": {"type": "string"}}}),
                "no `properties.traits`",
            ),
            (
                json!({"properties": {"traits": {"type": "object", "properties": {}}}}),
                "at least one trait",
            ),
            (
                json!({"properties": {"traits": {"type": "string", "properties": {"e": {}}}}}),
                "must be \"object\"",
            ),
            (
                json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                    "format": "email", "ory.sh/kratos": {"verification": {"via": "pigeon"}}}}}}}),
                "`ory.sh/kratos` on `traits.e` is malformed: unknown variant `pigeon`",
            ),
            (
                json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                    "ory.sh/kratos": {"credentials": {"password": {"identifier": "yes"}}}}}}}}),
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                    "ory.sh/kratos": {"verifcation": {"via": "email"}}}}}}}),
                "unknown field `verifcation`",
            ),
            (
                json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                    "ory.sh/kratos": {"recovery": {"via": "email"}}}}}}}),
                "must declare a `format`",
            ),
            (
                json!({"properties": {"traits": {"properties": {"e": {"type": "string",
                    "ory.sh/kratos": {"credentials": {"code": {"identifier": true}}}}}}}}),
                "`credentials.code.via`",
            ),
            (
                json!({"properties": {"traits": {"properties": {"e": {"$ref": "https://example.invalid/remote.json"}}}}}),
                "remote `$ref`s are never fetched",
            ),
            (
                json!({"definitions": {"loop": {"type": "object", "properties": {"next": {"$ref": "#/definitions/loop"}}}},
                    "properties": {"traits": {"properties": {"e": {"$ref": "#/definitions/loop"}}}}}),
                "nests more than 32 levels",
            ),
        ];
        for (value, expected) in cases {
            let message = refusal(value.clone());
            assert!(
                message.starts_with("identity schema `bad` is invalid: "),
                "{message}"
            );
            assert!(message.contains(expected), "{value}: {message}");
        }
    }

    #[test]
    fn known_extension_keys_and_formats_load() {
        let s = schema(json!({"properties": {"traits": {"properties": {
            "email": {"type": "string", "format": "no-validate", "ory.sh/kratos": {
                "credentials": {"passkey": {"display_name": true}},
                "organizations": {"matcher": "email_domain"},
                "verification": {"via": "email"}}}}}}}));
        let x = s.validate(&json!({"email": "Not An Email"})).unwrap();
        assert_eq!(x.verifiable_addresses, vec![email("not an email")]);
        assert!(is_phone_number("+49 (30) 1234-567"));
        assert!(!is_phone_number("030 1234567"));
        assert!(!is_phone_number("+49 abc 12345"));
    }
    #[test]
    fn trait_fields_describe_the_form() {
        let fields = schema(kratos_person()).trait_fields();
        let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["email", "name.first", "name.last"]);
        assert_eq!(
            fields.first(),
            Some(&TraitField {
                path: "email".into(),
                json_type: "string".into(),
                format: Some("email".into()),
                title: Some("E-Mail".into()),
                required: true,
            })
        );
        assert!(fields.get(1).is_some_and(|f| f.required));
        assert!(fields.get(2).is_some_and(|f| !f.required));
    }
}
