//! Signing up and signing in, the ways the suite does it: through the library calls
//! (`Identa::register`, `Identa::login`) or through API self-service flows.

use identa::Error;
use identa::credential::password::Password;
use identa::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use identa::flow::registration::{Registered, RegistrationSubmission};
use identa::flow::{ContinueWith, Flow, FlowRequest, FlowType};
use identa::identity::Identity;
use identa::session::SessionRefusal;
use identa::session::{Login, SessionToken};
use serde_json::json;

use super::{PASSWORD, TestEnv};

/// A new API registration flow.
pub async fn api_registration_flow(env: &TestEnv) -> Flow {
    env.identa
        .registration_flow()
        .create(FlowType::Api, &FlowRequest::api())
        .await
        .unwrap()
}

/// Registers `email` through an API registration flow with [`PASSWORD`]: the identity, its
/// first session and whatever else registration returned.
pub async fn register(env: &TestEnv, email: &str) -> Registered {
    let req = FlowRequest::api();
    let flow = api_registration_flow(env).await;
    env.identa
        .registration_flow()
        .submit(
            flow.id,
            RegistrationSubmission::Password {
                traits: json!({ "email": email }),
                password: Password::new(PASSWORD),
            },
            &req,
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
    env.identa
        .register(json!({ "email": email }), &Password::new(PASSWORD))
        .await
        .unwrap()
}

/// Signs in with [`PASSWORD`] through `Identa::login` (no flow): a new `aal1` session.
pub async fn sign_in(env: &TestEnv, identifier: &str) -> Login {
    env.identa
        .login(identifier, &Password::new(PASSWORD), None)
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
    env.identa
        .login_flow()
        .submit(
            flow.id,
            LoginSubmission::Password {
                identifier: identifier.into(),
                password: Password::new(password),
            },
            &req,
        )
        .await
}

/// Why a session was refused (`Error::SessionInactive`); panics on any other error.
pub fn session_refusal(err: Error) -> SessionRefusal {
    match err {
        Error::Session(identa::session::SessionError::Inactive(reason)) => reason,
        other => panic!("expected a refused session, got {other:?}"),
    }
}

/// An API request presenting `token` (as a client would send it back).
pub fn with_session(token: &SessionToken) -> FlowRequest {
    FlowRequest::api().with_session(SessionToken::from_client(token.expose()))
}
