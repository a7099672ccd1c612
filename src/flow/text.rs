//! Kratos's UI messages: numeric ids and English texts, so front ends that key on the id
//! (or show the text) behave as they do with Kratos.

use serde_json::json;

use super::ui::UiText;
use crate::credential::password::PolicyViolation;
use crate::identity::TraitViolation;

pub(crate) fn reauth() -> UiText {
    UiText::info(
        1_010_003,
        "Please confirm this action by verifying that it is you.",
    )
}
pub(crate) fn sign_in_with_password() -> UiText {
    UiText::info(1_010_022, "Sign in with password")
}
pub(crate) fn sign_up() -> UiText {
    UiText::info(1_040_001, "Sign up")
}
pub(crate) fn settings_saved() -> UiText {
    UiText::success(1_050_001, "Your changes have been saved!")
}
pub(crate) fn recovery_successful(minutes: i64) -> UiText {
    UiText::success(
        1_060_001,
        format!(
            "You successfully recovered your account. Please change your password or set up an alternative login method (e.g. social sign in) within the next {minutes}.00 minutes."
        ),
    )
    .with_context(json!({ "privileged_session_expires_in_minutes": minutes }))
}
pub(crate) fn recovery_code_sent() -> UiText {
    UiText::info(
        1_060_003,
        "An email containing a recovery code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}
pub(crate) fn label_password() -> UiText {
    UiText::info(1_070_001, "Password")
}
pub(crate) fn label_save() -> UiText {
    UiText::info(1_070_003, "Save")
}
pub(crate) fn label_id() -> UiText {
    UiText::info(1_070_004, "ID")
}
pub(crate) fn label_submit() -> UiText {
    UiText::info(1_070_005, "Submit")
}
pub(crate) fn label_email() -> UiText {
    UiText::info(1_070_007, "Email")
}
pub(crate) fn label_resend() -> UiText {
    UiText::info(1_070_008, "Resend code")
}
pub(crate) fn label_recovery_code() -> UiText {
    UiText::info(1_070_010, "Recovery code")
}
pub(crate) fn label_verification_code() -> UiText {
    UiText::info(1_070_011, "Verification code")
}
/// A generated label: the schema `title` of a trait, or its path.
pub(crate) fn label_generated(title: &str, name: &str) -> UiText {
    UiText::info(1_070_002, title).with_context(json!({ "title": title, "name": name }))
}
pub(crate) fn verification_successful() -> UiText {
    UiText::success(1_080_002, "You successfully verified your email address.")
}
pub(crate) fn verification_code_sent() -> UiText {
    UiText::info(
        1_080_003,
        "An email containing a verification code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
    )
}

/// A 4000001 message with a reason (Kratos reuses this id for many texts).
pub(crate) fn generic(reason: impl Into<String>) -> UiText {
    let reason = reason.into();
    UiText::error(4_000_001, reason.clone()).with_context(json!({ "reason": reason }))
}
pub(crate) fn trait_violation(v: &TraitViolation) -> UiText {
    UiText::error(v.kind.message_id(), v.message.clone())
}
pub(crate) fn password_policy(v: &PolicyViolation) -> UiText {
    let context = match v {
        PolicyViolation::TooShort { min, actual } => {
            json!({ "min_length": min, "actual_length": actual })
        }
        PolicyViolation::TooLong { max } => json!({ "max_length": max }),
        PolicyViolation::TooSimilarToIdentifier => serde_json::Value::Null,
        // Kratos's context for 4000034.
        PolicyViolation::Breached { times } => json!({ "breaches": times }),
    };
    UiText::error(v.message_id(), v.to_string()).with_context(context)
}
pub(crate) fn invalid_credentials() -> UiText {
    UiText::error(
        4_000_006,
        "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.",
    )
}
pub(crate) fn address_not_verified() -> UiText {
    UiText::error(
        4_000_010,
        "Account not active yet. Did you forget to verify your email address?",
    )
}
pub(crate) fn duplicate() -> UiText {
    UiText::error(
        4_000_007,
        "An account with the same identifier (email, phone, username, ...) exists already.",
    )
}
#[cfg(feature = "oidc")]
pub(crate) fn duplicate_on_oidc_link() -> UiText {
    UiText::error(
        4_000_027,
        "An account with the same identifier (email, phone, username, ...) exists already. \
         Please sign in to your existing account to link your social profile.",
    )
}
/// Kratos's 1010016: a provider account whose address has an account here waits to be
/// linked until the user signs in to that account.
#[cfg(feature = "oidc")]
pub(crate) fn login_link(address: &str, provider: &str) -> UiText {
    UiText::info(
        1_010_016,
        format!(
            "You tried to sign in with \"{address}\", but that email is already used by another account. Sign in to your account with one of the options below to add your account \"{address}\" at \"{provider}\" as another way to sign in."
        ),
    )
    .with_context(json!({
        "duplicateIdentifier": address,
        "duplicate_identifier": address,
        "provider": provider,
        "available_credential_types": [],
        "available_providers": [],
    }))
}
/// identa's own message (no Kratos equivalent): the provider account waiting to be
/// linked is linked once the second factor is done.
#[cfg(feature = "oidc")]
pub(crate) fn link_after_second_factor(provider: &str) -> UiText {
    UiText::info(
        1_900_003,
        format!(
            "Complete your second factor to sign in and to add your \"{provider}\" account as another way to sign in."
        ),
    )
    .with_context(json!({ "provider": provider }))
}
/// identa's own message (no Kratos equivalent): the provider account waiting to be
/// linked was linked to another account meanwhile, so it was not linked to this one.
#[cfg(feature = "oidc")]
pub(crate) fn link_taken_meanwhile(provider: &str) -> UiText {
    UiText::info(
        1_900_004,
        format!(
            "You are signed in, but your \"{provider}\" account was not added to it: it was linked to another account here in the meantime."
        ),
    )
    .with_context(json!({ "provider": provider }))
}
/// Kratos's 4010009: the account signed in to is not the one the pending link is for.
#[cfg(feature = "oidc")]
pub(crate) fn linked_credentials_do_not_match(address: &str, provider: &str) -> UiText {
    UiText::error(
        4_010_009,
        format!(
            "Linked credentials do not match. The account you signed in to does not use \"{address}\"; sign in to the account that does to add your \"{provider}\" account to it, or start a new login to sign in without linking."
        ),
    )
}
pub(crate) fn new_password_same_as_old() -> UiText {
    UiText::error(
        4_000_039,
        "The new password must be different from the old password.",
    )
}
/// identa's own id (Kratos has no password history): outside Kratos's ranges.
pub(crate) fn new_password_used_before(history: u8) -> UiText {
    UiText::error(
        4_000_900,
        "The new password was used before: choose one you have not used recently.",
    )
    .with_context(serde_json::json!({ "history": history }))
}
pub(crate) fn identity_disabled() -> UiText {
    UiText::error(
        4_010_011,
        "This account has been disabled. Please contact support for assistance.",
    )
}
pub(crate) fn submitted_too_often() -> UiText {
    generic("The request was submitted too often. Please request another code.")
}
pub(crate) fn recovery_retry_success() -> UiText {
    UiText::error(
        4_060_001,
        "The request was already completed successfully and can not be retried.",
    )
}
pub(crate) fn recovery_code_invalid() -> UiText {
    UiText::error(
        4_060_006,
        "The recovery code is invalid or has already been used. Please try again.",
    )
}
pub(crate) fn verification_retry_success() -> UiText {
    UiText::error(
        4_070_002,
        "The request was already completed successfully and can not be retried.",
    )
}
pub(crate) fn verification_code_invalid() -> UiText {
    UiText::error(
        4_070_006,
        "The verification code is invalid or has already been used. Please try again.",
    )
}
pub(crate) fn system_error(reason: &str) -> UiText {
    UiText::error(5_000_001, reason.to_owned()).with_context(json!({ "reason": reason }))
}
pub(crate) fn totp_login_label() -> UiText {
    UiText::info(1_010_006, "Authentication code")
}
pub(crate) fn use_authenticator() -> UiText {
    UiText::info(1_010_009, "Use Authenticator")
}
pub(crate) fn second_factor() -> UiText {
    UiText::info(
        1_010_004,
        "Please complete the second authentication challenge.",
    )
}
pub(crate) fn unlink_totp() -> UiText {
    UiText::info(1_050_004, "Unlink TOTP Authenticator App")
}
pub(crate) fn totp_qr() -> UiText {
    UiText::info(1_050_005, "Authenticator app QR code")
}
pub(crate) fn totp_secret(secret: &str) -> UiText {
    UiText::info(1_050_006, secret.to_owned()).with_context(json!({ "secret": secret }))
}
pub(crate) fn totp_secret_label() -> UiText {
    UiText::info(
        1_050_017,
        "This is your authenticator app secret. Use it if you can not scan the QR code.",
    )
}
pub(crate) fn verify_code() -> UiText {
    UiText::info(1_070_006, "Verify code")
}
pub(crate) fn totp_wrong() -> UiText {
    UiText::error(
        4_000_008,
        "The provided authentication code is invalid, please try again.",
    )
}
pub(crate) fn no_totp_device() -> UiText {
    UiText::error(4_000_011, "You have no TOTP device set up.")
}
pub(crate) fn lookup_login_label() -> UiText {
    UiText::info(1_010_007, "Backup recovery code")
}
pub(crate) fn use_lookup() -> UiText {
    UiText::info(1_010_010, "Use backup recovery code")
}
pub(crate) fn regenerate_lookup() -> UiText {
    UiText::info(1_050_008, "Generate new backup recovery codes")
}
pub(crate) fn lookup_label() -> UiText {
    UiText::info(
        1_050_010,
        "These are your back up recovery codes. Please keep them in a safe place!",
    )
}
pub(crate) fn confirm_lookup() -> UiText {
    UiText::info(1_050_011, "Confirm backup recovery codes")
}
pub(crate) fn lookup_list(codes: &[String]) -> UiText {
    UiText::info(1_050_015, codes.join(", ")).with_context(json!({ "secrets": codes }))
}
pub(crate) fn disable_lookup() -> UiText {
    UiText::info(1_050_016, "Disable this method")
}
/// identa's own message (no Kratos equivalent): a throttling limit is spent.
pub(crate) fn throttled(retry_after_seconds: u64) -> UiText {
    UiText::error(
        4_900_001,
        format!("Too many attempts. Please try again in {retry_after_seconds} seconds."),
    )
    .with_context(json!({ "retry_after_seconds": retry_after_seconds }))
}
pub(crate) fn lookup_invalid() -> UiText {
    UiText::error(4_000_016, "The backup recovery code is not valid.")
}
/// identa's own message (no Kratos equivalent): few backup codes are left.
pub(crate) fn lookup_few_left(left: usize) -> UiText {
    UiText::info(
        1_900_001,
        format!("Only {left} backup recovery codes are left: generate a new set in your settings."),
    )
    .with_context(json!({ "remaining": left }))
}

// ---- security keys and passkeys -------------------------------------------------------

pub(crate) fn sign_in_with_hardware_key() -> UiText {
    UiText::info(1_010_008, "Sign in with a hardware key")
}
pub(crate) fn prepare_device() -> UiText {
    UiText::info(
        1_010_012,
        "Prepare your WebAuthn device (e.g. security key, biometrics scanner, ...) and press continue.",
    )
}
pub(crate) fn sign_in_with_passkey() -> UiText {
    UiText::info(1_010_021, "Sign in with passkey")
}
/// identa's own label (no Kratos equivalent): a passkey sign-in for the identifier typed,
/// for authenticators whose passkeys are not discoverable.
pub(crate) fn sign_in_with_passkey_by_identifier() -> UiText {
    UiText::info(1_900_002, "Sign in with a passkey of this identifier")
}
pub(crate) fn sign_up_with_passkey() -> UiText {
    UiText::info(1_040_007, "Sign up with passkey")
}
pub(crate) fn add_security_key() -> UiText {
    UiText::info(1_050_012, "Add security key")
}
pub(crate) fn security_key_name() -> UiText {
    UiText::info(1_050_013, "Name of the security key")
}
pub(crate) fn add_passkey() -> UiText {
    UiText::info(1_050_019, "Add passkey")
}
/// "Remove security key "…"" (1050018) or "Remove passkey "…"" (1050020).
pub(crate) fn remove_key(
    passkey: bool,
    name: &str,
    added_at: chrono::DateTime<chrono::Utc>,
) -> UiText {
    let (id, what) = if passkey {
        (1_050_020, "passkey")
    } else {
        (1_050_018, "security key")
    };
    UiText::info(id, format!("Remove {what} \"{name}\"")).with_context(json!({
        "display_name": name,
        "added_at": added_at,
        "added_at_unix": added_at.timestamp(),
    }))
}
pub(crate) fn no_webauthn_device() -> UiText {
    UiText::error(4_000_013, "You have no WebAuthn device set up.")
}
pub(crate) fn webauthn_refused() -> UiText {
    generic("The security key or passkey could not be verified. Please try again.")
}
pub(crate) fn key_already_registered() -> UiText {
    generic("This security key or passkey is already registered with an account.")
}
pub(crate) fn last_first_factor() -> UiText {
    generic("Unable to remove this passkey because it would lock you out of your account.")
}
pub(crate) fn invalid_email() -> UiText {
    UiText::error(
        4_000_004,
        "The provided value is not a valid email address.",
    )
}
