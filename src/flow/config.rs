//! How flows are configured: lifespans, switches, code rules, and where users may be sent
//! when a flow is done. Every field has a documented default.

use chrono::Duration;

use crate::credential::webauthn::RelyingParty;

/// Flow lifespans and switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowsConfig {
    /// TOTP as a second factor.
    pub totp: TotpConfig,
    /// Security keys (a second factor) and passkeys (sign-in without a password), both
    /// WebAuthn. `None` (the default) turns them off: they are bound to the domain your
    /// users see, which only you can name. Development: `Some(RelyingParty::localhost(url))`.
    pub webauthn: Option<RelyingParty>,
    /// The public base URL of the site flows run on: `return_to` may point below it, and
    /// the HTTP layer builds each flow's `ui.action` from it. Default: `http://127.0.0.1:4433`.
    pub public_url: String,
    /// Where flows may send the user when done, besides paths on this site and the public
    /// URL: absolute URLs (an origin, or a path below it), e.g. your front end's
    /// `https://app.example.com`. A `return_to` elsewhere is refused (no open redirects).
    /// Default: none.
    pub allowed_return_urls: Vec<String>,
    /// Registration.
    pub registration: RegistrationConfig,
    /// Login.
    pub login: LoginConfig,
    /// Settings.
    pub settings: SettingsConfig,
    /// Recovery.
    pub recovery: CodeFlowConfig,
    /// The identity's other sessions after a recovery. Default: [`OtherSessions::Revoke`]
    /// (Kratos keeps them unless its `revoke_active_sessions` hook is configured).
    pub after_recovery: OtherSessions,
    /// Verification.
    pub verification: CodeFlowConfig,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            totp: TotpConfig::default(),
            webauthn: None,
            public_url: "http://127.0.0.1:4433".into(),
            allowed_return_urls: Vec::new(),
            registration: RegistrationConfig::default(),
            login: LoginConfig::default(),
            settings: SettingsConfig::default(),
            recovery: CodeFlowConfig::default(),
            after_recovery: OtherSessions::Revoke,
            verification: CodeFlowConfig::default(),
        }
    }
}

/// TOTP (authenticator apps) as a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    /// Whether settings offer TOTP enrolment. Default: true.
    pub enabled: bool,
    /// The issuer shown in authenticator apps. Default: `identa`.
    pub issuer: String,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            issuer: "identa".into(),
        }
    }
}

/// What happens after a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRegistration {
    /// Sign the new user in (issue a session). The default.
    IssueSession,
    /// Create the account only; the user signs in next.
    AccountOnly,
}

/// What happens after a sign-up through an OpenID Connect provider (feature `oidc`).
///
/// A provider that vouches for every address of the new account (its verified claim,
/// `email_verified`) has done what verification would: the addresses are stored verified.
/// Kratos configures this per method too (`selfservice.flows.registration.after.oidc`);
/// its OpenID Connect setups sign provider sign-ups in with that method's `session` hook
/// (e.g. its end-to-end profile `test/e2e/profiles/oidc/.kratos.yml`), vouched or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterProviderRegistration {
    /// Sign the new user in when the provider vouches for every address of the new
    /// account; otherwise as [`RegistrationConfig::after`]. The default. Under
    /// [`DuplicateRegistration::AnswerAsNew`] this tells nothing: an unvouched sign-up
    /// gets no session whether its address is taken or not, and a vouched address that is
    /// taken is its owner's, who is offered to link the account (1010016).
    #[default]
    IssueSessionWhenVouched,
    /// As [`RegistrationConfig::after`], vouched or not.
    AsAfter,
}

/// How a registration answers an identifier or address that already has an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateRegistration {
    /// Refuse it, showing "An account with the same identifier … exists already" (Kratos's
    /// 4000007): anyone can learn which addresses have accounts. The default, as in Kratos.
    Refuse,
    /// Answer exactly as a new registration (same status and body, a verification flow
    /// for the address), create nothing, and email the address's owner that someone tried
    /// to sign up with it. Requires [`AfterRegistration::AccountOnly`] and verification on
    /// (a session or a missing verification mail would tell the two apart): building the
    /// engine fails otherwise. Only addresses a new user would have to verify are hidden:
    /// a taken identifier that is not such an address (a username) is still refused. Unless
    /// sign-in refuses unverified accounts as it refuses wrong passwords
    /// ([`UnverifiedSignIn::RefuseAsWrongCredentials`]), signing in with the submitted
    /// password afterwards still tells a new address from a taken one (docs/security.md).
    AnswerAsNew,
}

/// Registration settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Whether users may sign up. Default: true.
    pub enabled: bool,
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// What happens after a registration. Default: [`AfterRegistration::IssueSession`].
    pub after: AfterRegistration,
    /// What happens after a sign-up through an OpenID Connect provider. Default:
    /// [`AfterProviderRegistration::IssueSessionWhenVouched`].
    pub after_provider: AfterProviderRegistration,
    /// How an identifier that already has an account is answered. Default:
    /// [`DuplicateRegistration::Refuse`].
    pub duplicate: DuplicateRegistration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lifespan: Duration::hours(1),
            after: AfterRegistration::IssueSession,
            after_provider: AfterProviderRegistration::IssueSessionWhenVouched,
            duplicate: DuplicateRegistration::Refuse,
        }
    }
}

/// Whether an account none of whose addresses is verified may sign in (Kratos's
/// `require_verified_address` login hook). Checked after the password (or passkey) is
/// found right, so only its owner learns why they were refused — unless the refusal is
/// disguised as a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedSignIn {
    /// Sign them in. The default, as Kratos without the hook.
    Allow,
    /// Refuse, showing "Account not active yet. Did you forget to verify your email
    /// address?" (Kratos's 4000010, as its hook with `legacy_require_verified_login_error`;
    /// [`ErrorKind::AddressNotVerified`](crate::ErrorKind::AddressNotVerified) outside a
    /// flow). Whoever knows the password learns the account exists.
    Refuse,
    /// Refuse exactly as a wrong password is refused (4000006, the same hashing work, and
    /// counted as a failed guess): signing in with the password just registered no longer
    /// tells a new address from a taken one. Use it with
    /// [`DuplicateRegistration::AnswerAsNew`]; the user learns to verify from the
    /// verification mail the registration sent.
    RefuseAsWrongCredentials,
}

/// Login settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// Sign-in of an account with no verified address. Default:
    /// [`UnverifiedSignIn::Allow`].
    pub unverified: UnverifiedSignIn,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::hours(1),
            unverified: UnverifiedSignIn::Allow,
        }
    }
}

/// What happens to a user's other sessions when they change their password or recover
/// their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherSessions {
    /// They stay signed in (Kratos's behaviour without its `revoke_active_sessions`
    /// hook).
    Keep,
    /// They are signed out; the session that made the change (or that the recovery
    /// issued) stays. The default.
    Revoke,
}

/// Settings-flow settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsConfig {
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// How recently the user must have signed in to change a password or an
    /// identifier/address. Default: 15 minutes.
    pub privileged_session_max_age: Duration,
    /// Other sessions after a password change. Default: [`OtherSessions::Revoke`]
    /// (Kratos keeps them unless its `revoke_active_sessions` hook is configured).
    pub after_password_change: OtherSessions,
}

impl Default for SettingsConfig {
    fn default() -> Self {
        Self {
            lifespan: Duration::hours(1),
            privileged_session_max_age: Duration::minutes(15),
            after_password_change: OtherSessions::Revoke,
        }
    }
}

/// Whether mail goes to addresses that belong to no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownRecipients {
    /// Send nothing (the response still looks the same). The default, as in Kratos.
    Silent,
    /// Send an "account not found" email, so a user who mistyped learns why.
    Notify,
}

/// Recovery or verification by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFlowConfig {
    /// Whether the flow is offered. Default: true.
    pub enabled: bool,
    /// How long a flow accepts submissions. Default: 1 hour.
    pub lifespan: Duration,
    /// How long a code is valid. Default: 15 minutes.
    pub code_lifespan: Duration,
    /// Digits per code. Default: 6.
    pub code_digits: u8,
    /// Code submissions allowed per flow; after that even the right code is refused.
    /// Default: 5.
    pub max_attempts: u32,
    /// Mail to unknown addresses. Default: [`UnknownRecipients::Silent`].
    pub unknown_recipients: UnknownRecipients,
}

impl Default for CodeFlowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lifespan: Duration::hours(1),
            code_lifespan: Duration::minutes(15),
            code_digits: 6,
            max_attempts: 5,
            unknown_recipients: UnknownRecipients::Silent,
        }
    }
}
