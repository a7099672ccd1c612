//! The shared HTTP suite against the actix-web host.

async fn start_for_tests() -> identa_http_suite::Host {
    identa_http_suite::start_example_host(identa_actix::start).await
}

identa_http_suite::http_suite!(start_for_tests, identa_actix::start);
