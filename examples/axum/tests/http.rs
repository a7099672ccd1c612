//! The shared HTTP suite against the axum host.

async fn start_for_tests() -> identa_http_suite::Host {
    identa_http_suite::start_example_host(identa_axum::start).await
}

identa_http_suite::http_suite!(start_for_tests, identa_axum::start);
