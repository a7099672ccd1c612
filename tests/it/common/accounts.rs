//! Signing up and signing in, the ways the suite does it: through the library calls
//! (`Identa::register`, `Identa::login`) or through API self-service flows; and the
//! account checks that go with them (is an identifier taken, why is a session refused,
//! an administrator disabling an identity), and an imported password hash's first sign-in.

use identa::credential::password::Password;
use identa::flow::login::{LoggedIn, LoginIntent};
use identa::flow::registration::Registered;
use identa::flow::{ContinueWith, FlowRequest, FlowType};
use identa::identity::{Identity, IdentityState, IdentityUpdate};
use identa::session::SessionRefusal;
use identa::session::{Login, SessionToken};
use identa::{Error, ErrorKind, Identa};
use serde_json::{Value, json};

use super::{
    PASSWORD, TestEnv, api_registration_flow, password_login, password_registration, submit_login,
    submit_registration,
};

/// Registers `email` through an API registration flow with [`PASSWORD`]: the identity, its
/// first session and whatever else registration returned.
pub async fn register(env: &TestEnv, email: &str) -> Registered {
    let flow = api_registration_flow(env).await;
    submit_registration(
        env,
        flow.id,
        password_registration(json!({ "email": email }), PASSWORD),
        &FlowRequest::api(),
    )
    .await
    .unwrap()
}

/// The verification flow in a `continue_with` list (registration starts one for a new
/// address).
pub fn verification_flow_of(continue_with: &[ContinueWith]) -> uuid::Uuid {
    continue_with
        .iter()
        .find_map(|c| match c {
            ContinueWith::ShowVerificationUi { flow } => Some(flow.id),
            _ => None,
        })
        .expect("a verification flow for the new address")
}

/// [`register`], keeping the identity and the session token registration issued.
pub async fn register_with_password(env: &TestEnv, email: &str) -> (Identity, SessionToken) {
    let done = register(env, email).await;
    (done.identity, done.login.unwrap().token)
}

/// Creates an identity with [`PASSWORD`] through `Identa::register`: no flow, no session.
pub async fn create_account(env: &TestEnv, email: &str) -> Identity {
    create_account_with_traits(env, json!({ "email": email }))
        .await
        .unwrap()
}

/// [`create_account`] with these traits, which the schema may refuse.
pub async fn create_account_with_traits(env: &TestEnv, traits: Value) -> Result<Identity, Error> {
    env.identa.register(traits, &Password::new(PASSWORD)).await
}

/// Signs in with [`PASSWORD`] through `Identa::login` (no flow): a new `aal1` session.
pub async fn sign_in(env: &TestEnv, identifier: &str) -> Login {
    sign_in_with(env, identifier, PASSWORD).await.unwrap()
}

/// Signs in with `password` through `Identa::login` (no flow, no device).
pub async fn sign_in_with(env: &TestEnv, identifier: &str, password: &str) -> Result<Login, Error> {
    env.identa
        .login(identifier, &Password::new(password), None)
        .await
}

/// Whether `err` is the refusal of a wrong password or an unknown identifier (the two
/// look alike: `FlowError::InvalidCredentials`).
pub fn is_invalid_credentials(err: &Error) -> bool {
    matches!(
        err,
        Error::Flow(identa::flow::FlowError::InvalidCredentials)
    )
}

/// Whether an identity has `identifier` (for checking that a refused sign-up left none).
pub async fn has_account(env: &TestEnv, identifier: &str) -> bool {
    env.identa
        .identity_by_identifier(identifier)
        .await
        .unwrap()
        .is_some()
}

/// Sets the state of identity `id` (an administrator disabling or enabling it).
pub async fn set_identity_state(env: &TestEnv, id: uuid::Uuid, state: IdentityState) -> Identity {
    env.identa
        .update_identity(
            id,
            IdentityUpdate {
                state: Some(state),
                ..IdentityUpdate::default()
            },
        )
        .await
        .unwrap()
}

/// Signs in through a new API login flow with the password method.
pub async fn api_login(env: &TestEnv, identifier: &str, password: &str) -> Result<LoggedIn, Error> {
    let req = FlowRequest::api();
    let flow = env
        .identa
        .login_flow()
        .create(FlowType::Api, &req, LoginIntent::SignIn)
        .await?;
    submit_login(env, flow.id, password_login(identifier, password), &req).await
}

/// Why a session was refused (`Error::SessionInactive`); panics on any other error.
pub fn session_refusal(err: Error) -> SessionRefusal {
    match err {
        Error::Session(identa::session::SessionError::Inactive(reason)) => reason,
        other => panic!("expected a refused session, got {other:?}"),
    }
}

/// Why `identa` refuses the session of `token` (its `whoami` fails); panics if it is
/// accepted.
pub async fn whoami_refusal(identa: &Identa, token: &SessionToken) -> SessionRefusal {
    session_refusal(identa.whoami(token).await.unwrap_err())
}

/// An API request presenting `token` (as a client would send it back).
pub fn with_session(token: &SessionToken) -> FlowRequest {
    FlowRequest::api().with_session(SessionToken::from_client(token.expose()))
}

/// The stored password hash of `id`.
pub async fn stored_hash(env: &TestEnv, id: uuid::Uuid) -> String {
    env.identa
        .identity(id)
        .await
        .unwrap()
        .credential(identa::identity::CredentialType::Password)
        .unwrap()
        .hashed_password()
        .unwrap()
        .to_owned()
}

/// Imports `email` with `hash`, checks a wrong password is refused and `password` signs in,
/// and that the first sign-in re-hashed the password with identa's argon2id parameters
/// (which then sign in too).
pub async fn import_sign_in_and_upgrade(env: &TestEnv, email: &str, password: &str, hash: &str) {
    let new = identa::identity::NewIdentity {
        traits: json!({ "email": email }),
        ..Default::default()
    };
    let imported = env
        .identa
        .import_identity(new, hash)
        .await
        .unwrap_or_else(|e| panic!("{hash}: {e}"));
    assert_eq!(stored_hash(env, imported.id).await, hash);
    let wrong = format!("{password}!");
    assert_eq!(
        sign_in_with(env, email, &wrong).await.unwrap_err().kind(),
        ErrorKind::InvalidCredentials,
        "{hash}"
    );
    assert_eq!(
        stored_hash(env, imported.id).await,
        hash,
        "a failure changes nothing"
    );
    sign_in_with(env, email, password)
        .await
        .unwrap_or_else(|e| panic!("{hash} should match {password:?}: {e}"));
    let now = stored_hash(env, imported.id).await;
    assert!(
        now.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{hash} re-hashed as {now}"
    );
    sign_in_with(env, email, password).await.unwrap();
    assert_eq!(stored_hash(env, imported.id).await, now, "re-hashed once");
}
