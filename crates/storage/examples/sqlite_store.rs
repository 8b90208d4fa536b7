//! A custom session store: sessions in an SQLite database, with `rusqlite`.
//!
//! This is the worked example for "writing a backend" in the
//! `arcgis-auth-storage` docs. It shows every part of the contract:
//!
//! 1. records stored as the JSON of [`SessionRecord::to_json`], read back with
//!    [`SessionRecord::from_json`] (which reports damage as `Corrupt` and never
//!    quotes the stored text);
//! 2. compare-and-swap saves in one transaction, with versions from a counter
//!    that never repeats (so a version read before a delete never matches the
//!    record created after it);
//! 3. a refresh lock as rows with an expiry, released only by their holder;
//! 4. change events through a [`ChangeFeed`];
//! 5. blocking database calls moved off the async threads;
//! 6. the conformance suite, run by `main` and by the test at the bottom
//!    (`cargo test -p arcgis-auth-storage --features conformance --example sqlite_store`).
//!
//! Run it with `cargo run -p arcgis-auth-storage --features conformance --example sqlite_store`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arcgis_auth_core::Timestamp;
use arcgis_auth_storage::{
    ChangeEvent, ChangeFeed, ChangeKind, Lease, RefreshLock, SaveMode, SessionRecord, SessionStore,
    StoreError, StoreErrorKind, StoreResult, Version, Versioned, conformance, validate_key,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::broadcast;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS sessions (
        key     TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        record  TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS version_counter (
        id   INTEGER PRIMARY KEY CHECK (id = 0),
        next INTEGER NOT NULL
    );
    INSERT OR IGNORE INTO version_counter (id, next) VALUES (0, 1);
    CREATE TABLE IF NOT EXISTS leases (
        key        TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
";

/// Sessions in one SQLite file. Clones share the connection and the events;
/// separate [`SqliteStore::open`] calls (or processes) share the data, and
/// SQLite's own locking keeps them apart.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    events: ChangeFeed,
}

// Step 1: Debug must never print records (they hold tokens).
impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Maps a database error: the backend is unavailable (locked, disk full, ...).
/// rusqlite's messages name the failing statement, never its parameters.
fn db_error(e: rusqlite::Error) -> StoreError {
    StoreError::unavailable(format!(
        "the SQLite session store failed ({e}): retry later"
    ))
    .with_source(e)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(db_error)?;
        // Concurrent writers wait for each other instead of failing at once.
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(db_error)?;
        conn.execute_batch("PRAGMA journal_mode = WAL;")
            .map_err(db_error)?;
        conn.execute_batch(SCHEMA).map_err(db_error)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            events: ChangeFeed::new(),
        })
    }

    /// Step 5: runs `op` with the connection on tokio's blocking pool.
    async fn with_conn<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            op(&mut conn)
        })
        .await
        .map_err(|e| StoreError::unavailable("the SQLite task did not finish").with_source(e))?
    }
}

/// Starts a write transaction at once, so concurrent writers queue up
/// (for up to the busy timeout) instead of failing when they try to write.
fn begin(conn: &mut Connection) -> StoreResult<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)
}

/// The version stored under `key`, read inside the caller's transaction.
fn current_version(tx: &rusqlite::Transaction<'_>, key: &str) -> StoreResult<Option<Version>> {
    let version: Option<i64> = tx
        .query_row(
            "SELECT version FROM sessions WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()
        .map_err(db_error)?;
    Ok(version.map(|v| Version::new(v.to_string())))
}

fn now_millis() -> i64 {
    Timestamp::now().as_unix_millis()
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        validate_key(key)?;
        let key = key.to_owned();
        self.with_conn(move |conn| {
            let row: Option<(i64, String)> = conn
                .query_row(
                    "SELECT version, record FROM sessions WHERE key = ?1",
                    params![key],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db_error)?;
            match row {
                None => Ok(None),
                Some((version, json)) => Ok(Some(Versioned {
                    record: SessionRecord::from_json(&json)?,
                    version: Version::new(version.to_string()),
                })),
            }
        })
        .await
    }

    // Step 2: compare-and-swap inside one write transaction.
    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        validate_key(key)?;
        let json = record.to_json()?;
        let owned_key = key.to_owned();
        let (version, kind) = self
            .with_conn(move |conn| {
                let key = owned_key;
                let tx = begin(conn)?;
                let current = current_version(&tx, &key)?;
                if !mode.permits(current.as_ref()) {
                    return Err(StoreError::conflict(&key));
                }
                let version: i64 = tx
                    .query_row(
                        "UPDATE version_counter SET next = next + 1 WHERE id = 0 RETURNING next - 1",
                        [],
                        |row| row.get(0),
                    )
                    .map_err(db_error)?;
                tx.execute(
                    "INSERT INTO sessions (key, version, record) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET version = excluded.version, record = excluded.record",
                    params![key, version, json],
                )
                .map_err(db_error)?;
                tx.commit().map_err(db_error)?;
                let kind = if current.is_some() {
                    ChangeKind::Updated
                } else {
                    ChangeKind::Created
                };
                Ok((Version::new(version.to_string()), kind))
            })
            .await?;
        // Step 4: one event per successful change, none for a conflict.
        self.events.publish(ChangeEvent {
            key: key.to_owned(),
            kind,
            version: Some(version.clone()),
        });
        Ok(version)
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        validate_key(key)?;
        let owned_key = key.to_owned();
        let expected = version.cloned();
        let deleted = self
            .with_conn(move |conn| {
                let key = owned_key;
                let tx = begin(conn)?;
                let current = current_version(&tx, &key)?;
                match (current, &expected) {
                    (None, None) => return Ok(false),
                    (None, Some(_)) => return Err(StoreError::conflict(&key)),
                    (Some(v), Some(want)) if v != *want => {
                        return Err(StoreError::conflict(&key));
                    }
                    _ => {}
                }
                tx.execute("DELETE FROM sessions WHERE key = ?1", params![key])
                    .map_err(db_error)?;
                tx.commit().map_err(db_error)?;
                Ok(true)
            })
            .await?;
        if deleted {
            self.events.publish(ChangeEvent {
                key: key.to_owned(),
                kind: ChangeKind::Deleted,
                version: None,
            });
        }
        Ok(deleted)
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let prefix = prefix.to_owned();
        self.with_conn(move |conn| {
            // `substr` instead of LIKE: no wildcard to escape, exact and case-sensitive.
            let mut stmt = conn
                .prepare(
                    "SELECT key FROM sessions WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
                )
                .map_err(db_error)?;
            let keys = stmt
                .query_map(params![prefix], |row| row.get::<_, String>(0))
                .map_err(db_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db_error)?;
            Ok(keys)
        })
        .await
        .map(|mut keys| {
            // SQLite sorts TEXT by bytes (BINARY collation), as Rust sorts `String`s;
            // sort again anyway so the contract does not hang on a collation setting.
            keys.sort_unstable();
            keys
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.events.subscribe()
    }

    // Step 3: offer the refresh lock.
    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        Some(self)
    }
}

#[async_trait]
impl RefreshLock for SqliteStore {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        validate_key(key)?;
        if lease.is_zero() {
            return Err(StoreError::new(
                StoreErrorKind::InvalidInput,
                "a refresh lock lease must be longer than zero",
            ));
        }
        let key = key.to_owned();
        self.with_conn(move |conn| {
            let now = now_millis();
            let expires_at =
                now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
            let tx = begin(conn)?;
            // A dead holder's lease runs out on its own.
            tx.execute("DELETE FROM leases WHERE expires_at <= ?1", params![now])
                .map_err(db_error)?;
            // SQLite's randomblob is seeded from the operating system's random source.
            let holder: String = tx
                .query_row("SELECT lower(hex(randomblob(16)))", [], |row| row.get(0))
                .map_err(db_error)?;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO leases (key, holder, expires_at) VALUES (?1, ?2, ?3)",
                    params![key, holder, expires_at],
                )
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok((inserted == 1).then_some(Lease {
                key,
                holder,
                duration: lease,
            }))
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        let lease = lease.clone();
        self.with_conn(move |conn| {
            let now = now_millis();
            let tx = begin(conn)?;
            // Only the holder's own, still-live lease counts as released.
            let released = tx
                .execute(
                    "DELETE FROM leases WHERE key = ?1 AND holder = ?2 AND expires_at > ?3",
                    params![lease.key, lease.holder, now],
                )
                .map_err(db_error)?;
            tx.execute(
                "DELETE FROM leases WHERE key = ?1 AND holder = ?2",
                params![lease.key, lease.holder],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(released == 1)
        })
        .await
    }
}

/// Step 6: run the conformance suite. Every call of the closure opens another
/// connection to the same file, standing in for another process.
async fn check(path: &Path) {
    let path = path.to_owned();
    conformance::run_all(move || match SqliteStore::open(&path) {
        Ok(store) => store,
        Err(e) => panic!("cannot open the SQLite store: {e}"),
    })
    .await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    check(&dir.path().join("sessions.sqlite3")).await;
    println!("SqliteStore passes the arcgis-auth-storage conformance suite");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        super::check(&dir.path().join("sessions.sqlite3")).await;
    }
}
