//! The limits in force, with their defaults.

use chrono::Duration;

/// At most `max` attempts in any one window of length `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many attempts a window allows.
    pub max: u32,
    /// The window's length (whole seconds; at least one, at most
    /// [`Limit::MAX_WINDOW_SECS`]: longer ones count as that long).
    pub window: Duration,
}

impl Limit {
    /// The longest window, in seconds: 30 days.
    pub const MAX_WINDOW_SECS: i64 = 30 * 24 * 3600;

    /// `max` attempts per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

/// Whether identa throttles, and with which limits.
#[derive(Debug, Clone, PartialEq, Eq)]
// Built once per engine and read in place: the size of `On` costs nothing worth a box in
// every caller's pattern.
#[allow(clippy::large_enum_variant)]
pub enum ThrottleConfig {
    /// No throttling at all: for load tests and conformance runs from one address, never
    /// for a service on the internet.
    Off,
    /// Throttling with these limits (the default: [`Limits::default`]).
    On(Limits),
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self::On(Limits::default())
    }
}

/// Every limit identa applies. Per-address limits apply only when the request names the
/// client's address (`FlowRequest.device.ip_address`, which the HTTP layer fills from
/// the connection); the others always apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed password logins per identifier from one client address. Default: 5 per 15
    /// minutes. A successful login clears the count. Also: failed passkey sign-ins per
    /// named identifier and client address, and password changes in settings refused per
    /// (identity, client address).
    pub login_failures_per_identifier_and_ip: Limit,
    /// Failed password logins per identifier from all addresses. Default: 50 per 15
    /// minutes. Also: password changes in settings refused per identity. Not passkey
    /// sign-ins: a passkey cannot be guessed, and such a count would let anyone lock it.
    pub login_failures_per_identifier: Limit,
    /// Password and passkey login attempts, password changes in settings, and OpenID
    /// Connect providers' callbacks (feature `oidc`), per client address, whatever the
    /// identifier. Default: 100 per minute.
    pub login_attempts_per_ip: Limit,
    /// Failed second factors (TOTP, backup code, security key) per identity, across all
    /// its flows. Default: 5 per 15 minutes.
    pub second_factor_failures_per_identity: Limit,
    /// Recovery and verification codes sent to one address for one client address (all
    /// requests that name no client address share one count). Default: 3 per 15 minutes.
    pub codes_sent_per_address_and_ip: Limit,
    /// Mail sent to one address from all client addresses: recovery and verification
    /// codes, and `registration_attempted` notices (a notice beyond it is not sent, the
    /// sign-up is answered as usual). Default: 10 per hour.
    pub codes_sent_per_address: Limit,
    /// Recovery and verification codes sent for one client address. Default: 20 per hour.
    pub codes_sent_per_ip: Limit,
    /// Registrations per client address. Default: 20 per hour.
    pub registrations_per_ip: Limit,
    /// New self-service flows per client address. Default: 600 per hour.
    pub flows_per_ip: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_failures_per_identifier_and_ip: Limit::new(5, Duration::minutes(15)),
            login_failures_per_identifier: Limit::new(50, Duration::minutes(15)),
            login_attempts_per_ip: Limit::new(100, Duration::minutes(1)),
            second_factor_failures_per_identity: Limit::new(5, Duration::minutes(15)),
            codes_sent_per_address_and_ip: Limit::new(3, Duration::minutes(15)),
            codes_sent_per_address: Limit::new(10, Duration::hours(1)),
            codes_sent_per_ip: Limit::new(20, Duration::hours(1)),
            registrations_per_ip: Limit::new(20, Duration::hours(1)),
            flows_per_ip: Limit::new(600, Duration::hours(1)),
        }
    }
}
