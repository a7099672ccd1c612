//! Throttling settings as the host reads them: `IDENTA_LIMITS=off|on` and one variable per
//! limit, `IDENTA_LIMITS_<NAME>=<max>/<window>` (a window is a number of seconds, or a
//! number with `s`, `m` or `h`: `5/15m`, `100/60s`, `20/1h`). Names are the fields of
//! `identa::throttle::Limits`, e.g. `IDENTA_LIMITS_LOGIN_FAILURES_PER_IDENTIFIER_AND_IP`.

use chrono::Duration;
use identa::throttle::{Limit, Limits, ThrottleConfig};

use crate::BoxError;

/// Whether the host throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Throttling {
    /// With the configured limits (the default).
    #[default]
    On,
    /// Not at all (`IDENTA_LIMITS=off`): for load tests and conformance runs from one
    /// address; the host warns at start-up.
    Off,
}

/// The host's throttling: on or off, and the limits when on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostLimits {
    /// On or off.
    pub throttling: Throttling,
    /// The limits (default: `Limits::default()`).
    pub limits: Limits,
}

impl HostLimits {
    /// Sets `key` (lower case, without `IDENTA_`) if it is a throttling key; `Ok(false)` if
    /// it is not one.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, BoxError> {
        if key == "limits" {
            self.throttling = match value.trim().to_ascii_lowercase().as_str() {
                "off" => Throttling::Off,
                "on" => Throttling::On,
                other => {
                    return Err(
                        format!("IDENTA_LIMITS: `{other}` is neither `on` nor `off`").into(),
                    );
                }
            };
            return Ok(true);
        }
        let Some(name) = key.strip_prefix("limits_") else {
            return Ok(false);
        };
        let l = &mut self.limits;
        let field = match name {
            "login_failures_per_identifier_and_ip" => &mut l.login_failures_per_identifier_and_ip,
            "login_failures_per_identifier" => &mut l.login_failures_per_identifier,
            "login_attempts_per_ip" => &mut l.login_attempts_per_ip,
            "second_factor_failures_per_identity" => &mut l.second_factor_failures_per_identity,
            "codes_sent_per_address_and_ip" => &mut l.codes_sent_per_address_and_ip,
            "codes_sent_per_address" => &mut l.codes_sent_per_address,
            "codes_sent_per_ip" => &mut l.codes_sent_per_ip,
            "registrations_per_ip" => &mut l.registrations_per_ip,
            "flows_per_ip" => &mut l.flows_per_ip,
            other => {
                return Err(format!(
                    "IDENTA_LIMITS_{}: no such limit (see identa::throttle::Limits)",
                    other.to_ascii_uppercase()
                )
                .into());
            }
        };
        *field = parse_limit(value)
            .map_err(|e| format!("IDENTA_LIMITS_{}: {e}", name.to_ascii_uppercase()))?;
        Ok(true)
    }

    /// The engine's throttling configuration.
    pub fn config(&self) -> ThrottleConfig {
        match self.throttling {
            Throttling::On => ThrottleConfig::On(self.limits),
            Throttling::Off => ThrottleConfig::Off,
        }
    }
}

/// `<max>/<window>`: `5/15m`, `100/60s`, `100/60`, `20/1h`.
fn parse_limit(text: &str) -> Result<Limit, String> {
    let wrong = || format!("`{text}` is not <max>/<window> (e.g. 5/15m, 100/60s, 20/1h)");
    let (max, window) = text.trim().split_once('/').ok_or_else(wrong)?;
    let max: u32 = max.trim().parse().map_err(|_| wrong())?;
    let window = window.trim();
    let (number, unit) = match window.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&window[..i], c),
        _ => (window, 's'),
    };
    let n: i64 = number.trim().parse().map_err(|_| wrong())?;
    let seconds_per_unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return Err(wrong()),
    };
    if n < 1 {
        return Err(format!("`{text}`: the window must be at least one second"));
    }
    let window = n
        .checked_mul(seconds_per_unit)
        .filter(|&secs| secs <= Limit::MAX_WINDOW_SECS)
        .map(Duration::seconds)
        .ok_or_else(|| format!("`{text}`: the window must be at most 30 days (720h)"))?;
    Ok(Limit::new(max, window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_from_keys() {
        let mut limits = HostLimits::default();
        assert!(
            limits
                .set("limits_login_attempts_per_ip", "1000/60s")
                .unwrap()
        );
        assert!(limits.set("limits_codes_sent_per_address", "2/1h").unwrap());
        assert!(
            limits
                .set("limits_codes_sent_per_address_and_ip", "4/10m")
                .unwrap()
        );
        assert!(!limits.set("public_addr", "x").unwrap());
        let ThrottleConfig::On(set) = limits.config() else {
            panic!("throttling is on by default");
        };
        assert_eq!(
            set.login_attempts_per_ip,
            Limit::new(1000, Duration::seconds(60))
        );
        assert_eq!(
            set.codes_sent_per_address,
            Limit::new(2, Duration::hours(1))
        );
        assert_eq!(
            set.codes_sent_per_address_and_ip,
            Limit::new(4, Duration::minutes(10))
        );
        assert_eq!(set.flows_per_ip, Limits::default().flows_per_ip);
        limits.set("limits", "OFF").unwrap();
        assert_eq!(limits.config(), ThrottleConfig::Off);
    }

    #[test]
    fn the_host_reads_limits_from_its_file_and_environment() {
        let dir = std::env::temp_dir().join(format!("identa-host-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("identa.json");
        std::fs::write(
            &file,
            r#"{"limits_registrations_per_ip": "50/1h", "limits": "on"}"#,
        )
        .unwrap();
        let vars = |extra: &[(&str, &str)]| {
            let mut vars = vec![("IDENTA_CONFIG".to_owned(), file.display().to_string())];
            vars.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            vars
        };
        let on =
            crate::HostConfig::from_sources(vars(&[("IDENTA_LIMITS_FLOWS_PER_IP", "1000/1h")]))
                .unwrap();
        let ThrottleConfig::On(set) = on.limits.config() else {
            panic!("on by default");
        };
        assert_eq!(set.registrations_per_ip, Limit::new(50, Duration::hours(1)));
        assert_eq!(set.flows_per_ip, Limit::new(1000, Duration::hours(1)));
        let off = crate::HostConfig::from_sources(vars(&[("IDENTA_LIMITS", "off")])).unwrap();
        assert_eq!(off.limits.config(), ThrottleConfig::Off);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let mut limits = HostLimits::default();
        let err = limits.set("limits_flows_per_ip", "lots").unwrap_err();
        assert!(err.to_string().contains("<max>/<window>"), "{err}");
        let err = limits.set("limits_flow_per_ip", "1/1s").unwrap_err();
        assert!(err.to_string().contains("no such limit"), "{err}");
        let err = limits.set("limits", "maybe").unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
        assert!(limits.set("limits_flows_per_ip", "1/0s").is_err());
        // A window too long for a date to hold is refused, not a panic.
        for huge in ["5/99999999999999h", "5/9223372036854775807s", "5/721h"] {
            let err = limits.set("limits_flows_per_ip", huge).unwrap_err();
            assert!(err.to_string().contains("at most 30 days"), "{huge}: {err}");
        }
        assert!(limits.set("limits_flows_per_ip", "5/720h").is_ok());
    }
}
