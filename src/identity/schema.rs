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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::normalize;

/// The extension key on trait properties.
const EXTENSION: &str = "ory.sh/kratos";
/// Formats Kratos accepts on a trait that is verified or recovered through.
const ADDRESS_FORMATS: &[&str] = &["email", "tel", "date", "time", "date-time", "no-validate"];
/// How much of a user's value an error message may quote.
const QUOTE_MAX: usize = 64;
/// How long any message built from a schema may grow.
const MESSAGE_MAX: usize = 200;
/// How deep traits may nest (counting `$ref` hops); also stops `$ref` cycles.
const MAX_DEPTH: usize = 32;

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

    /// Checks and adds a schema, replacing one with the same id. The first schema
    /// added becomes the default.
    pub fn add(&mut self, id: impl Into<String>, schema: Value) -> Result<(), SchemaError> {
        let id = id.into();
        let compiled = IdentitySchema::compile(id.clone(), schema)?;
        self.default_id.get_or_insert_with(|| id.clone());
        self.schemas.insert(id, Arc::new(compiled));
        Ok(())
    }

    /// Reads a schema from a JSON file, checks it and adds it (see [`Self::add`]).
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

    /// The default schema's id, if any schema is registered.
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

    fn extract(&self, traits: &Value) -> ExtractedTraits {
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

    /// Turns the strings an HTML form sends into the JSON types the schema declares:
    /// numbers for `number`/`integer` traits, booleans for `boolean` ones (`true`, `on`,
    /// `1`; anything else is `false`), and drops empty strings of non-`string` traits.
    /// Values that do not parse stay strings, so validation reports them.
    pub fn coerce_form_traits(&self, traits: &mut Value) {
        for field in self.trait_fields() {
            let (parent, last) = match field.path.rsplit_once('.') {
                Some((parent, last)) => (format!("/{}", parent.replace('.', "/")), last),
                None => (String::new(), field.path.as_str()),
            };
            let Some(map) = traits.pointer_mut(&parent).and_then(Value::as_object_mut) else {
                continue;
            };
            let Some(Value::String(text)) = map.get(last) else {
                continue;
            };
            let text = text.trim().to_owned();
            let coerced = match field.json_type.as_str() {
                "integer" => text.parse::<i64>().ok().map(Value::from),
                "number" => text
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number)),
                "boolean" => Some(Value::Bool(matches!(text.as_str(), "true" | "on" | "1"))),
                _ => None,
            };
            match coerced {
                Some(value) => {
                    map.insert(last.to_owned(), value);
                }
                None if text.is_empty() && field.json_type != "string" => {
                    map.remove(last);
                }
                None => {}
            }
        }
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
enum Step {
    Key(String),
    Items,
}

/// A trait property carrying the extension.
#[derive(Debug, Clone)]
struct MarkedField {
    path: Vec<Step>,
    marks: Marks,
}

/// Walks a traits subschema through `properties`, `items` and local `$ref`s, parsing
/// the extension wherever it appears.
fn collect_marked(
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
fn local_ref<'s>(root: &'s Value, node: &Value) -> Result<Option<&'s Value>, String> {
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

/// Shortens a user-supplied value for quoting in a message.
fn quote(s: &str) -> String {
    truncate(s, QUOTE_MAX)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", s.get(..end).unwrap_or_default()),
        None => s.to_owned(),
    }
}

fn json_type_name(v: &Value) -> &'static str {
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
fn violation(e: &ValidationError<'_>) -> TraitViolation {
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
mod form_tests {
    use super::*;

    #[test]
    fn form_strings_become_the_declared_types() {
        let mut registry = SchemaRegistry::new();
        registry
            .add(
                "s",
                serde_json::json!({
                    "type": "object",
                    "properties": { "traits": { "type": "object", "properties": {
                        "email": { "type": "string" },
                        "age": { "type": "integer" },
                        "score": { "type": "number" },
                        "news": { "type": "boolean" },
                        "name": { "type": "object", "properties": { "first": { "type": "string" } } }
                    } } }
                }),
            )
            .unwrap();
        let schema = registry.get("s").unwrap();
        let mut traits = serde_json::json!({
            "email": "a@b.c", "age": " 42 ", "score": "1.5", "news": "on", "name": { "first": "7" }
        });
        schema.coerce_form_traits(&mut traits);
        assert_eq!(
            traits,
            serde_json::json!({ "email": "a@b.c", "age": 42, "score": 1.5, "news": true, "name": { "first": "7" } })
        );
        let mut bad = serde_json::json!({ "age": "old", "score": "" });
        schema.coerce_form_traits(&mut bad);
        assert_eq!(bad, serde_json::json!({ "age": "old" }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The "minimal example schema" of the Kratos reference, §5.
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

    /// A Kratos quickstart-style schema: email identifier, a nested name, 2020-12.
    fn kratos_person() -> Value {
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

    fn schema(value: Value) -> Arc<IdentitySchema> {
        let mut r = SchemaRegistry::new();
        r.add("s", value).unwrap();
        r.get("s").unwrap()
    }

    fn email(value: &str) -> AddressSpec {
        AddressSpec {
            value: value.into(),
            via: AddressVia::Email,
        }
    }

    fn violations(r: Result<ExtractedTraits, SchemaError>) -> Vec<(String, ViolationKind)> {
        match r {
            Err(SchemaError::Traits { violations }) => {
                violations.into_iter().map(|v| (v.path, v.kind)).collect()
            }
            other => panic!("expected violations, got {other:?}"),
        }
    }

    fn refusal(value: Value) -> String {
        let err = SchemaRegistry::new().add("bad", value).unwrap_err();
        assert!(matches!(err, SchemaError::Invalid { .. }), "{err:?}");
        err.to_string()
    }

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
    fn registry_finds_defaults_and_loads_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("person.json");
        std::fs::write(&path, kratos_minimal().to_string()).unwrap();
        let mut r = SchemaRegistry::new();
        assert_eq!(r.default_id(), None);
        r.add_file("person", &path).unwrap();
        assert_eq!(r.default_id(), Some("person"));
        assert_eq!(r.get("person").unwrap().raw(), &kratos_minimal());
        r.add("other", kratos_person()).unwrap();
        assert_eq!(r.default_id(), Some("person"));
        r.set_default("other").unwrap();
        assert_eq!(r.default_id(), Some("other"));
        assert_eq!(r.ids().collect::<Vec<_>>(), vec!["other", "person"]);
        assert_eq!(r.get("other").unwrap().id(), "other");

        let err = r.get("nope").unwrap_err();
        assert!(matches!(&err, SchemaError::NotFound { id } if id == "nope"));
        assert_eq!(
            err.to_string(),
            "identity schema `nope` is not registered; register it with SchemaRegistry::add"
        );
        assert!(matches!(
            r.set_default("nope"),
            Err(SchemaError::NotFound { .. })
        ));
        assert!(matches!(
            r.add_file("x", dir.path().join("missing.json")),
            Err(SchemaError::Read { .. })
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            r.add_file("x", &path),
            Err(SchemaError::Invalid { .. })
        ));
        assert!(r.get("x").is_err());
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

    #[test]
    fn address_via_round_trips() {
        for via in [AddressVia::Email, AddressVia::Sms] {
            assert_eq!(via.as_str().parse::<AddressVia>(), Ok(via));
            assert_eq!(serde_json::to_value(via).unwrap(), json!(via.as_str()));
        }
        assert!("fax".parse::<AddressVia>().is_err());
    }
}
