//! The self-service flows, driven as a native app would: sign up, verify the email with
//! the code from the outbox, sign in (a wrong password first), and recover the account.
//!
//! ```sh
//! cargo run --example self_service
//! ```
//!
//! It uses an in-memory SQLite database, so every run starts fresh. The courier delivers
//! through the logging mailer; the codes are read back from the outbox, as a test would.

use identa::courier::{LoggingMailer, TemplateKind};
use identa::credential::password::Password;
use identa::flow::CodeSubmission;
use identa::flow::login::{LoginIntent, LoginSubmission};
use identa::flow::recovery::RecoveryStep;
use identa::flow::registration::RegistrationSubmission;
use identa::flow::verification::VerificationStep;
use identa::flow::{ContinueWith, FlowRequest, FlowType};
use identa::identity::SchemaRegistry;
use identa::store::{PageRequest, SeaOrmStore};
use identa::{Error, Identa};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let identa = Identa::builder()
        .store(SeaOrmStore::connect("sqlite::memory:").await?)
        .schemas(schemas)
        .build()?;
    let req = FlowRequest::api();

    // 1. Registration: the flow's nodes are what a front end renders.
    let flow = identa
        .registration_flow()
        .create(FlowType::Api, &req)
        .await?;
    let inputs: Vec<&str> = flow.ui.nodes.iter().filter_map(|n| n.name()).collect();
    println!("registration form: {inputs:?}");
    // A too-short password comes back as the same flow with a message on the node.
    let err = identa
        .registration_flow()
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "ada@example.com", "name": "Ada" }),
                password: Password::new("short"),
            },
            &req,
        )
        .await
        .unwrap_err();
    if let Error::Flow(identa::flow::FlowError::Invalid(shown)) = &err
        && let Some(node) = shown.ui.node("password")
    {
        for m in &node.messages {
            println!("  password: {} ({})", m.text, m.id);
        }
    }
    let done = identa
        .registration_flow()
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": "ada@example.com", "name": "Ada" }),
                password: Password::new("correct horse battery staple"),
            },
            &req,
        )
        .await?;
    println!("registered {} and signed in", done.identity.id);

    // 2. Verification: registration queued a code; the courier would send it.
    let report = identa
        .courier()
        .dispatch_once(&LoggingMailer::new())
        .await?;
    println!("courier: {report:?}");
    let code = latest_code(&identa, TemplateKind::VerificationCodeValid).await?;
    let verification = done.continue_with.iter().find_map(|c| match c {
        ContinueWith::ShowVerificationUi { flow } => Some(flow.id),
        _ => None,
    });
    if let Some(id) = verification {
        let step = identa
            .verification_flow()
            .submit(id, CodeSubmission::Code(code), &req)
            .await?;
        if let VerificationStep::Verified { identity, .. } = step {
            println!(
                "verified {} ({})",
                identity.verifiable_addresses[0].value,
                identity.verifiable_addresses[0].status.as_str()
            );
        }
    }

    // 3. Login: a wrong password gets Kratos's message 4000006.
    let login = identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await?;
    let wrong = identa
        .login_flow()
        .submit(
            login.id,
            LoginSubmission::Password {
                identifier: "ada@example.com".into(),
                password: Password::new("guess"),
            },
            &req,
        )
        .await;
    if let Err(Error::Flow(identa::flow::FlowError::Invalid(shown))) = &wrong {
        println!("login refused: {}", shown.ui.messages[0].text);
    }
    let ok = identa
        .login_flow()
        .submit(
            login.id,
            LoginSubmission::Password {
                identifier: "ada@example.com".into(),
                password: Password::new("correct horse battery staple"),
            },
            &req,
        )
        .await?;
    println!("signed in: session {}", ok.session.session.id);

    // 4. Recovery: a code by email signs the user in and opens a settings flow.
    let recovery = identa.recovery_flow().create(FlowType::Api, &req).await?;
    identa
        .recovery_flow()
        .submit(
            recovery.id,
            CodeSubmission::Email("ada@example.com".into()),
            &req,
        )
        .await?;
    let code = latest_code(&identa, TemplateKind::RecoveryCodeValid).await?;
    if let RecoveryStep::Recovered(done) = identa
        .recovery_flow()
        .submit(recovery.id, CodeSubmission::Code(code), &req)
        .await?
    {
        println!(
            "recovered: new session {}, settings flow {} says: {}",
            done.session.session.id, done.settings_flow.id, done.settings_flow.ui.messages[0].text
        );
    }
    Ok(())
}

/// The code in the newest outbox message of `kind`.
async fn latest_code(identa: &Identa, kind: TemplateKind) -> Result<String, Error> {
    let page = identa
        .courier()
        .messages(None, PageRequest::default())
        .await?;
    let text = page
        .items
        .iter()
        .find(|m| m.template == kind)
        .map(|m| m.email.text.clone())
        .unwrap_or_default();
    Ok(text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_default()
        .to_owned())
}
