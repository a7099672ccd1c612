//! What the benches share: the engine they measure, on a store URL and a config.

use identa::identity::SchemaRegistry;
use identa::store::SeaOrmStore;
use identa::{Config, Identa};
use serde_json::json;

/// An engine whose schema has one trait, `email`, the password identifier.
pub async fn email_engine(url: &str, config: Config) -> Identa {
    let mut schemas = SchemaRegistry::new();
    schemas
        .add(
            "default",
            json!({ "type": "object", "properties": { "traits": { "type": "object",
                "properties": { "email": { "type": "string", "format": "email",
                    "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } } } } } } }),
        )
        .unwrap();
    Identa::builder()
        .store(SeaOrmStore::connect(url).await.unwrap())
        .schemas(schemas)
        .config(config)
        .build()
        .unwrap()
}
