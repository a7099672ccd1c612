//! Session events pushed as they commit, on PostgreSQL: every event is also a
//! `NOTIFY identa_session_events` sent inside its writer's transaction (so delivered at
//! commit, never for a rolled-back write), and each engine's background task `LISTEN`s on
//! a connection of its own and hands what arrives to the engine.
//!
//! The payload is `<schema> <identity id> <session id or empty>`: notifications are
//! per database, so a listener ignores those of identa tables in other schemas.
//!
//! The push only makes other engines faster; the event log stays the record. When the
//! listening connection is lost the sink is told (it reads the log before trusting its
//! cache), and the task reconnects with backoff (100 ms doubling to 30 s); once it listens
//! again the sink is told too, and reads the log once more: nothing committed while the
//! push was away is missed, only seen at the poll's pace.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::{self, postgres::PgListener};
use uuid::Uuid;

use crate::store::{SessionEvent, SessionEventSink, SessionPush};

/// The channel every event is notified on.
const CHANNEL: &str = "identa_session_events";

/// The statement that logs an event and notifies it, in the caller's transaction: `$1`
/// the identity, `$2` the session (or NULL for every session of the identity).
pub(super) const LOG_AND_NOTIFY: &str = "WITH e AS (\
         INSERT INTO identa_session_events (identity_id, session_id) VALUES ($1, $2) \
         RETURNING identity_id, session_id) \
     SELECT pg_notify('identa_session_events', \
         current_schema() || ' ' || e.identity_id::text || ' ' || coalesce(e.session_id::text, '')) \
     FROM e";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Starts the listening task on the current runtime, if there is one.
pub(super) fn start(pool: sqlx::PgPool, sink: Arc<dyn SessionEventSink>) -> Option<SessionPush> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let task = runtime.spawn(run(pool, sink));
    Some(SessionPush::new(task.abort_handle()))
}

async fn run(pool: sqlx::PgPool, sink: Arc<dyn SessionEventSink>) {
    let mut retry = FIRST_RETRY;
    loop {
        if listen(&pool, &*sink).await {
            retry = FIRST_RETRY;
        }
        sink.lost();
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// Listens until the connection fails; whether it got as far as listening.
async fn listen(pool: &sqlx::PgPool, sink: &dyn SessionEventSink) -> bool {
    let Ok(schema) = sqlx::query_scalar::<_, String>("SELECT current_schema()")
        .fetch_one(pool)
        .await
    else {
        return false;
    };
    let Ok(mut listener) = PgListener::connect_with(pool).await else {
        return false;
    };
    if listener.listen(CHANNEL).await.is_err() {
        return false;
    }
    sink.listening();
    while let Ok(Some(notification)) = listener.try_recv().await {
        if let Some(event) = parse(notification.payload(), &schema) {
            sink.event(event);
        }
    }
    true
}

/// The event in a payload from `schema`; `None` for another schema's or a malformed one.
fn parse(payload: &str, schema: &str) -> Option<SessionEvent> {
    let mut parts = payload.rsplitn(3, ' ');
    let session = parts.next()?;
    let identity = parts.next()?;
    if parts.next()? != schema {
        return None;
    }
    let identity = Uuid::parse_str(identity).ok()?;
    Some(match session {
        "" => SessionEvent::Identity(identity),
        id => SessionEvent::Session(Uuid::parse_str(id).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_this_schema_only() {
        let identity = Uuid::new_v4();
        let session = Uuid::new_v4();
        assert_eq!(
            parse(&format!("public {identity} {session}"), "public"),
            Some(SessionEvent::Session(session))
        );
        assert_eq!(
            parse(&format!("my schema {identity} "), "my schema"),
            Some(SessionEvent::Identity(identity))
        );
        assert_eq!(parse(&format!("other {identity} "), "public"), None);
        assert_eq!(parse("public nonsense ", "public"), None);
        assert_eq!(parse("", "public"), None);
    }
}
