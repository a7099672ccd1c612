//! Security keys (a second factor) and passkeys (a first factor, user verification
//! required), both WebAuthn through webauthn-rs: the relying party, the keys an identity
//! holds (its `webauthn` and `passkey` credentials, each a list of keys), and the
//! ceremony state a flow keeps between the challenge it shows and the answer it gets.
//!
//! Ceremony state lives only in the flow's row (never in a cookie or a client) and is
//! dropped when the ceremony completes. Stored keys are public keys and counters: nothing
//! in them is secret. Each key's credential id is also an identifier of its credential
//! (`key:<hex>`), so the database refuses the same authenticator credential on two
//! accounts.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, Url,
    Webauthn, WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::{AllowCredentials, AuthenticatorTransport, ResidentKeyRequirement};

use crate::identity::{Credential, CredentialType, ExtractedTraits, Identity};
use crate::secret::{Keyring, MacPurpose, hex};

/// The WebAuthn relying party: the site security keys and passkeys are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The domain credentials belong to, e.g. `example.com` (`localhost` in development).
    /// Every origin must be this domain or below it.
    pub id: String,
    /// The name authenticators show, e.g. your product's name.
    pub name: String,
    /// The origins your pages run on, e.g. `https://app.example.com`. A ceremony from any
    /// other origin is refused.
    pub origins: Vec<String>,
}

impl RelyingParty {
    /// A relying party for local development: `localhost`, with pages at `origin`
    /// (e.g. `http://localhost:4433`).
    pub fn localhost(origin: impl Into<String>) -> Self {
        Self {
            id: "localhost".into(),
            name: "identa".into(),
            origins: vec![origin.into()],
        }
    }

    /// The webauthn-rs engine for this relying party, or why the configuration is wrong.
    pub(crate) fn build(&self) -> Result<Webauthn, String> {
        let mut origins = self
            .origins
            .iter()
            .map(|o| Url::parse(o).map_err(|e| format!("webauthn origin `{o}` is not a URL: {e}")));
        let first = origins
            .next()
            .ok_or("the webauthn relying party needs at least one origin")??;
        let mut builder = WebauthnBuilder::new(&self.id, &first).map_err(|e| {
            format!(
                "webauthn relying party `{}` does not fit origin `{first}`: {e}",
                self.id
            )
        })?;
        for origin in origins {
            builder = builder.append_allowed_origin(&origin?);
        }
        builder
            .rp_name(&self.name)
            .build()
            .map_err(|e| format!("webauthn relying party `{}`: {e}", self.id))
    }
}

/// Why a ceremony answer was not accepted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No ceremony is waiting in the flow (or it was for another purpose).
    NoCeremony,
    /// The answer is not the JSON a WebAuthn client produces.
    Malformed,
    /// webauthn-rs refused it: wrong origin or challenge, bad signature, counter gone
    /// backwards (a cloned authenticator), user not verified, …
    Refused(WebauthnError),
    /// The key that answered is not one of the account's.
    UnknownKey,
}

/// A key types webauthn-rs gives us: [`SecurityKey`] or [`Passkey`].
pub(crate) trait Key: Serialize + DeserializeOwned + Clone {
    /// The authenticator's credential id.
    fn credential_id(&self) -> &[u8];
    /// Takes the counter and flags of a successful authentication.
    fn update(&mut self, result: &AuthenticationResult);
}

impl Key for SecurityKey {
    fn credential_id(&self) -> &[u8] {
        self.cred_id()
    }
    fn update(&mut self, result: &AuthenticationResult) {
        self.update_credential(result);
    }
}

impl Key for Passkey {
    fn credential_id(&self) -> &[u8] {
        self.cred_id()
    }
    fn update(&mut self, result: &AuthenticationResult) {
        self.update_credential(result);
    }
}

/// One registered key with the name its owner gave it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey<K> {
    /// The credential id, hex (what `webauthn_remove`/`passkey_remove` submit).
    pub(crate) id: String,
    /// The owner's name for it.
    pub(crate) display_name: String,
    /// When it was added.
    pub(crate) added_at: DateTime<Utc>,
    /// The public key and counter.
    pub(crate) key: K,
}

/// The keys of one credential (its config).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredKeys<K> {
    pub(crate) keys: Vec<StoredKey<K>>,
}

impl<K> Default for StoredKeys<K> {
    fn default() -> Self {
        Self { keys: Vec::new() }
    }
}

impl<K: Key> StoredKeys<K> {
    /// The keys in a credential config (none if it is unreadable).
    pub(crate) fn read(config: &Value) -> Self {
        serde_json::from_value(config.clone()).unwrap_or_default()
    }

    /// The credential config.
    pub(crate) fn to_config(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The identifiers that make each credential id unique across accounts.
    pub(crate) fn key_identifiers(&self) -> Vec<String> {
        self.keys.iter().map(|k| format!("key:{}", k.id)).collect()
    }

    fn public_keys(&self) -> Vec<K> {
        self.keys.iter().map(|k| k.key.clone()).collect()
    }

    fn ids(&self) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .map(|k| k.key.credential_id().to_vec())
            .collect()
    }

    /// Adds a key; false if the account already has it.
    pub(crate) fn add(&mut self, key: K, display_name: String, now: DateTime<Utc>) -> bool {
        let id = hex(key.credential_id());
        if self.keys.iter().any(|k| k.id == id) {
            return false;
        }
        self.keys.push(StoredKey {
            id,
            display_name,
            added_at: now,
            key,
        });
        true
    }

    /// Removes the key with this hex id; false if there is none.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let id = id.trim().to_ascii_lowercase();
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        self.keys.len() != before
    }

    /// The key with this authenticator credential id.
    fn find(&self, credential_id: &[u8]) -> Option<&StoredKey<K>> {
        self.keys
            .iter()
            .find(|k| k.key.credential_id() == credential_id)
    }

    /// Records a successful authentication on the key that made it.
    fn record(&mut self, result: &AuthenticationResult) -> Result<(), Refusal> {
        let key = self
            .keys
            .iter_mut()
            .find(|k| k.key.credential_id() == result.cred_id().as_slice())
            .ok_or(Refusal::UnknownKey)?;
        key.key.update(result);
        Ok(())
    }
}

/// A ceremony waiting in a flow for the client's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ceremony", rename_all = "snake_case")]
pub(crate) enum Ceremony {
    /// Adding a security key (settings).
    SecurityKeyRegistration { state: SecurityKeyRegistration },
    /// A security key as the second factor (login with `aal2`).
    SecurityKeyLogin { state: SecurityKeyAuthentication },
    /// Adding a passkey (registration: `user_id` becomes the identity's id; settings).
    PasskeyRegistration {
        user_id: Uuid,
        state: PasskeyRegistration,
    },
    /// Signing in with a passkey. `None` when the identifier has no passkey: the client
    /// was shown a believable challenge all the same, and any answer fails.
    PasskeyLogin {
        found: Option<(Uuid, PasskeyAuthentication)>,
    },
    /// Signing in with a discoverable passkey, no identifier asked: the answer names its
    /// account (the user handle, which is the identity's id) and its key.
    PasskeyDiscoverable { state: DiscoverableAuthentication },
}

impl Ceremony {
    /// The value kept in the flow's internal context.
    pub(crate) fn to_value(&self) -> Option<Value> {
        serde_json::to_value(self).ok()
    }

    /// Reads a stored ceremony.
    pub(crate) fn from_value(value: Option<&Value>) -> Option<Self> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, WebauthnError> {
    serde_json::to_string(value).map_err(|_| WebauthnError::InvalidClientDataType)
}

/// Starts adding a security key for `user_id` (options JSON for the client, ceremony).
pub(crate) fn start_security_key_registration(
    webauthn: &Webauthn,
    user_id: Uuid,
    user_name: &str,
    existing: &StoredKeys<SecurityKey>,
) -> Result<(String, Ceremony), WebauthnError> {
    let (mut options, state) = webauthn.start_securitykey_registration(
        user_id,
        user_name,
        user_name,
        Some(existing.ids()),
        None,
        None,
    )?;
    // webauthn-rs asks for credProtect "user verification required" while only preferring
    // user verification; browsers that check the pair (Chromium) refuse the whole request.
    // A second factor need not verify its user, so the request goes without it (the
    // ceremony state does not depend on it: an absent answer is recorded as ignored).
    if let Some(extensions) = options.public_key.extensions.as_mut() {
        extensions.cred_protect = None;
    }
    Ok((
        to_json(&options)?,
        Ceremony::SecurityKeyRegistration { state },
    ))
}

/// Starts adding a passkey for `user_id`.
pub(crate) fn start_passkey_registration(
    webauthn: &Webauthn,
    user_id: Uuid,
    user_name: &str,
    existing: &StoredKeys<Passkey>,
) -> Result<(CreationChallengeResponse, Ceremony), WebauthnError> {
    let exclude = Some(existing.ids()).filter(|ids| !ids.is_empty());
    let (mut options, state) =
        webauthn.start_passkey_registration(user_id, user_name, user_name, exclude)?;
    // webauthn-rs discourages resident keys; identa prefers them, so that the passkey can
    // sign in without an identifier (discoverable). An authenticator that cannot keep one
    // still registers, and signs in identifier first. The ceremony state does not depend
    // on it.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        selection.require_resident_key = false;
    }
    Ok((options, Ceremony::PasskeyRegistration { user_id, state }))
}

/// Starts a security-key second factor over the account's keys.
pub(crate) fn start_security_key_login(
    webauthn: &Webauthn,
    keys: &StoredKeys<SecurityKey>,
) -> Result<(String, Ceremony), WebauthnError> {
    let (options, state) = webauthn.start_securitykey_authentication(&keys.public_keys())?;
    Ok((to_json(&options)?, Ceremony::SecurityKeyLogin { state }))
}

/// Starts a passkey sign-in for the account an identifier named. Without an account (or
/// passkeys) the client gets a challenge it cannot tell from a real one (see
/// [`fake_passkey_login`]); any answer to it fails.
pub(crate) fn start_passkey_login(
    webauthn: &Webauthn,
    keyring: &Keyring,
    identifier: &str,
    account: Option<(Uuid, &StoredKeys<Passkey>)>,
) -> Result<(String, Ceremony), WebauthnError> {
    if let Some((identity_id, keys)) = account.filter(|(_, keys)| !keys.keys.is_empty()) {
        let (options, state) = webauthn.start_passkey_authentication(&keys.public_keys())?;
        return Ok((
            to_json(&options)?,
            Ceremony::PasskeyLogin {
                found: Some((identity_id, state)),
            },
        ));
    }
    Ok((
        to_json(&fake_passkey_login(webauthn, keyring, identifier)?)?,
        Ceremony::PasskeyLogin { found: None },
    ))
}

/// The transports a fake passkey lists: what browsers report for a platform passkey (the
/// common kind), which webauthn-rs stores and lists back.
const FAKE_TRANSPORTS: [AuthenticatorTransport; 2] = [
    AuthenticatorTransport::Internal,
    AuthenticatorTransport::Hybrid,
];

/// The challenge for an identifier without passkeys, made to look like the challenge of
/// an account with one platform passkey: webauthn-rs's own options (same type, so the
/// same fields in the same order, timeout, relying party and a fresh 32-byte challenge)
/// listing one credential id of 32 bytes — an HMAC of the identifier under a key from the
/// keyring, so every probe of an identifier sees the same id and nothing tells it apart
/// from a stored one — with the transports a platform passkey reports.
///
/// An account whose passkeys differ from that shape (several, other id lengths or
/// transports) still shows its own shape: the fake matches the common case, it cannot
/// match every account.
fn fake_passkey_login(
    webauthn: &Webauthn,
    keyring: &Keyring,
    identifier: &str,
) -> Result<RequestChallengeResponse, WebauthnError> {
    // The discoverable ceremony's options are a passkey sign-in's with no credentials
    // listed, an extension and a mediation hint; its state is not kept.
    let (mut options, _) = webauthn.start_discoverable_authentication()?;
    options.mediation = None;
    options.public_key.extensions = None;
    options.public_key.hints = None;
    let id = keyring.mac(MacPurpose::FakeWebauthnCredential, &[identifier.as_bytes()]);
    options.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: id.to_vec(),
        transports: Some(FAKE_TRANSPORTS.to_vec()),
    }];
    Ok(options)
}

/// Starts a passkey sign-in without an identifier: the browser offers the discoverable
/// passkeys it holds for the relying party (user verification required).
pub(crate) fn start_discoverable_login(
    webauthn: &Webauthn,
) -> Result<(String, Ceremony), WebauthnError> {
    let (mut options, state) = webauthn.start_discoverable_authentication()?;
    // webauthn-rs marks the request for autofill ("conditional") mediation; identa's
    // trigger is a button, which wants the browser's ordinary prompt.
    options.mediation = None;
    Ok((to_json(&options)?, Ceremony::PasskeyDiscoverable { state }))
}

/// Finishes adding a security key.
pub(crate) fn finish_security_key_registration(
    webauthn: &Webauthn,
    ceremony: Option<Ceremony>,
    answer: &str,
) -> Result<SecurityKey, Refusal> {
    let Some(Ceremony::SecurityKeyRegistration { state }) = ceremony else {
        return Err(Refusal::NoCeremony);
    };
    let answer: RegisterPublicKeyCredential =
        serde_json::from_str(answer).map_err(|_| Refusal::Malformed)?;
    webauthn
        .finish_securitykey_registration(&answer, &state)
        .map_err(Refusal::Refused)
}

/// Finishes adding a passkey: the key and the user id it was made for.
pub(crate) fn finish_passkey_registration(
    webauthn: &Webauthn,
    ceremony: Option<Ceremony>,
    answer: &str,
) -> Result<(Uuid, Passkey), Refusal> {
    let Some(Ceremony::PasskeyRegistration { user_id, state }) = ceremony else {
        return Err(Refusal::NoCeremony);
    };
    let answer: RegisterPublicKeyCredential =
        serde_json::from_str(answer).map_err(|_| Refusal::Malformed)?;
    let key = webauthn
        .finish_passkey_registration(&answer, &state)
        .map_err(Refusal::Refused)?;
    Ok((user_id, key))
}

/// Finishes a security-key second factor, recording the new counter on the key.
pub(crate) fn finish_security_key_login(
    webauthn: &Webauthn,
    ceremony: Option<Ceremony>,
    answer: &str,
    keys: &mut StoredKeys<SecurityKey>,
) -> Result<(), Refusal> {
    let Some(Ceremony::SecurityKeyLogin { state }) = ceremony else {
        return Err(Refusal::NoCeremony);
    };
    let answer: PublicKeyCredential =
        serde_json::from_str(answer).map_err(|_| Refusal::Malformed)?;
    let result = webauthn
        .finish_securitykey_authentication(&answer, &state)
        .map_err(Refusal::Refused)?;
    keys.record(&result)
}

/// A browser's answer to a sign-in challenge.
pub(crate) fn parse_assertion(answer: &str) -> Result<PublicKeyCredential, Refusal> {
    serde_json::from_str(answer).map_err(|_| Refusal::Malformed)
}

/// Which account a passkey sign-in is for: the one the identifier named, or for a
/// discoverable sign-in the one the answer's user handle names.
pub(crate) fn passkey_login_account(
    webauthn: &Webauthn,
    ceremony: Option<&Ceremony>,
    answer: &PublicKeyCredential,
) -> Result<Uuid, Refusal> {
    match ceremony {
        Some(Ceremony::PasskeyLogin {
            found: Some((id, _)),
        }) => Ok(*id),
        Some(Ceremony::PasskeyLogin { found: None }) => Err(Refusal::UnknownKey),
        Some(Ceremony::PasskeyDiscoverable { .. }) => webauthn
            .identify_discoverable_authentication(answer)
            .map(|(user, _)| user)
            .map_err(Refusal::Refused),
        _ => Err(Refusal::NoCeremony),
    }
}

/// Finishes a passkey sign-in over the keys of the account [`passkey_login_account`]
/// named, recording the new counter on the key.
pub(crate) fn finish_passkey_login(
    webauthn: &Webauthn,
    ceremony: Option<Ceremony>,
    answer: &PublicKeyCredential,
    keys: &mut StoredKeys<Passkey>,
) -> Result<(), Refusal> {
    let result = match ceremony {
        Some(Ceremony::PasskeyLogin {
            found: Some((_, state)),
        }) => webauthn.finish_passkey_authentication(answer, &state),
        Some(Ceremony::PasskeyDiscoverable { state }) => {
            let key = keys
                .find(answer.get_credential_id())
                .ok_or(Refusal::UnknownKey)?;
            webauthn.finish_discoverable_authentication_v2(answer, state, &key.key)
        }
        _ => return Err(Refusal::NoCeremony),
    }
    .map_err(Refusal::Refused)?;
    keys.record(&result)
}

/// The identifiers of a passkey credential: what it signs in by, then one `key:<hex>`
/// per key (so no authenticator credential is registered to two accounts).
pub(crate) fn passkey_identifiers(sign_in: Vec<String>, config: &Value) -> Vec<String> {
    let mut ids = sign_in;
    ids.extend(StoredKeys::<Passkey>::read(config).key_identifiers());
    ids
}

/// The `passkey_create_data` value Kratos front ends read: the options, and which form
/// field holds the name to show in the authenticator.
pub(crate) fn create_data(options: &CreationChallengeResponse, name_field: &str) -> String {
    json!({
        "credentialOptions": options,
        "displayNameFieldName": name_field,
    })
    .to_string()
}

/// The security keys of an identity.
pub(crate) fn security_keys(identity: &Identity) -> StoredKeys<SecurityKey> {
    identity
        .credential(CredentialType::Webauthn)
        .map(|c| StoredKeys::read(&c.config))
        .unwrap_or_default()
}

/// The passkeys of an identity.
pub(crate) fn passkeys(identity: &Identity) -> StoredKeys<Passkey> {
    identity
        .credential(CredentialType::Passkey)
        .map(|c| StoredKeys::read(&c.config))
        .unwrap_or_default()
}

/// Whether removing one passkey would leave the identity no way to sign in.
pub(crate) fn passkey_is_last_sign_in(identity: &Identity) -> bool {
    identity.credential(CredentialType::Password).is_none() && passkeys(identity).keys.len() <= 1
}

/// The identifiers a passkey signs in by: the password and WebAuthn identifiers of the
/// traits, sorted, without repeats.
pub(crate) fn sign_in_identifiers(extracted: &ExtractedTraits) -> Vec<String> {
    let mut ids: Vec<String> = extracted
        .password_identifiers
        .iter()
        .chain(&extracted.webauthn_identifiers)
        .cloned()
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Makes the passkey credential's identifiers follow new traits.
pub(crate) fn follow_traits(
    identity: &mut Identity,
    extracted: &ExtractedTraits,
    now: DateTime<Utc>,
) {
    if let Some(cred) = identity.credentials.get_mut(&CredentialType::Passkey) {
        let identifiers = passkey_identifiers(sign_in_identifiers(extracted), &cred.config);
        if cred.identifiers != identifiers {
            cred.identifiers = identifiers;
            cred.updated_at = now;
        }
    }
}

/// Stores an identity's security keys (removing the credential when none are left).
pub(crate) fn store_security_keys(
    identity: &mut Identity,
    keys: &StoredKeys<SecurityKey>,
    now: DateTime<Utc>,
) {
    let identifiers = keys.key_identifiers();
    set_keys(
        identity,
        CredentialType::Webauthn,
        identifiers,
        keys.to_config(),
        now,
    );
}

/// Stores an identity's passkeys, which sign in by `sign_in` (the identity's passkey
/// identifiers), removing the credential when none are left.
pub(crate) fn store_passkeys(
    identity: &mut Identity,
    keys: &StoredKeys<Passkey>,
    sign_in: Vec<String>,
    now: DateTime<Utc>,
) {
    let config = keys.to_config();
    let identifiers = passkey_identifiers(sign_in, &config);
    set_keys(identity, CredentialType::Passkey, identifiers, config, now);
}

/// Stores a security-key or passkey list as the identity's credential of that type
/// (removing the credential when the list is empty).
fn set_keys(
    identity: &mut Identity,
    credential_type: CredentialType,
    identifiers: Vec<String>,
    config: Value,
    now: DateTime<Utc>,
) {
    identity.updated_at = now;
    let empty = config
        .get("keys")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty {
        identity.credentials.remove(&credential_type);
        return;
    }
    let credential = identity
        .credentials
        .entry(credential_type)
        .or_insert_with(|| Credential {
            id: Uuid::new_v4(),
            credential_type,
            identifiers: Vec::new(),
            config: Value::Null,
            version: 0,
            created_at: now,
            updated_at: now,
        });
    credential.identifiers = identifiers;
    credential.config = config;
    credential.updated_at = now;
}
