//! Delivery: a round claims the messages that are due, opens and sends each, and records
//! the outcome — sent; queued again after an exponential backoff (capped, so mail goes out
//! soon after a server comes back); abandoned at once on a permanent refusal; or
//! abandoned as expired when it is no longer useful (see [`RetryPolicy`](super::RetryPolicy)).
//! [`Courier::spawn`] runs rounds in a tokio task; [`Courier::dispatch_once`] runs one
//! (for tests, cron jobs and CLIs).
//!
//! ```text
//! queued ──claim──▶ processing ──sent─────────────────────────▶ sent
//!                      ├──transient failure, still useful──▶ queued (after backoff)
//!                      ├──permanent refusal / unreadable───▶ abandoned
//!                      └──past its useful time (not sent)──▶ abandoned ("expired: …")
//! abandoned ──requeue (an administrator; not if sent or its code expired)──▶ queued
//! ```
//!
//! Nothing is lost while the mail server is down: a failed message stays in the outbox and
//! is tried again for as long as it is useful. Several workers (in several processes) may
//! run at once: claiming is atomic, so no message is sent twice at the same time; a message
//! claimed by a worker that died is taken over when its lease ends.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Courier, CourierError, MailError, Mailer, Message, TemplateKind};
use crate::store::{MessageStatus, OutboxMessage, Page, PageRequest, Retry};

/// What one round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DispatchReport {
    /// Delivered.
    pub sent: u32,
    /// Failed; queued for another try.
    pub retried: u32,
    /// Failed for good.
    pub abandoned: u32,
    /// Not sent: past their useful time (the code in them expired, or older than the
    /// maximum age); abandoned.
    pub expired: u32,
}

/// A running delivery task. Stop it with [`CourierWorker::shutdown`]; dropping it stops
/// it too (after the round in progress).
#[derive(Debug)]
pub struct CourierWorker {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl CourierWorker {
    /// Stops after the round in progress and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for CourierWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Courier {
    fn now_us(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        self.clock.now().trunc_subsecs(6)
    }

    /// Runs one delivery round: claims up to `batch_size` due messages and tries each.
    pub async fn dispatch_once(&self, mailer: &dyn Mailer) -> Result<DispatchReport, CourierError> {
        let now = self.now_us();
        let claimed = self
            .store
            .claim_due(now, self.config.batch_size, self.config.lease)
            .await?;
        let mut report = DispatchReport::default();
        for message in claimed {
            self.deliver(message, mailer, &mut report).await?;
        }
        Ok(report)
    }

    async fn deliver(
        &self,
        message: OutboxMessage,
        mailer: &dyn Mailer,
        report: &mut DispatchReport,
    ) -> Result<(), CourierError> {
        let id = message.id;
        let attempts = message.send_count.saturating_add(1);
        let template = message.template.clone();
        let useful_until = self.useful_until(&message);
        if self.now_us() >= useful_until {
            let what = match template.parse::<TemplateKind>() {
                Ok(kind) if kind.carries_code() => "the code in it expired",
                _ => "it reached the courier's maximum age",
            };
            let last = message.last_error.as_deref().unwrap_or("none");
            let reason = format!(
                "expired: not delivered before {}, when {what}; last error: {last}",
                useful_until.to_rfc3339()
            );
            tracing::warn!(message = %id, %template, attempts = message.send_count, "email abandoned: no longer useful");
            self.store.mark_expired(id, &reason, self.now_us()).await?;
            report.expired += 1;
            return Ok(());
        }
        let outcome = match self.open(message) {
            Ok(opened) => mailer.send(&opened.email).await,
            Err(err) => Err(MailError::Permanent(err.to_string())),
        };
        let now = self.now_us();
        match outcome {
            Ok(()) => {
                self.store.mark_sent(id, now).await?;
                report.sent += 1;
            }
            Err(err) => {
                let give_up = matches!(err, MailError::Permanent(_));
                let retry = if give_up {
                    report.abandoned += 1;
                    Retry::Abandon
                } else {
                    report.retried += 1;
                    Retry::At(now + self.config.retry.backoff(attempts))
                };
                tracing::warn!(message = %id, %template, attempts, abandoned = give_up, error = %err, "email delivery failed");
                self.store
                    .mark_failed(id, &err.to_string(), retry, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Starts delivering in a tokio task: a round every `poll_interval` (at once again
    /// when a round found a full batch). Store errors are logged and the loop goes on.
    pub fn spawn(&self, mailer: Arc<dyn Mailer>) -> CourierWorker {
        let (stop, mut stopped) = watch::channel(false);
        let courier = self.clone();
        let idle = courier
            .config
            .poll_interval
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        let task = tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    break;
                }
                let busy = match courier.dispatch_once(mailer.as_ref()).await {
                    Ok(r) => {
                        u64::from(r.sent + r.retried + r.abandoned + r.expired)
                            >= courier.config.batch_size
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "courier round failed; retrying");
                        false
                    }
                };
                if busy {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = stopped.changed() => {}
                }
            }
        });
        CourierWorker {
            stop,
            task: Some(task),
        }
    }

    /// Lists outbox messages, newest first, with their emails opened; optionally only
    /// those with `status`.
    pub async fn messages(
        &self,
        status: Option<MessageStatus>,
        page: PageRequest,
    ) -> Result<Page<Message>, CourierError> {
        let page = self.store.messages(status, page).await?;
        let items = page
            .items
            .into_iter()
            .map(|m| self.open(m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// One outbox message, opened.
    pub async fn message(&self, id: Uuid) -> Result<Option<Message>, CourierError> {
        self.store
            .message(id)
            .await?
            .map(|m| self.open(m))
            .transpose()
    }
}
