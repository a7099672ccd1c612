//! CSRF protection for browser flows. The browser holds a random value in a cookie (the
//! host sets it: [`new_cookie_value`]); each browser flow renders a hidden `csrf_token`
//! whose value is a MAC of that cookie value and the flow id under the cookie secret.
//! A submission must bring both, and they must match: a page on another site can make the
//! browser send the cookie, but cannot read the token. API flows skip the check.

use base64ct::{Base64UrlUnpadded, Encoding};
use uuid::Uuid;

use super::{Flow, FlowRequest, FlowType};
use crate::secret::{Keyring, MacPurpose};

/// Why a browser submission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRefusal {
    /// The request carried no CSRF cookie.
    NoCookie,
    /// The request carried no `csrf_token`.
    NoToken,
    /// Token and cookie do not belong together (or to this flow).
    Mismatch,
}

impl CsrfRefusal {
    /// What went wrong, for the error's details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCookie => "the CSRF cookie is missing; the browser must accept cookies",
            Self::NoToken => "the csrf_token field is missing from the submission",
            Self::Mismatch => "the csrf_token does not match the CSRF cookie",
        }
    }
}

/// A fresh random value for the CSRF cookie.
pub fn new_cookie_value() -> String {
    let bytes: [u8; 32] = rand::random();
    Base64UrlUnpadded::encode_string(&bytes)
}

/// The `csrf_token` a browser flow renders for this cookie value.
pub(crate) fn token(keyring: &Keyring, cookie: &str, flow_id: Uuid) -> String {
    let tag = keyring.mac(MacPurpose::Csrf, &[cookie.as_bytes(), flow_id.as_bytes()]);
    Base64UrlUnpadded::encode_string(&tag)
}

/// Checks a submission to `flow` (nothing to check for API flows).
pub(crate) fn check(keyring: &Keyring, flow: &Flow, req: &FlowRequest) -> Result<(), CsrfRefusal> {
    if flow.flow_type == FlowType::Api {
        return Ok(());
    }
    let cookie = req
        .csrf_cookie
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(CsrfRefusal::NoCookie)?;
    let submitted = req
        .csrf_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or(CsrfRefusal::NoToken)?;
    let tag = Base64UrlUnpadded::decode_vec(submitted).map_err(|_| CsrfRefusal::Mismatch)?;
    if keyring.verify(
        MacPurpose::Csrf,
        &[cookie.as_bytes(), flow.id.as_bytes()],
        &tag,
    ) {
        Ok(())
    } else {
        Err(CsrfRefusal::Mismatch)
    }
}
