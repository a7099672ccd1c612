//! The five-minute tour: identa used directly as a library, on an embedded SQLite file.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! It registers a user, logs in, asks "who am I?" with the session token, logs out, and
//! shows that the token no longer works. Run it twice: the second run finds the user
//! already registered and signs in.

use identa::credential::password::Password;
use identa::identity::SchemaRegistry;
use identa::session::Device;
use identa::store::SeaOrmStore;
use identa::{ErrorKind, Identa};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. An identity schema, in Kratos's format: `email` signs in and can be verified.
    let mut schemas = SchemaRegistry::new();
    schemas.add(
        "default",
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": { "traits": { "type": "object", "required": ["email"], "properties": {
                "email": { "type": "string", "format": "email", "title": "E-Mail",
                    "ory.sh/kratos": {
                        "credentials": { "password": { "identifier": true } },
                        "verification": { "via": "email" },
                        "recovery": { "via": "email" } } },
                "name": { "type": "string", "title": "Name" } } } }
        }),
    )?;

    // 2. The engine, on a SQLite file in the working directory (migrations run on connect).
    let store = SeaOrmStore::connect("sqlite://identa-quickstart.db").await?;
    let identa = Identa::builder().store(store).schemas(schemas).build()?;

    // 3. Register.
    let password = Password::new("correct horse battery staple");
    let traits = json!({ "email": "Ada@Example.com", "name": "Ada Lovelace" });
    match identa.register(traits, &password).await {
        Ok(identity) => println!(
            "registered  {} as {} (verified: {})",
            identity.id,
            identity.verifiable_addresses[0].value,
            identity.verifiable_addresses[0].verified
        ),
        Err(e) if e.kind() == ErrorKind::Duplicate => {
            println!("registered  already (run before): {e}")
        }
        Err(e) => return Err(e.into()),
    }

    // 4. Log in: the session token is shown once; the database keeps only its SHA-256.
    let device = Device::new(Some("127.0.0.1"), Some("quickstart"));
    let login = identa
        .login("ada@example.com", &password, Some(device))
        .await?;
    println!(
        "logged in   session {} (expires {}, token {}…)",
        login.session.session.id,
        login
            .session
            .session
            .expires_at
            .format("%Y-%m-%d %H:%M UTC"),
        login.token.expose().get(..14).unwrap_or_default()
    );

    // 5. Who am I?
    let me = identa.whoami(&login.token).await?;
    println!("whoami      {}", serde_json::to_string_pretty(&me)?);

    // 6. Log out; the token is refused from now on.
    identa.logout(&login.token).await?;
    match identa.whoami(&login.token).await {
        Err(e) => println!("logged out  whoami now says: {e}"),
        Ok(_) => unreachable!("a revoked session must be refused"),
    }

    // A wrong password says nothing about whether the account exists.
    let wrong = identa
        .login("ada@example.com", &Password::new("guess"), None)
        .await;
    println!(
        "wrong pass  {}",
        wrong.err().map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(())
}
