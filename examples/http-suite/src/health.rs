//! Health checks, identity schemas, and the admin API kept off the public listener.

use reqwest::StatusCode;

use crate::Host;
use crate::support::{app, send};

/// Health, schemas, and the admin API's absence from the public listener.
pub async fn health_schemas_and_separate_admin(host: &Host) {
    let c = app();
    for base in [&host.public, &host.admin] {
        let (status, v) = send(c.get(format!("{base}/health/alive"))).await;
        assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    }
    let (status, schemas) = send(c.get(format!("{}/schemas", host.public))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schemas[0]["id"], "default");
    let (status, schema) = send(c.get(format!("{}/schemas/default", host.public))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(schema["properties"]["traits"]["properties"]["email"].is_object());
    let (status, _) = send(c.get(format!("{}/schemas/nope", host.public))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The admin API is not reachable through the public listener, and the other way round.
    let (status, err) = send(c.get(format!("{}/admin/identities", host.public))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, _) = send(c.get(format!("{}/admin/identities", host.admin))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(c.get(format!("{}/self-service/login/api", host.admin))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
