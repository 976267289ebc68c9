//! `ServeEpoch` on PostgreSQL: the epoch row of schema/postgres/0001_core.sql, and a change
//! signal fed by `LISTEN`, so that a takedown or a deletion made through any frontend (or
//! by a command on another host) drops every frontend's cached answers once PostgreSQL has
//! delivered the notification (milliseconds after the commit; not synchronously, as the
//! embedded catalog's inotify watch is).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use postgres::NoTls;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;

use super::PgCatalog;
use crate::catalog::{CatalogError, ChangeSignal, Result, ServeEpoch};

/// The channels the schema's triggers and every commit notify.
const CHANNELS: &str = "LISTEN asof_serve_epoch; LISTEN asof_commit;";

/// How long the listener waits for a notification before checking whether to stop.
const POLL: Duration = Duration::from_millis(200);

impl ServeEpoch for PgCatalog {
    fn settled_epoch(&self) -> Result<Option<u64>> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // A writer that moves the epoch holds the row's lock until its commit is visible;
        // NOWAIT finds it busy instead of waiting.
        let settled = match tx.query_one("SELECT n FROM serve_epoch WHERE id = 1 FOR SHARE NOWAIT", &[]) {
            Ok(row) => Some(row.try_get::<_, i64>(0)? as u64),
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => None,
            Err(e) => return Err(CatalogError::from(e)),
        };
        tx.rollback()?;
        Ok(settled)
    }

    fn watch(&self) -> std::io::Result<Option<Box<dyn ChangeSignal>>> {
        Ok(Some(Box::new(NotifyWatch::start(self.config.clone())?)))
    }
}

/// Counts notifications on a connection of its own, in a thread of its own.
struct NotifyWatch {
    writes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ChangeSignal for NotifyWatch {
    fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

impl Drop for NotifyWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl NotifyWatch {
    /// Listens before answering, so that no change after this returns is missed. The
    /// connection is made on the listener's own thread: the blocking client runs a runtime
    /// of its own, which may not be entered from a thread that drives async tasks (the
    /// server builds its caches on one).
    fn start(config: postgres::Config) -> std::io::Result<Self> {
        // Starts as "written": nothing has been read through this watch yet.
        let writes = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (writes.clone(), stop.clone());
        let (ready, listening) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("asof-pg-listen".into()).spawn(move || match listen(&config) {
            Ok(client) => {
                let _ = ready.send(Ok(()));
                run(client, &config, &w, &s)
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        })?;
        listening.recv().map_err(std::io::Error::other)?.map_err(std::io::Error::other)?;
        Ok(Self { writes, stop })
    }
}

fn listen(config: &postgres::Config) -> Result<postgres::Client, postgres::Error> {
    let mut client = config.connect(NoTls)?;
    client.batch_execute(CHANNELS)?;
    Ok(client)
}

/// Counts each notification as a write. A lost connection may have lost notifications:
/// it counts as a write too, and again once listening anew, so caches are dropped rather
/// than trusted across the gap.
fn run(mut client: postgres::Client, config: &postgres::Config, writes: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = count_for_a_while(&mut client, writes) {
            writes.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(error = %e, "lost the catalog's change notifications; reconnecting");
            match reconnect(config, writes, stop) {
                Some(fresh) => client = fresh,
                None => return,
            }
        }
    }
}

/// Counts the notifications that arrive until none has for `POLL`.
fn count_for_a_while(client: &mut postgres::Client, writes: &AtomicU64) -> Result<(), postgres::Error> {
    let mut notifications = client.notifications();
    let mut received = notifications.timeout_iter(POLL);
    while received.next()?.is_some() {
        writes.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

/// A listening connection again, or `None` once the watch is dropped.
fn reconnect(config: &postgres::Config, writes: &AtomicU64, stop: &AtomicBool) -> Option<postgres::Client> {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(1));
        match listen(config) {
            Ok(client) => {
                writes.fetch_add(1, Ordering::SeqCst);
                return Some(client);
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for the catalog's changes yet"),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::catalog::pg::testdb::{TestDatabase, admin_url};
    use crate::catalog::{Catalog, CommitPlan};
    use crate::domain::Digest;

    /// Two catalogs on one fresh database, as two frontends, with an archive `deb`.
    fn two_frontends() -> Option<(TestDatabase, PgCatalog, PgCatalog)> {
        let db = TestDatabase::create(&admin_url()?);
        let (a, b) = (PgCatalog::open(&db.url).unwrap(), PgCatalog::open(&db.url).unwrap());
        b.commit(&"deb".parse().unwrap(), &empty_plan(0), &Vec::new()).unwrap();
        Some((db, a, b))
    }

    fn empty_plan(base_seq: u64) -> CommitPlan {
        CommitPlan {
            base_seq,
            digest: Digest::of(&base_seq.to_le_bytes()),
            files: 0,
            bytes: 0,
            added: 0,
            changed: 0,
            removed: 0,
            source: serde_json::json!({}),
        }
    }

    fn sql(db: &TestDatabase) -> postgres::Client {
        postgres::Client::connect(&db.url, NoTls).unwrap()
    }

    /// Waits up to a second for the signal to pass `past`; answers how long it took.
    fn seen_within_a_second(signal: &dyn ChangeSignal, past: u64) -> Duration {
        let start = Instant::now();
        while signal.writes() <= past {
            assert!(start.elapsed() < Duration::from_secs(1), "no change seen within a second");
            std::thread::sleep(Duration::from_millis(5));
        }
        start.elapsed()
    }

    #[test]
    fn a_change_made_through_another_frontend_moves_this_ones_watch_and_epoch() {
        let Some((db, a, _b)) = two_frontends() else { return };
        let watch = a.watch().unwrap().unwrap();
        assert_eq!(a.settled_epoch().unwrap(), Some(0));
        let before = watch.writes();
        sql(&db).batch_execute("UPDATE archives SET private = true WHERE name = 'deb'").unwrap();
        seen_within_a_second(&*watch, before);
        assert_eq!(a.settled_epoch().unwrap(), Some(1), "the trigger moved the epoch");
        // A write that changes nothing a final answer depends on leaves the epoch alone.
        sql(&db).batch_execute("UPDATE archives SET private = true WHERE name = 'deb'").unwrap();
        assert_eq!(a.settled_epoch().unwrap(), Some(1));
    }

    #[test]
    fn a_commit_elsewhere_is_signalled_too() {
        let Some((_db, a, b)) = two_frontends() else { return };
        let watch = a.watch().unwrap().unwrap();
        let before = watch.writes();
        let latest = b.latest(&"deb".parse().unwrap()).unwrap().unwrap();
        b.commit(&"deb".parse().unwrap(), &empty_plan(latest.key.seq), &Vec::new()).unwrap();
        seen_within_a_second(&*watch, before);
        assert_eq!(a.settled_epoch().unwrap(), Some(0), "commits do not move the epoch");
    }

    #[test]
    fn the_epoch_is_unsettled_while_a_write_that_moves_it_is_in_flight() {
        let Some((db, a, _b)) = two_frontends() else { return };
        let mut writer = sql(&db);
        let mut tx = writer.transaction().unwrap();
        tx.batch_execute("UPDATE archives SET private = true WHERE name = 'deb'").unwrap();
        assert_eq!(a.settled_epoch().unwrap(), None, "its outcome is not known yet");
        tx.commit().unwrap();
        assert_eq!(a.settled_epoch().unwrap(), Some(1));
    }

    #[test]
    fn a_lost_listener_connection_counts_as_a_change_and_listening_resumes() {
        let Some((db, a, _b)) = two_frontends() else { return };
        let watch = a.watch().unwrap().unwrap();
        let before = watch.writes();
        let killed: i64 = sql(&db)
            .query_one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query = $1",
                &[&CHANNELS],
            )
            .unwrap()
            .get(0);
        assert_eq!(killed, 1, "the listener's connection");
        seen_within_a_second(&*watch, before);
        // The loss counts once, listening again once more (after a second's pause).
        let start = Instant::now();
        while watch.writes() < before + 2 {
            assert!(start.elapsed() < Duration::from_secs(5), "the watch did not listen again");
            std::thread::sleep(Duration::from_millis(20));
        }
        let listening = watch.writes();
        sql(&db).batch_execute("UPDATE archives SET private = true WHERE name = 'deb'").unwrap();
        seen_within_a_second(&*watch, listening);
        assert_eq!(a.settled_epoch().unwrap(), Some(1));
    }
}
