//! Reading the session event log so that no event is missed.
//!
//! Each event takes its sequence number inside its writer's transaction. Where writers
//! run at once (PostgreSQL), number `n` can therefore commit after `n + 1`: a reader that
//! moved past `n + 1` and asked only for higher numbers would never read `n`, and would
//! serve a revoked session from its cache until it expired.
//!
//! So on PostgreSQL each event records its writer's transaction id (`tx`, the column's
//! default), and each read takes, in the same statement, its own snapshot
//! (`pg_current_snapshot()`), which the cursor keeps ([`EventCursor::snapshot`]). The
//! next read asks for the events whose writer that snapshot could not see
//! (`NOT pg_visible_in_snapshot(tx, previous)`), and for `seq > last` (events logged
//! before migration 9 have no `tx`). Why that is every new event and nothing twice:
//!
//! - a read returns the events visible in its snapshot `S'` (committed before it) that
//!   were not visible in the previous read's snapshot `S`;
//! - what is visible in `S` stays visible in `S'` (a committed transaction stays
//!   committed), so, by induction from the first read (everything visible), the events
//!   returned so far are exactly those visible in the last snapshot. A writer still
//!   running at `S`, or not yet started, is not visible in `S`, so its events come with
//!   the first read after it commits, whatever their numbers;
//! - a writer's `tx` is its top-level transaction id, taken as it writes, so it is in
//!   the snapshot's list of running transactions or at or above its `xmax` until it
//!   commits; the filter `tx >= xmin(S)` only lets an index skip what `S` saw anyway.
//!
//! The cursor is a number and a snapshot whose size is bounded by the number of
//! transactions that can run at once, however long one of them stays open and however
//! many events commit meanwhile. Nothing is held back: an event is returned as soon as it
//! is visible. (The alternative, reading only events below the oldest running
//! transaction, would delay every revocation behind any long transaction on the server.)
//!
//! SQLite needs none of this: it admits one writer at a time, holding the write lock from
//! its first write to its commit, so a reader that sees `n + 1` knows `n` committed
//! before it or never will. The cursor has no snapshot there.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::session_event;
use super::{SeaOrmStore, db_err};
use crate::store::{EventCursor, LogSnapshot, SessionEvent, SessionEvents, StoreError};

/// One event as read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub(super) seq: i64,
    pub(super) event: SessionEvent,
}

/// What one read of the log saw.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// The events asked for, by number, at most `limit + 1`.
    pub(super) rows: Vec<Row>,
    /// The lowest and highest number in the log, unless it is empty.
    pub(super) bounds: Option<(i64, i64)>,
    /// PostgreSQL: the read's snapshot. `None` where writers are serialised.
    pub(super) snapshot: Option<LogSnapshot>,
}

/// The reader's next position after `read`, taken from `cursor` with at most `limit`
/// events.
pub(super) fn advance(cursor: &EventCursor, read: Read, limit: u64) -> SessionEvents {
    let snapshot = read.snapshot;
    let Some((min, max)) = read.bounds else {
        // An empty log: nothing happened, or everything was pruned.
        return SessionEvents {
            events: Vec::new(),
            cursor: EventCursor {
                last: cursor.last,
                snapshot,
            },
            complete: true,
        };
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // The log was reset; or there was more than asked for; or events past the cursor may
    // have been pruned before they were read. Starting over (the reader drops its cache)
    // at `max` with this read's snapshot is safe even with writers still running: the
    // snapshot does not see them, so their events come with a later read.
    if max < cursor.last || read.rows.len() > limit || (cursor.last > 0 && min > cursor.last + 1) {
        return SessionEvents {
            events: Vec::new(),
            cursor: EventCursor {
                last: max,
                snapshot,
            },
            complete: false,
        };
    }
    let last = read
        .rows
        .iter()
        .map(|row| row.seq)
        .fold(cursor.last, i64::max);
    SessionEvents {
        events: read.rows.into_iter().map(|row| row.event).collect(),
        cursor: EventCursor { last, snapshot },
        complete: true,
    }
}

fn event_of(identity_id: uuid::Uuid, session_id: Option<uuid::Uuid>) -> SessionEvent {
    match session_id {
        Some(id) => SessionEvent::Session(id),
        None => SessionEvent::Identity(identity_id),
    }
}

impl SeaOrmStore {
    /// One read of the log after `cursor` (see the module docs).
    pub(super) async fn read_session_events(
        &self,
        cursor: &EventCursor,
        limit: u64,
    ) -> Result<SessionEvents, StoreError> {
        #[cfg(feature = "postgres")]
        if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let read = pg::read(self.db.get_postgres_connection_pool(), cursor, limit)
                .await
                .map_err(|e| {
                    db_err(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(
                        e.into(),
                    )))
                })?;
            return Ok(advance(cursor, read, limit));
        }
        let bounds: Option<(Option<i64>, Option<i64>)> = session_event::Entity::find()
            .select_only()
            .column_as(session_event::Column::Seq.min(), "min_seq")
            .column_as(session_event::Column::Seq.max(), "max_seq")
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(db_err)?;
        let bounds = match bounds {
            Some((Some(min), Some(max))) => Some((min, max)),
            _ => None,
        };
        let rows = match bounds {
            Some((_, max)) if max > cursor.last => session_event::Entity::find()
                .filter(session_event::Column::Seq.gt(cursor.last))
                .order_by_asc(session_event::Column::Seq)
                .limit(limit.saturating_add(1))
                .all(&self.db)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|r| Row {
                    seq: r.seq,
                    event: event_of(r.identity_id, r.session_id),
                })
                .collect(),
            _ => Vec::new(),
        };
        let read = Read {
            rows,
            bounds,
            snapshot: None,
        };
        Ok(advance(cursor, read, limit))
    }
}

/// The read on PostgreSQL: one statement, so the events, the log's bounds and the
/// snapshot all come from one snapshot (`pg_current_snapshot()` is the statement's).
#[cfg(feature = "postgres")]
mod pg {
    use sea_orm::sqlx::{self, Row as _};

    use super::{Read, Row, event_of};
    use crate::store::{EventCursor, LogSnapshot};

    /// `$2` is the previous read's snapshot (NULL before the first read: then only
    /// `seq > $1` counts).
    const READ: &str = "SELECT s.snap, s.min_seq, s.max_seq, \
         e.seq, e.identity_id, e.session_id \
         FROM (SELECT pg_current_snapshot()::text AS snap, \
                      min(seq) AS min_seq, max(seq) AS max_seq \
               FROM identa_session_events) s \
         LEFT JOIN LATERAL (SELECT seq, identity_id, session_id \
                            FROM identa_session_events \
                            WHERE seq > $1 \
                               OR (tx >= pg_snapshot_xmin($2::text::pg_snapshot)::text::bigint \
                                   AND NOT pg_visible_in_snapshot(tx::text::xid8, \
                                                                  $2::text::pg_snapshot)) \
                            ORDER BY seq LIMIT $3) e ON true \
         ORDER BY e.seq";

    pub(super) async fn read(
        pool: &sqlx::PgPool,
        cursor: &EventCursor,
        limit: u64,
    ) -> Result<Read, sqlx::Error> {
        let rows = sqlx::query(READ)
            .bind(cursor.last)
            .bind(cursor.snapshot.as_ref().map(LogSnapshot::as_str))
            .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
        let mut read = Read::default();
        for row in &rows {
            read.snapshot = Some(LogSnapshot::new(row.try_get::<String, _>(0)?));
            if let (Some(min), Some(max)) = (row.try_get(1)?, row.try_get(2)?) {
                read.bounds = Some((min, max));
            }
            if let Some(seq) = row.try_get::<Option<i64>, _>(3)? {
                read.rows.push(Row {
                    seq,
                    event: event_of(row.try_get(4)?, row.try_get(5)?),
                });
            }
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn row(seq: i64) -> Row {
        Row {
            seq,
            event: SessionEvent::Session(Uuid::from_u128(seq.unsigned_abs().into())),
        }
    }

    fn snapshot(text: &str) -> Option<LogSnapshot> {
        Some(LogSnapshot::new(text))
    }

    fn cursor(last: i64, snap: Option<LogSnapshot>) -> EventCursor {
        EventCursor {
            last,
            snapshot: snap,
        }
    }

    #[test]
    fn an_event_that_commits_late_is_returned_and_the_cursor_keeps_the_snapshot() {
        // 3 (tx 100) is written but not committed when 4 (tx 101) is read.
        let first = advance(
            &cursor(2, snapshot("100:100:")),
            Read {
                rows: vec![row(4)],
                bounds: Some((1, 4)),
                snapshot: snapshot("100:102:100"),
            },
            10,
        );
        assert!(first.complete);
        assert_eq!(first.cursor, cursor(4, snapshot("100:102:100")));
        // 3 commits; the store returns it (not visible in the kept snapshot) although its
        // number is behind the cursor, which does not move back.
        let second = advance(
            &first.cursor,
            Read {
                rows: vec![row(3)],
                bounds: Some((1, 4)),
                snapshot: snapshot("102:102:"),
            },
            10,
        );
        assert_eq!(second.events, vec![row(3).event]);
        assert_eq!(second.cursor, cursor(4, snapshot("102:102:")));
    }

    #[test]
    fn serialised_writers_need_no_snapshot() {
        let read = Read {
            rows: vec![row(4), row(6)],
            bounds: Some((1, 6)),
            snapshot: None,
        };
        let next = advance(&cursor(2, None), read, 10);
        assert_eq!(next.cursor, cursor(6, None));
        assert_eq!(next.events.len(), 2);
    }

    #[test]
    fn too_much_to_read_or_pruned_starts_over_at_the_new_snapshot() {
        let many = Read {
            rows: vec![row(3), row(4), row(5)],
            bounds: Some((1, 5)),
            snapshot: snapshot("9:9:"),
        };
        let next = advance(&cursor(2, snapshot("5:6:")), many, 2);
        assert!(!next.complete);
        assert_eq!(next.cursor, cursor(5, snapshot("9:9:")));
        let pruned = Read {
            rows: vec![row(10)],
            bounds: Some((9, 10)),
            snapshot: None,
        };
        assert!(!advance(&cursor(2, None), pruned, 10).complete);
    }
}
