//! `TakedownStore` on PostgreSQL (schema/postgres/0004_takedowns.sql). SQLite serializes
//! takedown writes, and a purge's check against commits, with its one write lock; here
//! takedown writes take a self-exclusive lock on `takedowns`, and a purge also a `SHARE`
//! lock on `blob_archives`, so that no commit can put the bytes at a new path between the
//! check and the purge.

use std::collections::HashMap;

use postgres::{GenericClient, Row, Transaction};

use super::PgCatalog;
use super::rows::bad;
use crate::catalog::Result;
use crate::domain::{ArchiveName, Digest, RelPath};
use crate::takedown::{Action, Added, Event, Hit, State, Status, Takedown, TakedownStore, Target, Undone};

/// How many other places a refused purge names (as on SQLite).
const SHOW_PATHS: i64 = 5;

fn digest(bytes: &[u8]) -> Result<Digest> {
    Digest::from_slice(bytes).ok_or_else(|| bad(format!("a takedown digest of {} bytes", bytes.len())))
}

fn status(code: i16) -> Result<Status> {
    u16::try_from(code).ok().and_then(Status::from_code).ok_or_else(|| bad(format!("takedown status {code}")))
}

fn archive_id(c: &mut impl GenericClient, archive: &ArchiveName) -> Result<Option<i64>> {
    let row = c.query_opt("SELECT id FROM archives WHERE name = $1", &[&archive.as_str()])?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

fn log(tx: &mut Transaction<'_>, id: i64, action: Action, actor: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO takedown_log (takedown_id, action, actor, at) VALUES ($1, $2, $3, $4)",
        &[&id, &action.as_str(), &actor, &now],
    )?;
    Ok(())
}

const TAKEDOWN_COLUMNS: &str = "SELECT t.id, a.name, t.path, t.sha256, t.status, t.reason, t.active, t.purged \
     FROM takedowns t LEFT JOIN archives a ON a.id = t.archive_id";

fn takedown_from_row(r: &Row) -> Result<Takedown> {
    let archive: Option<&str> = r.try_get(1)?;
    let path: Option<&str> = r.try_get(2)?;
    let sha256: Option<&[u8]> = r.try_get(3)?;
    let (active, purged): (bool, bool) = (r.try_get(6)?, r.try_get(7)?);
    Ok(Takedown {
        id: r.try_get(0)?,
        archive: archive.map(|a| a.parse().map_err(|e| bad(format!("archive name {a:?}: {e}")))).transpose()?,
        path: path.map(|p| RelPath::new(p).map_err(|e| bad(format!("takedown path {p:?}: {e}")))).transpose()?,
        sha256: sha256.map(digest).transpose()?,
        status: status(r.try_get(4)?)?,
        reason: r.try_get(5)?,
        state: State::from_flags(active, purged),
        log: Vec::new(),
    })
}

fn events(c: &mut impl GenericClient, id: Option<i64>) -> Result<HashMap<i64, Vec<Event>>> {
    let rows = c.query(
        "SELECT takedown_id, action, actor, at FROM takedown_log WHERE $1::BIGINT IS NULL OR takedown_id = $1 \
         ORDER BY seq",
        &[&id],
    )?;
    let mut out: HashMap<i64, Vec<Event>> = HashMap::new();
    for r in rows {
        let action: &str = r.try_get(1)?;
        let at: i64 = r.try_get(3)?;
        out.entry(r.try_get(0)?).or_default().push(Event {
            action: Action::parse(action).ok_or_else(|| bad(format!("takedown log action {action:?}")))?,
            actor: r.try_get(2)?,
            at: chrono::DateTime::from_timestamp(at, 0).ok_or_else(|| bad(format!("takedown log time {at}")))?,
        });
    }
    Ok(out)
}

fn takedowns(c: &mut impl GenericClient, id: Option<i64>) -> Result<Vec<Takedown>> {
    let rows = c.query(&format!("{TAKEDOWN_COLUMNS} WHERE $1::BIGINT IS NULL OR t.id = $1 ORDER BY t.id"), &[&id])?;
    let mut out = rows.iter().map(takedown_from_row).collect::<Result<Vec<_>>>()?;
    let mut log = events(c, id)?;
    for t in &mut out {
        t.log = log.remove(&t.id).unwrap_or_default();
    }
    Ok(out)
}

fn one(c: &mut impl GenericClient, id: i64) -> Result<Takedown> {
    takedowns(c, Some(id))?.pop().ok_or_else(|| bad(format!("takedown {id} vanished")))
}

/// The active takedown of the same target, if any.
fn existing(tx: &mut Transaction<'_>, archive_id: Option<i64>, target: &Target) -> Result<Option<i64>> {
    let row = match target {
        Target::Path { path, .. } => tx.query_opt(
            "SELECT id FROM takedowns WHERE active AND archive_id = $1 AND path = $2",
            &[&archive_id, &path.as_str()],
        )?,
        Target::Sha256(d) => {
            tx.query_opt("SELECT id FROM takedowns WHERE active AND sha256 = $1", &[&&d.as_bytes()[..]])?
        }
    };
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Where files with content `sha256` are, in any snapshot of any archive, at a path no
/// takedown in force hides, as `archive/path`; a few of them.
fn uncovered_paths(tx: &mut Transaction<'_>, sha256: &Digest) -> Result<Vec<String>> {
    let bytes = &sha256.as_bytes()[..];
    let hidden_everywhere: bool =
        tx.query_one("SELECT EXISTS (SELECT 1 FROM takedowns WHERE active AND sha256 = $1)", &[&bytes])?.try_get(0)?;
    if hidden_everywhere {
        return Ok(Vec::new());
    }
    let rows = tx.query(
        "SELECT DISTINCT a.name, e.path FROM blob_archives b JOIN archives a ON a.id = b.archive_id \
         JOIN entries e ON e.archive_id = b.archive_id AND e.sha256 = b.sha256 \
         WHERE b.sha256 = $1 AND b.rows > 0 AND NOT EXISTS (SELECT 1 FROM takedowns t \
           WHERE t.active AND t.path IS NOT NULL AND t.archive_id = e.archive_id AND t.path = e.path) \
         ORDER BY a.name, e.path LIMIT $2",
        &[&bytes, &SHOW_PATHS],
    )?;
    rows.iter().map(|r| Ok(format!("{}/{}", r.try_get::<_, &str>(0)?, r.try_get::<_, &str>(1)?))).collect()
}

impl TakedownStore for PgCatalog {
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
        let mut tx = conn.transaction()?;
        tx.batch_execute("LOCK TABLE takedowns IN SHARE ROW EXCLUSIVE MODE")?;
        if !purge.is_empty() {
            tx.batch_execute("LOCK TABLE blob_archives IN SHARE MODE")?;
        }
        let (archive_id, path, sha256) = match target {
            Target::Path { archive, path } => match archive_id(&mut tx, archive)? {
                Some(id) => (Some(id), Some(path.as_str()), None),
                None => return Ok(Added::NoArchive),
            },
            Target::Sha256(d) => (None, None, Some(&d.as_bytes()[..])),
        };
        if let Some(id) = existing(&mut tx, archive_id, target)? {
            return Ok(Added::Exists(id));
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO takedowns (archive_id, path, sha256, status, reason, created_at, created_by, purged) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[&archive_id, &path, &sha256, &(status.code() as i16), &reason, &now, &actor, &!purge.is_empty()],
            )?
            .try_get(0)?;
        log(&mut tx, id, Action::Takedown, actor, now)?;
        // Checked with the new takedown in force: dropping the transaction on refusal
        // records nothing.
        for d in purge {
            let paths = uncovered_paths(&mut tx, d)?;
            if !paths.is_empty() {
                return Ok(Added::StillServed { digest: *d, paths });
            }
        }
        if !purge.is_empty() {
            for d in purge {
                tx.execute(
                    "INSERT INTO takedown_purged (sha256, takedown_id) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING",
                    &[&&d.as_bytes()[..], &id],
                )?;
            }
            log(&mut tx, id, Action::Purge, actor, now)?;
        }
        let takedown = one(&mut tx, id)?;
        tx.commit()?;
        Ok(Added::Added(takedown))
    }

    fn undo(&self, id: i64, actor: &str, now: i64) -> Result<Undone> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.batch_execute("LOCK TABLE takedowns IN SHARE ROW EXCLUSIVE MODE")?;
        let row = tx.query_opt("SELECT active, purged FROM takedowns WHERE id = $1", &[&id])?;
        match row.map(|r| Ok::<_, crate::catalog::CatalogError>((r.try_get(0)?, r.try_get(1)?))).transpose()? {
            None => return Ok(Undone::NoSuch),
            Some((_, true)) => return Ok(Undone::Purged),
            Some((false, _)) => return Ok(Undone::AlreadyUndone),
            Some((true, false)) => {}
        }
        // Another takedown may have purged the same bytes: serving them again would serve nothing.
        let hides_purged: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM takedowns t JOIN takedown_purged p ON p.sha256 = t.sha256 \
                                WHERE t.id = $1) \
                 OR EXISTS (SELECT 1 FROM takedowns t JOIN entries e ON e.archive_id = t.archive_id \
                            AND e.path = t.path JOIN takedown_purged p ON p.sha256 = e.sha256 WHERE t.id = $1)",
                &[&id],
            )?
            .try_get(0)?;
        if hides_purged {
            return Ok(Undone::Purged);
        }
        tx.execute("UPDATE takedowns SET active = false WHERE id = $1", &[&id])?;
        log(&mut tx, id, Action::Undo, actor, now)?;
        let takedown = one(&mut tx, id)?;
        tx.commit()?;
        Ok(Undone::Undone(takedown))
    }

    fn list(&self) -> Result<Vec<Takedown>> {
        takedowns(&mut *self.conn()?, None)
    }

    fn any_active(&self) -> Result<bool> {
        let row = self.conn()?.query_one("SELECT EXISTS (SELECT 1 FROM takedowns WHERE active)", &[])?;
        Ok(row.try_get(0)?)
    }

    fn hit(&self, archive_id: i64, paths: &[&str], sha256: &Digest) -> Result<Option<Hit>> {
        let (Some(first), second) = (paths.first(), paths.get(1)) else {
            return Err(bad("a takedown probe without a path"));
        };
        // Path takedowns first.
        let row = self.conn()?.query_opt(
            "SELECT id, status, reason FROM ( \
               SELECT 0 AS rank, id, status, reason FROM takedowns \
                 WHERE active AND path IS NOT NULL AND archive_id = $1 AND path IN ($2, $3) \
               UNION ALL SELECT 1, id, status, reason FROM takedowns \
                 WHERE active AND sha256 IS NOT NULL AND sha256 = $4) AS hits \
             ORDER BY rank LIMIT 1",
            &[&archive_id, first, second.unwrap_or(first), &&sha256.as_bytes()[..]],
        )?;
        row.map(|r| Ok(Hit { id: r.try_get(0)?, status: status(r.try_get(1)?)?, reason: r.try_get(2)? })).transpose()
    }

    fn contents(&self, archive: &ArchiveName, path: &RelPath) -> Result<Option<Vec<Digest>>> {
        let mut conn = self.conn()?;
        let Some(id) = archive_id(&mut *conn, archive)? else { return Ok(None) };
        let rows = conn.query(
            "SELECT DISTINCT sha256 FROM entries WHERE archive_id = $1 AND path = $2 AND sha256 IS NOT NULL \
             ORDER BY sha256",
            &[&id, &path.as_str()],
        )?;
        rows.iter().map(|r| digest(r.try_get(0)?)).collect::<Result<Vec<_>>>().map(Some)
    }

    fn purged(&self) -> Result<Vec<(Digest, i64)>> {
        let rows = self.conn()?.query("SELECT sha256, takedown_id FROM takedown_purged ORDER BY sha256", &[])?;
        rows.iter().map(|r| Ok((digest(r.try_get(0)?)?, r.try_get(1)?))).collect()
    }
}
