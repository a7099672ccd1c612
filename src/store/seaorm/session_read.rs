//! The read behind every uncached `whoami`: a session by its token hash with its identity
//! row, in one hand-written statement, for SQLite and for PostgreSQL. sea-orm's query
//! building and row mapping cost more than the query itself (docs/performance.md). JSON
//! columns decode straight into their types, not through `serde_json::Value`; the
//! identity's plain columns fill the entity model, so the identity is assembled as on
//! every other read. On sea-orm's own sqlx pool the two engines differ only in their
//! placeholder and row type: one statement and one decoding, written once below. A SQLite
//! file is read first through a few read-only rusqlite connections of its own
//! ([`file::FileReader`]): sqlx runs each SQLite connection on a worker thread, and the
//! hop there and back cost several times the read.

use super::entity::identity;
use super::identities::IdentityDocument;
use crate::session::Session;

/// A session, its identity's row (without its document) and the document, which rows
/// written before identity documents lack.
pub(super) type Found = (Session, identity::Model, Option<IdentityDocument>);

/// The statement (`session_by_token.sql`, which says what it reads) ending in the engine's
/// placeholder for the token hash.
macro_rules! session_by_token_sql {
    ($placeholder:literal) => {
        concat!(include_str!("session_by_token.sql"), " ", $placeholder)
    };
}

/// `session_by_token` for one engine: its pool, its row type and its placeholder.
macro_rules! session_reader {
    ($feature:literal, $module:ident, $pool:ty, $row:ty, $placeholder:literal) => {
        #[cfg(feature = $feature)]
        pub(super) mod $module {
            use sea_orm::sqlx::{self, Row, types::Json};

            use super::{Found, IdentityDocument, Session, identity};

            /// The session whose token hashes to `hash`, with its identity's row.
            pub(in crate::store::seaorm) async fn session_by_token(
                pool: &$pool,
                hash: &[u8],
            ) -> Result<Option<Found>, sqlx::Error> {
                sqlx::query(session_by_token_sql!($placeholder))
                    .bind(hash)
                    .fetch_optional(pool)
                    .await?
                    .map(|row| decode(&row))
                    .transpose()
            }

            fn decode(row: &$row) -> Result<Found, sqlx::Error> {
                let identity_id = row.try_get(1)?;
                let aal: &str = row.try_get(6)?;
                let session = Session {
                    id: row.try_get(0)?,
                    identity_id,
                    active: row.try_get(2)?,
                    issued_at: row.try_get(3)?,
                    authenticated_at: row.try_get(4)?,
                    expires_at: row.try_get(5)?,
                    aal: aal.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    authentication_methods: row.try_get::<Json<_>, _>(7)?.0,
                    devices: row.try_get::<Json<_>, _>(8)?.0,
                };
                let identity = identity::Model {
                    id: identity_id,
                    schema_id: row.try_get(9)?,
                    state: row.try_get(10)?,
                    state_changed_at: row.try_get(11)?,
                    traits: row.try_get::<Json<_>, _>(12)?.0,
                    metadata_public: row.try_get::<Option<Json<_>>, _>(13)?.map(|j| j.0),
                    metadata_admin: row.try_get::<Option<Json<_>>, _>(14)?.map(|j| j.0),
                    document: None,
                    created_at: row.try_get(16)?,
                    updated_at: row.try_get(17)?,
                    external_id: row.try_get(18)?,
                };
                let document = row
                    .try_get::<Option<Json<IdentityDocument>>, _>(15)?
                    .map(|d| d.0);
                Ok((session, identity, document))
            }
        }
    };
}

session_reader!(
    "sqlite",
    sqlite,
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteRow,
    "?1"
);
session_reader!(
    "postgres",
    postgres,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    "$1"
);

/// The same statement on read-only rusqlite connections to a SQLite file, run on the
/// caller's thread: a point read by unique index (microseconds, as the benches measure).
/// Whatever it cannot do — every connection taken, the file locked, a value it does not
/// decode — it hands back, and the caller reads through sqlx, which handles them all.
#[cfg(feature = "sqlite")]
pub(super) mod file {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use chrono::{DateTime, Utc};
    use rusqlite::{Connection, OpenFlags, Row, types::ValueRef};
    use serde::de::DeserializeOwned;
    use uuid::Uuid;

    use super::{Found, Session, identity};

    /// How many reads run at once on their own connections; more fall back to the pool.
    const CONNECTIONS: usize = 4;

    /// A few read-only connections to one SQLite file, opened on first use, each taken by
    /// one read at a time.
    #[derive(Debug)]
    pub(in crate::store::seaorm) struct FileReader {
        path: PathBuf,
        connections: [Mutex<Option<Connection>>; CONNECTIONS],
    }

    /// Why the reader did not answer; the caller reads through the pool instead.
    #[derive(Debug, thiserror::Error)]
    pub(in crate::store::seaorm) enum Unanswered {
        #[error("every read-only connection is in use")]
        Busy,
        #[error("the read-only connection failed: {0}")]
        Sqlite(#[from] rusqlite::Error),
        /// Which column, without the value or the decoder's message (either may quote
        /// a trait or a credential): this reason is logged.
        #[error("column {column} is not in the form sqlx writes")]
        Decode { column: usize },
    }

    impl FileReader {
        /// A reader of the SQLite file at `path`; opens nothing yet.
        pub(in crate::store::seaorm) fn new(path: &Path) -> Self {
            Self {
                path: path.to_owned(),
                connections: Default::default(),
            }
        }

        /// The session whose token hashes to `hash`, with its identity's row.
        pub(in crate::store::seaorm) fn session_by_token(
            &self,
            hash: &[u8],
        ) -> Result<Option<Found>, Unanswered> {
            for slot in &self.connections {
                let Ok(mut slot) = slot.try_lock() else {
                    continue;
                };
                let connection = match &mut *slot {
                    Some(connection) => connection,
                    None => slot.insert(self.open()?),
                };
                let found = read(connection, hash);
                if matches!(found, Err(Unanswered::Sqlite(_))) {
                    // Opened again on next use, in case the handle itself went bad.
                    *slot = None;
                }
                return found;
            }
            Err(Unanswered::Busy)
        }

        /// Runs `sql` on one of the reader's connections (tests: they are read-only).
        #[cfg(test)]
        pub(super) fn write_for_test(&self, sql: &str) -> Result<usize, Unanswered> {
            Ok(self.open()?.execute(sql, [])?)
        }

        fn open(&self) -> Result<Connection, Unanswered> {
            let connection = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            // Never wait on the caller's thread: a locked file sends the read to the pool,
            // whose connections wait on their own threads.
            connection.busy_timeout(std::time::Duration::ZERO)?;
            Ok(connection)
        }
    }

    fn read(connection: &Connection, hash: &[u8]) -> Result<Option<Found>, Unanswered> {
        let mut statement = connection.prepare_cached(session_by_token_sql!("?1"))?;
        let mut rows = statement.query([hash])?;
        rows.next()?.map(decode).transpose()
    }

    fn decode(row: &Row<'_>) -> Result<Found, Unanswered> {
        let identity_id = uuid(row, 1)?;
        let aal = text(row, 6)?;
        let session = Session {
            id: uuid(row, 0)?,
            identity_id,
            active: boolean(row, 2)?,
            issued_at: time(row, 3)?,
            authenticated_at: time(row, 4)?,
            expires_at: time(row, 5)?,
            aal: aal.parse().map_err(|_| undecodable(6))?,
            authentication_methods: json(row, 7)?,
            devices: json(row, 8)?,
        };
        let identity = identity::Model {
            id: identity_id,
            schema_id: text(row, 9)?.to_owned(),
            state: text(row, 10)?.to_owned(),
            state_changed_at: optional(row, 11, time)?,
            traits: json(row, 12)?,
            metadata_public: optional(row, 13, json)?,
            metadata_admin: optional(row, 14, json)?,
            document: None,
            created_at: time(row, 16)?,
            updated_at: time(row, 17)?,
            external_id: optional(row, 18, |row, c| text(row, c).map(str::to_owned))?,
        };
        let document = optional(row, 15, json)?;
        Ok((session, identity, document))
    }

    fn undecodable(column: usize) -> Unanswered {
        Unanswered::Decode { column }
    }

    /// `None` for SQL NULL, else the column decoded by `decode`.
    fn optional<T>(
        row: &Row<'_>,
        column: usize,
        decode: impl FnOnce(&Row<'_>, usize) -> Result<T, Unanswered>,
    ) -> Result<Option<T>, Unanswered> {
        match row.get_ref(column)? {
            ValueRef::Null => Ok(None),
            _ => decode(row, column).map(Some),
        }
    }

    fn text<'r>(row: &'r Row<'_>, column: usize) -> Result<&'r str, Unanswered> {
        match row.get_ref(column)? {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|_| undecodable(column)),
            _ => Err(undecodable(column)),
        }
    }

    /// A UUID as sqlx writes it on SQLite: 16 bytes.
    fn uuid(row: &Row<'_>, column: usize) -> Result<Uuid, Unanswered> {
        match row.get_ref(column)? {
            ValueRef::Blob(bytes) => Uuid::from_slice(bytes).map_err(|_| undecodable(column)),
            _ => Err(undecodable(column)),
        }
    }

    fn boolean(row: &Row<'_>, column: usize) -> Result<bool, Unanswered> {
        match row.get_ref(column)? {
            ValueRef::Integer(n) => Ok(n != 0),
            _ => Err(undecodable(column)),
        }
    }

    /// A time as sqlx writes it on SQLite: RFC 3339 text.
    fn time(row: &Row<'_>, column: usize) -> Result<DateTime<Utc>, Unanswered> {
        DateTime::parse_from_rfc3339(text(row, column)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| undecodable(column))
    }

    fn json<T: DeserializeOwned>(row: &Row<'_>, column: usize) -> Result<T, Unanswered> {
        serde_json::from_str(text(row, column)?).map_err(|_| undecodable(column))
    }
}

#[cfg(test)]
#[cfg(feature = "sqlite")]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use uuid::Uuid;

    use super::Found;
    use crate::identity::{Aal, Identity, IdentityState};
    use crate::session::{AuthenticationMethod, Device, Session, SessionToken};
    use crate::store::seaorm::SeaOrmStore;
    use crate::store::{IdentityStore, SessionStore};

    /// What a read found, comparable: the session, the identity row, the document as JSON.
    fn seen(found: Found) -> (String, String, serde_json::Value) {
        let (session, identity, document) = found;
        let document = serde_json::to_value(document.expect("a document")).unwrap();
        (format!("{session:?}"), format!("{identity:?}"), document)
    }

    /// A store on a new SQLite file (kept while the directory lives), seeded by [`seed`].
    async fn seeded_file_store() -> (tempfile::TempDir, SeaOrmStore, Session, SessionToken) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("identa.db").display());
        let store = SeaOrmStore::connect(&url).await.unwrap();
        let (session, token) = seed(&store).await;
        (dir, store, session, token)
    }

    /// An identity and a session with every column the read decodes filled in.
    async fn seed(store: &SeaOrmStore) -> (Session, SessionToken) {
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 6).unwrap()
            + chrono::Duration::microseconds(266_955);
        let identity = Identity {
            id: Uuid::new_v4(),
            schema_id: "default".into(),
            state: IdentityState::Active,
            state_changed_at: Some(at),
            traits: json!({ "email": "ada@example.com", "name": "Ada" }),
            verifiable_addresses: vec![],
            recovery_addresses: vec![],
            metadata_public: Some(json!({ "plan": "pro" })),
            metadata_admin: Some(json!({ "note": "vip" })),
            external_id: Some("crm-42".parse().unwrap()),
            credentials: Default::default(),
            created_at: at,
            updated_at: at,
        };
        store.insert_identity(&identity).await.unwrap();
        let session = Session {
            id: Uuid::new_v4(),
            identity_id: identity.id,
            active: true,
            issued_at: at,
            authenticated_at: at,
            expires_at: at + chrono::Duration::days(1),
            aal: Aal::Aal2,
            authentication_methods: vec![AuthenticationMethod {
                method: "password".into(),
                aal: Aal::Aal1,
                completed_at: at,
            }],
            devices: vec![Device::new(Some("127.0.0.1"), Some("test"))],
        };
        let token = SessionToken::from_client("identa_st_a-token-for-the-reader");
        store.insert_session(&session, &token.hash()).await.unwrap();
        (session, token)
    }

    #[tokio::test]
    async fn the_file_reader_decodes_a_row_as_the_pool_does() {
        let (_dir, store, session, token) = seeded_file_store().await;
        let hash = token.hash();
        let reader = store.file_reader.as_ref().expect("a file has a reader");

        let fast = reader.session_by_token(hash.as_bytes()).unwrap().unwrap();
        assert_eq!(fast.0, session);
        let pool = store.db.get_sqlite_connection_pool();
        let slow = super::sqlite::session_by_token(pool, hash.as_bytes())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen(fast), seen(slow));

        let unknown = SessionToken::from_client("identa_st_no-such-token").hash();
        assert!(
            reader
                .session_by_token(unknown.as_bytes())
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_file_reader_sees_each_commit_and_cannot_write() {
        let (_dir, store, session, token) = seeded_file_store().await;
        let hash = token.hash();
        let reader = store.file_reader.as_ref().unwrap();
        assert!(
            reader
                .session_by_token(hash.as_bytes())
                .unwrap()
                .unwrap()
                .0
                .active
        );

        // Revoked through the pool: the reader's next read sees it.
        assert!(
            store
                .revoke_session(session.identity_id, session.id)
                .await
                .unwrap()
        );
        assert!(
            !reader
                .session_by_token(hash.as_bytes())
                .unwrap()
                .unwrap()
                .0
                .active
        );

        // Its connections are opened read-only.
        let err = reader
            .write_for_test("DELETE FROM identa_sessions")
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
        assert!(store.session(session.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_row_the_reader_cannot_decode_is_read_through_the_pool() {
        let (_dir, store, session, token) = seeded_file_store().await;
        // A time in a form sqlx reads but the reader does not (not RFC 3339).
        sea_orm::ConnectionTrait::execute_unprepared(
            &store.db,
            "UPDATE identa_sessions SET issued_at = '2026-11-27 19:00:06'",
        )
        .await
        .unwrap();
        let reader = store.file_reader.as_ref().unwrap();
        let Err(why) = reader.session_by_token(token.hash().as_bytes()) else {
            panic!("the reader decoded a time that is not RFC 3339");
        };
        assert_eq!(why.to_string(), "column 3 is not in the form sqlx writes");

        let (found, _) = store
            .session_by_token(&token.hash())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, session.id);
        assert_eq!(
            found.issued_at,
            Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 6).unwrap()
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_file_reader() {
        let store = SeaOrmStore::connect("sqlite::memory:").await.unwrap();
        assert!(store.file_reader.is_none());
    }
}
