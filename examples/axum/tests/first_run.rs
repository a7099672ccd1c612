//! The README's first run, as a new user tries it: `cargo run -p identa-axum`, then
//! `http://localhost:4433/ui/` in a browser. The host starts on its default addresses
//! (only the SQLite file is a temporary one, and hashing is the fast test setting) and
//! headless Chromium opens exactly that address.

use std::net::{SocketAddr, TcpListener};

use identa_axum::start;

/// The address the README tells a new user to open.
const README_ADDRESS: &str = "http://localhost:4433/ui/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and puppeteer-core: apt-get install chromium, npm ci --prefix examples/http-suite/browser; run with `cargo test -- --ignored`"]
async fn readme_address_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let config = identa_http_suite::test_config(dir.path());
    let addresses: [SocketAddr; 2] = [
        "127.0.0.1:4433".parse().unwrap(),
        "127.0.0.1:4434".parse().unwrap(),
    ];
    assert_eq!(
        [config.public_addr, config.admin_addr],
        addresses,
        "the README's ports are the defaults"
    );
    let running = match start(config).await {
        Ok(running) => running,
        Err(err) => {
            let taken: Vec<String> = addresses
                .iter()
                .filter(|addr| TcpListener::bind(addr).is_err())
                .map(|addr| format!("port {} ({addr})", addr.port()))
                .collect();
            assert!(
                taken.is_empty(),
                "{} {} taken, so the host cannot start where the README says (is `cargo run -p identa-axum` running?): {err}",
                taken.join(" and "),
                if taken.len() == 1 { "is" } else { "are" }
            );
            panic!("the host did not start on 127.0.0.1:4433 and 127.0.0.1:4434: {err}");
        }
    };
    identa_http_suite::run_browser_script(
        README_ADDRESS,
        "http://127.0.0.1:4434",
        "first-run.mjs",
        &[&format!(
            "chromium at {README_ADDRESS}: sign-in page, sign-up, dashboard: ok"
        )],
    )
    .await;
    drop(running);
}
