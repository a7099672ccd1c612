//! Delivery over SMTP with lettre (rustls; no OpenSSL), configured by a connection URL
//! with Kratos's meaning:
//!
//! - `smtps://[user:pass@]host[:465]` — implicit TLS;
//! - `smtp://[user:pass@]host[:587]` — STARTTLS, required: a server that does not offer it
//!   is refused;
//! - `smtp://host:25/?disable_starttls=true` — plain text, for a local relay only;
//! - `?skip_ssl_verify=true` — accept any certificate (testing only).
//!
//! User and password are percent-decoded and never printed.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Email, MailError, Mailer};

/// How long connecting and each SMTP exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// An SMTP URL or sender address that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SMTP configuration: {0}")]
pub struct SmtpConfigError(String);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (`smtps://`).
    ImplicitTls,
    /// Plain connection upgraded with STARTTLS, which must succeed (`smtp://`).
    StartTls,
    /// No TLS at all (`smtp://…?disable_starttls=true`).
    Plain,
}

/// A parsed SMTP URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// The server's host name.
    pub host: String,
    /// The port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// Accept invalid certificates.
    pub skip_ssl_verify: bool,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("skip_ssl_verify", &self.skip_ssl_verify)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

impl SmtpUrl {
    /// Parses a connection URL (see the module docs).
    pub fn parse(url: &str) -> Result<Self, SmtpConfigError> {
        let parsed = url::Url::parse(url.trim()).map_err(|e| {
            SmtpConfigError(format!(
                "not a URL ({e}); expected smtp://host:port or smtps://host:port"
            ))
        })?;
        let mut security = match parsed.scheme() {
            "smtp" => SmtpSecurity::StartTls,
            "smtps" => SmtpSecurity::ImplicitTls,
            other => {
                return Err(SmtpConfigError(format!(
                    "unknown scheme `{other}`: use smtps:// (implicit TLS) or smtp:// (STARTTLS)"
                )));
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| SmtpConfigError("the URL names no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut skip_ssl_verify = false;
        for (key, value) in parsed.query_pairs() {
            if !matches!(key.as_ref(), "disable_starttls" | "skip_ssl_verify") {
                return Err(SmtpConfigError(format!(
                    "unknown option `{key}`: known are disable_starttls and skip_ssl_verify"
                )));
            }
            let on = match value.as_ref() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(SmtpConfigError(format!(
                        "`{key}` must be true or false, not `{other}`"
                    )));
                }
            };
            match key.as_ref() {
                "disable_starttls" => {
                    if on && security == SmtpSecurity::ImplicitTls {
                        return Err(SmtpConfigError(
                            "disable_starttls only applies to smtp://; smtps:// is always TLS"
                                .into(),
                        ));
                    }
                    if on {
                        security = SmtpSecurity::Plain;
                    }
                }
                _ => skip_ssl_verify = on,
            }
        }
        let port = parsed.port().unwrap_or(match security {
            SmtpSecurity::ImplicitTls => 465,
            SmtpSecurity::StartTls | SmtpSecurity::Plain => 587,
        });
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| {
                SmtpConfigError(
                    "the user or password is not valid UTF-8 after percent-decoding".into(),
                )
            })
        };
        let credentials = if parsed.username().is_empty() {
            None
        } else {
            Some((
                decode(parsed.username())?,
                decode(parsed.password().unwrap_or_default())?,
            ))
        };
        Ok(Self {
            host,
            port,
            security,
            skip_ssl_verify,
            credentials,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Sends email through an SMTP server.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    url: SmtpUrl,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("url", &self.url)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `url`, sending as `from` (`"identa <no-reply@example.com>"`
    /// or a bare address).
    pub fn from_url(url: &str, from: &str) -> Result<Self, SmtpConfigError> {
        let url = SmtpUrl::parse(url)?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| SmtpConfigError(format!("sender `{from}` is not an address: {e}")))?;
        let tls = || {
            TlsParameters::builder(url.host.clone())
                .dangerous_accept_invalid_certs(url.skip_ssl_verify)
                .dangerous_accept_invalid_hostnames(url.skip_ssl_verify)
                .build_rustls()
                .map_err(|e| SmtpConfigError(format!("TLS setup failed: {e}")))
        };
        let tls = match url.security {
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls()?),
            SmtpSecurity::StartTls => Tls::Required(tls()?),
            SmtpSecurity::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .tls(tls)
            .timeout(Some(TIMEOUT));
        if let Some((user, pass)) = &url.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            url,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("recipient is not an address: {e}")))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| MailError::Permanent(format!("message could not be built: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }
}

/// Whether a failed send can succeed later. Only a refusal of this message or its
/// recipient is permanent: a 5xx reply in the mail-system category (550 no such mailbox,
/// 551, 552, 553 bad address, 554 rejected). Everything else is worth another try while
/// the message is useful (retries end at its `useful_until`): the server unreachable or
/// timing out, TLS failures, 4xx replies, 5xx replies about the session rather than the
/// message (500–504 syntax, 530 authentication required, 535 bad credentials), and lettre's
/// own refusals to go on with this server (no STARTTLS offered, no authentication
/// mechanism in common) — configuration problems or a server briefly misconfigured during
/// a failover; mail queued meanwhile goes out once they are fixed.
fn classify(e: &lettre::transport::smtp::Error) -> MailError {
    if e.status().is_some_and(refuses_message) {
        MailError::Permanent(e.to_string())
    } else {
        MailError::Transient(e.to_string())
    }
}

/// A 5xx reply about the message or its recipient (55x).
fn refuses_message(code: lettre::transport::smtp::response::Code) -> bool {
    use lettre::transport::smtp::response::{Category, Severity};
    code.severity == Severity::PermanentNegativeCompletion && code.category == Category::MailSystem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_kratos_meaning() {
        let u = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!((u.security, u.port), (SmtpSecurity::ImplicitTls, 465));
        let u = SmtpUrl::parse("smtp://mail.example.com:2525").unwrap();
        assert_eq!((u.security, u.port), (SmtpSecurity::StartTls, 2525));
        let u = SmtpUrl::parse("smtp://127.0.0.1:1025/?disable_starttls=true").unwrap();
        assert_eq!(u.security, SmtpSecurity::Plain);
        let u =
            SmtpUrl::parse("smtp://us%40er:p%3Ass@mail.example.com/?skip_ssl_verify=true").unwrap();
        assert_eq!(u.credentials, Some(("us@er".to_owned(), "p:ss".to_owned())));
        assert!(u.skip_ssl_verify);
        assert!(
            !format!("{u:?}").contains("p:ss"),
            "the password is never printed"
        );
    }

    #[test]
    fn only_refusals_of_the_message_are_permanent() {
        use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
        let code = |severity, category, detail| Code {
            severity,
            category,
            detail,
        };
        let p = Severity::PermanentNegativeCompletion;
        assert!(
            refuses_message(code(p, Category::MailSystem, Detail::Zero)),
            "550"
        );
        assert!(
            refuses_message(code(p, Category::MailSystem, Detail::Three)),
            "553"
        );
        assert!(
            !refuses_message(code(p, Category::Unspecified3, Detail::Five)),
            "535 bad credentials"
        );
        assert!(
            !refuses_message(code(p, Category::Unspecified3, Detail::Zero)),
            "530 auth required"
        );
        assert!(
            !refuses_message(code(p, Category::Syntax, Detail::Zero)),
            "500"
        );
        let t = Severity::TransientNegativeCompletion;
        assert!(
            !refuses_message(code(t, Category::MailSystem, Detail::Zero)),
            "450"
        );
        assert!(
            !refuses_message(code(t, Category::Connections, Detail::One)),
            "421"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let err = |url: &str| SmtpUrl::parse(url).unwrap_err().to_string();
        assert!(err("http://mail.example.com").contains("unknown scheme `http`"));
        assert!(err("smtp://mail.example.com/?tls=off").contains("unknown option `tls`"));
        assert!(
            err("smtps://mail.example.com/?disable_starttls=true")
                .contains("only applies to smtp://")
        );
        assert!(err("smtp://mail.example.com/?disable_starttls=yes").contains("true or false"));
        assert!(err("not a url").contains("not a URL"));
        assert!(SmtpMailer::from_url("smtp://mail.example.com", "not an address").is_err());
    }
}
