//! Importing a user base through the admin API, as Kratos's clients do it: external ids,
//! listing by `ids` with password hashes on request (an export), imported addresses that
//! stay verified, and the batch import (`PATCH /admin/identities`) that answers each item
//! on its own.

use std::net::IpAddr;

use bytes::Bytes;
use http::StatusCode;
use identa::http::{AdminApi, ClientIp, HttpConfig};
use identa::store::PageRequest;
use serde_json::{Value, json};

use identa::flow::login::LoginSubmission;
use identa::identity::{Aal, CredentialType};

use crate::common::{
    PASSWORD, TestEnv, create_account, mail_to, session_aal, sign_in_with, step_up,
};
use crate::on_every_backend;

fn admin(env: &TestEnv) -> AdminApi {
    AdminApi::new(env.identa.clone(), HttpConfig::default())
}

/// A request from a server on this machine, with a JSON body when one is given.
fn request(method: &str, path: &str, body: Option<&Value>) -> http::Request<Bytes> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:4434");
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = req.body(Bytes::from(body)).unwrap();
    req.extensions_mut()
        .insert(ClientIp(IpAddr::from([127, 0, 0, 1])));
    req
}

async fn call(
    api: &AdminApi,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let res = api.handle(request(method, path, body.as_ref())).await;
    let body = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
    (res.status(), body)
}

fn reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or_default()
}

async fn identity_count(env: &TestEnv) -> usize {
    env.identa
        .list_identities(PageRequest::default())
        .await
        .unwrap()
        .items
        .len()
}

/// A bcrypt hash of `password` (cost 4: import does not verify it, sign-in does).
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

async fn an_external_id_is_unique_and_finds_its_identity(env: TestEnv) {
    let api = admin(&env);
    let (status, ada) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({ "traits": { "email": "ada@example.com" }, "external_id": "crm:42/ada" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    assert_eq!(ada["external_id"], "crm:42/ada");

    // Found by it (percent-encoded in the path), with or without the hash.
    let (status, found) = call(
        &api,
        "GET",
        "/admin/identities/by/external/crm%3A42%2Fada",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["id"], ada["id"]);
    let (status, body) = call(&api, "GET", "/admin/identities/by/external/nobody", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(404))
    );

    // Another identity cannot take it: 409 in Kratos's error shape, and nothing is stored.
    let (status, body) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({ "traits": { "email": "bob@example.com" }, "external_id": "crm:42/ada" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], 409);
    assert_eq!(body["error"]["status"], "Conflict");
    assert!(reason(&body).contains("external id"), "{body}");
    assert_eq!(identity_count(&env).await, 1);

    // Too long or not a string: a 400 that says what to send.
    let (status, body) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({ "traits": { "email": "bob@example.com" }, "external_id": "x".repeat(256) })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("1 to 255 bytes"), "{body}");

    // A PUT sets it; a PUT without it clears it, as Kratos's full replace does.
    let id = ada["id"].as_str().unwrap();
    let put = |external: Option<&str>| {
        let mut body = json!({ "schema_id": "default", "traits": { "email": "ada@example.com" }, "state": "active" });
        if let Some(external) = external {
            body["external_id"] = json!(external);
        }
        body
    };
    let (status, body) = call(
        &api,
        "PUT",
        &format!("/admin/identities/{id}"),
        Some(put(Some("crm:43"))),
    )
    .await;
    assert_eq!(
        (status, &body["external_id"]),
        (StatusCode::OK, &json!("crm:43")),
        "{body}"
    );
    let (status, _) = call(
        &api,
        "GET",
        "/admin/identities/by/external/crm%3A42%2Fada",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let external = "crm:43".parse().unwrap();
    let found = env.identa.identity_by_external_id(&external).await.unwrap();
    assert_eq!(found.map(|i| i.id.to_string()), Some(id.to_owned()));
    let (status, body) = call(
        &api,
        "PUT",
        &format!("/admin/identities/{id}"),
        Some(put(None)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("external_id").is_none(), "{body}");
    assert!(
        env.identa
            .identity_by_external_id(&external)
            .await
            .unwrap()
            .is_none()
    );
    // A JSON Patch sets it too.
    let patch = json!([{ "op": "add", "path": "/external_id", "value": "crm:44" }]);
    let (status, body) = call(
        &api,
        "PATCH",
        &format!("/admin/identities/{id}"),
        Some(patch),
    )
    .await;
    assert_eq!(
        (status, &body["external_id"]),
        (StatusCode::OK, &json!("crm:44")),
        "{body}"
    );
    let (status, _) = call(&api, "GET", "/admin/identities/by/external/crm%3A44", None).await;
    assert_eq!(status, StatusCode::OK);
    // Now free for someone else.
    let (status, body) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({ "traits": { "email": "bob@example.com" }, "external_id": "crm:43" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn listing_takes_ids_and_shows_password_hashes_on_request(env: TestEnv) {
    let api = admin(&env);
    let hash = bcrypt_hash("an imported passphrase");
    let (_, ada) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({
            "traits": { "email": "ada@example.com" },
            "credentials": { "password": { "config": { "hashed_password": hash } } }
        })),
    )
    .await;
    let bob = create_account(&env, "bob@example.com").await;
    create_account(&env, "cy@example.com").await;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap().to_owned(), bob.id.to_string());

    // `ids` repeats, with or without brackets.
    let (status, list) = call(
        &api,
        "GET",
        &format!("/admin/identities?ids={ada_id}&ids%5B%5D={bob_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut got: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    got.sort_unstable();
    let mut want = vec![ada_id.as_str(), bob_id.as_str()];
    want.sort_unstable();
    assert_eq!(got, want);
    // No configuration unless asked for.
    assert!(
        list[0]["credentials"]["password"].get("config").is_none(),
        "{list}"
    );

    // With include_credential=password: Kratos's `config.hashed_password`, as an export.
    let (status, list) = call(
        &api,
        "GET",
        &format!("/admin/identities?ids={ada_id}&include_credential=password"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list[0]["credentials"]["password"]["config"]["hashed_password"],
        hash
    );
    let (_, one) = call(
        &api,
        "GET",
        &format!("/admin/identities/{ada_id}?include_credential=password"),
        None,
    )
    .await;
    assert_eq!(
        one["credentials"]["password"]["config"]["hashed_password"],
        hash
    );
    // An identity's own JSON (what whoami sends) carries no credentials at all.
    let own = env.identa.identity(ada_id.parse().unwrap()).await.unwrap();
    let own = serde_json::to_value(own).unwrap();
    assert!(own.get("credentials").is_none(), "{own}");
    let (_, page) = call(
        &api,
        "GET",
        "/admin/identities?include_credential=password",
        None,
    )
    .await;
    assert!(
        page.as_array()
            .unwrap()
            .iter()
            .all(|i| i["credentials"]["password"]["config"]["hashed_password"].is_string()),
        "{page}"
    );

    // Bounded and checked: a clear 400 for each mistake.
    let many: String = (0..501)
        .map(|_| format!("ids={}&", uuid::Uuid::new_v4()))
        .collect();
    for (query, says) in [
        (many.as_str(), "must not exceed 500"),
        ("ids=not-a-uuid", "Invalid UUID value `not-a-uuid`"),
        ("include_credential=totp", "include_credential=password"),
        ("include_credential=secret", "Invalid value `secret`"),
        (
            "ids=00000000-0000-0000-0000-000000000000&credentials_identifier=ada%40example.com",
            "cannot combine",
        ),
    ] {
        let (status, body) = call(&api, "GET", &format!("/admin/identities?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(reason(&body).contains(says), "{query}: {body}");
    }
}

async fn an_import_keeps_verified_addresses_metadata_and_state(env: TestEnv) {
    let api = admin(&env);
    let (status, ada) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({
            "traits": { "email": "Ada@Example.com" },
            "state": "inactive",
            "metadata_public": { "plan": "pro" },
            "metadata_admin": { "crm": 42 },
            "verifiable_addresses": [
                { "value": "ADA@example.com", "via": "email", "verified": true, "status": "completed",
                  "verified_at": "2020-01-02T03:04:05Z" },
                { "value": "elsewhere@example.com", "via": "email", "verified": true }
            ],
            "recovery_addresses": [
                { "value": "ada@example.com", "via": "email" },
                { "value": "elsewhere@example.com", "via": "email" }
            ]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    // The address the traits carry keeps its verification; one they do not is ignored,
    // as Kratos matches imported addresses to the traits by value.
    let addresses = ada["verifiable_addresses"].as_array().unwrap();
    assert_eq!(addresses.len(), 1, "{ada}");
    assert_eq!(addresses[0]["value"], "ada@example.com");
    assert_eq!(addresses[0]["verified"], true);
    assert_eq!(addresses[0]["status"], "completed");
    assert_eq!(addresses[0]["verified_at"], "2020-01-02T03:04:05Z");
    let recovery = ada["recovery_addresses"].as_array().unwrap();
    assert_eq!(recovery.len(), 1, "{ada}");
    assert_eq!(ada["state"], "inactive");
    assert_eq!(ada["metadata_public"], json!({ "plan": "pro" }));
    assert_eq!(ada["metadata_admin"], json!({ "crm": 42 }));
    // Stored so, and no verification mail goes out for it.
    let stored = env
        .identa
        .identity(ada["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert!(stored.verifiable_addresses[0].verified);
    assert!(mail_to(&env, "ada@example.com").await.is_empty());

    // Verified without a time: verified now. Unverified: pending, as a new address.
    let (_, bob) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({
            "traits": { "email": "bob@example.com" },
            "verifiable_addresses": [{ "value": "bob@example.com", "via": "email", "verified": true }]
        })),
    )
    .await;
    assert_eq!(bob["verifiable_addresses"][0]["status"], "completed");
    assert!(
        bob["verifiable_addresses"][0]["verified_at"].is_string(),
        "{bob}"
    );
    let (_, cy) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({
            "traits": { "email": "cy@example.com" },
            "verifiable_addresses": [{ "value": "cy@example.com", "via": "email", "verified": false, "status": "sent" }]
        })),
    )
    .await;
    assert_eq!(cy["verifiable_addresses"][0]["verified"], false);
    assert_eq!(cy["verifiable_addresses"][0]["status"], "sent");
    // A contradiction is refused, not guessed at.
    let (status, body) = call(
        &api,
        "POST",
        "/admin/identities",
        Some(json!({
            "traits": { "email": "dee@example.com" },
            "verifiable_addresses": [{ "value": "dee@example.com", "via": "email", "verified": false, "status": "completed" }]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("set both"), "{body}");
}

/// One batch with every kind of item: answered item by item, the good ones stored once.
async fn a_batch_answers_each_item_on_its_own(env: TestEnv) {
    let api = admin(&env);
    create_account(&env, "taken@example.com").await;
    let hash = bcrypt_hash("imported passphrase");
    let patch = |n: u128| uuid::Uuid::from_u128(n).to_string();
    let item = |n: u128, create: Value| json!({ "create": create, "patch_id": patch(n) });
    let body = json!({ "identities": [
        item(1, json!({ "traits": { "email": "ada@example.com" }, "external_id": "ext-ada",
            "credentials": { "password": { "config": { "hashed_password": hash } } } })),
        item(2, json!({ "traits": { "email": "not an email" } })),
        item(3, json!({ "traits": { "email": "taken@example.com" } })),
        item(4, json!({ "traits": { "email": "Ada@Example.com" } })),
        item(5, json!({ "traits": { "email": "bad-hash@example.com" },
            "credentials": { "password": { "config": { "hashed_password": "$md5$not-a-hash" } } } })),
        item(6, json!({ "traits": { "email": "other@example.com" }, "external_id": "ext-ada" })),
        item(7, json!({ "traits": { "email": "bob@example.com" },
            "credentials": { "password": { "config": { "password": "a long and unusual passphrase" } } } })),
        item(8, json!({ "traits": { "email": "bad-state@example.com" }, "state": "sleeping" })),
        json!({ "create": { "traits": { "email": "cy@example.com" } } }),
    ]});
    let (status, answer) = call(&api, "PATCH", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let items = answer["identities"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    let outcome = |i: usize| {
        (
            items[i]["action"].as_str().unwrap(),
            items[i]["error"]["code"].as_u64(),
        )
    };
    assert_eq!(outcome(0), ("create", None));
    assert_eq!(
        outcome(1),
        ("error", Some(400)),
        "schema violation: {answer}"
    );
    assert_eq!(
        outcome(2),
        ("error", Some(409)),
        "taken in the database: {answer}"
    );
    assert_eq!(
        outcome(3),
        ("error", Some(409)),
        "taken earlier in the batch: {answer}"
    );
    assert_eq!(outcome(4), ("error", Some(400)), "bad hash: {answer}");
    assert_eq!(
        outcome(5),
        ("error", Some(409)),
        "external id taken in the batch: {answer}"
    );
    assert_eq!(outcome(6), ("create", None));
    assert_eq!(outcome(7), ("error", Some(400)), "bad state: {answer}");
    assert_eq!(outcome(8), ("create", None));
    for (i, item) in items.iter().enumerate().take(8) {
        assert_eq!(item["patch_id"], patch(i as u128 + 1), "{item}");
    }
    assert!(items[8].get("patch_id").is_none());
    assert!(
        items[4]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("hashed_password"),
        "{answer}"
    );
    assert!(
        items[5]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("external id"),
        "{answer}"
    );

    // The created ones exist once each, as answered; the refused ones not at all.
    assert_eq!(identity_count(&env).await, 4);
    let ada = env
        .identa
        .identity(items[0]["identity"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        ada.external_id.as_ref().map(|e| e.as_str()),
        Some("ext-ada")
    );
    for refused in [
        "not an email",
        "bad-hash@example.com",
        "other@example.com",
        "bad-state@example.com",
    ] {
        assert!(
            env.identa
                .identity_by_identifier(refused)
                .await
                .unwrap()
                .is_none(),
            "{refused}"
        );
    }
    // The imported hash and the hashed plaintext both sign in.
    sign_in_with(&env, "ada@example.com", "imported passphrase")
        .await
        .unwrap();
    sign_in_with(&env, "bob@example.com", "a long and unusual passphrase")
        .await
        .unwrap();
}

async fn a_batch_over_a_limit_is_refused_whole(env: TestEnv) {
    let api = admin(&env);
    let items: Vec<Value> = (0..1001)
        .map(|n| json!({ "create": { "traits": { "email": format!("u{n}@example.com") } } }))
        .collect();
    let (status, body) = call(
        &api,
        "PATCH",
        "/admin/identities",
        Some(json!({ "identities": items })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("1000"), "{body}");
    let items: Vec<Value> = (0..201)
        .map(|n| json!({ "create": { "traits": { "email": format!("u{n}@example.com") },
            "credentials": { "password": { "config": { "password": "a long and unusual passphrase" } } } } }))
        .collect();
    let (status, body) = call(
        &api,
        "PATCH",
        "/admin/identities",
        Some(json!({ "identities": items })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("200"), "{body}");
    let (status, body) = call(
        &api,
        "PATCH",
        "/admin/identities",
        Some(json!({ "people": [] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("identities"), "{body}");
    assert_eq!(identity_count(&env).await, 0);
    // The library call has the same bound.
    let imports = (0..1001)
        .map(|n| identa::IdentityImport {
            identity: identa::identity::NewIdentity {
                traits: json!({ "email": format!("u{n}@example.com") }),
                ..Default::default()
            },
            password: identa::PasswordImport::None,
        })
        .collect();
    let err = env.identa.import_identities(imports).await.unwrap_err();
    assert!(err.to_string().contains("at most 1000"), "{err}");
    assert_eq!(identity_count(&env).await, 0);
}

/// Kratos's largest batch, 1,000 realistic items (about 500 bytes each, with a password
/// hash), fits the admin API's body limit — the public API's 64 KiB would refuse it with
/// 413 — and a body over the admin limit is still refused.
async fn a_batch_of_a_thousand_realistic_items_fits_the_admin_body_limit(env: TestEnv) {
    let api = admin(&env);
    let hash = bcrypt_hash("imported passphrase");
    let items: Vec<Value> = (0..1000)
        .map(|n| {
            let email = format!("customer.number.{n:04}@example-company.com");
            json!({
                "patch_id": uuid::Uuid::from_u128(n).to_string(),
                "create": {
                    "schema_id": "default",
                    "traits": { "email": email },
                    "state": "active",
                    "external_id": format!("crm-customer-{n:06}"),
                    "metadata_public": { "plan": "pro", "signed_up": "2023-04-01" },
                    "metadata_admin": { "imported_from": "kratos", "legacy_id": n },
                    "verifiable_addresses": [ { "value": email, "via": "email",
                        "verified": true, "status": "completed",
                        "verified_at": "2024-05-01T10:00:00Z" } ],
                    "credentials": { "password": { "config": { "hashed_password": hash } } },
                },
            })
        })
        .collect();
    let body = json!({ "identities": items });
    let size = body.to_string().len();
    assert!(
        size > 400 * 1024 && size > HttpConfig::default().max_body_bytes,
        "{size}"
    );
    let (status, answer) = call(&api, "PATCH", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let created = answer["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["action"] == "create")
        .count();
    assert_eq!(created, 1000, "{answer}");
    sign_in_with(
        &env,
        "customer.number.0999@example-company.com",
        "imported passphrase",
    )
    .await
    .unwrap();

    let limit = HttpConfig::default().max_admin_body_bytes;
    let over = json!({ "identities": [], "padding": "x".repeat(limit) });
    let (status, body) = call(&api, "PATCH", "/admin/identities", Some(over)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["id"], "request_too_large", "{body}");
}

/// The batch transaction failing for a reason that is no unique clash (here a database
/// trigger refusing one row) answers every item with that error, and stores nothing one
/// by one behind it: the batch's outcome is not the items' to retry.
async fn a_batch_the_database_fails_answers_every_item_with_the_error(env: TestEnv) {
    use identa::sea_orm::{ConnectionTrait, DatabaseBackend};
    let db = env.store.connection();
    let refuse = match db.get_database_backend() {
        DatabaseBackend::Postgres => vec![
            "CREATE FUNCTION refuse_import() RETURNS trigger AS $$ BEGIN \
             IF NEW.external_id = 'refused' THEN RAISE EXCEPTION 'the disk is full'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_import BEFORE INSERT ON identa_identities \
             FOR EACH ROW EXECUTE FUNCTION refuse_import()",
        ],
        _ => vec![
            "CREATE TRIGGER refuse_import BEFORE INSERT ON identa_identities \
             WHEN NEW.external_id = 'refused' \
             BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
        ],
    };
    for sql in refuse {
        db.execute_unprepared(sql).await.unwrap();
    }
    let api = admin(&env);
    let body = json!({ "identities": [
        { "create": { "traits": { "email": "ada@example.com" } } },
        { "create": { "traits": { "email": "bob@example.com" }, "external_id": "refused" } },
        { "create": { "traits": { "email": "not an email" } } },
    ]});
    let (status, answer) = call(&api, "PATCH", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing created: {answer}");
    let items = answer["identities"].as_array().unwrap();
    let codes: Vec<_> = items
        .iter()
        .map(|item| (item["action"].as_str(), item["error"]["code"].as_u64()))
        .collect();
    assert_eq!(
        codes,
        [
            (Some("error"), Some(500)),
            (Some("error"), Some(500)),
            (Some("error"), Some(400)),
        ],
        "{answer}"
    );
    assert!(
        !answer.to_string().contains("disk is full"),
        "no database detail in the answer: {answer}"
    );
    assert_eq!(identity_count(&env).await, 0);
    // The library call answers each item with the store's error.
    let imports = ["ada@example.com", "bob@example.com"]
        .into_iter()
        .enumerate()
        .map(|(n, email)| identa::IdentityImport {
            identity: identa::identity::NewIdentity {
                traits: json!({ "email": email }),
                external_id: (n == 1).then(|| "refused".parse().unwrap()),
                ..Default::default()
            },
            password: identa::PasswordImport::None,
        })
        .collect();
    let answers = env.identa.import_identities(imports).await.unwrap();
    for answer in answers {
        let err = answer.unwrap_err();
        assert_eq!(err.kind(), identa::ErrorKind::Internal, "{err}");
    }
    assert_eq!(identity_count(&env).await, 0);
}

/// Nothing created: 409 when every item clashed, else 400 (Kratos's documented answers).
async fn a_batch_that_creates_nothing_says_why(env: TestEnv) {
    let api = admin(&env);
    create_account(&env, "taken@example.com").await;
    let clash = json!({ "create": { "traits": { "email": "taken@example.com" } } });
    let (status, body) = call(
        &api,
        "PATCH",
        "/admin/identities",
        Some(json!({ "identities": [clash.clone(), clash.clone()] })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let bad = json!({ "create": { "traits": {} } });
    let (status, body) = call(
        &api,
        "PATCH",
        "/admin/identities",
        Some(json!({ "identities": [clash, bad] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["identities"][1]["action"], "error");
    assert_eq!(identity_count(&env).await, 1);
}

/// A batch's plaintext passwords wait their turn for the hasher rather than overflow its
/// queue: with one slot and one place to wait, twenty are all hashed and stored.
async fn plaintext_passwords_in_a_batch_queue_for_the_hasher(env: TestEnv) {
    let mut config = crate::common::test_config();
    config.password.memory_budget_kib = u64::from(config.password.memory_kib);
    config.password.max_waiting_per_slot = 1;
    assert_eq!(config.password.concurrency(), 1);
    let env = TestEnv::with_config(env.backend, config).await;
    let imports = (0..20)
        .map(|n| identa::IdentityImport {
            identity: identa::identity::NewIdentity {
                traits: json!({ "email": format!("user{n}@example.com") }),
                ..Default::default()
            },
            password: identa::PasswordImport::Plaintext(
                identa::credential::password::Password::new("a long and unusual passphrase"),
            ),
        })
        .collect();
    let answers = env.identa.import_identities(imports).await.unwrap();
    let refused: Vec<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(identity_count(&env).await, 20);
    sign_in_with(&env, "user19@example.com", "a long and unusual passphrase")
        .await
        .unwrap();
}

/// A create body for `email` with a bcrypt hash of [`PASSWORD`] and `credentials` besides
/// it (Kratos's `credentials.totp`, `.lookup_secret`, …).
/// The `kind` credential's configuration as stored for the identity `created` (the
/// admin API's answer), as text.
async fn stored_config(env: &TestEnv, created: &Value, kind: CredentialType) -> String {
    let stored = env
        .identa
        .identity(created["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    stored.credential(kind).unwrap().config.to_string()
}

fn with_credentials(email: &str, credentials: Value) -> Value {
    let mut credentials = credentials;
    credentials["password"] = json!({ "config": { "hashed_password": bcrypt_hash(PASSWORD) } });
    json!({ "traits": { "email": email }, "credentials": credentials })
}

/// An `otpauth://totp/` URL as Kratos stores it, for a random 160-bit secret.
fn kratos_totp_url(account: &str) -> String {
    let secret = totp_rs::Secret::new_stack(rand::random::<[u8; 20]>()).to_base32();
    format!(
        "otpauth://totp/Kratos:{account}?algorithm=SHA1&digits=6&issuer=Kratos&period=30&secret={secret}"
    )
}

/// The code an authenticator holding `url` shows at the test clock's now (totp-rs reading
/// the URL, not identa).
fn authenticator_code(env: &TestEnv, url: &str) -> String {
    totp_rs::Totp::from_url(url)
        .unwrap()
        .generate(env.clock_now().timestamp() as u64)
        .to_string()
}

async fn an_imported_totp_authenticator_is_the_second_factor(env: TestEnv) {
    let api = admin(&env);
    let url = kratos_totp_url("ada@example.com");
    let body = with_credentials(
        "ada@example.com",
        json!({ "totp": { "config": { "totp_url": url } } }),
    );
    let (status, ada) = call(&api, "POST", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    assert!(ada["credentials"]["totp"].is_object(), "{ada}");
    // Stored sealed: neither the URL nor its secret is in the credential.
    let config = stored_config(&env, &ada, CredentialType::Totp).await;
    let secret = url.split("secret=").nth(1).unwrap();
    assert!(
        !config.contains(secret) && !config.contains("otpauth"),
        "{config}"
    );

    // The password alone gives an aal1 session that whoami refuses for its second factor.
    let login = sign_in_with(&env, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(session_aal(&env, &login.token).await, Aal::Aal1);
    let wrong = step_up(
        &env,
        &login.token,
        LoginSubmission::Totp {
            code: "000000".into(),
        },
    )
    .await;
    assert!(wrong.is_err());
    let code = authenticator_code(&env, &url);
    let upgraded = step_up(&env, &login.token, LoginSubmission::Totp { code })
        .await
        .unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
}

async fn imported_backup_codes_work_once_and_used_ones_never(env: TestEnv) {
    let api = admin(&env);
    let body = with_credentials(
        "ada@example.com",
        json!({ "lookup_secret": { "config": { "codes": [
            { "code": "aaaa1111" },
            { "code": "bbbb2222", "used_at": "2024-05-01T10:00:00Z" },
            { "code": "cccc3333", "used_at": null },
        ] } } }),
    );
    let (status, ada) = call(&api, "POST", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    let config = stored_config(&env, &ada, CredentialType::LookupSecret).await;
    assert!(!config.contains("aaaa1111"), "stored as MACs: {config}");

    let login = sign_in_with(&env, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(session_aal(&env, &login.token).await, Aal::Aal1);
    let backup = |code: &str| LoginSubmission::LookupSecret { code: code.into() };
    // Used in the system it comes from: refused.
    assert!(
        step_up(&env, &login.token, backup("bbbb2222"))
            .await
            .is_err()
    );
    let upgraded = step_up(&env, &login.token, backup("aaaa1111"))
        .await
        .unwrap();
    assert_eq!(upgraded.session.session.aal, Aal::Aal2);
    // Once only: a new session cannot use it again; the unused third one works.
    let again = sign_in_with(&env, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert!(
        step_up(&env, &again.token, backup("aaaa1111"))
            .await
            .is_err()
    );
    step_up(&env, &again.token, backup("CCCC-3333"))
        .await
        .unwrap();
}

/// What identa cannot import is a 400 that names it and says what to do; in a batch, only
/// that item is refused.
async fn credentials_identa_cannot_import_are_refused_by_name(env: TestEnv) {
    let api = admin(&env);
    let sha256 = kratos_totp_url("x").replace("algorithm=SHA1", "algorithm=SHA256");
    for (credentials, named) in [
        (
            json!({ "webauthn": { "config": { "credentials": [] } } }),
            "credentials.webauthn is not supported by identa's import",
        ),
        (
            json!({ "passkey": { "config": { "credentials": [] } } }),
            "credentials.passkey is not supported by identa's import",
        ),
        (
            json!({ "saml": { "config": { "providers": [] } } }),
            "credentials.saml is not supported by identa's import",
        ),
        (
            json!({ "totp": { "config": { "totp_url": sha256 } } }),
            "credentials.totp.config.totp_url: TOTP: the URL's algorithm is SHA256",
        ),
        (
            json!({ "totp": { "config": { "totp_url": "https://example.com" } } }),
            "not an otpauth://totp/ URL",
        ),
        (
            json!({ "lookup_secret": { "config": { "codes": [{ "code": "short" }] } } }),
            "codes[0].code is not a backup code identa accepts",
        ),
        (
            json!({ "oidc": { "config": { "providers": [
                { "provider": "test", "subject": "ada", "use_auto_link": true }
            ] } } }),
            "use_auto_link is not supported by identa's import",
        ),
    ] {
        let body = with_credentials("ada@example.com", credentials);
        let (status, answer) = call(&api, "POST", "/admin/identities", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(reason(&answer).contains(named), "{named}: {answer}");
        assert!(!answer.to_string().contains("secret="), "{answer}");
    }
    // Provider accounts: without the `oidc` feature nobody signs in with them; with it, the
    // provider must be configured (this engine has none).
    let body = with_credentials(
        "ada@example.com",
        json!({ "oidc": { "config": { "providers": [{ "provider": "test", "subject": "ada" }] } } }),
    );
    let (status, answer) = call(&api, "POST", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let expected = if cfg!(feature = "oidc") {
        "provider `test` is not a provider configured in identa"
    } else {
        "built without OpenID Connect sign-in"
    };
    assert!(reason(&answer).contains(expected), "{answer}");
    assert_eq!(identity_count(&env).await, 0);

    // In a batch, the bad item is answered on its own and the good one is created.
    let items = json!({ "identities": [
        { "patch_id": uuid::Uuid::from_u128(1).to_string(), "create": with_credentials(
            "ada@example.com", json!({ "totp": { "config": { "totp_url": kratos_totp_url("ada") } } })) },
        { "patch_id": uuid::Uuid::from_u128(2).to_string(), "create": with_credentials(
            "bob@example.com", json!({ "totp": { "config": { "totp_url": sha256 } } })) },
    ] });
    let (status, answer) = call(&api, "PATCH", "/admin/identities", Some(items)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["identities"][0]["action"], "create", "{answer}");
    assert_eq!(answer["identities"][1]["action"], "error", "{answer}");
    assert!(
        answer["identities"][1]["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("algorithm is SHA256"),
        "{answer}"
    );
    assert_eq!(identity_count(&env).await, 1);
    let login = sign_in_with(&env, "ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(session_aal(&env, &login.token).await, Aal::Aal1);
}

/// Provider accounts import under Kratos's `<provider>:<subject>` identifiers, through the
/// single create and the batch alike; an account already taken is a conflict.
#[cfg(feature = "oidc")]
async fn imported_provider_accounts_keep_kratos_identifiers(env: TestEnv) {
    use identa::credential::oidc::{OidcProvider, OidcProviders};
    let mut env = env;
    // Configured, never contacted: the import only checks the id.
    let provider = OidcProvider::new("test", "http://127.0.0.1:9/unused", "identa");
    env.identa = env
        .another_engine(env.identa.config().clone())
        .oidc(OidcProviders::new().provider(provider))
        .build()
        .unwrap();
    let api = admin(&env);
    let accounts = |subject: &str| json!({ "oidc": { "config": { "providers": [{ "provider": "test", "subject": subject }] } } });
    let body = with_credentials("ada@example.com", accounts("ada-sub"));
    let (status, ada) = call(&api, "POST", "/admin/identities", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{ada}");
    assert_eq!(
        ada["credentials"]["oidc"]["identifiers"],
        json!(["test:ada-sub"]),
        "{ada}"
    );
    let items = json!({ "identities": [
        { "create": with_credentials("bob@example.com", accounts("bob-sub")) },
        { "create": with_credentials("eve@example.com", accounts("ada-sub")) },
    ] });
    let (status, answer) = call(&api, "PATCH", "/admin/identities", Some(items)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["identities"][0]["action"], "create", "{answer}");
    assert_eq!(answer["identities"][1]["action"], "error", "{answer}");
    assert_eq!(answer["identities"][1]["error"]["code"], 409, "{answer}");
    assert_eq!(identity_count(&env).await, 2);
}

#[cfg(feature = "oidc")]
on_every_backend!(imported_provider_accounts_keep_kratos_identifiers);

on_every_backend!(
    plaintext_passwords_in_a_batch_queue_for_the_hasher,
    an_external_id_is_unique_and_finds_its_identity,
    listing_takes_ids_and_shows_password_hashes_on_request,
    an_import_keeps_verified_addresses_metadata_and_state,
    a_batch_answers_each_item_on_its_own,
    a_batch_over_a_limit_is_refused_whole,
    a_batch_of_a_thousand_realistic_items_fits_the_admin_body_limit,
    a_batch_the_database_fails_answers_every_item_with_the_error,
    a_batch_that_creates_nothing_says_why,
    an_imported_totp_authenticator_is_the_second_factor,
    imported_backup_codes_work_once_and_used_ones_never,
    credentials_identa_cannot_import_are_refused_by_name,
);
