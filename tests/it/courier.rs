//! The courier: the sealed outbox, delivery rounds with retries, backoff and abandonment,
//! exactly-once claiming by racing workers, and real SMTP delivery (aiosmtpd on loopback:
//! those tests are ignored unless asked for, `cargo test -- --ignored`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Duration;
use identa::courier::TemplateKind::{
    RecoveryCodeInvalid, RecoveryCodeValid, VerificationCodeValid,
};
use identa::courier::{
    Courier, CourierError, DispatchReport, Email, MailError, Mailer, Message, RequeueRefusal,
    TemplateKind, TemplateVars,
};
use identa::store::PageRequest;
use identa::store::{MessageStatus, OutboxStore};
use uuid::Uuid;

use identa::flow::CodeSubmission;

use crate::common::TestEnv;
use crate::common::accounts::create_account;
use crate::common::flows::{api_recovery_flow, submit_recovery};
use crate::common::mail::mail_to;
use crate::common::race::released_together;
use crate::on_every_backend;

/// Queues a message of `kind` to `to` that carries `code`: its id.
async fn enqueue(courier: &Courier, kind: TemplateKind, to: &str, code: &str) -> Uuid {
    let vars = TemplateVars {
        to: to.into(),
        code: Some(code.into()),
        expires_in_minutes: 15,
        code_expires_at: None,
    };
    courier.enqueue(kind, &vars).await.unwrap()
}

/// Message `id`, still in the outbox.
async fn stored_message(courier: &Courier, id: Uuid) -> Message {
    courier.message(id).await.unwrap().unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Deliver,
    FailTransient,
    FailPermanent,
}

/// A mailer that records what it was asked to send.
struct Recorder {
    behaviour: Behaviour,
    sent: Mutex<HashMap<String, usize>>,
}

impl Recorder {
    fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            sent: Mutex::new(HashMap::new()),
        }
    }
    fn count(&self, to: &str) -> usize {
        self.sent.lock().unwrap().get(to).copied().unwrap_or(0)
    }
}

#[async_trait]
impl Mailer for Recorder {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        // Yield so that racing workers interleave.
        tokio::task::yield_now().await;
        *self
            .sent
            .lock()
            .unwrap()
            .entry(email.to.clone())
            .or_default() += 1;
        match self.behaviour {
            Behaviour::Deliver => Ok(()),
            Behaviour::FailTransient => Err(MailError::Transient("server said 421".into())),
            Behaviour::FailPermanent => Err(MailError::Permanent("550 no such user".into())),
        }
    }
}

async fn outbox_is_sealed_and_readable(env: TestEnv) {
    let courier = env.identa.courier();
    let id = enqueue(&courier, RecoveryCodeValid, "ada@example.com", "424242").await;
    let message = stored_message(&courier, id).await;
    assert_eq!(message.status, MessageStatus::Queued);
    assert_eq!(message.email.to, "ada@example.com");
    assert!(message.email.text.contains("424242"));
    let listed = courier
        .messages(Some(MessageStatus::Queued), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    // The row itself holds no code and no body in the clear.
    let raw = env.store.message(id).await.unwrap().unwrap();
    assert_eq!(raw.recipient, "ada@example.com");
    assert!(!raw.sealed.windows(6).any(|w| w == b"424242"));
    assert!(!raw.sealed.windows(7).any(|w| w == b"recover"));
    // Another engine with other secrets cannot open it.
    let stranger = env
        .second_engine(identa::SessionCacheConfig::Disabled)
        .await;
    let err = stranger.courier().message(id).await.unwrap_err();
    assert!(
        matches!(&err, identa::courier::CourierError::Unreadable(unread) if *unread == id),
        "{err:?}"
    );
}

async fn transient_failures_back_off_and_retry_while_useful(env: TestEnv) {
    let courier = env.identa.courier();
    let flaky = "flaky@example.com";
    // No code expiry given: the message is useful for the maximum age (24 h).
    let id = enqueue(&courier, VerificationCodeValid, flaky, "111111").await;
    let failing = Recorder::new(Behaviour::FailTransient);
    let first = courier.dispatch_once(&failing).await.unwrap();
    assert_eq!(
        first,
        DispatchReport {
            retried: 1,
            ..DispatchReport::default()
        }
    );
    let message = stored_message(&courier, id).await;
    assert_eq!(
        (message.status, message.send_count),
        (MessageStatus::Queued, 1)
    );
    assert_eq!(
        message.useful_until,
        message.created_at + Duration::hours(24)
    );
    let error = message.last_error.unwrap();
    assert!(
        error.contains("421") && !error.contains("111111"),
        "{error}"
    );
    // Each wait doubles (2 s, 4 s, … 32 s) up to 60 s, and there is no attempt limit:
    // the old budget of five attempts (about 30 s) is long gone at attempt 10.
    let waits = [2i64, 4, 8, 16, 32, 60, 60, 60, 60];
    for (n, wait) in waits.into_iter().enumerate() {
        env.clock.advance(Duration::seconds(wait - 1));
        assert_eq!(
            courier.dispatch_once(&failing).await.unwrap(),
            DispatchReport::default(),
            "not due before its backoff"
        );
        env.clock.advance(Duration::seconds(1));
        let report = courier.dispatch_once(&failing).await.unwrap();
        assert_eq!(report.retried, 1, "attempt {}", n + 2);
        let message = stored_message(&courier, id).await;
        assert_eq!(message.status, MessageStatus::Queued);
    }
    assert_eq!(failing.count(flaky), 10);
    // The server comes back: the next attempt delivers.
    env.clock.advance(Duration::seconds(60));
    let report = courier
        .dispatch_once(&Recorder::new(Behaviour::Deliver))
        .await
        .unwrap();
    assert_eq!(report.sent, 1);
    assert_eq!(
        stored_message(&courier, id).await.status,
        MessageStatus::Sent
    );
}

async fn mail_past_its_maximum_age_is_abandoned_as_expired(env: TestEnv) {
    let courier = env.identa.courier();
    let id = enqueue(&courier, RecoveryCodeInvalid, "late@example.com", "000000").await;
    let failing = Recorder::new(Behaviour::FailTransient);
    assert_eq!(courier.dispatch_once(&failing).await.unwrap().retried, 1);
    env.clock.advance(Duration::hours(24));
    let report = courier.dispatch_once(&failing).await.unwrap();
    assert_eq!(
        report,
        DispatchReport {
            expired: 1,
            ..DispatchReport::default()
        }
    );
    assert_eq!(failing.count("late@example.com"), 1, "not tried again");
    let message = stored_message(&courier, id).await;
    assert_eq!(
        (message.status, message.send_count),
        (MessageStatus::Abandoned, 1)
    );
    let reason = message.last_error.unwrap();
    assert!(
        reason.starts_with("expired:") && reason.contains("maximum age") && reason.contains("421"),
        "{reason}"
    );
    env.clock.advance(Duration::hours(1));
    assert_eq!(
        courier.dispatch_once(&failing).await.unwrap(),
        DispatchReport::default(),
        "abandoned stays abandoned"
    );
}

/// Makes an account for `to` and asks a recovery flow to mail it a code: the queued
/// message.
async fn recovery_mail(env: &TestEnv, to: &str) -> Message {
    create_account(env, to).await;
    let flow = api_recovery_flow(env).await;
    submit_recovery(env, flow.id, CodeSubmission::Email(to.into()))
        .await
        .unwrap();
    mail_to(env, to)
        .await
        .into_iter()
        .find(|m| m.template == RecoveryCodeValid)
        .unwrap()
}

async fn a_code_mail_is_not_sent_after_the_code_expired(env: TestEnv) {
    let to = "expiring@example.com";
    let queued = recovery_mail(&env, to).await;
    // The flow's code lives 15 minutes; the message is useful exactly as long.
    assert_eq!(
        queued.useful_until,
        queued.created_at + Duration::minutes(15)
    );
    let courier = env.identa.courier();
    let failing = Recorder::new(Behaviour::FailTransient);
    assert_eq!(courier.dispatch_once(&failing).await.unwrap().retried, 1);
    // The server is down until the code has expired; then it is back.
    env.clock.advance(Duration::minutes(15));
    let working = Recorder::new(Behaviour::Deliver);
    let report = courier.dispatch_once(&working).await.unwrap();
    assert_eq!(
        report,
        DispatchReport {
            expired: 1,
            ..DispatchReport::default()
        }
    );
    assert_eq!(working.count(to), 0, "a dead code is not mailed");
    let message = stored_message(&courier, queued.id).await;
    assert_eq!(message.status, MessageStatus::Abandoned);
    let reason = message.last_error.unwrap();
    assert!(reason.contains("the code in it expired"), "{reason}");
}

async fn permanent_failures_abandon_at_once(env: TestEnv) {
    let courier = env.identa.courier();
    let id = enqueue(&courier, RecoveryCodeInvalid, "gone@example.com", "000000").await;
    let report = courier
        .dispatch_once(&Recorder::new(Behaviour::FailPermanent))
        .await
        .unwrap();
    assert_eq!(report.abandoned, 1);
    let message = stored_message(&courier, id).await;
    assert_eq!(message.status, MessageStatus::Abandoned);
    assert_eq!(message.send_count, 1);
}

/// `TASKS` workers released together, each running delivery rounds until the outbox is
/// empty, send each of 24 messages exactly once.
async fn racing_workers_send_each_message_once(env: TestEnv) {
    let courier = env.identa.courier();
    for n in 0..24 {
        let to = format!("user{n}@example.com");
        enqueue(&courier, RecoveryCodeValid, &to, "123456").await;
    }
    let mailer = Arc::new(Recorder::new(Behaviour::Deliver));
    let sent = released_together(|_| {
        let (courier, mailer) = (courier.clone(), mailer.clone());
        async move {
            let mut total = 0;
            for _ in 0..4 {
                total += courier.dispatch_once(mailer.as_ref()).await.unwrap().sent;
            }
            total
        }
    })
    .await;
    assert_eq!(sent.iter().sum::<u32>(), 24, "{sent:?}");
    for n in 0..24 {
        assert_eq!(mailer.count(&format!("user{n}@example.com")), 1);
    }
    let sent = courier
        .messages(Some(MessageStatus::Sent), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(sent.items.len(), 24);
}

async fn lapsed_claims_are_taken_over(env: TestEnv) {
    let courier = env.identa.courier();
    let id = enqueue(&courier, RecoveryCodeValid, "orphan@example.com", "999999").await;
    // A worker claims the message and dies.
    let claimed = env
        .store
        .claim_due(env.clock_now(), 10, Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let mailer = Recorder::new(Behaviour::Deliver);
    assert_eq!(
        courier.dispatch_once(&mailer).await.unwrap().sent,
        0,
        "still leased"
    );
    env.clock.advance(Duration::seconds(61));
    assert_eq!(courier.dispatch_once(&mailer).await.unwrap().sent, 1);
    assert_eq!(
        stored_message(&courier, id).await.status,
        MessageStatus::Sent
    );
}

async fn prune_keeps_undelivered_mail(env: TestEnv) {
    let courier = env.identa.courier();
    let sent = enqueue(&courier, RecoveryCodeValid, "sent@example.com", "111111").await;
    courier
        .dispatch_once(&Recorder::new(Behaviour::Deliver))
        .await
        .unwrap();
    let waiting = enqueue(&courier, RecoveryCodeValid, "waiting@example.com", "222222").await;
    env.clock.advance(Duration::days(31));
    env.identa.prune().await.unwrap();
    assert!(
        courier.message(sent).await.unwrap().is_none(),
        "sent long ago: gone"
    );
    assert!(
        courier.message(waiting).await.unwrap().is_some(),
        "never delivered: kept"
    );
}

/// Queues a message to `to` and lets a 550 abandon it: its id.
async fn abandoned_message(courier: &Courier, to: &str) -> Uuid {
    let id = enqueue(courier, RecoveryCodeValid, to, "565656").await;
    let report = courier
        .dispatch_once(&Recorder::new(Behaviour::FailPermanent))
        .await
        .unwrap();
    assert_eq!(report.abandoned, 1);
    id
}

/// The refusal `requeue(id)` answers with.
async fn requeue_refusal(courier: &Courier, id: Uuid) -> RequeueRefusal {
    match courier.requeue(id).await.unwrap_err() {
        CourierError::NotRequeueable {
            id: refused,
            refusal,
        } => {
            assert_eq!(refused, id);
            refusal
        }
        other => panic!("not a requeue refusal: {other:?}"),
    }
}

async fn an_abandoned_message_can_be_requeued_once(env: TestEnv) {
    let courier = env.identa.courier();
    let id = abandoned_message(&courier, "fixed@example.com").await;
    env.clock.advance(Duration::minutes(5));
    let requeued = courier.requeue(id).await.unwrap();
    assert_eq!(requeued.status, MessageStatus::Queued);
    assert_eq!(requeued.last_error, None);
    // Queued already: a second requeue is refused, and says why.
    assert_eq!(
        requeue_refusal(&courier, id).await,
        RequeueRefusal::StillQueued
    );
    let err: identa::Error = courier.requeue(id).await.unwrap_err().into();
    assert_eq!(err.kind(), identa::ErrorKind::MessageNotRequeueable);
    assert!(err.to_string().contains("still queued"), "{err}");
    // The server was fixed: the next round delivers it.
    let working = Recorder::new(Behaviour::Deliver);
    assert_eq!(courier.dispatch_once(&working).await.unwrap().sent, 1);
    assert_eq!(working.count("fixed@example.com"), 1);
    // Sent: requeueing would deliver it twice.
    assert_eq!(
        requeue_refusal(&courier, id).await,
        RequeueRefusal::AlreadySent
    );
    let err: identa::Error = courier.requeue(id).await.unwrap_err().into();
    assert!(err.to_string().contains("already sent"), "{err}");
    // An unknown id is not found.
    let err: identa::Error = courier.requeue(Uuid::now_v7()).await.unwrap_err().into();
    assert_eq!(err.kind(), identa::ErrorKind::NotFound);
}

async fn a_message_whose_code_expired_cannot_be_requeued(env: TestEnv) {
    let queued = recovery_mail(&env, "too-late@example.com").await;
    let courier = env.identa.courier();
    let failing = Recorder::new(Behaviour::FailTransient);
    courier.dispatch_once(&failing).await.unwrap();
    env.clock.advance(Duration::minutes(15));
    assert_eq!(courier.dispatch_once(&failing).await.unwrap().expired, 1);
    let refusal = requeue_refusal(&courier, queued.id).await;
    assert_eq!(refusal, RequeueRefusal::CodeExpired(queued.useful_until));
    assert!(
        refusal.to_string().contains("ask for a new code"),
        "{refusal}"
    );
    let message = stored_message(&courier, queued.id).await;
    assert_eq!(message.status, MessageStatus::Abandoned, "left as it was");
}

async fn mail_without_a_code_is_requeued_for_another_maximum_age(env: TestEnv) {
    let courier = env.identa.courier();
    let id = enqueue(
        &courier,
        RecoveryCodeInvalid,
        "notice@example.com",
        "000000",
    )
    .await;
    courier
        .dispatch_once(&Recorder::new(Behaviour::FailTransient))
        .await
        .unwrap();
    env.clock.advance(Duration::hours(25));
    assert_eq!(
        courier
            .dispatch_once(&Recorder::new(Behaviour::Deliver))
            .await
            .unwrap()
            .expired,
        1
    );
    let requeued = courier.requeue(id).await.unwrap();
    assert_eq!(requeued.status, MessageStatus::Queued);
    assert_eq!(requeued.useful_until, env.clock_now() + Duration::hours(24));
    let working = Recorder::new(Behaviour::Deliver);
    assert_eq!(courier.dispatch_once(&working).await.unwrap().sent, 1);
}

/// `POST /admin/courier/messages/<id>/requeue`: the status and error id an operator sees.
async fn the_admin_api_requeues_abandoned_messages(env: TestEnv) {
    use identa::http::{AdminApi, HttpConfig};
    let admin = AdminApi::new(env.identa.clone(), HttpConfig::default());
    let requeue = |id: String| {
        let admin = &admin;
        async move {
            let mut req = http::Request::post(format!("/admin/courier/messages/{id}/requeue"))
                .header("host", "127.0.0.1:4434")
                .body(bytes::Bytes::new())
                .unwrap();
            req.extensions_mut()
                .insert(identa::http::ClientIp([127, 0, 0, 1].into()));
            let res = admin.handle(req).await;
            let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
            (res.status().as_u16(), body)
        }
    };
    let courier = env.identa.courier();
    let id = abandoned_message(&courier, "ops@example.com").await;
    let (status, body) = requeue(id.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some(id.to_string().as_str()), Some("queued"))
    );
    let (status, body) = requeue(id.to_string()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["id"], "courier_message_not_requeueable");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("still queued"),
        "{body}"
    );
    courier
        .dispatch_once(&Recorder::new(Behaviour::Deliver))
        .await
        .unwrap();
    let (status, body) = requeue(id.to_string()).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("already sent"),
        "{body}"
    );
    let (status, body) = requeue(Uuid::now_v7().to_string()).await;
    assert_eq!(
        (status, &body["error"]["id"]),
        (404, &serde_json::json!("not_found"))
    );
    let (status, _) = requeue("not-an-id".into()).await;
    assert_eq!(status, 400);
}

on_every_backend!(
    an_abandoned_message_can_be_requeued_once,
    a_message_whose_code_expired_cannot_be_requeued,
    mail_without_a_code_is_requeued_for_another_maximum_age,
    the_admin_api_requeues_abandoned_messages,
);

on_every_backend!(
    prune_keeps_undelivered_mail,
    outbox_is_sealed_and_readable,
    transient_failures_back_off_and_retry_while_useful,
    mail_past_its_maximum_age_is_abandoned_as_expired,
    a_code_mail_is_not_sent_after_the_code_expired,
    permanent_failures_abandon_at_once,
    lapsed_claims_are_taken_over,
);

crate::on_pooled_backends!(racing_workers_send_each_message_once);

#[cfg(feature = "smtp")]
mod smtp {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};

    use chrono::Duration;
    use identa::courier::smtp::SmtpMailer;
    use identa::store::MessageStatus;

    use super::{enqueue, recovery_mail, stored_message};
    use crate::common::{Backend, TestEnv, needs};
    use identa::courier::TemplateKind::{RecoveryCodeValid, VerificationCodeValid};

    /// A real SMTP server (aiosmtpd) on loopback, killed on drop.
    struct SmtpSink {
        child: Child,
        file: PathBuf,
        _dir: tempfile::TempDir,
        certs: Option<tempfile::TempDir>,
        port: u16,
    }

    impl Drop for SmtpSink {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    impl SmtpSink {
        fn start(port: u16) -> Self {
            Self::start_with(port, &[])
        }

        /// A sink speaking TLS (`tls`) or requiring STARTTLS (`starttls`), with a fresh
        /// self-signed certificate for localhost.
        fn start_tls(port: u16, mode: &str) -> Self {
            let certs = tempfile::tempdir().unwrap();
            let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
            let made = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=localhost",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(Stdio::null())
                .status()
                .expect("openssl (to make a test certificate)");
            assert!(made.success());
            let mut sink =
                Self::start_with(port, &[mode, cert.to_str().unwrap(), key.to_str().unwrap()]);
            sink.certs = Some(certs);
            sink
        }

        fn start_with(port: u16, extra: &[&str]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("mail.txt");
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
            let mut child = Command::new("python3")
                .arg(script)
                .arg(port.to_string())
                .arg(&file)
                .args(extra)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
            Self {
                child,
                file,
                _dir: dir,
                certs: None,
                port,
            }
        }

        fn received(&self) -> String {
            std::fs::read_to_string(&self.file).unwrap_or_default()
        }
    }

    fn plain(port: u16) -> String {
        format!("smtp://127.0.0.1:{port}/?disable_starttls=true")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the aiosmtpd SMTP server: `python3 -m pip install aiosmtpd`; run with `cargo test -- --ignored`"]
    async fn a_recovery_code_arrives_over_smtp() {
        let (sink, env) = plain_sink_and_env().await;
        let port = sink.port;
        let courier = env.identa.courier();
        enqueue(&courier, RecoveryCodeValid, "ada@example.com", "731902").await;
        let mailer = SmtpMailer::from_url(&plain(port), "identa <no-reply@example.com>").unwrap();
        let report = courier.dispatch_once(&mailer).await.unwrap();
        assert_eq!(report.sent, 1);
        let mail = sink.received();
        assert!(mail.contains("X-Envelope-To: ada@example.com"), "{mail}");
        assert!(
            mail.contains("Subject: Recover access to your account"),
            "{mail}"
        );
        assert!(
            mail.contains("From: identa <no-reply@example.com>"),
            "{mail}"
        );
        assert!(
            mail.contains("731902"),
            "the code reached the mailbox: {mail}"
        );
        assert!(mail.contains("text/html"), "{mail}");
    }

    /// A plain SMTP sink on a free port, and an environment (SQLite in memory) to send
    /// through it.
    async fn plain_sink_and_env() -> (SmtpSink, TestEnv) {
        needs::aiosmtpd();
        let sink = SmtpSink::start(free_port());
        (sink, TestEnv::new(Backend::SqliteMemory).await)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the aiosmtpd SMTP server: `python3 -m pip install aiosmtpd`; run with `cargo test -- --ignored`"]
    async fn smtp_without_starttls_is_refused_and_nothing_is_lost() {
        let (sink, env) = plain_sink_and_env().await;
        let port = sink.port;
        let courier = env.identa.courier();
        let id = enqueue(&courier, VerificationCodeValid, "bob@example.com", "555111").await;
        // smtp:// requires STARTTLS; this server does not offer it.
        let strict =
            SmtpMailer::from_url(&format!("smtp://127.0.0.1:{port}"), "no-reply@example.com")
                .unwrap();
        let report = courier.dispatch_once(&strict).await.unwrap();
        assert_eq!(report.sent, 0);
        assert!(sink.received().is_empty(), "nothing went out in the clear");
        let message = stored_message(&courier, id).await;
        // A server that offers no STARTTLS may be a failover relay misconfigured for a
        // while: the message waits for another try, it is not given up.
        assert_eq!(message.status, MessageStatus::Queued);
        assert!(
            message.email.text.contains("555111"),
            "the message is still there"
        );
    }

    /// Sends one message through `url` and returns what the sink received.
    async fn deliver_via(url: &str, sink: &SmtpSink) -> String {
        let env = TestEnv::new(Backend::SqliteMemory).await;
        let courier = env.identa.courier();
        enqueue(&courier, RecoveryCodeValid, "tls@example.com", "808080").await;
        let mailer = SmtpMailer::from_url(url, "no-reply@example.com").unwrap();
        let report = courier.dispatch_once(&mailer).await.unwrap();
        assert_eq!(report.sent, 1, "{url}");
        sink.received()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the aiosmtpd SMTP server and openssl: `python3 -m pip install aiosmtpd`, `apt-get install openssl`; run with `cargo test -- --ignored`"]
    async fn smtps_and_starttls_deliver_over_tls() {
        needs::aiosmtpd();
        needs::openssl();
        // Implicit TLS (self-signed certificate, so verification is skipped).
        let port = free_port();
        let sink = SmtpSink::start_tls(port, "tls");
        let mail = deliver_via(
            &format!("smtps://127.0.0.1:{port}/?skip_ssl_verify=true"),
            &sink,
        )
        .await;
        assert!(mail.contains("808080"), "{mail}");
        // STARTTLS, which this server requires before it accepts mail.
        let port = free_port();
        let sink = SmtpSink::start_tls(port, "starttls");
        let mail = deliver_via(
            &format!("smtp://127.0.0.1:{port}/?skip_ssl_verify=true"),
            &sink,
        )
        .await;
        assert!(mail.contains("808080"), "{mail}");
        // Without skipping verification, a self-signed certificate is refused.
        let env = TestEnv::new(Backend::SqliteMemory).await;
        let courier = env.identa.courier();
        enqueue(&courier, RecoveryCodeValid, "tls@example.com", "909090").await;
        let strict =
            SmtpMailer::from_url(&format!("smtp://127.0.0.1:{port}"), "no-reply@example.com")
                .unwrap();
        assert_eq!(courier.dispatch_once(&strict).await.unwrap().sent, 0);
        assert!(!sink.received().contains("909090"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the aiosmtpd SMTP server: `python3 -m pip install aiosmtpd`; run with `cargo test -- --ignored`"]
    async fn mail_queued_while_smtp_is_down_arrives_after_a_long_outage() {
        needs::aiosmtpd();
        let port = free_port();
        let env = TestEnv::new(Backend::SqliteFile).await;
        let courier = env.identa.courier();
        // A recovery code is queued while nobody listens on the SMTP port.
        let queued = recovery_mail(&env, "carol@example.com").await;
        let code = crate::common::six_digit_code(&queued.email.text);
        let mailer = SmtpMailer::from_url(&plain(port), "no-reply@example.com").unwrap();
        // Two minutes of outage, tried at 0, 2, 6, 14, 30, 62 and 122 s: far past the
        // old budget (five attempts, about 30 s).
        for wait in [0i64, 2, 4, 8, 16, 32, 60] {
            env.clock.advance(Duration::seconds(wait));
            let report = courier.dispatch_once(&mailer).await.unwrap();
            assert_eq!(report.retried, 1, "connection refused is transient");
        }
        let message = stored_message(&courier, queued.id).await;
        assert_eq!(
            (message.status, message.send_count),
            (MessageStatus::Queued, 7)
        );
        assert!(message.last_error.is_some());
        // The server starts; within the capped backoff (60 s) the mail goes out, code
        // and all.
        let sink = SmtpSink::start(port);
        env.clock.advance(Duration::seconds(60));
        let report = courier.dispatch_once(&mailer).await.unwrap();
        assert_eq!(report.sent, 1);
        let mail = sink.received();
        assert!(mail.contains("X-Envelope-To: carol@example.com"), "{mail}");
        assert!(mail.contains(&code), "the code arrived: {mail}");
        assert_eq!(
            stored_message(&courier, queued.id).await.status,
            MessageStatus::Sent
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the aiosmtpd SMTP server: `python3 -m pip install aiosmtpd`; run with `cargo test -- --ignored`"]
    async fn a_permanent_smtp_refusal_abandons_at_once() {
        let (sink, env) = plain_sink_and_env().await;
        let courier = env.identa.courier();
        let id = enqueue(&courier, RecoveryCodeValid, "refused@example.com", "313131").await;
        let mailer = SmtpMailer::from_url(&plain(sink.port), "no-reply@example.com").unwrap();
        let report = courier.dispatch_once(&mailer).await.unwrap();
        assert_eq!(report.abandoned, 1, "{report:?}");
        let message = stored_message(&courier, id).await;
        assert_eq!(
            (message.status, message.send_count),
            (MessageStatus::Abandoned, 1)
        );
        let error = message.last_error.unwrap();
        assert!(
            error.contains("550") && error.starts_with("permanent"),
            "{error}"
        );
        assert!(sink.received().is_empty());
        env.clock.advance(Duration::minutes(5));
        assert_eq!(
            courier.dispatch_once(&mailer).await.unwrap().abandoned,
            0,
            "not tried again"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the aiosmtpd SMTP server: `python3 -m pip install aiosmtpd`; run with `cargo test -- --ignored`"]
    async fn a_spawned_worker_delivers_flow_mail() {
        let (sink, env) = plain_sink_and_env().await;
        let port = sink.port;
        let mailer = SmtpMailer::from_url(&plain(port), "no-reply@example.com").unwrap();
        let worker = env.identa.courier().spawn(std::sync::Arc::new(mailer));
        env.identa
            .register(
                serde_json::json!({ "email": "dora@example.com" }),
                &identa::credential::password::Password::new("a long and unusual passphrase"),
            )
            .await
            .unwrap();
        let req = identa::flow::FlowRequest::api();
        let flow = env
            .identa
            .recovery_flow()
            .create(identa::flow::FlowType::Api, &req)
            .await
            .unwrap();
        env.identa
            .recovery_flow()
            .submit(
                flow.id,
                identa::flow::CodeSubmission::Email("dora@example.com".into()),
                &req,
            )
            .await
            .unwrap();
        // Wait for the worker (polling, not a timing assertion).
        let mut mail = String::new();
        for _ in 0..100 {
            mail = sink.received();
            if mail.contains("dora@example.com") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(mail.contains("X-Envelope-To: dora@example.com"), "{mail}");
        let code = crate::common::six_digit_code(&mail);
        worker.shutdown().await;
        let step = env
            .identa
            .recovery_flow()
            .submit(flow.id, identa::flow::CodeSubmission::Code(code), &req)
            .await
            .unwrap();
        assert!(matches!(
            step,
            identa::flow::recovery::RecoveryStep::Recovered(_)
        ));
    }
}
