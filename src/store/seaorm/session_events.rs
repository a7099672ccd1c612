//! Reading the session event log so that no event is missed.
//!
//! Each event takes its sequence number inside its writer's transaction. Where writers
//! run at once (PostgreSQL), number `n` can therefore commit after `n + 1`: a reader that
//! moved past `n + 1` and asked only for higher numbers would never read `n`, and would
//! serve a revoked session from its cache until it expired.
//!
//! So on PostgreSQL each event records its writer's transaction id (`tx`, the column's
//! default), and each read takes, in the same statement, its snapshot's `xmin`: every
//! transaction below it has finished, so every event that read could not see was written
//! by a transaction at or above it (still running, or not yet started). The next read
//! asks for `seq > last OR tx >= horizon`, leaving out the few events at or above the
//! horizon it has already returned ([`EventCursor::seen`]). Nothing is held back: an event
//! is returned as soon as it is visible, however old the oldest running transaction.
//! (The alternative, reading only events below the oldest running transaction, would
//! delay every revocation behind any long transaction on the server.)
//!
//! SQLite needs none of this: it admits one writer at a time, holding the write lock from
//! its first write to its commit, so a reader that sees `n + 1` knows `n` committed
//! before it or never will. The horizon stays 0.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::session_event;
use super::{SeaOrmStore, db_err};
use crate::store::{EventCursor, SessionEvent, SessionEvents, StoreError};

/// At most this many already-read events are remembered in a cursor; more are read again
/// (and applied twice, which is harmless).
const MAX_SEEN: usize = 1_000;

/// One event as read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub(super) seq: i64,
    /// The writer's transaction id (PostgreSQL, events logged after migration 9).
    pub(super) tx: Option<i64>,
    pub(super) event: SessionEvent,
}

/// What one read of the log saw.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// The events asked for, by number, at most `limit + 1`.
    pub(super) rows: Vec<Row>,
    /// The lowest and highest number in the log, unless it is empty.
    pub(super) bounds: Option<(i64, i64)>,
    /// PostgreSQL: the read's snapshot `xmin`. `None` where writers are serialised.
    pub(super) xmin: Option<i64>,
}

/// The reader's next position after `read`, taken from `cursor` with at most `limit`
/// events.
pub(super) fn advance(cursor: &EventCursor, read: Read, limit: u64) -> SessionEvents {
    // Transaction ids only grow, and so does the horizon.
    let horizon = read.xmin.map_or(0, |xmin| xmin.max(cursor.horizon));
    // Starting over (the reader drops its cache) at `max` is safe even with writers
    // still running below it: their events are at or above `horizon`.
    let start_over = |last| SessionEvents {
        events: Vec::new(),
        cursor: EventCursor {
            last,
            horizon,
            seen: Vec::new(),
        },
        complete: false,
    };
    let Some((min, max)) = read.bounds else {
        // An empty log: nothing happened, or everything was pruned.
        return SessionEvents {
            events: Vec::new(),
            cursor: EventCursor {
                last: cursor.last,
                horizon,
                seen: Vec::new(),
            },
            complete: true,
        };
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // The log was reset; or there was more than asked for; or events past the cursor may
    // have been pruned before they were read.
    if max < cursor.last || read.rows.len() > limit || (cursor.last > 0 && min > cursor.last + 1) {
        return start_over(max);
    }
    let last = read
        .rows
        .iter()
        .map(|row| row.seq)
        .fold(cursor.last, i64::max);
    let mut seen: Vec<(i64, i64)> = cursor
        .seen
        .iter()
        .copied()
        .chain(read.rows.iter().filter_map(|row| Some((row.seq, row.tx?))))
        .filter(|&(_, tx)| read.xmin.is_some() && tx >= horizon)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() > MAX_SEEN {
        seen.drain(..seen.len() - MAX_SEEN);
    }
    SessionEvents {
        events: read.rows.into_iter().map(|row| row.event).collect(),
        cursor: EventCursor {
            last,
            horizon,
            seen,
        },
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
                    tx: None,
                    event: event_of(r.identity_id, r.session_id),
                })
                .collect(),
            _ => Vec::new(),
        };
        let read = Read {
            rows,
            bounds,
            xmin: None,
        };
        Ok(advance(cursor, read, limit))
    }
}

/// The read on PostgreSQL: one statement, so the events, the log's bounds and the
/// snapshot's `xmin` all come from one snapshot.
#[cfg(feature = "postgres")]
mod pg {
    use sea_orm::sqlx::{self, Row as _};

    use super::{Read, Row, event_of};
    use crate::store::EventCursor;

    const READ: &str = "SELECT s.snap_xmin, s.min_seq, s.max_seq, \
         e.seq, e.tx, e.identity_id, e.session_id \
         FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS snap_xmin, \
                      min(seq) AS min_seq, max(seq) AS max_seq \
               FROM identa_session_events) s \
         LEFT JOIN LATERAL (SELECT seq, tx, identity_id, session_id \
                            FROM identa_session_events \
                            WHERE seq > $1 OR (tx >= $2 AND seq <> ALL($3)) \
                            ORDER BY seq LIMIT $4) e ON true \
         ORDER BY e.seq";

    pub(super) async fn read(
        pool: &sqlx::PgPool,
        cursor: &EventCursor,
        limit: u64,
    ) -> Result<Read, sqlx::Error> {
        let seen: Vec<i64> = cursor.seen.iter().map(|&(seq, _)| seq).collect();
        let rows = sqlx::query(READ)
            .bind(cursor.last)
            .bind(cursor.horizon)
            .bind(seen)
            .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?;
        let mut read = Read::default();
        for row in &rows {
            read.xmin = Some(row.try_get(0)?);
            if let (Some(min), Some(max)) = (row.try_get(1)?, row.try_get(2)?) {
                read.bounds = Some((min, max));
            }
            if let Some(seq) = row.try_get::<Option<i64>, _>(3)? {
                read.rows.push(Row {
                    seq,
                    tx: row.try_get(4)?,
                    event: event_of(row.try_get(5)?, row.try_get(6)?),
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

    fn row(seq: i64, tx: Option<i64>) -> Row {
        Row {
            seq,
            tx,
            event: SessionEvent::Session(Uuid::from_u128(seq.unsigned_abs().into())),
        }
    }

    fn cursor(last: i64, horizon: i64, seen: &[(i64, i64)]) -> EventCursor {
        EventCursor {
            last,
            horizon,
            seen: seen.to_vec(),
        }
    }

    #[test]
    fn an_event_that_commits_late_is_found_by_the_horizon() {
        // 3 (tx 100) is written but not committed when 4 (tx 101) is read; the oldest
        // running transaction is 100.
        let first = advance(
            &cursor(2, 90, &[]),
            Read {
                rows: vec![row(4, Some(101))],
                bounds: Some((1, 4)),
                xmin: Some(100),
            },
            10,
        );
        assert!(first.complete);
        assert_eq!(first.cursor, cursor(4, 100, &[(4, 101)]));
        // 3 commits; the store returns it (tx >= 100, not seen); 4 is not returned again.
        let second = advance(
            &first.cursor,
            Read {
                rows: vec![row(3, Some(100))],
                bounds: Some((1, 4)),
                xmin: Some(102),
            },
            10,
        );
        assert_eq!(second.events, vec![row(3, None).event]);
        assert_eq!(
            second.cursor,
            cursor(4, 102, &[]),
            "nothing seen is at or above 102"
        );
    }

    #[test]
    fn serialised_writers_need_no_horizon() {
        let read = Read {
            rows: vec![row(4, None), row(6, None)],
            bounds: Some((1, 6)),
            xmin: None,
        };
        let next = advance(&cursor(2, 0, &[]), read, 10);
        assert_eq!(next.cursor, cursor(6, 0, &[]));
        assert_eq!(next.events.len(), 2);
    }

    #[test]
    fn too_much_to_read_or_pruned_starts_over_keeping_the_horizon() {
        let many = Read {
            rows: vec![row(3, Some(7)), row(4, Some(8)), row(5, Some(9))],
            bounds: Some((1, 5)),
            xmin: Some(9),
        };
        let next = advance(&cursor(2, 5, &[]), many, 2);
        assert!(!next.complete);
        assert_eq!(next.cursor, cursor(5, 9, &[]));
        let pruned = Read {
            rows: vec![row(10, None)],
            bounds: Some((9, 10)),
            xmin: None,
        };
        assert!(!advance(&cursor(2, 0, &[]), pruned, 10).complete);
    }

    #[test]
    fn the_horizon_never_moves_back_and_seen_is_bounded() {
        let rows = (1..=1_500).map(|seq| row(seq, Some(50))).collect();
        let next = advance(
            &cursor(0, 40, &[]),
            Read {
                rows,
                bounds: Some((1, 1_500)),
                xmin: Some(30),
            },
            2_000,
        );
        assert_eq!(next.cursor.horizon, 40);
        assert_eq!(next.cursor.seen.len(), MAX_SEEN);
        assert_eq!(
            next.cursor.seen.first(),
            Some(&(501, 50)),
            "the newest are kept"
        );
    }
}
