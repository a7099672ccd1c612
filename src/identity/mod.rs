//! Identities: who a user is (traits described by an identity schema), the addresses
//! that can be verified or used for recovery, and the credentials they sign in with.
//!
//! The JSON shape follows Kratos's identity model, so front ends and SDKs written for
//! Kratos read it unchanged. Credentials are never serialized with an identity: they
//! are secret-bearing and only the admin surface shows them (identifiers only, and the
//! password hash when an export asks for it with `include_credential=password`).

mod imported;
pub mod normalize;
mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use imported::{ImportedBackupCode, ImportedCredentials, ImportedOidcAccount, ImportedTotp};
pub use schema::{
    AddressSpec, AddressVia, ExtractedTraits, IdentitySchema, SchemaError, SchemaRegistry,
    TraitField, TraitViolation, UnknownAddressVia, ViolationKind,
};

/// Whether an identity may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    /// Can sign in and hold sessions.
    #[default]
    Active,
    /// Cannot sign in; its sessions are refused.
    Inactive,
}

impl IdentityState {
    /// The stable string stored in the database and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

impl FromStr for IdentityState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            other => Err(UnknownVariant::new("identity state", other)),
        }
    }
}

/// Authenticator assurance level: how strongly someone proved who they are. An identity
/// can reach `aal2` once it has a second factor ([`Identity::highest_available_aal`]); a
/// session records the level its holder reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    /// One factor (e.g. a password).
    Aal1,
    /// Two factors (e.g. a password and TOTP).
    Aal2,
}

impl Aal {
    /// The stable string stored in the database and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aal1 => "aal1",
            Self::Aal2 => "aal2",
        }
    }
}

impl fmt::Display for Aal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Aal {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aal1" => Ok(Self::Aal1),
            "aal2" => Ok(Self::Aal2),
            other => Err(UnknownVariant::new("assurance level", other)),
        }
    }
}

/// The verification progress of a verifiable address (Kratos's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    /// Nothing sent yet.
    #[default]
    Pending,
    /// A verification message was sent.
    Sent,
    /// The address was verified.
    Completed,
}

impl VerificationStatus {
    /// The stable string stored in the database and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Completed => "completed",
        }
    }
}

impl FromStr for VerificationStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "completed" => Ok(Self::Completed),
            other => Err(UnknownVariant::new("verification status", other)),
        }
    }
}

/// A stored string that does not name a known variant (a corrupted or newer row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` in storage")]
pub struct UnknownVariant {
    what: &'static str,
    value: String,
}

impl UnknownVariant {
    pub(crate) fn new(what: &'static str, value: &str) -> Self {
        Self {
            what,
            value: value.chars().take(64).collect(),
        }
    }
}

/// An address (email or phone) that can be verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiableAddress {
    /// Row id.
    pub id: Uuid,
    /// The normalised address.
    pub value: String,
    /// The channel the address is reached by.
    pub via: AddressVia,
    /// Whether the address was verified.
    pub verified: bool,
    /// Where verification stands.
    pub status: VerificationStatus,
    /// When it was verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// An address account recovery messages may be sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryAddress {
    /// Row id.
    pub id: Uuid,
    /// The normalised address.
    pub value: String,
    /// The channel the address is reached by.
    pub via: AddressVia,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The kinds of credential an identity can hold (Kratos's credential types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    /// Identifier + password.
    Password,
    /// Time-based one-time passwords (second factor).
    Totp,
    /// Backup codes (second factor).
    LookupSecret,
    /// Security keys (second factor).
    Webauthn,
    /// Passkeys (first factor).
    Passkey,
    /// One-time codes sent by email or SMS.
    Code,
    /// Accounts at OpenID Connect providers (identifiers `<provider>:<subject>`).
    Oidc,
}

impl CredentialType {
    /// The stable string stored in the database and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::LookupSecret => "lookup_secret",
            Self::Webauthn => "webauthn",
            Self::Passkey => "passkey",
            Self::Code => "code",
            Self::Oidc => "oidc",
        }
    }
}

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialType {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "password" => Self::Password,
            "totp" => Self::Totp,
            "lookup_secret" => Self::LookupSecret,
            "webauthn" => Self::Webauthn,
            "passkey" => Self::Passkey,
            "code" => Self::Code,
            "oidc" => Self::Oidc,
            other => return Err(UnknownVariant::new("credential type", other)),
        })
    }
}

/// One credential of an identity: how it is found (identifiers) and what proves it
/// (config, e.g. `{"hashed_password": "$argon2id$…"}`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Row id.
    pub id: Uuid,
    /// What kind of credential this is.
    pub credential_type: CredentialType,
    /// Normalised identifiers the credential is found by (unique per type).
    pub identifiers: Vec<String>,
    /// Type-specific configuration; may hold hashes or encrypted secrets.
    pub config: Value,
    /// Version of the config format.
    pub version: i32,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("credential_type", &self.credential_type)
            .field("identifiers", &self.identifiers)
            .field("config", &"<redacted>")
            .field("version", &self.version)
            .finish()
    }
}

impl Credential {
    /// The stored password hash of a password credential (none while it awaits
    /// migration).
    pub fn hashed_password(&self) -> Option<&str> {
        self.config
            .get("hashed_password")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
    }

    /// What a password credential holds: a hash, or nothing yet because its first
    /// sign-in is to be checked by the password migration hook (Kratos's
    /// `use_password_migration_hook` with an empty `hashed_password`). `None` for a
    /// config that holds neither.
    pub fn stored_password(&self) -> Option<StoredPassword<'_>> {
        match self.hashed_password() {
            Some(hash) => Some(StoredPassword::Hashed(hash)),
            None if self.config.get("use_password_migration_hook") == Some(&Value::Bool(true)) => {
                Some(StoredPassword::AwaitingMigration)
            }
            None => None,
        }
    }
}

/// What a password credential holds ([`Credential::stored_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredPassword<'a> {
    /// A hash in a format identa verifies.
    Hashed(&'a str),
    /// No hash yet: imported with `use_password_migration_hook`, the first sign-in asks the
    /// host's password migration hook, then stores a hash.
    AwaitingMigration,
}

/// A user: traits validated by an identity schema, addresses, credentials and state.
///
/// Serializes to Kratos's identity JSON without credentials.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identity {
    /// The identity's id.
    pub id: Uuid,
    /// The id of the identity schema its traits follow.
    pub schema_id: String,
    /// Whether it may sign in.
    pub state: IdentityState,
    /// When `state` last changed.
    pub state_changed_at: Option<DateTime<Utc>>,
    /// The traits (profile), valid against the schema.
    pub traits: Value,
    /// Addresses that can be verified, extracted from the traits.
    pub verifiable_addresses: Vec<VerifiableAddress>,
    /// Addresses usable for recovery, extracted from the traits.
    pub recovery_addresses: Vec<RecoveryAddress>,
    /// Metadata the user may read but not write.
    pub metadata_public: Option<Value>,
    /// Metadata only the admin surface sees.
    #[serde(skip)]
    pub metadata_admin: Option<Value>,
    /// The id another system knows this identity by (Kratos's `external_id`): unique
    /// when set, found by [`Identa::identity_by_external_id`](crate::Identa::identity_by_external_id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    /// Credentials by type. Never serialized with the identity.
    #[serde(skip)]
    pub credentials: BTreeMap<CredentialType, Credential>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Identity {
    /// The credential of a given type, if the identity has one.
    pub fn credential(&self, credential_type: CredentialType) -> Option<&Credential> {
        self.credentials.get(&credential_type)
    }

    /// The highest assurance level the identity can reach with its credentials: `aal2`
    /// once a second factor (TOTP, backup codes, a security key) is set up.
    pub fn highest_available_aal(&self) -> Aal {
        let second_factors = [
            CredentialType::Totp,
            CredentialType::LookupSecret,
            CredentialType::Webauthn,
        ];
        if second_factors
            .iter()
            .any(|t| self.credentials.contains_key(t))
        {
            Aal::Aal2
        } else {
            Aal::Aal1
        }
    }

    /// Whether the identity may sign in.
    pub fn is_active(&self) -> bool {
        self.state == IdentityState::Active
    }
}

/// What a host gives to create an identity directly (the admin "create identity").
#[derive(Debug, Clone, Default)]
pub struct NewIdentity {
    /// The schema the traits follow; `None` for the registry's default.
    pub schema_id: Option<String>,
    /// The traits.
    pub traits: Value,
    /// Initial state (active unless said otherwise).
    pub state: IdentityState,
    /// Public metadata.
    pub metadata_public: Option<Value>,
    /// Admin metadata.
    pub metadata_admin: Option<Value>,
    /// The id another system knows it by (unique).
    pub external_id: Option<ExternalId>,
    /// What an import knows of the verifiable addresses (Kratos's import keeps them):
    /// matched by channel and value to the addresses the traits mark, whose verification
    /// they set; one the traits do not mark is ignored, as Kratos does.
    pub verifiable_addresses: Vec<ImportedAddress>,
    /// What an import brings besides a password (a TOTP authenticator, backup codes,
    /// provider accounts): checked and stored as identa keeps them when the identity is
    /// created through the engine (`Identa::create_identity`, `import_identity`,
    /// `import_identities`).
    pub credentials: ImportedCredentials,
}

/// A verifiable address as an import brings it: its value and channel, and where its
/// verification stood in the system it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedAddress {
    /// The address (normalised before it is matched).
    pub value: String,
    /// The channel it is reached by.
    pub via: AddressVia,
    /// Where its verification stands: [`VerificationStatus::Completed`] for an address
    /// verified already, which is then never asked to verify again.
    pub status: VerificationStatus,
    /// When it was verified (for a completed one; the import's time when not given).
    pub verified_at: Option<DateTime<Utc>>,
}

/// The id another system knows an identity by (Kratos's `external_id`): 1 to
/// [`ExternalId::MAX_BYTES`] bytes, no NUL characters. Unique among identities.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

impl ExternalId {
    /// The longest external id accepted, in bytes (Kratos's column is a `VARCHAR(255)`).
    pub const MAX_BYTES: usize = 255;

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ExternalId {
    type Error = IdentityError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() || value.len() > Self::MAX_BYTES {
            return Err(IdentityError::ExternalIdLength { len: value.len() });
        }
        if value.contains('\0') {
            return Err(IdentityError::Nul("external_id"));
        }
        Ok(Self(value))
    }
}

impl FromStr for ExternalId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<ExternalId> for String {
    fn from(id: ExternalId) -> Self {
        id.0
    }
}

/// A change to an identity; fields left `None` stay as they are.
#[derive(Debug, Clone, Default)]
pub struct IdentityUpdate {
    /// New traits (validated and re-extracted: identifiers and addresses follow).
    pub traits: Option<Value>,
    /// New state.
    pub state: Option<IdentityState>,
    /// New public metadata (`Some(None)` clears it).
    pub metadata_public: Option<Option<Value>>,
    /// New admin metadata (`Some(None)` clears it).
    pub metadata_admin: Option<Option<Value>>,
    /// New external id (`Some(None)` clears it).
    pub external_id: Option<Option<ExternalId>>,
}

/// The largest traits document accepted, serialized (a guard against abuse, not a policy).
pub const MAX_TRAITS_BYTES: usize = 64 * 1024;

/// The largest `metadata_public`, and separately the largest `metadata_admin`, accepted,
/// serialized: the same guard as [`MAX_TRAITS_BYTES`] (Kratos sets none). Every write
/// through the library is checked: create, import, update (and so the admin API's PUT
/// and PATCH).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Why traits or metadata were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The traits break the schema, or the schema is unknown.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The traits are larger than [`MAX_TRAITS_BYTES`].
    #[error("traits are {size} bytes; at most {MAX_TRAITS_BYTES} are accepted")]
    TooLarge {
        /// Their size, serialized.
        size: usize,
    },
    /// A metadata document is larger than [`MAX_METADATA_BYTES`].
    #[error(
        "{field} is {size} bytes of JSON; at most {MAX_METADATA_BYTES} are accepted: keep \
         large documents in your own database and store a reference to them"
    )]
    MetadataTooLarge {
        /// `metadata_public` or `metadata_admin`.
        field: &'static str,
        /// Its size, serialized.
        size: usize,
    },
    /// An identifier is longer than [`normalize::MAX_IDENTIFIER_BYTES`] (normalised).
    #[error(
        "an identifier is {len} bytes long; at most {} are accepted",
        normalize::MAX_IDENTIFIER_BYTES
    )]
    IdentifierTooLong {
        /// Its length, normalised.
        len: usize,
    },
    /// A value holds a NUL character, which no database stores portably.
    #[error("{0} must not contain NUL characters (\\u0000)")]
    Nul(&'static str),
    /// An external id is empty or longer than [`ExternalId::MAX_BYTES`].
    #[error(
        "external_id is {len} bytes long; give 1 to {} bytes, or leave it out",
        ExternalId::MAX_BYTES
    )]
    ExternalIdLength {
        /// Its length.
        len: usize,
    },
}

/// Refuses JSON holding a NUL character: no database stores it portably (PostgreSQL
/// refuses it in text and JSON), so it is bad input, not a storage failure.
pub(crate) fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn check_no_nul(what: &'static str, value: Option<&Value>) -> Result<(), IdentityError> {
    match value {
        Some(v) if has_nul(v) => Err(IdentityError::Nul(what)),
        _ => Ok(()),
    }
}

/// The length of `value` serialized, counted without keeping the bytes.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).map_or(usize::MAX, |()| count.0)
}

/// Checks a metadata document (`field` names it) before it is written: its size and NUL
/// characters.
fn check_metadata(field: &'static str, value: Option<&Value>) -> Result<(), IdentityError> {
    let Some(value) = value else {
        return Ok(());
    };
    let size = json_len(value);
    if size > MAX_METADATA_BYTES {
        return Err(IdentityError::MetadataTooLarge { field, size });
    }
    check_no_nul(field, Some(value))
}

/// Checks traits against `schema` (size, NUL characters, the schema itself) and returns
/// what its extension marks in them.
pub(crate) fn check_traits(
    schema: &IdentitySchema,
    traits: &Value,
) -> Result<ExtractedTraits, IdentityError> {
    let size = json_len(traits);
    if size > MAX_TRAITS_BYTES {
        return Err(IdentityError::TooLarge { size });
    }
    check_no_nul("traits", Some(traits))?;
    let extracted = schema.validate(traits)?;
    let longest = extracted
        .password_identifiers
        .iter()
        .chain(&extracted.webauthn_identifiers)
        .map(String::len)
        .max()
        .unwrap_or(0);
    if longest > normalize::MAX_IDENTIFIER_BYTES {
        return Err(IdentityError::IdentifierTooLong { len: longest });
    }
    Ok(extracted)
}

impl Identity {
    /// A new identity of `schema` (not yet stored, without credentials): traits checked,
    /// addresses extracted. Returns what the schema marks in the traits too.
    pub(crate) fn draft(
        schema: &IdentitySchema,
        new: NewIdentity,
        now: DateTime<Utc>,
    ) -> Result<(Self, ExtractedTraits), IdentityError> {
        check_metadata("metadata_public", new.metadata_public.as_ref())?;
        check_metadata("metadata_admin", new.metadata_admin.as_ref())?;
        let extracted = check_traits(schema, &new.traits)?;
        let mut verifiable_addresses = sync_verifiable(&[], &extracted.verifiable_addresses, now);
        for address in &mut verifiable_addresses {
            import_verification(address, &new.verifiable_addresses, now);
        }
        let identity = Self {
            id: Uuid::new_v4(),
            schema_id: schema.id().to_owned(),
            state: new.state,
            state_changed_at: None,
            traits: new.traits,
            verifiable_addresses,
            recovery_addresses: sync_recovery(&[], &extracted.recovery_addresses, now),
            metadata_public: new.metadata_public,
            metadata_admin: new.metadata_admin,
            external_id: new.external_id,
            credentials: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        };
        Ok((identity, extracted))
    }

    /// Replaces the traits (checked against `schema`): addresses follow (an address that
    /// stays keeps its verification status), and so do the password credential's
    /// identifiers. Not stored. Returns what the schema marks in the new traits.
    pub(crate) fn set_traits(
        &mut self,
        schema: &IdentitySchema,
        traits: Value,
        now: DateTime<Utc>,
    ) -> Result<ExtractedTraits, IdentityError> {
        let extracted = check_traits(schema, &traits)?;
        self.traits = traits;
        self.verifiable_addresses = sync_verifiable(
            &self.verifiable_addresses,
            &extracted.verifiable_addresses,
            now,
        );
        self.recovery_addresses =
            sync_recovery(&self.recovery_addresses, &extracted.recovery_addresses, now);
        if let Some(cred) = self.credentials.get_mut(&CredentialType::Password) {
            let mut identifiers = extracted.password_identifiers.clone();
            identifiers.sort();
            if cred.identifiers != identifiers {
                cred.identifiers = identifiers;
                cred.updated_at = now;
            }
        }
        self.updated_at = now;
        Ok(extracted)
    }

    /// Applies an administrator's change of state or metadata (traits go through
    /// [`Identity::set_traits`]).
    pub(crate) fn set_state_and_metadata(
        &mut self,
        state: Option<IdentityState>,
        metadata_public: Option<Option<Value>>,
        metadata_admin: Option<Option<Value>>,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        // Both checked before anything changes: a refusal leaves the identity as it was.
        if let Some(metadata) = &metadata_public {
            check_metadata("metadata_public", metadata.as_ref())?;
        }
        if let Some(metadata) = &metadata_admin {
            check_metadata("metadata_admin", metadata.as_ref())?;
        }
        if let Some(state) = state.filter(|s| *s != self.state) {
            self.state = state;
            self.state_changed_at = Some(now);
        }
        if let Some(metadata) = metadata_public {
            self.metadata_public = metadata;
        }
        if let Some(metadata) = metadata_admin {
            self.metadata_admin = metadata;
        }
        self.updated_at = now;
        Ok(())
    }

    /// Marks `address` (an email address of this identity) verified; returns it, or
    /// `None` if the identity no longer has it.
    pub(crate) fn mark_verified(
        &mut self,
        address: &str,
        now: DateTime<Utc>,
    ) -> Option<VerifiableAddress> {
        let a = self
            .verifiable_addresses
            .iter_mut()
            .find(|a| a.via == AddressVia::Email && a.value == address)?;
        if !a.verified {
            a.verified = true;
            a.verified_at = Some(now);
            a.updated_at = now;
        }
        a.status = VerificationStatus::Completed;
        Some(a.clone())
    }
}

/// Sets `address`'s verification from the imported address of the same channel and value
/// (compared normalised, as Kratos matches them), if the import has one.
fn import_verification(
    address: &mut VerifiableAddress,
    imported: &[ImportedAddress],
    now: DateTime<Utc>,
) {
    let Some(found) = imported
        .iter()
        .find(|i| i.via == address.via && normalize::address(&i.value, i.via) == address.value)
    else {
        return;
    };
    address.status = found.status;
    if found.status == VerificationStatus::Completed {
        address.verified = true;
        address.verified_at = Some(found.verified_at.unwrap_or(now));
    }
}

/// The addresses for `wanted`: those that stay keep their rows (and, for verifiable
/// addresses, their verification); new ones are made by `fresh`.
fn sync_addresses<A: Clone>(
    existing: &[A],
    wanted: &[AddressSpec],
    key: impl Fn(&A) -> (AddressVia, &str),
    fresh: impl Fn(&AddressSpec) -> A,
) -> Vec<A> {
    wanted
        .iter()
        .map(|spec| {
            existing
                .iter()
                .find(|a| key(a) == (spec.via, spec.value.as_str()))
                .cloned()
                .unwrap_or_else(|| fresh(spec))
        })
        .collect()
}

fn sync_verifiable(
    existing: &[VerifiableAddress],
    wanted: &[AddressSpec],
    now: DateTime<Utc>,
) -> Vec<VerifiableAddress> {
    sync_addresses(
        existing,
        wanted,
        |a| (a.via, a.value.as_str()),
        |spec| VerifiableAddress {
            id: Uuid::new_v4(),
            value: spec.value.clone(),
            via: spec.via,
            verified: false,
            status: VerificationStatus::Pending,
            verified_at: None,
            created_at: now,
            updated_at: now,
        },
    )
}

fn sync_recovery(
    existing: &[RecoveryAddress],
    wanted: &[AddressSpec],
    now: DateTime<Utc>,
) -> Vec<RecoveryAddress> {
    sync_addresses(
        existing,
        wanted,
        |a| (a.via, a.value.as_str()),
        |spec| RecoveryAddress {
            id: Uuid::new_v4(),
            value: spec.value.clone(),
            via: spec.via,
            created_at: now,
            updated_at: now,
        },
    )
}
