//! The [`SchemaRegistry`]: the identity schemas an instance knows, by id, and which one
//! is the default.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::violations::quote;
use super::{IdentitySchema, SchemaError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::schema::fixtures::{kratos_minimal, kratos_person};

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
}
