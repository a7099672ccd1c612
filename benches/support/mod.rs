//! What the benches share: the engine they measure, on a store URL and a config.

use identa::identity::SchemaRegistry;
use identa::store::{SeaOrmStore, StoreOptions};
use identa::{Config, Identa};
use serde_json::json;

/// An engine whose schema has one trait, `email`, the password identifier.
#[allow(dead_code)] // not every bench uses it
pub async fn email_engine(url: &str, config: Config) -> Identa {
    email_engine_with(url, StoreOptions::default(), config).await
}

/// [`email_engine`] with these store options.
pub async fn email_engine_with(url: &str, options: StoreOptions, config: Config) -> Identa {
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
        .store(SeaOrmStore::connect_with(url, options).await.unwrap())
        .schemas(schemas)
        .config(config)
        .build()
        .unwrap()
}
