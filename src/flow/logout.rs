//! Logout. API clients end their session with its token ([`Identa::logout`]). Browsers
//! get a logout URL carrying a logout token bound to their session (a MAC of the session
//! id), so a page on another site cannot sign the user out: following the URL needs both
//! the token and the session cookie.

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::engine::Identa;
use crate::error::{Error, Result};
use crate::secret::MacPurpose;
use crate::session::SessionToken;

/// A browser's way out (Kratos's `{logout_url, logout_token}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutUrl {
    /// The token bound to the session.
    pub logout_token: String,
    /// `<public_url>/self-service/logout?token=<logout_token>`.
    pub logout_url: String,
}

impl Identa {
    /// The logout URL for the session `token` belongs to (Kratos's
    /// `GET /self-service/logout/browser`).
    pub async fn logout_url(&self, token: &SessionToken) -> Result<LogoutUrl> {
        let current = self.whoami(token).await?;
        let tag = self
            .keyring()
            .mac(MacPurpose::Logout, &[current.session.id.as_bytes()]);
        let logout_token = Base64UrlUnpadded::encode_string(&tag);
        let base = self.config().flows.public_url.trim_end_matches('/');
        Ok(LogoutUrl {
            logout_url: format!("{base}/self-service/logout?token={logout_token}"),
            logout_token,
        })
    }

    /// Ends the browser session `token` belongs to, if `logout_token` was made for it
    /// (Kratos's `GET /self-service/logout?token=`).
    pub async fn logout_with_token(&self, token: &SessionToken, logout_token: &str) -> Result<()> {
        let current = self.whoami(token).await?;
        let tag = Base64UrlUnpadded::decode_vec(logout_token.trim()).unwrap_or_default();
        if !self
            .keyring()
            .verify(MacPurpose::Logout, &[current.session.id.as_bytes()], &tag)
        {
            return Err(Error::InvalidInput(
                "the logout token does not belong to this session; get a fresh one from the logout URL endpoint"
                    .into(),
            ));
        }
        self.revoke_session(current.identity.id, current.session.id)
            .await
    }
}
