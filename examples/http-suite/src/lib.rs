//! The HTTP-level test suite every identa host runs: the same cases against the axum and
//! the actix host, through a real HTTP client with a cookie jar. A host's test file starts
//! its server and calls [`http_suite!`]:
//!
//! ```ignore
//! identa_http_suite::http_suite!(crate::start_for_tests);
//! ```
//!
//! where `start_for_tests()` is an `async fn() -> identa_http_suite::Host`.

mod admin;
mod browser;
mod browser_flows;
mod health;
mod native_flows;
mod sdk;
mod second_factors;
mod sessions;
mod support;
mod ui;
mod webauthn;

use std::any::Any;

pub use admin::admin_identities;
pub use browser::{real_browser, real_browser_webauthn};
pub use browser_flows::browser_flows;
pub use health::health_schemas_and_separate_admin;
pub use native_flows::{native_flows, return_to_and_bad_input};
pub use sdk::kratos_sdk_roundtrip;
pub use second_factors::second_factors;
pub use sessions::settings_and_sessions;
pub use support::{app, browser};
pub use tokio;
pub use ui::ui_pages;
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
/// `$start` (an `async fn() -> Host`).
#[macro_export]
macro_rules! http_suite {
    ($start:path) => {
        $crate::http_suite!(@cases $start;
            health_schemas_and_separate_admin,
            native_flows,
            browser_flows,
            return_to_and_bad_input,
            admin_identities,
            settings_and_sessions,
            ui_pages,
            kratos_sdk_roundtrip,
            real_browser,
            real_browser_webauthn,
            second_factors,
            security_keys_and_passkeys,
        );
    };
    (@cases $start:path; $($case:ident),* $(,)?) => {
        $(
            #[$crate::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let host = $start().await;
                $crate::$case(&host).await;
            }
        )*
    };
}
