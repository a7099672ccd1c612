//! Driving API self-service flows: starting one of each kind, the password submissions,
//! and submitting to a flow, as the flow tests do it step after step.

use identa::Error;
use identa::credential::password::Password;
use identa::flow::login::{LoggedIn, LoginIntent, LoginSubmission};
use identa::flow::recovery::RecoveryStep;
use identa::flow::registration::{Registered, RegistrationSubmission};
use identa::flow::settings::{SettingsSaved, SettingsSubmission};
use identa::flow::verification::VerificationStep;
use identa::flow::{CodeSubmission, Flow, FlowRequest, FlowType};
use identa::session::SessionToken;
use serde_json::Value;
use uuid::Uuid;

use super::{TestEnv, with_session};

/// A new API registration flow.
pub async fn api_registration_flow(env: &TestEnv) -> Flow {
    env.identa
        .registration_flow()
        .create(FlowType::Api, &FlowRequest::api())
        .await
        .unwrap()
}

/// A new API login flow with `intent`, for the session `req` presents (if any).
pub async fn api_login_flow(env: &TestEnv, req: &FlowRequest, intent: LoginIntent) -> Flow {
    env.identa
        .login_flow()
        .create(FlowType::Api, req, intent)
        .await
        .unwrap()
}

/// A new API settings flow for the session `req` presents.
pub async fn api_settings_flow(env: &TestEnv, req: &FlowRequest) -> Flow {
    env.identa
        .settings_flow()
        .create(FlowType::Api, req)
        .await
        .unwrap()
}

/// A new API recovery flow.
pub async fn api_recovery_flow(env: &TestEnv) -> Flow {
    env.identa
        .recovery_flow()
        .create(FlowType::Api, &FlowRequest::api())
        .await
        .unwrap()
}

/// A new API verification flow.
pub async fn api_verification_flow(env: &TestEnv) -> Flow {
    env.identa
        .verification_flow()
        .create(FlowType::Api, &FlowRequest::api())
        .await
        .unwrap()
}

/// A registration with the password method: these traits, this password.
pub fn password_registration(traits: Value, password: &str) -> RegistrationSubmission {
    RegistrationSubmission::Password {
        traits,
        password: Password::new(password),
    }
}

/// A login with the password method.
pub fn password_login(identifier: &str, password: &str) -> LoginSubmission {
    LoginSubmission::Password {
        identifier: identifier.into(),
        password: Password::new(password),
    }
}

/// A new password for a settings flow.
pub fn new_password(password: &str) -> SettingsSubmission {
    SettingsSubmission::Password {
        password: Password::new(password),
    }
}

/// Submits `submission` to registration flow `flow` with `req`.
pub async fn submit_registration(
    env: &TestEnv,
    flow: Uuid,
    submission: RegistrationSubmission,
    req: &FlowRequest,
) -> Result<Registered, Error> {
    env.identa
        .registration_flow()
        .submit(flow, submission, req)
        .await
}

/// Submits `submission` to login flow `flow` with `req`.
pub async fn submit_login(
    env: &TestEnv,
    flow: Uuid,
    submission: LoginSubmission,
    req: &FlowRequest,
) -> Result<LoggedIn, Error> {
    env.identa.login_flow().submit(flow, submission, req).await
}

/// Submits `submission` to settings flow `flow` as the session `req` presents.
pub async fn submit_settings(
    env: &TestEnv,
    flow: Uuid,
    submission: SettingsSubmission,
    req: &FlowRequest,
) -> Result<SettingsSaved, Error> {
    env.identa
        .settings_flow()
        .submit(flow, submission, req)
        .await
}

/// Makes one change as the session of `token`: a new settings flow, `submission` to it.
pub async fn change_settings(
    env: &TestEnv,
    token: &SessionToken,
    submission: SettingsSubmission,
) -> Result<SettingsSaved, Error> {
    let req = with_session(token);
    let flow = api_settings_flow(env, &req).await;
    submit_settings(env, flow.id, submission, &req).await
}

/// Submits `submission` (an address or a code) to API recovery flow `flow`.
pub async fn submit_recovery(
    env: &TestEnv,
    flow: Uuid,
    submission: CodeSubmission,
) -> Result<RecoveryStep, Error> {
    env.identa
        .recovery_flow()
        .submit(flow, submission, &FlowRequest::api())
        .await
}

/// Submits `submission` (an address or a code) to API verification flow `flow`.
pub async fn submit_verification(
    env: &TestEnv,
    flow: Uuid,
    submission: CodeSubmission,
) -> Result<VerificationStep, Error> {
    env.identa
        .verification_flow()
        .submit(flow, submission, &FlowRequest::api())
        .await
}
