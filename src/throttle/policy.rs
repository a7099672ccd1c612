//! The policy: which attempts count against which keys and limits, and what a flow's
//! verdict does to the counts. The engine asks [`Throttle::admit`] before it runs a flow
//! (a refused attempt never reaches the flow, so a throttled password is not hashed) and
//! tells [`Throttle::settle`] how the flow judged it.
//!
//! What each counter counts:
//! - attempts: every admitted attempt (password and passkey logins, settings' password
//!   checks and providers' callbacks per client address, codes sent, notices mailed, new
//!   flows);
//! - failures: attempts the flow refused for a wrong credential (for settings: a new
//!   password refused); an attempt the flow did not judge is taken back, and a success
//!   clears the (identifier, address) count (for settings: the identity's counts too);
//! - successes: completed registrations.
//!
//! A password sign-in from a *known pair* — an identifier and a client address that
//! signed in together with the password within [`KNOWN_PAIR_LIFETIME`], remembered
//! server-side under their MAC ([`known_pair_key`]) — is neither refused by nor counted
//! in the identifier's count from all addresses: a distributed attacker cannot lock the
//! owner out of the addresses the owner uses. Its (identifier, address) failures count
//! as any others.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Limit, Limiter, Limits, ThrottleConfig, ThrottleKey, Throttled, Window};
use crate::credential::password::Lane;
use crate::identity::normalize;
use crate::secret::{Keyring, MacPurpose};
use crate::store::StoreError;

/// An attempt the policy knows how to count.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attempt<'a> {
    /// A password login (a flow or `Identa::login`).
    Password {
        identifier: &'a str,
        ip: Option<&'a str>,
        /// Whether the pair signed in before ([`Standing::Unknown`] until the engine
        /// has looked).
        standing: Standing,
    },
    /// A passkey sign-in (a challenge asked for, or an answer), by a named identifier or
    /// discoverable (`None`).
    Passkey {
        identifier: Option<&'a str>,
        ip: Option<&'a str>,
    },
    /// A new password submitted to settings: the flow checks it against the current one
    /// (and says when they are the same), so each submission is a password check.
    SettingsPassword { identity: Uuid, ip: Option<&'a str> },
    /// A second factor for an identity's session.
    SecondFactor { identity: Uuid },
    /// A recovery or verification code sent to an address.
    CodeSent {
        address: &'a str,
        ip: Option<&'a str>,
    },
    /// A notice (`registration_attempted`) mailed to an address.
    Notice { address: &'a str },
    /// A registration.
    Registration { ip: Option<&'a str> },
    /// A new self-service flow.
    NewFlow { ip: Option<&'a str> },
    /// A provider's callback, whose code identa exchanges at the provider: counted per
    /// client address with the login attempts (feature `oidc`).
    #[cfg(feature = "oidc")]
    ProviderCallback { ip: Option<&'a str> },
}

/// Whether an (identifier, client address) pair signed in with its password within
/// [`KNOWN_PAIR_LIFETIME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// It did: its marker is kept and current.
    Known,
    /// It did not, its marker lapsed, or the request names no client address.
    Unknown,
}

impl Standing {
    /// The hasher's lane for the pair's password checks: priority for a known pair.
    pub(crate) fn lane(self) -> Lane {
        match self {
            Self::Known => Lane::Priority,
            Self::Unknown => Lane::Ordinary,
        }
    }
}

/// How long after a pair's last password sign-in it stays known: 30 days.
pub(crate) const KNOWN_PAIR_LIFETIME: Duration = Duration::days(30);

/// How the flow judged an admitted attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It succeeded (a session issued, a code sent, an account registered).
    Succeeded,
    /// It was refused for a wrong credential.
    Failed,
    /// It was not judged (malformed, refused by a hook, a challenge asked for, …).
    NotJudged,
}

/// What one counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    Attempts,
    Failures { clear_on_success: bool },
    Successes,
}

/// What a counter is keyed on; the label is part of its MAC.
#[derive(Debug, Clone, Copy)]
enum Scope {
    LoginIdentifierIp,
    LoginIdentifier,
    LoginIp,
    PasskeyIdentifierIp,
    SettingsPasswordIdentityIp,
    SettingsPasswordIdentity,
    SecondFactor,
    CodeAddressIp,
    MailAddress,
    CodeIp,
    RegistrationIp,
    FlowIp,
    KnownPair,
}

impl Scope {
    fn label(self) -> &'static [u8] {
        match self {
            Self::LoginIdentifierIp => b"login/identifier+ip",
            Self::LoginIdentifier => b"login/identifier",
            Self::LoginIp => b"login/ip",
            Self::PasskeyIdentifierIp => b"passkey/identifier+ip",
            Self::SettingsPasswordIdentityIp => b"settings-password/identity+ip",
            Self::SettingsPasswordIdentity => b"settings-password/identity",
            Self::SecondFactor => b"second-factor/identity",
            Self::CodeAddressIp => b"code/address+ip",
            Self::MailAddress => b"mail/address",
            Self::CodeIp => b"code/ip",
            Self::RegistrationIp => b"registration/ip",
            Self::FlowIp => b"flow/ip",
            Self::KnownPair => b"login/known-pair",
        }
    }
}

/// One counter an attempt was counted on.
#[derive(Debug)]
struct Counted {
    key: ThrottleKey,
    window: Window,
    counts: Counts,
}

/// The counters an admitted attempt was counted on, to [`Throttle::settle`].
#[derive(Debug, Default)]
#[must_use = "settle the ticket with the flow's verdict"]
pub(crate) struct Ticket {
    counted: Vec<Counted>,
}

/// Why an attempt was not admitted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A limit is spent.
    Throttled(Throttled),
    /// The counters could not be read.
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// The policy with its limiter, or nothing when throttling is off.
#[derive(Clone)]
pub(crate) struct Throttle {
    on: Option<(Arc<dyn Limiter>, Limits)>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("on", &self.on.is_some())
            .finish()
    }
}

/// A client address as counters key it: IPv4 as is (also when mapped into IPv6), IPv6
/// by its /64 prefix (one subscriber usually holds a whole /64), anything unparsable as
/// given.
fn client_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(bits))
            }
        },
        Err(_) => ip.trim().to_owned(),
    }
}

/// An identifier or address as counters key it: normalised like a lookup, so
/// `Alice@Example.com ` and `alice@example.com` share a count. Identifiers no account can
/// have (too long, holding a NUL) share one empty key.
fn subject_key(raw: &str) -> String {
    normalize::lookup_identifier(raw).unwrap_or_default()
}

/// The MAC a known-pair marker is kept under: of the normalised identifier and the client
/// address as counters key them (IPv6 by its /64), under the throttle key. `None` when
/// the request names no client address: such a pair is never known.
pub(crate) fn known_pair_key(
    keyring: &Keyring,
    identifier: &str,
    ip: Option<&str>,
) -> Option<[u8; 32]> {
    let ip = client_key(ip?);
    let id = subject_key(identifier);
    let subject: [&[u8]; 3] = [Scope::KnownPair.label(), id.as_bytes(), ip.as_bytes()];
    Some(keyring.mac(MacPurpose::Throttle, &subject))
}

impl Throttle {
    /// Whether attempts are counted at all.
    pub(crate) fn is_on(&self) -> bool {
        self.on.is_some()
    }

    /// Throttling as configured, counting with `limiter`.
    pub(crate) fn new(config: &ThrottleConfig, limiter: Arc<dyn Limiter>) -> Self {
        match config {
            ThrottleConfig::Off => Self { on: None },
            ThrottleConfig::On(limits) => Self {
                on: Some((limiter, *limits)),
            },
        }
    }

    /// Counts `attempt`, or refuses it if a limit is spent. A refused attempt keeps only
    /// its attempt counts (so one address hammering an identifier does not also spend
    /// the identifier's limit for every other address). A counter that fails takes back
    /// the ones already counted: an attempt answered with an error counts nowhere.
    pub(crate) async fn admit(
        &self,
        keyring: &Keyring,
        now: DateTime<Utc>,
        attempt: Attempt<'_>,
    ) -> Result<Ticket, Refusal> {
        let Some((limiter, limits)) = &self.on else {
            return Ok(Ticket::default());
        };
        let mut ticket = Ticket::default();
        for (scope, parts, limit, counts) in counters(limits, attempt) {
            let subject: Vec<&[u8]> = std::iter::once(scope.label())
                .chain(parts.iter().map(String::as_bytes))
                .collect();
            let key = ThrottleKey(keyring.mac(MacPurpose::Throttle, &subject));
            let window = Window::containing(now, limit.window);
            let count = match limiter.hit(&key, window).await {
                Ok(count) => count,
                Err(err) => {
                    // The attempt gets no answer, so it must not count anywhere.
                    self.withdraw(ticket).await;
                    return Err(Refusal::Store(err));
                }
            };
            ticket.counted.push(Counted {
                key,
                window,
                counts,
            });
            if count > limit.max {
                self.settle(ticket, Verdict::NotJudged).await;
                let wait = (window.end - now).num_seconds().max(1);
                return Err(Refusal::Throttled(Throttled {
                    retry_after: std::time::Duration::from_secs(wait.unsigned_abs()),
                }));
            }
        }
        Ok(ticket)
    }

    /// Tells the counters how the flow judged the attempt of `ticket`. Failures here are
    /// logged, not returned: the flow's answer stands.
    pub(crate) async fn settle(&self, ticket: Ticket, verdict: Verdict) {
        let Some((limiter, _)) = &self.on else {
            return;
        };
        for c in ticket.counted {
            let done = match (c.counts, verdict) {
                (Counts::Attempts, _)
                | (Counts::Failures { .. }, Verdict::Failed)
                | (Counts::Successes, Verdict::Succeeded) => Ok(()),
                (
                    Counts::Failures {
                        clear_on_success: true,
                    },
                    Verdict::Succeeded,
                ) => limiter.clear(&c.key).await,
                (Counts::Failures { .. } | Counts::Successes, _) => {
                    limiter.undo(&c.key, c.window).await
                }
            };
            if let Err(err) = done {
                tracing::warn!(error = %err, "a throttle counter could not be updated");
            }
        }
    }

    /// Takes back every count of `ticket`: an attempt that was admitted only in part (a
    /// counter failed) got no answer, or what it counted was not done (a mail whose commit
    /// failed). Failures here are logged, as in [`Self::settle`].
    pub(crate) async fn withdraw(&self, ticket: Ticket) {
        let Some((limiter, _)) = &self.on else {
            return;
        };
        for c in ticket.counted {
            if let Err(err) = limiter.undo(&c.key, c.window).await {
                tracing::warn!(error = %err, "a throttle counter could not be updated");
            }
        }
    }

    /// Drops counts of windows that are over.
    pub(crate) async fn prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        match &self.on {
            Some((limiter, _)) => limiter.prune(now).await,
            None => Ok(0),
        }
    }
}

/// The counters of an attempt, in the order they are counted: the client address's first
/// (a client refused there spends nothing else), then the narrower before the wider, so
/// a refusal by a narrow one (which stops the counting) has not spent a wide one that
/// every other client shares.
fn counters(limits: &Limits, attempt: Attempt<'_>) -> Vec<(Scope, Vec<String>, Limit, Counts)> {
    let failures = Counts::Failures {
        clear_on_success: false,
    };
    let mut out = Vec::new();
    match attempt {
        Attempt::Password {
            identifier,
            ip,
            standing,
        } => {
            let id = subject_key(identifier);
            if let Some(ip) = ip.map(client_key) {
                out.push((
                    Scope::LoginIp,
                    vec![ip.clone()],
                    limits.login_attempts_per_ip,
                    Counts::Attempts,
                ));
                out.push((
                    Scope::LoginIdentifierIp,
                    vec![id.clone(), ip],
                    limits.login_failures_per_identifier_and_ip,
                    Counts::Failures {
                        clear_on_success: true,
                    },
                ));
            }
            if standing == Standing::Unknown {
                out.push((
                    Scope::LoginIdentifier,
                    vec![id],
                    limits.login_failures_per_identifier,
                    failures,
                ));
            }
        }
        Attempt::Passkey { identifier, ip } => {
            let ip = ip.map(client_key);
            if let Some(ip) = &ip {
                out.push((
                    Scope::LoginIp,
                    vec![ip.clone()],
                    limits.login_attempts_per_ip,
                    Counts::Attempts,
                ));
            }
            // A discoverable sign-in names no identifier: only its client address counts.
            // No count per identifier from all addresses: a passkey cannot be guessed, and
            // anyone may ask a challenge for any identifier and answer junk, so such a
            // count would only let a distributed attacker lock the owner's passkey out.
            if let (Some(id), Some(ip)) = (identifier.map(subject_key), ip) {
                out.push((
                    Scope::PasskeyIdentifierIp,
                    vec![id, ip],
                    limits.login_failures_per_identifier_and_ip,
                    Counts::Failures {
                        clear_on_success: true,
                    },
                ));
            }
        }
        Attempt::SettingsPassword { identity, ip } => {
            let id = identity.to_string();
            let cleared = Counts::Failures {
                clear_on_success: true,
            };
            if let Some(ip) = ip.map(client_key) {
                out.push((
                    Scope::LoginIp,
                    vec![ip.clone()],
                    limits.login_attempts_per_ip,
                    Counts::Attempts,
                ));
                out.push((
                    Scope::SettingsPasswordIdentityIp,
                    vec![id.clone(), ip],
                    limits.login_failures_per_identifier_and_ip,
                    cleared,
                ));
            }
            out.push((
                Scope::SettingsPasswordIdentity,
                vec![id],
                limits.login_failures_per_identifier,
                cleared,
            ));
        }
        #[cfg(feature = "oidc")]
        Attempt::ProviderCallback { ip } => {
            if let Some(ip) = ip.map(client_key) {
                out.push((
                    Scope::LoginIp,
                    vec![ip],
                    limits.login_attempts_per_ip,
                    Counts::Attempts,
                ));
            }
        }
        Attempt::SecondFactor { identity } => out.push((
            Scope::SecondFactor,
            vec![identity.to_string()],
            limits.second_factor_failures_per_identity,
            failures,
        )),
        Attempt::CodeSent { address, ip } => {
            let address = subject_key(address);
            let ip = ip.map(client_key);
            if let Some(ip) = &ip {
                out.push((
                    Scope::CodeIp,
                    vec![ip.clone()],
                    limits.codes_sent_per_ip,
                    Counts::Attempts,
                ));
            }
            // The pair before the address-wide cap: a client refused for the pair has not
            // spent the address's mail for everyone else.
            out.push((
                Scope::CodeAddressIp,
                vec![address.clone(), ip.unwrap_or_default()],
                limits.codes_sent_per_address_and_ip,
                Counts::Attempts,
            ));
            out.push((
                Scope::MailAddress,
                vec![address],
                limits.codes_sent_per_address,
                Counts::Attempts,
            ));
        }
        Attempt::Notice { address } => out.push((
            Scope::MailAddress,
            vec![subject_key(address)],
            limits.codes_sent_per_address,
            Counts::Attempts,
        )),
        Attempt::Registration { ip } => {
            if let Some(ip) = ip.map(client_key) {
                out.push((
                    Scope::RegistrationIp,
                    vec![ip],
                    limits.registrations_per_ip,
                    Counts::Successes,
                ));
            }
        }
        Attempt::NewFlow { ip } => {
            if let Some(ip) = ip.map(client_key) {
                out.push((
                    Scope::FlowIp,
                    vec![ip],
                    limits.flows_per_ip,
                    Counts::Attempts,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_are_keyed_by_host_or_ipv6_prefix() {
        assert_eq!(client_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(client_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1"),
            client_key("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"));
    }

    #[test]
    fn identifiers_are_keyed_normalised() {
        assert_eq!(
            subject_key(" Alice@Example.COM"),
            subject_key("alice@example.com")
        );
    }
}
