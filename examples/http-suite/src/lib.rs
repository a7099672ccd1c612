//! The HTTP-level test suite every identa host runs: the same cases against the axum and
//! the actix host, through a real HTTP client with a cookie jar. A host's test file starts
//! its server and calls [`http_suite!`]:
//!
//! ```ignore
//! async fn start_for_tests() -> identa_http_suite::Host {
//!     identa_http_suite::start_example_host(identa_axum::start).await
//! }
//!
//! identa_http_suite::http_suite!(start_for_tests);
//! ```
//!
//! where `start_for_tests()` is any `async fn() -> identa_http_suite::Host`;
//! [`start_example_host`] starts a host built on `identa-host` for a test. A host built on
//! `identa-host` also names its framework's `start` (`http_suite!(start_for_tests,
//! identa_axum::start)`), and the cases that start hosts of their own configuration
//! (admin tokens, refused start-ups, trusted proxies) run too.
//!
//! Cases that need something beyond Rust (Node and npm packages, Chromium, `oathtool`) are
//! `#[ignore]`d, with what they need and how to install it as the reason; `cargo test --
//! --ignored` runs them, and there a missing tool fails the case, naming it. No case
//! passes without having run.

mod admin;
mod apple;
mod browser;
mod browser_flows;
mod enumeration;
mod form_post;
mod github;
mod health;
mod hosts;
mod native_flows;
mod oidc;
mod oidc_linking;
mod proxies;
mod sdk;
mod second_factors;
mod sessions;
mod support;
mod throttle;
mod tools;
mod ui;
mod webauthn;

use std::any::Any;

pub use admin::{admin_identities, admin_refuses_browser_pages, admin_tokens};
pub use apple::apple_sign_up_and_in;
pub use browser::{real_browser, real_browser_webauthn, run_browser_script};
pub use browser_flows::browser_flows;
pub use enumeration::taken_address_looks_new;
pub use form_post::oidc_form_post;
pub use github::{github_sign_up_and_in, github_unverified_primary, github_without_addresses};
pub use health::health_schemas_and_separate_admin;
pub use hosts::{start_example_host, test_config, try_start_example_host};
pub use native_flows::{native_flows, return_to_and_bad_input};
pub use oidc::{
    GitHubEmails, OpenIdProvider, free_port, host_with_provider, oidc_claims_from_userinfo,
    oidc_real_browser, oidc_sign_up_and_in, provider_entry,
};
pub use oidc_linking::oidc_link_real_browser;
pub use proxies::trusted_proxies;
pub use sdk::{kratos_sdk_roundtrip, sdk_oidc};
pub use second_factors::{second_factors, totp_from_oathtool};
pub use sessions::settings_and_sessions;
pub use support::{app, browser};
pub use throttle::throttled_logins;
pub use tokio;
pub use ui::{ui_home, ui_pages};
pub use webauthn::security_keys_and_passkeys;

/// A running host under test.
pub struct Host {
    /// Base URL of the public API (`http://127.0.0.1:port`).
    pub public: String,
    /// Base URL of the admin API.
    pub admin: String,
    /// Keeps the server alive while the case runs.
    pub guard: Box<dyn Any + Send>,
}

/// Every case, as `#[tokio::test]`s in the calling crate, each against a fresh host from
/// `$start` (an `async fn() -> Host`). The cases that need tools beyond Rust are ignored
/// unless asked for (`cargo test -- --ignored`).
#[macro_export]
macro_rules! http_suite {
    ($start:path, $framework:path) => {
        $crate::http_suite!($start);
        $crate::http_suite!(@configured $framework; admin_tokens, trusted_proxies);
        $crate::http_suite!(@configured $framework;
            #[ignore = "needs Node and the OpenID provider: npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            oidc_sign_up_and_in,
            #[ignore = "needs Chromium, puppeteer-core and the OpenID provider: apt-get install chromium, npm ci --prefix examples/http-suite/browser and examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            oidc_real_browser,
            #[ignore = "needs Node: apt-get install nodejs npm, npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            github_sign_up_and_in,
            #[ignore = "needs Node: apt-get install nodejs npm, npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            github_unverified_primary,
            #[ignore = "needs Node: apt-get install nodejs npm, npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            github_without_addresses,
            #[ignore = "needs Node and the OpenID provider: npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            oidc_claims_from_userinfo,
            #[ignore = "needs Chromium, puppeteer-core and the OpenID provider: apt-get install chromium, npm ci --prefix examples/http-suite/browser and examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            oidc_link_real_browser,
            #[ignore = "needs Node and the OpenID provider: npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            oidc_form_post,
            #[ignore = "needs Node and jose: npm ci --prefix examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            apple_sign_up_and_in,
            #[ignore = "needs Node, the Kratos SDK and the OpenID provider: npm ci --prefix examples/http-suite/sdk and examples/http-suite/oidc; run with `cargo test -- --ignored`"]
            sdk_oidc,
        );
    };
    ($start:path) => {
        $crate::http_suite!(@cases $start;
            health_schemas_and_separate_admin,
            native_flows,
            browser_flows,
            return_to_and_bad_input,
            admin_identities,
            admin_refuses_browser_pages,
            settings_and_sessions,
            ui_pages,
            ui_home,
            second_factors,
            security_keys_and_passkeys,
            taken_address_looks_new,
            throttled_logins,
        );
        $crate::http_suite!(@cases $start;
            #[ignore = "needs Node and the Kratos SDK: npm ci --prefix examples/http-suite/sdk; run with `cargo test -- --ignored`"]
            kratos_sdk_roundtrip,
            #[ignore = "needs Chromium and puppeteer-core: apt-get install chromium, npm ci --prefix examples/http-suite/browser; run with `cargo test -- --ignored`"]
            real_browser,
            #[ignore = "needs Chromium and puppeteer-core: apt-get install chromium, npm ci --prefix examples/http-suite/browser; run with `cargo test -- --ignored`"]
            real_browser_webauthn,
            #[ignore = "needs oathtool: apt-get install oathtool; run with `cargo test -- --ignored`"]
            totp_from_oathtool,
        );
    };
    (@configured $framework:path; $($(#[$attr:meta])* $case:ident),* $(,)?) => {
        $(
            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn $case() {
                $crate::$case($framework).await;
            }
        )*
    };
    (@cases $start:path; $($(#[$attr:meta])* $case:ident),* $(,)?) => {
        $(
            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn $case() {
                let host = $start().await;
                $crate::$case(&host).await;
            }
        )*
    };
}
