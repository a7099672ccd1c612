//! The admin API (Kratos's port 4434): identities (list — by page, by `ids`, by
//! identifier —, create — with a password or an imported hash —, batch import, get, get
//! by external id, update, JSON Patch, delete), an identity's sessions, sessions by id
//! (get, extend, revoke), recovery codes, and the courier's messages (list, get, and
//! identa's own requeue of an abandoned message).
//!
//! Mount it on its own listener. Before any route runs, `admin_gate` refuses browser
//! pages, callers [`AdminAuth`] does not accept, and bodies that are not JSON.

// Handlers return a ready `Response` on their error path; it is built once per request.
#![allow(clippy::result_large_err)]

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::admin_gate::{self, AdminAuth};
use super::request::{Incoming, parse_id};
use super::response::{empty, error, from_body_error, from_error, json};
use super::{HttpConfig, Request, Response};
use crate::credential::password::Password;
use crate::engine::{Identa, IdentityImport, MAX_IMPORT_BATCH, PasswordImport};
use crate::error::Error;
use crate::identity::{
    AddressVia, CredentialType, ExternalId, Identity, IdentityError, IdentityState, IdentityUpdate,
    ImportedAddress, NewIdentity, StoredPassword, VerificationStatus,
};
use crate::identity::{ImportedBackupCode, ImportedCredentials, ImportedOidcAccount, ImportedTotp};
use crate::store::MessageStatus;
use crate::store::PageRequest;

/// The admin API. Build it once and share it.
#[derive(Debug)]
pub struct AdminApi {
    identa: Identa,
    config: HttpConfig,
    auth: AdminAuth,
}

impl AdminApi {
    /// The admin API of `identa`, answering only this machine ([`AdminAuth::LoopbackOnly`]);
    /// see [`AdminApi::with_auth`].
    pub fn new(identa: Identa, config: HttpConfig) -> Self {
        Self {
            identa,
            config,
            auth: AdminAuth::LoopbackOnly,
        }
    }

    /// Who may call it: [`AdminAuth::Tokens`] to require a bearer token (and answer
    /// other machines).
    #[must_use]
    pub fn with_auth(mut self, auth: AdminAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        let inc = Incoming::new(&req);
        let path = inc.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = req.method().clone();
        // Health probes (load balancers, orchestrators) carry no token.
        let health =
            method == Method::GET && matches!(segments.as_slice(), ["health", "alive" | "ready"]);
        if let Some(refusal) = admin_gate::check(&req, &self.auth, health) {
            return refusal;
        }
        let result = match (method, segments.as_slice()) {
            (Method::GET, ["health", "alive" | "ready"]) => {
                Ok(json(StatusCode::OK, &json!({ "status": "ok" })))
            }
            (Method::GET, ["admin", "identities"]) => self.list_identities(&inc).await,
            (Method::POST, ["admin", "identities"]) => self.create_identity(&inc).await,
            (Method::PATCH, ["admin", "identities"]) => self.import_identities(&inc).await,
            (Method::GET, ["admin", "identities", "by", "external", external_id]) => {
                self.identity_by_external_id(&inc, external_id).await
            }
            (Method::GET, ["admin", "identities", id]) => self.get_identity(&inc, id).await,
            (Method::PUT, ["admin", "identities", id]) => self.put_identity(&inc, id).await,
            (Method::PATCH, ["admin", "identities", id]) => self.patch_identity(&inc, id).await,
            (Method::DELETE, ["admin", "identities", id]) => self.delete_identity(id).await,
            (Method::DELETE, ["admin", "identities", id, "credentials", kind]) => {
                self.delete_credential(id, kind).await
            }
            (Method::GET, ["admin", "identities", id, "sessions"]) => {
                self.identity_sessions(id).await
            }
            (Method::DELETE, ["admin", "identities", id, "sessions"]) => {
                self.revoke_identity_sessions(id).await
            }
            (Method::GET, ["admin", "sessions"]) => self.list_sessions(&inc).await,
            (Method::GET, ["admin", "sessions", id]) => self.get_session(id).await,
            (Method::PATCH, ["admin", "sessions", id, "extend"]) => self.extend_session(id).await,
            (Method::DELETE, ["admin", "sessions", id]) => self.revoke_session(id).await,
            (Method::POST, ["admin", "recovery", "code"]) => self.recovery_code(&inc).await,
            (Method::GET, ["admin", "courier", "messages"]) => self.messages(&inc).await,
            (Method::GET, ["admin", "courier", "messages", id]) => self.message(id).await,
            (Method::POST, ["admin", "courier", "messages", id, "requeue"]) => {
                self.requeue(id).await
            }
            _ => {
                let shown: String = path.chars().take(200).collect();
                Ok(error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no route for `{shown}`"),
                ))
            }
        };
        result.unwrap_or_else(|res| res)
    }

    fn body(&self, inc: &Incoming<'_>) -> Result<Value, Response> {
        inc.body(self.config.max_admin_body_bytes)
            .map_err(|e| from_body_error(&e))
    }

    async fn identity_by_path(&self, id: &str) -> Result<Identity, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        self.identa.identity(id).await.map_err(|e| from_error(&e))
    }

    async fn list_identities(&self, inc: &Incoming<'_>) -> Result<Response, Response> {
        let shown = included_credentials(inc)?;
        let ids = ids_filter(inc)?;
        let identifier = inc.query("credentials_identifier");
        if !ids.is_empty() && identifier.is_some() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "You cannot combine multiple filters in this API: give `ids` or `credentials_identifier`, not both",
            ));
        }
        let filtered = if let Some(identifier) = identifier {
            let found = self.identa.identity_by_identifier(identifier).await;
            Some(found.map(|found| found.into_iter().collect::<Vec<_>>()))
        } else if !ids.is_empty() {
            Some(self.identa.identities_by_ids(&ids).await)
        } else {
            None
        };
        if let Some(found) = filtered {
            let found = found.map_err(|e| from_error(&e))?;
            let list: Vec<Value> = found
                .iter()
                .map(|i| self.admin_identity_with(i, shown))
                .collect();
            return Ok(json(StatusCode::OK, &json!(list)));
        }
        let page = page_request(inc)?;
        let page = self
            .identa
            .list_identities(page)
            .await
            .map_err(|e| from_error(&e))?;
        let list: Vec<Value> = page
            .items
            .iter()
            .map(|i| self.admin_identity_with(i, shown))
            .collect();
        let mut res = json(StatusCode::OK, &json!(list));
        if let Some(next) = page.next {
            let link = format!(
                "</admin/identities?page_size={}&page_token={next}>; rel=\"next\"",
                inc.query("page_size").unwrap_or("250")
            );
            if let Ok(v) = http::HeaderValue::from_str(&link) {
                res.headers_mut().insert(http::header::LINK, v);
            }
        }
        Ok(res)
    }

    async fn create_identity(&self, inc: &Incoming<'_>) -> Result<Response, Response> {
        let body = self.body(inc)?;
        let import = identity_to_create(&body)?;
        let created = match import.password {
            PasswordImport::Plaintext(p) => {
                self.identa.create_identity(import.identity, Some(&p)).await
            }
            PasswordImport::Hashed(h) => self.identa.import_identity(import.identity, &h).await,
            PasswordImport::None => self.identa.create_identity(import.identity, None).await,
            PasswordImport::MigrationHook => {
                self.identa
                    .import_identity_awaiting_migration(import.identity)
                    .await
            }
        };
        let identity = created.map_err(|e| from_error(&e))?;
        Ok(json(StatusCode::CREATED, &admin_identity(&identity)))
    }

    /// Kratos's batch import: `{"identities": [{"create": …, "patch_id": …}]}`, each item
    /// answered `create` with the new identity's id or `error` with its own error; 200 if
    /// any was created, else 409 if every refusal was a conflict, else 400.
    async fn import_identities(&self, inc: &Incoming<'_>) -> Result<Response, Response> {
        let body = self.body(inc)?;
        let Some(items) = body.get("identities").and_then(Value::as_array) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body needs `identities`: an array of {\"create\": <identity>, \"patch_id\": <uuid>}",
            ));
        };
        if items.len() > MAX_IMPORT_BATCH {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!(
                    "The maximum number of identities per request that can be created at once is {MAX_IMPORT_BATCH}; this one has {}: split it",
                    items.len()
                ),
            ));
        }
        let plaintext = items
            .iter()
            .filter(|i| {
                i.pointer("/create/credentials/password/config/password")
                    .is_some_and(|p| !p.is_null())
            })
            .count();
        if plaintext > MAX_PLAINTEXT_IN_BATCH {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!(
                    "The maximum number of identities per request that can be created with a plaintext password is {MAX_PLAINTEXT_IN_BATCH}; this one has {plaintext}: split it, or import hashes (hashed_password)"
                ),
            ));
        }
        // Each item: its patch id, and what to import or why it cannot be read.
        let mut answers: Vec<(Option<Value>, Result<(), Value>)> = Vec::with_capacity(items.len());
        let mut imports = Vec::new();
        for item in items {
            let patch_id = item.get("patch_id").filter(|v| !v.is_null()).cloned();
            let read = match item.get("create") {
                Some(create) => identity_to_create(create),
                None => Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "each item needs `create`: the identity to create (identa imports; it does not delete in batches)",
                )),
            };
            let read = match patch_id.as_ref().and_then(Value::as_str) {
                Some(text) if Uuid::parse_str(text).is_err() => Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "patch_id must be a UUID",
                )),
                _ => read,
            };
            match read {
                Ok(import) => {
                    imports.push(import);
                    answers.push((patch_id, Ok(())));
                }
                Err(res) => answers.push((patch_id, Err(error_object(&res)))),
            }
        }
        let mut imported = self
            .identa
            .import_identities(imports)
            .await
            .map_err(|e| from_error(&e))?
            .into_iter();
        let mut created = 0;
        let mut conflicts = 0;
        let list: Vec<Value> = answers
            .into_iter()
            .map(|(patch_id, read)| {
                let outcome = match read {
                    Ok(()) => match imported.next() {
                        Some(Ok(identity)) => Ok(identity.id),
                        Some(Err(e)) => Err(error_object(&from_error(&e))),
                        None => Err(error_object(&from_error(&Error::InvalidInput(
                            "the import answered fewer items than it was given".into(),
                        )))),
                    },
                    Err(e) => Err(e),
                };
                let mut answer = match outcome {
                    Ok(id) => {
                        created += 1;
                        json!({ "action": "create", "identity": id })
                    }
                    Err(e) => {
                        if e.get("code").and_then(Value::as_u64) == Some(409) {
                            conflicts += 1;
                        }
                        json!({ "action": "error", "error": e })
                    }
                };
                if let Some(patch_id) = patch_id {
                    super::response::put(&mut answer, "patch_id", patch_id);
                }
                answer
            })
            .collect();
        let status = if created > 0 || list.is_empty() {
            StatusCode::OK
        } else if conflicts == list.len() {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        Ok(json(status, &json!({ "identities": list })))
    }

    async fn get_identity(&self, inc: &Incoming<'_>, id: &str) -> Result<Response, Response> {
        let shown = included_credentials(inc)?;
        let identity = self.identity_by_path(id).await?;
        Ok(json(
            StatusCode::OK,
            &self.admin_identity_with(&identity, shown),
        ))
    }

    async fn identity_by_external_id(
        &self,
        inc: &Incoming<'_>,
        external_id: &str,
    ) -> Result<Response, Response> {
        let shown = included_credentials(inc)?;
        let text = percent_decode(external_id).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the external id in the path is not valid percent-encoded UTF-8",
            )
        })?;
        let external_id: ExternalId = text
            .parse()
            .map_err(|e: IdentityError| from_error(&e.into()))?;
        match self
            .identa
            .identity_by_external_id(&external_id)
            .await
            .map_err(|e| from_error(&e))?
        {
            Some(identity) => Ok(json(
                StatusCode::OK,
                &self.admin_identity_with(&identity, shown),
            )),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no identity has this external_id",
            )),
        }
    }

    async fn put_identity(&self, inc: &Incoming<'_>, id: &str) -> Result<Response, Response> {
        let identity = self.identity_by_path(id).await?;
        let body = self.body(inc)?;
        if let Some(schema) = body.get("schema_id").and_then(Value::as_str)
            && schema != identity.schema_id
        {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "changing schema_id is not supported",
            ));
        }
        let Some(traits) = body.get("traits").cloned() else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "an update (PUT) needs the whole identity: `traits` is missing",
            ));
        };
        let update = IdentityUpdate {
            traits: Some(traits),
            state: parse_state(&body)?,
            metadata_public: Some(
                body.get("metadata_public")
                    .cloned()
                    .filter(|v| !v.is_null()),
            ),
            metadata_admin: Some(body.get("metadata_admin").cloned().filter(|v| !v.is_null())),
            // A PUT replaces the identity: an external id it leaves out is cleared, as Kratos.
            external_id: Some(parse_external_id(&body)?),
        };
        let updated = self
            .identa
            .update_identity(identity.id, update)
            .await
            .map_err(|e| from_error(&e))?;
        if let Some(p) = body
            .pointer("/credentials/password/config/password")
            .and_then(Value::as_str)
        {
            let updated = self
                .identa
                .set_password(updated.id, &Password::new(p))
                .await
                .map_err(|e| from_error(&e))?;
            return Ok(json(StatusCode::OK, &admin_identity(&updated)));
        }
        Ok(json(StatusCode::OK, &admin_identity(&updated)))
    }

    async fn patch_identity(&self, inc: &Incoming<'_>, id: &str) -> Result<Response, Response> {
        let identity = self.identity_by_path(id).await?;
        let bytes = inc.request().body();
        if bytes.len() > self.config.max_admin_body_bytes {
            return Err(from_body_error(&super::request::BodyError::TooLarge {
                limit: self.config.max_admin_body_bytes,
            }));
        }
        let patch: json_patch::Patch = serde_json::from_slice(bytes).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("the body is not a JSON Patch (RFC 6902) array: {e}"),
            )
        })?;
        let mut doc = json!({
            "schema_id": identity.schema_id,
            "state": identity.state.as_str(),
            "traits": identity.traits,
            "metadata_public": identity.metadata_public,
            "metadata_admin": identity.metadata_admin,
            "external_id": identity.external_id,
        });
        json_patch::patch(&mut doc, &patch).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("the patch does not apply: {e}"),
            )
        })?;
        if doc.get("schema_id").and_then(Value::as_str) != Some(identity.schema_id.as_str()) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "changing schema_id is not supported",
            ));
        }
        let update = IdentityUpdate {
            traits: doc.get("traits").cloned(),
            state: parse_state(&doc)?,
            metadata_public: Some(doc.get("metadata_public").cloned().filter(|v| !v.is_null())),
            metadata_admin: Some(doc.get("metadata_admin").cloned().filter(|v| !v.is_null())),
            external_id: Some(parse_external_id(&doc)?),
        };
        let updated = self
            .identa
            .update_identity(identity.id, update)
            .await
            .map_err(|e| from_error(&e))?;
        Ok(json(StatusCode::OK, &admin_identity(&updated)))
    }

    async fn delete_identity(&self, id: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        self.identa
            .delete_identity(id)
            .await
            .map_err(|e| from_error(&e))?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn delete_credential(&self, id: &str, kind: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        let kind: crate::identity::CredentialType =
            kind.parse().map_err(|e: crate::identity::UnknownVariant| {
                error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string())
            })?;
        let identity = self.identa.identity(id).await.map_err(|e| from_error(&e))?;
        if kind != crate::identity::CredentialType::Password && identity.credential(kind).is_none()
        {
            return Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("identity {id} has no {kind} credential"),
            ));
        }
        self.identa
            .delete_credential(id, kind)
            .await
            .map_err(|e| from_error(&e))?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn identity_sessions(&self, id: &str) -> Result<Response, Response> {
        let identity = self.identity_by_path(id).await?;
        let sessions = self
            .identa
            .sessions(identity.id)
            .await
            .map_err(|e| from_error(&e))?;
        Ok(json(StatusCode::OK, &json!(sessions)))
    }

    async fn revoke_identity_sessions(&self, id: &str) -> Result<Response, Response> {
        let identity = self.identity_by_path(id).await?;
        self.identa
            .revoke_all_sessions(identity.id)
            .await
            .map_err(|e| from_error(&e))?;
        Ok(empty(StatusCode::NO_CONTENT))
    }

    async fn list_sessions(&self, inc: &Incoming<'_>) -> Result<Response, Response> {
        let active = match inc.query("active") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "active must be true or false",
                ));
            }
        };
        let page = page_request(inc)?;
        let page = self
            .identa
            .list_sessions(active, page)
            .await
            .map_err(|e| from_error(&e))?;
        let mut res = json(StatusCode::OK, &json!(page.items));
        if let Some(next) = page.next {
            let link = format!(
                "</admin/sessions?page_size={}&page_token={next}>; rel=\"next\"",
                inc.query("page_size").unwrap_or("250")
            );
            if let Ok(v) = http::HeaderValue::from_str(&link) {
                res.headers_mut().insert(http::header::LINK, v);
            }
        }
        Ok(res)
    }

    async fn get_session(&self, id: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        let session = self.identa.session(id).await.map_err(|e| from_error(&e))?;
        let identity = self
            .identa
            .identity(session.identity_id)
            .await
            .map_err(|e| from_error(&e))?;
        let mut out = json!(session);
        super::response::put(&mut out, "identity", admin_identity(&identity));
        Ok(json(StatusCode::OK, &out))
    }

    async fn extend_session(&self, id: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        let session = self
            .identa
            .extend_session(id)
            .await
            .map_err(|e| from_error(&e))?;
        Ok(json(StatusCode::OK, &json!(session)))
    }

    async fn revoke_session(&self, id: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        let session = self.identa.session(id).await.map_err(|e| from_error(&e))?;
        match self.identa.revoke_session(session.identity_id, id).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(empty(StatusCode::NO_CONTENT)),
            Err(e) => Err(from_error(&e)),
        }
    }

    async fn recovery_code(&self, inc: &Incoming<'_>) -> Result<Response, Response> {
        let body = self.body(inc)?;
        let identity_id = body
            .get("identity_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the body needs `identity_id`",
                )
            })?;
        let identity_id = parse_id(identity_id).map_err(|e| from_error(&e))?;
        let expires_in = match body.get("expires_in").and_then(Value::as_str) {
            Some(text) => parse_duration(text).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "expires_in must be a duration such as `15m`, `1h` or `90s`, at most 7 days",
                )
            })?,
            None => self.identa.config().flows.recovery.code_lifespan,
        };
        let issued = self
            .identa
            .recovery_flow()
            .create_code_for(identity_id, expires_in)
            .await
            .map_err(|e| from_error(&e))?;
        let public = self.identa.config().flows.public_url.trim_end_matches('/');
        Ok(json(
            StatusCode::CREATED,
            &json!({
                "recovery_link": format!("{public}/self-service/recovery?flow={}", issued.flow.id),
                "recovery_code": issued.code.expose(),
                "expires_at": issued.expires_at,
            }),
        ))
    }

    async fn messages(&self, inc: &Incoming<'_>) -> Result<Response, Response> {
        let status = match inc.query("status") {
            Some(s) => Some(
                s.parse::<MessageStatus>()
                    .map_err(|e| error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()))?,
            ),
            None => None,
        };
        let page = page_request(inc)?;
        let page = self
            .identa
            .courier()
            .messages(status, page)
            .await
            .map_err(|e| from_error(&e.into()))?;
        let list: Vec<Value> = page.items.iter().map(message_json).collect();
        Ok(json(StatusCode::OK, &json!(list)))
    }

    async fn message(&self, id: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        match self
            .identa
            .courier()
            .message(id)
            .await
            .map_err(|e| from_error(&e.into()))?
        {
            Some(m) => Ok(json(StatusCode::OK, &message_json(&m))),
            None => Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no message has id {id}"),
            )),
        }
    }
}

impl AdminApi {
    /// identa's own route (Kratos has none): an abandoned message back in the queue.
    async fn requeue(&self, id: &str) -> Result<Response, Response> {
        let id = parse_id(id).map_err(|e| from_error(&e))?;
        let message = self
            .identa
            .courier()
            .requeue(id)
            .await
            .map_err(|e| from_error(&e.into()))?;
        Ok(json(StatusCode::OK, &message_json(&message)))
    }
}

/// An identity as the admin API shows it: everything but credential secrets.
fn admin_identity(identity: &Identity) -> Value {
    admin_identity_with(identity, Shown::default(), None)
}

impl AdminApi {
    /// [`admin_identity_with`] with this engine's cipher (for `include_credential=oidc`).
    fn admin_identity_with(&self, identity: &Identity, shown: Shown) -> Value {
        admin_identity_with(identity, shown, Some(self.identa.keyring()))
    }
}

/// An identity as the admin API shows it, with the credential configuration `shown` asks
/// for (`include_credential`); sealed provider tokens are opened with `keyring`.
fn admin_identity_with(
    identity: &Identity,
    shown: Shown,
    keyring: Option<&crate::secret::Keyring>,
) -> Value {
    let mut out = json!(identity);
    if let Some(map) = out.as_object_mut() {
        map.insert("metadata_admin".into(), json!(identity.metadata_admin));
        let credentials: Map<String, Value> = identity
            .credentials
            .values()
            .map(|c| {
                let mut credential = json!({
                    "type": c.credential_type.as_str(),
                    "identifiers": c.identifiers,
                    "version": c.version,
                    "created_at": c.created_at,
                    "updated_at": c.updated_at,
                });
                #[cfg(feature = "oidc")]
                if let (Show::Config, CredentialType::Oidc, Some(keyring)) =
                    (shown.oidc, c.credential_type, keyring)
                {
                    let config =
                        crate::credential::oidc::opened_config(keyring, identity.id, &c.config);
                    super::response::put(&mut credential, "config", config);
                }
                #[cfg(not(feature = "oidc"))]
                let _ = keyring;
                if shown.password == Show::Config && c.credential_type == CredentialType::Password {
                    let config = match c.stored_password() {
                        Some(StoredPassword::Hashed(hash)) => {
                            Some(json!({ "hashed_password": hash }))
                        }
                        Some(StoredPassword::AwaitingMigration) => Some(
                            json!({ "hashed_password": "", "use_password_migration_hook": true }),
                        ),
                        None => None,
                    };
                    if let Some(config) = config {
                        super::response::put(&mut credential, "config", config);
                    }
                }
                (c.credential_type.as_str().to_owned(), credential)
            })
            .collect();
        map.insert("credentials".into(), Value::Object(credentials));
    }
    out
}

fn message_json(m: &crate::courier::Message) -> Value {
    json!({
        "id": m.id,
        "status": m.status.as_str(),
        "type": "email",
        "template_type": m.template.as_str(),
        "recipient": m.email.to,
        "subject": m.email.subject,
        "body": m.email.text,
        "send_count": m.send_count,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    })
}

/// The most items of a batch import with a plaintext password (Kratos's
/// `BatchPatchIdentitiesWithPasswordLimit`): each costs a full password hash.
const MAX_PLAINTEXT_IN_BATCH: usize = 200;

/// The `error` object of an error response (Kratos's per-item error in a batch).
fn error_object(res: &Response) -> Value {
    serde_json::from_slice::<Value>(res.body())
        .ok()
        .and_then(|mut body| body.get_mut("error").map(Value::take))
        .unwrap_or_else(|| json!({ "code": res.status().as_u16() }))
}

/// Which credential configuration an identity's admin JSON shows (`include_credential`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Shown {
    /// The password credential's `config.hashed_password` (an export to move users).
    password: Show,
    /// The `oidc` credential's provider entries with their kept tokens opened.
    oidc: Show,
}

/// Whether one credential type's configuration is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Show {
    /// Not shown: the credential with its identifiers only.
    #[default]
    Hidden,
    /// Shown.
    Config,
}

/// `include_credential` (repeatable, also as `include_credential[]`): `password` shows the
/// password hash and `oidc` the provider entries with their kept tokens opened, as Kratos
/// does; other types are refused, their secrets stay sealed.
fn included_credentials(inc: &Incoming<'_>) -> Result<Shown, Response> {
    let mut shown = Shown::default();
    for value in inc.query_all("include_credential") {
        match value.parse::<CredentialType>() {
            Ok(CredentialType::Password) => shown.password = Show::Config,
            #[cfg(feature = "oidc")]
            Ok(CredentialType::Oidc) => shown.oidc = Show::Config,
            Ok(other) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!(
                        "include_credential={other} is not offered: identa shows only the password and oidc credentials' configuration (include_credential=password or oidc); other credentials keep their secrets sealed"
                    ),
                ));
            }
            Err(_) => {
                let shown: String = value.chars().take(64).collect();
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!(
                        "Invalid value `{shown}` for parameter `include_credential`: use `password` or `oidc`"
                    ),
                ));
            }
        }
    }
    Ok(shown)
}

/// The most ids one listing may filter by (Kratos's bound).
const MAX_IDS_FILTER: usize = 500;

/// `ids` (repeatable, also as `ids[]`): at most [`MAX_IDS_FILTER`] identity ids.
fn ids_filter(inc: &Incoming<'_>) -> Result<Vec<Uuid>, Response> {
    let given: Vec<&str> = inc.query_all("ids").collect();
    if given.len() > MAX_IDS_FILTER {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!(
                "The number of ids to filter must not exceed {MAX_IDS_FILTER}; this request has {}: ask in several requests",
                given.len()
            ),
        ));
    }
    given
        .into_iter()
        .map(|text| {
            Uuid::parse_str(text).map_err(|_| {
                let shown: String = text.chars().take(64).collect();
                error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    &format!("Invalid UUID value `{shown}` for parameter `ids`."),
                )
            })
        })
        .collect()
}

/// `external_id`: absent, null or empty is none (Kratos stores an empty one as NULL).
fn parse_external_id(body: &Value) -> Result<Option<ExternalId>, Response> {
    match body.get("external_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|e: IdentityError| from_error(&e.into())),
        Some(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "external_id must be a string",
        )),
    }
}

/// `verifiable_addresses` of a create body: each `{value, via, verified, status,
/// verified_at}`. `verified: true` makes it completed; `recovery_addresses` need nothing
/// read (they follow the traits, and carry no state of their own).
fn parse_imported_addresses(body: &Value) -> Result<Vec<ImportedAddress>, Response> {
    let bad = |reason: String| error(StatusCode::BAD_REQUEST, "bad_request", &reason);
    let Some(list) = body.get("verifiable_addresses").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(bad("verifiable_addresses must be an array".into()));
    };
    list.iter()
        .enumerate()
        .map(|(n, a)| {
            let value = a.get("value").and_then(Value::as_str).ok_or_else(|| {
                bad(format!("verifiable_addresses[{n}] needs `value`, a string"))
            })?;
            let via: AddressVia = a
                .get("via")
                .and_then(Value::as_str)
                .unwrap_or("email")
                .parse()
                .map_err(|e: crate::identity::UnknownAddressVia| {
                    bad(format!("verifiable_addresses[{n}].via: {e}"))
                })?;
            let verified = a.get("verified").and_then(Value::as_bool).unwrap_or(false);
            let status = match a.get("status").and_then(Value::as_str) {
                None => None,
                Some(s) => Some(s.parse::<VerificationStatus>().map_err(|e| {
                    bad(format!("verifiable_addresses[{n}].status: {e}; use pending, sent or completed"))
                })?),
            };
            let status = match (verified, status) {
                (true, _) => VerificationStatus::Completed,
                (false, Some(VerificationStatus::Completed)) => {
                    return Err(bad(format!(
                        "verifiable_addresses[{n}] says status completed but verified false: set both for a verified address"
                    )));
                }
                (false, status) => status.unwrap_or_default(),
            };
            let verified_at = match a.get("verified_at").filter(|v| !v.is_null()) {
                None => None,
                Some(at) => Some(serde_json::from_value(at.clone()).map_err(|_| {
                    bad(format!(
                        "verifiable_addresses[{n}].verified_at must be an RFC 3339 time"
                    ))
                })?),
            };
            Ok(ImportedAddress {
                value: value.to_owned(),
                via,
                status,
                verified_at,
            })
        })
        .collect()
}

/// `credentials.totp`, `.lookup_secret` and `.oidc` of a create body (Kratos's
/// `identityWithCredentials`); `webauthn`, `passkey` and `saml` are refused, saying why.
fn parse_imported_credentials(body: &Value) -> Result<ImportedCredentials, Response> {
    let bad = |reason: String| error(StatusCode::BAD_REQUEST, "bad_request", &reason);
    let given = |name: &str| {
        body.pointer(&format!("/credentials/{name}"))
            .filter(|v| !v.is_null())
    };
    for (name, why) in [
        (
            "webauthn",
            "Kratos stores security keys in go-webauthn's fields, which do not make the credential state webauthn-rs verifies (counter, backup flags, attestation) without guessing; have users add their keys again in settings",
        ),
        (
            "passkey",
            "Kratos stores passkeys in go-webauthn's fields, which do not make the credential state webauthn-rs verifies without guessing; have users add their passkeys again in settings",
        ),
        ("saml", "identa has no SAML sign-in"),
    ] {
        if given(name).is_some() {
            return Err(bad(format!(
                "credentials.{name} is not supported by identa's import: {why} (see docs/migrating-from-kratos.md)"
            )));
        }
    }
    let string_at = |pointer: &str| -> Result<Option<String>, Response> {
        match body.pointer(pointer).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!(
                "{} must be a string",
                pointer.trim_start_matches('/').replace('/', ".")
            ))),
        }
    };
    let totp = string_at("/credentials/totp/config/totp_url")?.map(ImportedTotp::new);
    if totp.is_none() && given("totp").is_some() {
        return Err(bad(
            "credentials.totp needs config.totp_url: the authenticator's otpauth://totp/ URL"
                .into(),
        ));
    }
    let mut backup_codes = Vec::new();
    if let Some(lookup) = given("lookup_secret") {
        let Some(codes) = lookup.pointer("/config/codes").and_then(Value::as_array) else {
            return Err(bad(
                "credentials.lookup_secret needs config.codes: an array of {\"code\", \"used_at\"}"
                    .into(),
            ));
        };
        for (n, c) in codes.iter().enumerate() {
            let code = c.get("code").and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "credentials.lookup_secret.config.codes[{n}] needs `code`, a string"
                ))
            })?;
            let used_at = match c.get("used_at").filter(|v| !v.is_null()) {
                None => None,
                Some(at) => Some(serde_json::from_value(at.clone()).map_err(|_| {
                    bad(format!(
                        "credentials.lookup_secret.config.codes[{n}].used_at must be an RFC 3339 time"
                    ))
                })?),
            };
            backup_codes.push(ImportedBackupCode {
                code: code.to_owned(),
                used_at,
            });
        }
    }
    let mut oidc = Vec::new();
    if let Some(config) = given("oidc") {
        let Some(providers) = config
            .pointer("/config/providers")
            .and_then(Value::as_array)
        else {
            return Err(bad(
                "credentials.oidc needs config.providers: an array of {\"provider\", \"subject\"}"
                    .into(),
            ));
        };
        for (n, p) in providers.iter().enumerate() {
            let field = |name: &str| {
                p.get(name).and_then(Value::as_str).ok_or_else(|| {
                    bad(format!(
                        "credentials.oidc.config.providers[{n}] needs `{name}`, a string"
                    ))
                })
            };
            if p.get("use_auto_link").and_then(Value::as_bool) == Some(true) {
                return Err(bad(format!(
                    "credentials.oidc.config.providers[{n}].use_auto_link is not supported by identa's import: give the account's subject, which signs it in from the first provider sign-in"
                )));
            }
            oidc.push(ImportedOidcAccount {
                provider: field("provider")?.to_owned(),
                subject: field("subject")?.to_owned(),
            });
        }
    }
    Ok(ImportedCredentials {
        totp,
        backup_codes,
        oidc,
    })
}

/// A create body (Kratos's `createIdentityBody`) as the engine takes it.
fn identity_to_create(body: &Value) -> Result<IdentityImport, Response> {
    if !body.is_object() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "an identity to create is a JSON object with `traits`",
        ));
    }
    let identity = NewIdentity {
        schema_id: body
            .get("schema_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        traits: body.get("traits").cloned().unwrap_or_else(|| json!({})),
        state: parse_state(body)?.unwrap_or_default(),
        metadata_public: body
            .get("metadata_public")
            .cloned()
            .filter(|v| !v.is_null()),
        metadata_admin: body.get("metadata_admin").cloned().filter(|v| !v.is_null()),
        external_id: parse_external_id(body)?,
        verifiable_addresses: parse_imported_addresses(body)?,
        credentials: parse_imported_credentials(body)?,
    };
    let password = body.pointer("/credentials/password/config");
    let plain = password
        .and_then(|c| c.get("password"))
        .and_then(Value::as_str);
    // An empty hash is none: Kratos exports an identity awaiting migration with
    // `"hashed_password": ""`.
    let hashed = password
        .and_then(|c| c.get("hashed_password"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty());
    let migrate = password.and_then(|c| c.get("use_password_migration_hook")) == Some(&json!(true));
    let password = match (plain, hashed, migrate) {
        (Some(_), Some(_), _) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "give either credentials.password.config.password or .hashed_password, not both",
            ));
        }
        (Some(_), None, true) | (None, Some(_), true) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "credentials.password.config.use_password_migration_hook imports no password: leave out .password and .hashed_password, or the flag",
            ));
        }
        (Some(p), None, false) => PasswordImport::Plaintext(Password::new(p)),
        (None, Some(h), false) => PasswordImport::Hashed(h.to_owned()),
        (None, None, true) => PasswordImport::MigrationHook,
        (None, None, false) => PasswordImport::None,
    };
    Ok(IdentityImport { identity, password })
}

/// A path segment's percent-encoding undone; `None` if it is not UTF-8 or malformed.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_state(body: &Value) -> Result<Option<IdentityState>, Response> {
    match body.get("state").and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e: crate::identity::UnknownVariant| {
                error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string())
            }),
    }
}

fn page_request(inc: &Incoming<'_>) -> Result<PageRequest, Response> {
    let mut page = PageRequest::default();
    if let Some(size) = inc.query("page_size") {
        page.page_size = size.parse().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "page_size must be a number",
            )
        })?;
    }
    if let Some(token) = inc.query("page_token") {
        page.after = Some(Uuid::parse_str(token).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "page_token is not one this API gave out",
            )
        })?);
    }
    Ok(page)
}

/// The longest `expires_in` an admin may give a recovery code.
const MAX_CODE_LIFESPAN: Duration = Duration::days(7);

/// `90s`, `15m`, `1h`, `1h30m`; at most [`MAX_CODE_LIFESPAN`] (no overflow on huge values).
fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        let part = match c {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            _ => return None,
        }?;
        total = total.checked_add(&part)?;
        if total > MAX_CODE_LIFESPAN {
            return None;
        }
    }
    (number.is_empty() && total > Duration::zero()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded_and_never_overflow() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("99999999999999h"), None);
        assert_eq!(parse_duration("8d"), None);
        assert_eq!(parse_duration("200h"), None);
        assert_eq!(parse_duration("15"), None);
    }
}
