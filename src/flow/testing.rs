//! Facts for unit tests of the flows: a few identities in memory, a clock that only moves
//! when told, cheap hashing — no database. Each flow module's tests drive its state
//! machine through these: a submission in, the step and its effects out.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use super::ui::UiText;
use super::{Effect, Facts, Flow, FlowRequest, FlowsConfig, Step, Transition};
use crate::credential::password::{
    self, Lane, Password, PasswordConfig, PasswordError, PasswordHasher,
};
use crate::credential::webauthn::RelyingParty;
use crate::hook::{BeforeEvent, HookError};
use crate::identity::{
    AddressVia, CredentialType, Identity, NewIdentity, SchemaRegistry, normalize,
};
use crate::secret::{Keyring, Secrets};
use crate::store::{AddressKind, StoreError};

/// The password every test identity has.
pub(crate) const PASSWORD: &str = "a long and unusual passphrase";

/// The facts of a test: identities in memory, the rest configurable.
pub(crate) struct TestFacts {
    pub(crate) now: Mutex<DateTime<Utc>>,
    pub(crate) config: FlowsConfig,
    password: PasswordConfig,
    schemas: SchemaRegistry,
    keyring: Keyring,
    hasher: PasswordHasher,
    pub(crate) identities: Mutex<Vec<Identity>>,
    /// What the host's before hook answers.
    pub(crate) before: Mutex<Option<HookError>>,
    /// How many passwords [`Facts::hash_password`] hashed.
    hashed: AtomicUsize,
    /// The lane [`Facts::password_lane`] names (what the engine decides from its markers).
    pub(crate) lane: Mutex<Lane>,
    /// The lane of each password verification, in order.
    pub(crate) verified_in: Mutex<Vec<Lane>>,
}

impl TestFacts {
    pub(crate) fn new() -> Self {
        let mut schemas = SchemaRegistry::new();
        schemas
            .add(
                "default",
                json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": { "traits": { "type": "object", "required": ["email"],
                        "properties": { "email": {
                            "type": "string", "format": "email", "maxLength": 320,
                            "ory.sh/kratos": {
                                "credentials": { "password": { "identifier": true } },
                                "verification": { "via": "email" },
                                "recovery": { "via": "email" } } } } } }
                }),
            )
            .unwrap();
        let password = PasswordConfig::insecure_fast_for_tests();
        Self {
            now: Mutex::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap()),
            config: FlowsConfig::default(),
            hasher: PasswordHasher::new(password.clone()).unwrap(),
            password,
            schemas,
            keyring: Keyring::new(&Secrets::default()).unwrap(),
            identities: Mutex::new(Vec::new()),
            before: Mutex::new(None),
            hashed: AtomicUsize::new(0),
            lane: Mutex::new(Lane::Ordinary),
            verified_in: Mutex::new(Vec::new()),
        }
    }

    /// Moves the clock.
    /// How many passwords the flows had hashed so far.
    pub(crate) fn hashes(&self) -> usize {
        self.hashed.load(Ordering::SeqCst)
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }

    /// An identity with `email` and [`PASSWORD`], known to these facts.
    pub(crate) async fn add_identity(&self, email: &str) -> Identity {
        let schema = self.schemas.get("default").unwrap();
        let new = NewIdentity {
            traits: json!({ "email": email }),
            ..NewIdentity::default()
        };
        let (mut identity, extracted) = Identity::draft(&schema, new, self.now()).unwrap();
        let hash = self.hasher.hash(&Password::new(PASSWORD)).await.unwrap();
        password::set_on(
            &mut identity,
            extracted.password_identifiers,
            hash,
            self.now(),
        );
        self.identities.lock().unwrap().push(identity.clone());
        identity
    }

    /// The identity as these facts know it now.
    pub(crate) fn stored(&self, id: Uuid) -> Identity {
        self.identities
            .lock()
            .unwrap()
            .iter()
            .find(|i| i.id == id)
            .cloned()
            .unwrap()
    }
}

#[async_trait]
impl Facts for TestFacts {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }

    fn config(&self) -> &FlowsConfig {
        &self.config
    }

    fn password_config(&self) -> &PasswordConfig {
        &self.password
    }

    fn session_lifespan(&self) -> Duration {
        Duration::hours(24)
    }

    fn schemas(&self) -> &SchemaRegistry {
        &self.schemas
    }

    fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Every test provider answers with an ID token carrying `auth_time`.
    #[cfg(feature = "oidc")]
    fn oidc_proves_fresh_sign_in(&self, _id: &str) -> bool {
        true
    }

    fn webauthn(&self) -> Option<(&webauthn_rs::Webauthn, &RelyingParty)> {
        None
    }

    async fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
        Ok(self
            .identities
            .lock()
            .unwrap()
            .iter()
            .find(|i| i.id == id)
            .cloned())
    }

    async fn identity_by_identifier(
        &self,
        credential_type: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError> {
        Ok(self
            .identities
            .lock()
            .unwrap()
            .iter()
            .find(|i| {
                i.credential(credential_type)
                    .is_some_and(|c| c.identifiers.iter().any(|id| id == identifier))
            })
            .cloned())
    }

    async fn identity_by_address(
        &self,
        kind: AddressKind,
        via: AddressVia,
        value: &str,
    ) -> Result<Option<Identity>, StoreError> {
        let value = normalize::address(value, via);
        Ok(self
            .identities
            .lock()
            .unwrap()
            .iter()
            .find(|i| match kind {
                AddressKind::Recovery => i
                    .recovery_addresses
                    .iter()
                    .any(|a| a.via == via && a.value == value),
                AddressKind::Verifiable => i
                    .verifiable_addresses
                    .iter()
                    .any(|a| a.via == via && a.value == value),
            })
            .cloned())
    }

    fn breached_passwords(&self) -> &dyn crate::credential::breached::BreachedPasswords {
        &crate::credential::breached::CommonPasswords
    }

    async fn hash_password(&self, password: &Password) -> Result<String, PasswordError> {
        self.hashed.fetch_add(1, Ordering::SeqCst);
        self.hasher.hash(password).await
    }

    async fn verify_password_in(
        &self,
        lane: Lane,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        self.verified_in.lock().unwrap().push(lane);
        self.hasher.verify_in(lane, password, stored).await
    }

    async fn password_lane(&self, _: &str, _: &FlowRequest) -> Result<Lane, StoreError> {
        Ok(*self.lane.lock().unwrap())
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        self.hasher.needs_rehash(stored)
    }

    async fn before(&self, _: &BeforeEvent<'_>) -> Result<(), HookError> {
        match self.before.lock().unwrap().clone() {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }
}

/// An API flow request (no CSRF).
pub(crate) fn api() -> FlowRequest {
    FlowRequest::api()
}

/// The transition of an accepted step; panics with the flow's messages otherwise.
pub(crate) fn advanced<O>(step: Step<O>) -> Transition<O> {
    match step {
        Step::Advance(transition) => transition,
        Step::Reject(flow) => panic!("rejected: {:?}", message_ids(&flow)),
    }
}

/// The flow of a rejected step; panics if the step was accepted.
pub(crate) fn rejected<O>(step: Step<O>) -> Flow {
    match step {
        Step::Reject(flow) => flow,
        Step::Advance(t) => panic!("accepted, with effects {:?}", t.effects),
    }
}

/// Every message id on a flow: the form's, then each node's.
pub(crate) fn message_ids(flow: &Flow) -> Vec<u32> {
    let form = flow.ui.messages.iter().map(|m| m.id);
    let nodes = flow
        .ui
        .nodes
        .iter()
        .flat_map(|n| n.messages.iter().map(|m: &UiText| m.id));
    form.chain(nodes).collect()
}

/// The one-time code a `SendMail` effect carries, if any.
pub(crate) fn mailed_code(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::SendMail { vars, .. } => vars.code.clone(),
        _ => None,
    })
}

/// A short name per effect, in order, for asserting what a submission changes.
pub(crate) fn effect_names(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .map(|e| match e {
            Effect::InsertFlow(_) => "insert_flow",
            Effect::InsertIdentity(_) => "insert_identity",
            Effect::UpdateIdentity(_) => "update_identity",
            Effect::RehashPassword(_) => "rehash_password",
            Effect::IssueSession { .. } => "issue_session",
            Effect::UpdateSession(_) => "update_session",
            Effect::RevokeSessions { .. } => "revoke_sessions",
            Effect::SendMail { .. } => "send_mail",
            Effect::SpendCode { .. } => "spend_code",
            Effect::RememberPair { .. } => "remember_pair",
            Effect::RememberPassword { .. } => "remember_password",
        })
        .collect()
}
