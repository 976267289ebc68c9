//! `TakedownStore` on the embedded SQLite catalog (schema/0011_takedowns.sql).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{CatalogError, Result, SqliteCatalog};
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::takedown::{Action, Added, Event, Hit, State, Status, Takedown, TakedownStore, Target, Undone};

fn corrupt(msg: String) -> CatalogError {
    CatalogError::Corrupt(msg)
}

fn digest(bytes: &[u8]) -> Result<Digest> {
    Digest::from_slice(bytes).ok_or_else(|| corrupt(format!("a takedown digest of {} bytes", bytes.len())))
}

fn status(code: i64) -> Result<Status> {
    u16::try_from(code).ok().and_then(Status::from_code).ok_or_else(|| corrupt(format!("takedown status {code}")))
}

fn archive_id(conn: &rusqlite::Connection, archive: &ArchiveName) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT id FROM archives WHERE name = ?1", [archive.as_str()], |r| r.get(0)).optional()?)
}

fn log(tx: &Transaction<'_>, id: i64, action: Action, actor: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO takedown_log (takedown_id, action, actor, at) VALUES (?1, ?2, ?3, ?4)",
        params![id, action.as_str(), actor, now],
    )?;
    Ok(())
}

/// One row of `takedowns` (archive by name), before its log is attached.
const TAKEDOWN_COLUMNS: &str = "SELECT t.id, a.name, t.path, t.sha256, t.status, t.reason, t.active, t.purged \
     FROM takedowns t LEFT JOIN archives a ON a.id = t.archive_id";

fn takedown_from_row(r: &rusqlite::Row<'_>) -> Result<Takedown> {
    let archive: Option<String> = r.get(1)?;
    let path: Option<String> = r.get(2)?;
    let sha256: Option<Vec<u8>> = r.get(3)?;
    let (active, purged): (bool, bool) = (r.get(6)?, r.get(7)?);
    Ok(Takedown {
        id: r.get(0)?,
        archive: archive.map(|a| a.parse().map_err(|e| corrupt(format!("archive name {a:?}: {e}")))).transpose()?,
        path: path.map(|p| RelPath::new(&p).map_err(|e| corrupt(format!("takedown path {p:?}: {e}")))).transpose()?,
        sha256: sha256.as_deref().map(digest).transpose()?,
        status: status(r.get(4)?)?,
        reason: r.get(5)?,
        state: State::from_flags(active, purged),
        log: Vec::new(),
    })
}

fn events(conn: &rusqlite::Connection, id: Option<i64>) -> Result<HashMap<i64, Vec<Event>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT takedown_id, action, actor, at FROM takedown_log WHERE ?1 IS NULL OR takedown_id = ?1 ORDER BY seq",
    )?;
    let mut out: HashMap<i64, Vec<Event>> = HashMap::new();
    let mut rows = stmt.query([id])?;
    while let Some(r) = rows.next()? {
        let action: String = r.get(1)?;
        let at: i64 = r.get(3)?;
        out.entry(r.get(0)?).or_default().push(Event {
            action: Action::parse(&action).ok_or_else(|| corrupt(format!("takedown log action {action:?}")))?,
            actor: r.get(2)?,
            at: chrono::DateTime::from_timestamp(at, 0).ok_or_else(|| corrupt(format!("takedown log time {at}")))?,
        });
    }
    Ok(out)
}

fn takedowns(conn: &rusqlite::Connection, id: Option<i64>) -> Result<Vec<Takedown>> {
    let mut stmt = conn.prepare_cached(&format!("{TAKEDOWN_COLUMNS} WHERE ?1 IS NULL OR t.id = ?1 ORDER BY t.id"))?;
    let mut out = Vec::new();
    let mut rows = stmt.query([id])?;
    while let Some(r) = rows.next()? {
        out.push(takedown_from_row(r)?);
    }
    let mut log = events(conn, id)?;
    for t in &mut out {
        t.log = log.remove(&t.id).unwrap_or_default();
    }
    Ok(out)
}

fn one(conn: &rusqlite::Connection, id: i64) -> Result<Takedown> {
    takedowns(conn, Some(id))?.pop().ok_or_else(|| corrupt(format!("takedown {id} vanished")))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The active takedown of the same target, if any.
fn existing(tx: &Transaction<'_>, archive_id: Option<i64>, target: &Target) -> Result<Option<i64>> {
    Ok(match target {
        Target::Path { path, .. } => tx
            .query_row(
                "SELECT id FROM takedowns WHERE active = 1 AND archive_id = ?1 AND path = ?2",
                params![archive_id, path.as_str()],
                |r| r.get(0),
            )
            .optional()?,
        Target::Sha256(d) => tx
            .query_row("SELECT id FROM takedowns WHERE active = 1 AND sha256 = ?1", [&d.as_bytes()[..]], |r| r.get(0))
            .optional()?,
    })
}

impl TakedownStore for SqliteCatalog {
    fn add(
        &self,
        target: &Target,
        status: Status,
        reason: &str,
        purge: &[Digest],
        actor: &str,
        now: i64,
    ) -> Result<Added> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (archive_id, path, sha256) = match target {
            Target::Path { archive, path } => match archive_id(&tx, archive)? {
                Some(id) => (Some(id), Some(path.as_str()), None),
                None => return Ok(Added::NoArchive),
            },
            Target::Sha256(d) => (None, None, Some(&d.as_bytes()[..])),
        };
        if let Some(id) = existing(&tx, archive_id, target)? {
            return Ok(Added::Exists(id));
        }
        let inserted = tx.execute(
            "INSERT INTO takedowns (archive_id, path, sha256, status, reason, created_at, created_by, purged) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![archive_id, path, sha256, status.code(), reason, now, actor, !purge.is_empty()],
        );
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(corrupt(format!("takedown of {target} raced: {e}"))),
            other => other?,
        };
        let id = tx.last_insert_rowid();
        log(&tx, id, Action::Takedown, actor, now)?;
        // Checked with the new takedown in force and the write lock held: dropping the
        // transaction on refusal records nothing.
        for d in purge {
            let paths = uncovered_paths(&tx, d)?;
            if !paths.is_empty() {
                return Ok(Added::StillServed { digest: *d, paths });
            }
        }
        if !purge.is_empty() {
            for d in purge {
                tx.execute(
                    "INSERT INTO takedown_purged (sha256, takedown_id) VALUES (?1, ?2) \
                     ON CONFLICT (sha256) DO NOTHING",
                    params![&d.as_bytes()[..], id],
                )?;
            }
            log(&tx, id, Action::Purge, actor, now)?;
        }
        let takedown = one(&tx, id)?;
        tx.commit()?;
        Ok(Added::Added(takedown))
    }

    fn undo(&self, id: i64, actor: &str, now: i64) -> Result<Undone> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(bool, bool)> = tx
            .query_row("SELECT active, purged FROM takedowns WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            None => return Ok(Undone::NoSuch),
            Some((_, true)) => return Ok(Undone::Purged),
            Some((false, _)) => return Ok(Undone::AlreadyUndone),
            Some((true, false)) => {}
        }
        // Another takedown may have purged the same bytes (a path purge is allowed while this
        // one hid their other path): serving them again would serve nothing.
        let hides_purged: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM takedowns t JOIN takedown_purged p ON p.sha256 = t.sha256 WHERE t.id = ?1) \
             OR EXISTS (SELECT 1 FROM takedowns t JOIN entries e ON e.archive_id = t.archive_id AND e.path = t.path \
                        JOIN takedown_purged p ON p.sha256 = e.sha256 WHERE t.id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if hides_purged {
            return Ok(Undone::Purged);
        }
        tx.execute("UPDATE takedowns SET active = 0 WHERE id = ?1", [id])?;
        log(&tx, id, Action::Undo, actor, now)?;
        let takedown = one(&tx, id)?;
        tx.commit()?;
        Ok(Undone::Undone(takedown))
    }

    fn list(&self) -> Result<Vec<Takedown>> {
        let conn = self.conn()?;
        takedowns(&conn, None)
    }

    fn any_active(&self) -> Result<bool> {
        let conn = self.conn()?;
        // Written so that each half reads its partial index (active rows only), never the
        // table with all the undone takedowns.
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM takedowns WHERE active = 1 AND path IS NOT NULL) \
             OR EXISTS (SELECT 1 FROM takedowns WHERE active = 1 AND sha256 IS NOT NULL)",
        )?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    fn hit(&self, archive_id: i64, paths: &[&str], sha256: &Digest) -> Result<Option<Hit>> {
        let (Some(first), second) = (paths.first(), paths.get(1)) else {
            return Err(corrupt("a takedown probe without a path".into()));
        };
        let conn = self.conn()?;
        // One statement, both partial indexes: with no takedown in force, two probes of
        // empty index pages. Path takedowns come first (UNION ALL keeps the order).
        let mut stmt = conn.prepare_cached(
            "SELECT id, status, reason FROM takedowns \
               WHERE active = 1 AND path IS NOT NULL AND archive_id = ?1 AND path IN (?2, ?3) \
             UNION ALL SELECT id, status, reason FROM takedowns \
               WHERE active = 1 AND sha256 IS NOT NULL AND sha256 = ?4 \
             LIMIT 1",
        )?;
        let found = stmt
            .query_row(params![archive_id, first, second.unwrap_or(first), &sha256.as_bytes()[..]], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
            })
            .optional()?;
        found.map(|(id, code, reason)| Ok(Hit { id, status: status(code)?, reason })).transpose()
    }

    fn contents(&self, archive: &ArchiveName, path: &RelPath) -> Result<Option<Vec<Digest>>> {
        let conn = self.conn()?;
        let Some(id) = archive_id(&conn, archive)? else { return Ok(None) };
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT sha256 FROM entries WHERE archive_id = ?1 AND path = ?2 AND sha256 IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![id, path.as_str()], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(digest(&row?)?);
        }
        Ok(Some(out))
    }

    fn purged(&self) -> Result<Vec<(Digest, i64)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT sha256, takedown_id FROM takedown_purged ORDER BY sha256")?;
        let mut out = Vec::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.push((digest(&r.get::<_, Vec<u8>>(0)?)?, r.get(1)?));
        }
        Ok(out)
    }
}

/// How many other places a refused purge names.
const SHOW_PATHS: usize = 5;

/// Where files with content `sha256` are, in any snapshot of any archive, at a path that no
/// takedown in force hides (the takedown being added, already inserted, included), as
/// `archive/path`; a few of them. No index by content on entries: the archives holding the
/// bytes are read whole.
fn uncovered_paths(conn: &rusqlite::Connection, sha256: &Digest) -> Result<Vec<String>> {
    let bytes = &sha256.as_bytes()[..];
    let hidden_everywhere: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM takedowns WHERE active = 1 AND sha256 IS NOT NULL AND sha256 = ?1)",
        [bytes],
        |r| r.get(0),
    )?;
    if hidden_everywhere {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT a.name, e.path FROM blob_archives b JOIN archives a ON a.id = b.archive_id \
         JOIN entries e ON e.archive_id = b.archive_id AND e.sha256 = b.sha256 \
         WHERE b.sha256 = ?1 AND b.rows > 0 AND NOT EXISTS (SELECT 1 FROM takedowns t \
           WHERE t.active = 1 AND t.path IS NOT NULL AND t.archive_id = e.archive_id AND t.path = e.path) \
         ORDER BY a.name, e.path",
    )?;
    let mut out = Vec::new();
    let mut rows = stmt.query([bytes])?;
    while let Some(r) = rows.next()? {
        let (archive, path): (String, String) = (r.get(0)?, r.get(1)?);
        out.push(format!("{archive}/{path}"));
        if out.len() == SHOW_PATHS {
            break;
        }
    }
    Ok(out)
}
