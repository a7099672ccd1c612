//! Form-encoded traits: the strings an HTML form posts, turned into the JSON types the
//! schema declares before they are validated.

use serde_json::Value;

use super::IdentitySchema;

impl IdentitySchema {
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
}

#[cfg(test)]
mod tests {
    use crate::identity::schema::SchemaRegistry;

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
