//! Logout: by the logout URL's token (bound to its session) and by session token.

use identa::ErrorKind;
use identa::session::SessionRefusal;

use crate::common::{PASSWORD, TestEnv, api_login, register, whoami_refusal};
use crate::on_every_backend;

async fn logout_by_url_and_by_token(env: TestEnv) {
    let reg = register(&env, "logout@example.com").await;
    let token = reg.login.unwrap().token;
    let logout_token = env.identa.logout_token(&token).await.unwrap();
    // Bound to the session: asked again, the same token.
    assert_eq!(env.identa.logout_token(&token).await.unwrap(), logout_token);
    // Another session's logout token does not sign this one out.
    let other = api_login(&env, "logout@example.com", PASSWORD)
        .await
        .unwrap()
        .token
        .unwrap();
    let other_token = env.identa.logout_token(&other).await.unwrap();
    assert_ne!(other_token, logout_token);
    let err = env
        .identa
        .logout_with_token(&token, &other_token)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    env.identa.whoami(&token).await.unwrap();
    env.identa
        .logout_with_token(&token, &logout_token)
        .await
        .unwrap();
    assert_eq!(
        whoami_refusal(&env.identa, &token).await,
        SessionRefusal::Revoked
    );
    // API logout by session token.
    env.identa.logout(&other).await.unwrap();
    assert_eq!(
        whoami_refusal(&env.identa, &other).await,
        SessionRefusal::Revoked
    );
}

on_every_backend!(logout_by_url_and_by_token,);
