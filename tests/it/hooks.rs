//! Host hooks: a before hook refuses with a message on a field; an after hook writes the
//! host's rows in identa's transaction, and its failure rolls everything back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use identa::flow::login::LoginIntent;
use identa::flow::ui::UiText;
use identa::flow::{FlowRequest, FlowState, FlowType};
use serde_json::json;

use crate::common::{
    PASSWORD, TestEnv, has_account, invalid_flow, mail_to, password_login, password_registration,
};
use crate::on_every_backend;

#[derive(Default)]
struct HostHooks {
    after_logins: AtomicUsize,
}

#[async_trait::async_trait]
impl identa::hook::Hooks for HostHooks {
    async fn before(
        &self,
        event: &identa::hook::BeforeEvent<'_>,
    ) -> Result<(), identa::hook::HookError> {
        if let identa::hook::BeforeEvent::Registration { traits, .. } = event
            && traits["email"]
                .as_str()
                .is_some_and(|e| e.ends_with("@blocked.example"))
        {
            return Err(identa::hook::HookError::refuse_field(
                "traits.email",
                "This domain may not sign up.",
            ));
        }
        Ok(())
    }

    async fn after(
        &self,
        event: &identa::hook::AfterEvent<'_>,
        tx: &identa::store::Transaction<'_>,
    ) -> Result<(), identa::hook::HookError> {
        use identa::sea_orm::{ConnectionTrait, Statement};
        match event {
            identa::hook::AfterEvent::Registration { identity, .. } => {
                if identity.traits["email"] == "fails@example.com" {
                    return Err(identa::hook::HookError::failed(
                        "the users table is read-only today",
                    ));
                }
                let db = tx.sea_orm().expect("a sea-orm store");
                let backend = db.get_database_backend();
                db.execute_raw(Statement::from_sql_and_values(
                    backend,
                    match backend {
                        identa::sea_orm::DatabaseBackend::Postgres => {
                            "INSERT INTO app_users (id, email) VALUES ($1, $2)"
                        }
                        _ => "INSERT INTO app_users (id, email) VALUES (?, ?)",
                    },
                    [
                        identity.id.to_string().into(),
                        identity.traits["email"].as_str().unwrap_or_default().into(),
                    ],
                ))
                .await
                .map_err(identa::hook::HookError::failed)?;
                Ok(())
            }
            identa::hook::AfterEvent::Login { .. } => {
                self.after_logins.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn hooks_refuse_and_share_the_transaction(env: TestEnv) {
    use identa::sea_orm::ConnectionTrait;
    env.store
        .connection()
        .execute_unprepared("CREATE TABLE app_users (id TEXT PRIMARY KEY, email TEXT NOT NULL)")
        .await
        .unwrap();
    let hooks = Arc::new(HostHooks::default());
    // The same secrets as `env.identa`, so its courier can read this engine's mail.
    let identa = env.engine_with_hooks(hooks.clone());
    let req = FlowRequest::api();
    let submit = |email: &'static str| {
        let identa = identa.clone();
        let req = req.clone();
        async move {
            let flow = identa
                .registration_flow()
                .create(FlowType::Api, &req)
                .await
                .unwrap();
            let sign_up = password_registration(json!({ "email": email }), PASSWORD);
            identa
                .registration_flow()
                .submit(flow.id, sign_up, &req)
                .await
        }
    };
    let count_users = || async {
        let row = env
            .store
            .connection()
            .query_one_raw(identa::sea_orm::Statement::from_string(
                env.store.connection().get_database_backend(),
                "SELECT COUNT(*) AS n FROM app_users",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };

    // A before hook refuses with a message on the field; nothing is written.
    let shown = invalid_flow(submit("mallory@blocked.example").await.unwrap_err());
    let msg: &UiText = &shown.ui.node("traits.email").unwrap().messages[0];
    assert_eq!(msg.text, "This domain may not sign up.");
    assert!(!has_account(&env, "mallory@blocked.example").await);

    // An after hook writes the host's row in the same transaction.
    let done = submit("host@example.com").await.unwrap();
    assert_eq!(count_users().await, 1);
    assert!(identa.identity(done.identity.id).await.is_ok());

    // An after hook that fails rolls back the identity, its session and its mail.
    let shown = invalid_flow(submit("fails@example.com").await.unwrap_err());
    assert_eq!(shown.ui.messages[0].id, 5_000_001);
    assert_eq!(shown.state, FlowState::ChooseMethod);
    assert!(!has_account(&env, "fails@example.com").await);
    assert_eq!(count_users().await, 1);
    assert!(mail_to(&env, "fails@example.com").await.is_empty());

    // After-login hooks run once per login.
    let flow = identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await
        .unwrap();
    identa
        .login_flow()
        .submit(flow.id, password_login("host@example.com", PASSWORD), &req)
        .await
        .unwrap();
    assert_eq!(hooks.after_logins.load(Ordering::SeqCst), 1);
}

on_every_backend!(hooks_refuse_and_share_the_transaction,);
