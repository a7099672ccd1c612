//! Identities: who a user is (traits described by an identity schema), the addresses
//! that can be verified or used for recovery, and the credentials they sign in with.
//!
//! The JSON shape follows Kratos's identity model, so front ends and SDKs written for
//! Kratos read it unchanged. Credentials are never serialized with an identity: they
//! are secret-bearing and only the admin surface shows (a redacted view of) them.

pub mod normalize;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use schema::{AddressVia, ExtractedTraits, IdentitySchema, SchemaError, SchemaRegistry};

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
    /// The stored password hash of a password credential.
    pub fn hashed_password(&self) -> Option<&str> {
        self.config.get("hashed_password").and_then(Value::as_str)
    }
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
}
