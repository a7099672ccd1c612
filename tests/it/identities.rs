//! Identities: schema validation, creation, updates that identifiers follow, deletion,
//! listing, and that failures leave nothing half-written.

use identa::credential::password::Password;
use identa::identity::{IdentityState, IdentityUpdate, MAX_METADATA_BYTES, NewIdentity};
use identa::identity::{SchemaError, ViolationKind};
use identa::session::SessionRefusal;
use identa::store::PageRequest;
use identa::{Error, ErrorKind, IdentityImport, PasswordImport};
use serde_json::{Value, json};

use crate::common::race::{ROUNDS, released_together};
use crate::common::{
    PASSWORD, TestEnv, create_account, create_account_with_traits, has_account,
    is_invalid_credentials, sign_in, sign_in_with, whoami_refusal,
};

fn violations(err: &Error) -> Vec<(String, ViolationKind)> {
    match err {
        Error::Identity(identa::identity::IdentityError::Schema(SchemaError::Traits {
            violations,
        })) => violations
            .iter()
            .map(|v| (v.path.clone(), v.kind))
            .collect(),
        other => panic!("expected a traits violation, got {other:?}"),
    }
}

/// Why registering `traits` (with the suite's password) was refused.
async fn refusal(env: &TestEnv, traits: Value) -> Error {
    create_account_with_traits(env, traits).await.unwrap_err()
}

async fn count(env: &TestEnv) -> usize {
    env.identa
        .list_identities(PageRequest::default())
        .await
        .unwrap()
        .items
        .len()
}

async fn schema_errors_name_the_field(env: TestEnv) {
    let err = refusal(&env, json!({ "username": "ada" })).await;
    assert_eq!(err.kind(), ErrorKind::InvalidTraits);
    assert_eq!(
        violations(&err),
        vec![("traits.email".into(), ViolationKind::Required)]
    );
    assert!(err.to_string().contains("traits.email"), "{err}");

    let err = refusal(&env, json!({ "email": "not-an-email", "username": "ab" })).await;
    let found = violations(&err);
    assert!(
        found.contains(&("traits.email".into(), ViolationKind::Format)),
        "{found:?}"
    );
    assert!(
        found.contains(&("traits.username".into(), ViolationKind::MinLength)),
        "{found:?}"
    );

    let err = refusal(
        &env,
        json!({ "email": "a@example.com", "name": { "first": 7 } }),
    )
    .await;
    assert_eq!(
        violations(&err),
        vec![("traits.name.first".into(), ViolationKind::Type)]
    );

    // None of the refused registrations left anything behind.
    assert_eq!(count(&env).await, 0);
}

async fn create_get_and_normalise(env: TestEnv) {
    let created = create_account_with_traits(
        &env,
        json!({ "email": "Ada.Lovelace@Example.COM", "username": "  ＡＤＡ ", "name": { "first": "Ada" } }),
    )
    .await
    .unwrap();
    let loaded = env.identa.identity(created.id).await.unwrap();
    assert_eq!(loaded, created);
    assert_eq!(loaded.schema_id, "default");
    assert_eq!(loaded.state, IdentityState::Active);
    let password = loaded
        .credential(identa::identity::CredentialType::Password)
        .unwrap();
    let mut identifiers = password.identifiers.clone();
    identifiers.sort();
    assert_eq!(identifiers, vec!["ada", "ada.lovelace@example.com"]);
    assert!(
        password
            .hashed_password()
            .unwrap()
            .starts_with("$argon2id$")
    );
    assert_eq!(loaded.verifiable_addresses.len(), 1);
    assert_eq!(
        loaded.verifiable_addresses[0].value,
        "ada.lovelace@example.com"
    );
    assert!(!loaded.verifiable_addresses[0].verified);
    assert_eq!(
        loaded.recovery_addresses[0].value,
        "ada.lovelace@example.com"
    );

    // The serialized identity is Kratos-shaped and carries no credentials.
    let json = serde_json::to_value(&loaded).unwrap();
    assert_eq!(json["verifiable_addresses"][0]["status"], "pending");
    assert_eq!(json["verifiable_addresses"][0]["via"], "email");
    assert!(json.get("credentials").is_none());
    assert!(!json.to_string().contains("argon2"));

    let by_identifier = env
        .identa
        .identity_by_identifier("ADA.lovelace@example.com")
        .await
        .unwrap();
    assert_eq!(by_identifier.map(|i| i.id), Some(created.id));
}

/// `TASKS` registrations of one address at once, for `ROUNDS` addresses: each makes
/// exactly one identity; the others are refused as duplicates (the unique index decides,
/// not a read before the write).
async fn racing_registrations_make_one_identity(env: TestEnv) {
    for round in 0..ROUNDS {
        let traits = json!({ "email": format!("race{round}@example.com") });
        let results = released_together(|_| {
            let (identa, traits) = (env.identa.clone(), traits.clone());
            async move { identa.register(traits, &Password::new(PASSWORD)).await }
        })
        .await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {results:?}");
        for result in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(
                    result,
                    Err(Error::Store(identa::store::StoreError::Conflict { .. }))
                ),
                "round {round}: {result:?}"
            );
        }
        assert_eq!(count(&env).await, round + 1);
    }
}

async fn identifiers_follow_traits_updates(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    let updated = env
        .identa
        .update_identity(
            ada.id,
            IdentityUpdate {
                traits: Some(json!({ "email": "countess@example.com", "username": "lovelace" })),
                ..IdentityUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated.verifiable_addresses[0].value,
        "countess@example.com"
    );
    let old = sign_in_with(&env, "ada@example.com", PASSWORD)
        .await
        .unwrap_err();
    assert!(is_invalid_credentials(&old), "{old:?}");
    sign_in(&env, "countess@example.com").await;
    sign_in(&env, "lovelace").await;
    assert!(!has_account(&env, "ada@example.com").await);

    // The old email is free again for someone else.
    create_account(&env, "ada@example.com").await;
}

async fn conflicting_update_changes_nothing(env: TestEnv) {
    let ada = create_account(&env, "ada@example.com").await;
    create_account(&env, "bob@example.com").await;
    let err = env
        .identa
        .update_identity(
            ada.id,
            IdentityUpdate {
                traits: Some(json!({ "email": "bob@example.com" })),
                state: Some(IdentityState::Inactive),
                ..IdentityUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Duplicate);
    assert_eq!(env.identa.identity(ada.id).await.unwrap(), ada);
    sign_in(&env, "ada@example.com").await;
}

async fn state_and_metadata_updates(env: TestEnv) {
    let ada = env
        .identa
        .create_identity(
            NewIdentity {
                traits: json!({ "email": "ada@example.com" }),
                metadata_public: Some(json!({ "plan": "free" })),
                metadata_admin: Some(json!({ "note": "vip" })),
                ..NewIdentity::default()
            },
            None,
        )
        .await
        .unwrap();
    assert!(ada.credentials.is_empty());
    let changed = env
        .identa
        .update_identity(
            ada.id,
            IdentityUpdate {
                state: Some(IdentityState::Inactive),
                metadata_public: Some(None),
                ..IdentityUpdate::default()
            },
        )
        .await
        .unwrap();
    let loaded = env.identa.identity(ada.id).await.unwrap();
    assert_eq!(loaded, changed);
    assert_eq!(loaded.state, IdentityState::Inactive);
    assert!(loaded.state_changed_at.is_some());
    assert_eq!(loaded.metadata_public, None);
    assert_eq!(loaded.metadata_admin, Some(json!({ "note": "vip" })));
}

async fn delete_and_list_with_pagination(env: TestEnv) {
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            create_account(&env, &format!("user{n}@example.com"))
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut page = PageRequest {
        page_size: 2,
        after: None,
    };
    loop {
        let got = env.identa.list_identities(page).await.unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(got.items.iter().map(|i| i.id));
        match got.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);

    let login = sign_in(&env, "user0@example.com").await;
    env.identa.delete_identity(ids[0]).await.unwrap();
    assert_eq!(
        env.identa.identity(ids[0]).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        env.identa.delete_identity(ids[0]).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Its sessions went with it.
    assert_eq!(
        whoami_refusal(&env.identa, &login.token).await,
        SessionRefusal::Unknown
    );
    assert!(env.identa.sessions(ids[0]).await.unwrap().is_empty());
    assert_eq!(count(&env).await, 4);
}

async fn bad_input_is_refused_cleanly(env: TestEnv) {
    let pw = Password::new(PASSWORD);
    let err = env
        .identa
        .create_identity(
            NewIdentity {
                schema_id: Some("nope".into()),
                traits: json!({ "email": "a@example.com" }),
                ..NewIdentity::default()
            },
            Some(&pw),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaNotFound);
    assert!(err.to_string().contains("nope"));

    let huge = "x".repeat(1 << 20);
    let err = refusal(&env, json!({ "email": "a@example.com", "username": huge })).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let err = env
        .identa
        .register(
            json!({ "email": "a@example.com" }),
            &Password::new("y".repeat(1 << 20)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PasswordPolicy);

    let err = refusal(
        &env,
        json!({ "email": "a@example.com", "name": { "first": "A\u{0}da" } }),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("NUL"), "{err}");

    let err = refusal(&env, json!("just a string")).await;
    assert_eq!(err.kind(), ErrorKind::InvalidTraits);

    assert_eq!(
        identa::http::request::parse_id("not-a-uuid")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        env.identa.identity(missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(count(&env).await, 0);
}

async fn rows_without_a_document_load_from_the_child_tables(env: TestEnv) {
    use sea_orm::{ConnectionTrait, Statement};
    let traits = json!({ "email": "ada@example.com", "username": "ada" });
    let ada = create_account_with_traits(&env, traits).await.unwrap();
    let bob = create_account(&env, "bob@example.com").await;
    // As written before identity documents existed: only ada's row loses its document.
    let db = env.store.connection();
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "UPDATE identa_identities SET document = NULL WHERE id = $1"
        }
        _ => "UPDATE identa_identities SET document = NULL WHERE id = ?",
    };
    let cleared = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [ada.id.into()],
        ))
        .await
        .unwrap();
    assert_eq!(cleared.rows_affected(), 1);
    assert_eq!(env.identa.identity(ada.id).await.unwrap(), ada);
    let listed = env
        .identa
        .list_identities(PageRequest::default())
        .await
        .unwrap()
        .items;
    let mut expected = vec![ada.clone(), bob];
    expected.sort_by_key(|i| i.id);
    assert_eq!(listed, expected);
    let login = sign_in(&env, "ada").await;
    assert_eq!(env.identa.whoami(&login.token).await.unwrap().identity, ada);
}

/// A metadata document whose JSON is exactly `bytes` long.
fn metadata_of(bytes: usize) -> Value {
    let doc = json!({ "blob": "x".repeat(bytes - r#"{"blob":""}"#.len()) });
    assert_eq!(serde_json::to_vec(&doc).unwrap().len(), bytes);
    doc
}

/// Asserts `err` is the refusal of `field` over the metadata limit, saying so.
fn assert_metadata_refused(err: &Error, field: &str) {
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let said = err.to_string();
    assert!(
        said.starts_with(&format!("{field} is {} bytes", MAX_METADATA_BYTES + 1))
            && said.contains(&format!("at most {MAX_METADATA_BYTES}")),
        "{said}"
    );
}

async fn oversized_metadata_is_refused_on_every_write(env: TestEnv) {
    let over = metadata_of(MAX_METADATA_BYTES + 1);
    let at_limit = metadata_of(MAX_METADATA_BYTES);
    let new = |email: &str| NewIdentity {
        traits: json!({ "email": email }),
        ..NewIdentity::default()
    };

    // Create: either field over the limit, nothing written.
    for field in ["metadata_public", "metadata_admin"] {
        let mut oversized = new("ada@example.com");
        match field {
            "metadata_public" => oversized.metadata_public = Some(over.clone()),
            _ => oversized.metadata_admin = Some(over.clone()),
        }
        let err = env
            .identa
            .create_identity(oversized.clone(), None)
            .await
            .unwrap_err();
        assert_metadata_refused(&err, field);
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        let err = env
            .identa
            .import_identity(oversized.clone(), &hash)
            .await
            .unwrap_err();
        assert_metadata_refused(&err, field);
        let answers = env
            .identa
            .import_identities(vec![IdentityImport {
                identity: oversized,
                password: PasswordImport::None,
            }])
            .await
            .unwrap();
        assert_metadata_refused(answers[0].as_ref().unwrap_err(), field);
    }
    assert_eq!(count(&env).await, 0);

    // At the limit is accepted.
    let ada = env
        .identa
        .create_identity(
            NewIdentity {
                metadata_public: Some(at_limit.clone()),
                metadata_admin: Some(json!({ "note": "vip" })),
                ..new("ada@example.com")
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(ada.metadata_public, Some(at_limit));

    // Update: refused whole, the identity as it was (its state did not change either).
    for field in ["metadata_public", "metadata_admin"] {
        let mut update = IdentityUpdate {
            state: Some(IdentityState::Inactive),
            ..IdentityUpdate::default()
        };
        match field {
            "metadata_public" => update.metadata_public = Some(Some(over.clone())),
            _ => update.metadata_admin = Some(Some(over.clone())),
        }
        let err = env
            .identa
            .update_identity(ada.id, update)
            .await
            .unwrap_err();
        assert_metadata_refused(&err, field);
        assert_eq!(env.identa.identity(ada.id).await.unwrap(), ada);
    }
}

crate::on_every_backend!(
    oversized_metadata_is_refused_on_every_write,
    rows_without_a_document_load_from_the_child_tables,
    schema_errors_name_the_field,
    create_get_and_normalise,
    identifiers_follow_traits_updates,
    conflicting_update_changes_nothing,
    state_and_metadata_updates,
    delete_and_list_with_pagination,
    bad_input_is_refused_cleanly,
);

crate::on_pooled_backends!(racing_registrations_make_one_identity);
