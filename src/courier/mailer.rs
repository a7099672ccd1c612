//! The [`Mailer`] trait — how a message leaves the outbox — and the development
//! [`LoggingMailer`]. Errors say whether trying again can help.

use async_trait::async_trait;

use super::Email;

/// Delivers emails. identa ships [`LoggingMailer`] and, with the `smtp` feature,
/// [`SmtpMailer`](super::smtp::SmtpMailer); a host may implement its own (an HTTP mail API).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email.
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// A delivery failed. The text never contains the message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth another try later (server down, timeout, temporary refusal, a configuration
    /// problem such as bad credentials): the message is retried with backoff for as long
    /// as it is useful.
    #[error("temporary delivery failure: {0}")]
    Transient(String),
    /// Trying again will not help (the server refused this message or its recipient for
    /// good); the message is abandoned at once.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Whether the log shows message bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bodies {
    Hidden,
    Shown,
}

/// A mailer for development: it sends nothing and logs each message (with `tracing`, at
/// info level). By default only the recipient and subject are logged, since bodies carry
/// one-time codes; [`LoggingMailer::with_bodies`] logs them too.
#[derive(Debug, Clone, Copy)]
pub struct LoggingMailer {
    bodies: Bodies,
}

impl Default for LoggingMailer {
    fn default() -> Self {
        Self::new()
    }
}

impl LoggingMailer {
    /// Logs recipient and subject only.
    pub fn new() -> Self {
        Self {
            bodies: Bodies::Hidden,
        }
    }

    /// Logs the plain-text body as well. **Development only: this prints recovery and
    /// verification codes to the log.**
    pub fn with_bodies() -> Self {
        Self {
            bodies: Bodies::Shown,
        }
    }
}

#[async_trait]
impl Mailer for LoggingMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        match self.bodies {
            Bodies::Hidden => {
                tracing::info!(to = %email.to, subject = %email.subject, "email (not sent: logging mailer)");
            }
            Bodies::Shown => {
                tracing::info!(to = %email.to, subject = %email.subject, body = %email.text, "email (not sent: logging mailer)");
            }
        }
        Ok(())
    }
}
