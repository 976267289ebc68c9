//! A disk-backed stage for what a publisher sends over HTTP: entries go into a temporary
//! SQLite file in any order and come back in path byte order, in pages, so that a commit
//! of a million entries needs no more memory than one of a thousand. The file is deleted
//! when the stage is dropped.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::plan::{Staged, StagedIter, StagedSource};
use crate::catalog::CatalogError;
use crate::domain::{Digest, RelPath};
use crate::manifest::Content;

/// Rows fetched per page when reading the stage back.
const PAGE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{0}")]
    Invalid(String),
    #[error("staging area: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("staging area: {0}")]
    Io(#[from] std::io::Error),
}

pub struct DiskStaging {
    conn: Mutex<Connection>,
    entries: u64,
    _file: tempfile::TempPath,
}

impl DiskStaging {
    /// A new, empty stage in `dir` (on the data disk, not in a possibly RAM-backed /tmp).
    pub fn new(dir: &Path) -> Result<Self, StageError> {
        std::fs::create_dir_all(dir)?;
        let file = tempfile::Builder::new().prefix("stage-").suffix(".db").tempfile_in(dir)?.into_temp_path();
        let conn = Connection::open(&file)?;
        // Scratch data: a crash simply loses it, so no journal and no fsync. A bounded
        // page cache keeps memory flat however large the stage grows, and the blob list is
        // kept sorted by an index in this file as entries arrive: reading it back needs no
        // sort, whose temp files SQLite would put in /tmp rather than on the data disk.
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE; \
             PRAGMA cache_size = -16384; \
             CREATE TABLE staged (path TEXT PRIMARY KEY, op INTEGER NOT NULL, kind INTEGER, size INTEGER, \
                                  sha256 BLOB, target TEXT) WITHOUT ROWID; \
             CREATE INDEX staged_blobs ON staged (sha256, size) WHERE op = 0 AND kind = 0; \
             BEGIN;",
        )?;
        Ok(Self { conn: Mutex::new(conn), entries: 0, _file: file })
    }

    /// Adds one path; a path staged twice is refused.
    pub fn insert(&mut self, path: &RelPath, staged: &Staged) -> Result<(), StageError> {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached(
            "INSERT INTO staged (path, op, kind, size, sha256, target) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let (op, kind, size, sha, target) = match staged {
            Staged::Remove => (1, None, None, None, None),
            Staged::Put(c) => (
                0,
                Some(c.kind_code()),
                Some(c.size() as i64),
                c.digest().map(|d| d.as_bytes().to_vec()),
                match c {
                    Content::Symlink { target } => Some(target.as_str()),
                    _ => None,
                },
            ),
        };
        match stmt.execute(params![path.as_str(), op, kind, size, sha, target]) {
            Ok(_) => {
                self.entries += 1;
                Ok(())
            }
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StageError::Invalid(format!("{path} is listed twice")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ends the writing phase (commits the bulk-insert transaction).
    pub fn seal(&mut self) -> Result<(), StageError> {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if !conn.is_autocommit() {
            conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Every distinct blob a staged file names, with its size, in digest order; a digest
    /// given two sizes is refused.
    pub fn for_each_blob(&self, f: &mut dyn FnMut(Digest, u64) -> Result<(), StageError>) -> Result<(), StageError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt =
            conn.prepare("SELECT DISTINCT sha256, size FROM staged WHERE op = 0 AND kind = 0 ORDER BY sha256")?;
        let mut rows = stmt.query([])?;
        let mut previous: Option<(Digest, u64)> = None;
        while let Some(r) = rows.next()? {
            let sha: Vec<u8> = r.get(0)?;
            let size = r.get::<_, i64>(1)? as u64;
            let digest =
                Digest::from_slice(&sha).ok_or_else(|| StageError::Invalid("staged digest is not 32 bytes".into()))?;
            if let Some((d, s)) = previous
                && d == digest
            {
                return Err(StageError::Invalid(format!("blob {digest} is given two sizes, {s} and {size}")));
            }
            if let Some((d, s)) = previous.take() {
                f(d, s)?;
            }
            previous = Some((digest, size));
        }
        if let Some((d, s)) = previous {
            f(d, s)?;
        }
        Ok(())
    }

    fn page(&self, after: Option<&str>) -> Result<Vec<(RelPath, Staged)>, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let fail = |e: rusqlite::Error| CatalogError::Corrupt(format!("staging area: {e}"));
        let mut stmt = conn
            .prepare_cached(
                "SELECT path, op, kind, size, sha256, target FROM staged WHERE ?1 IS NULL OR path > ?1 \
                 ORDER BY path LIMIT ?2",
            )
            .map_err(fail)?;
        let mut rows = stmt.query(params![after, PAGE as i64]).map_err(fail)?;
        let mut out = Vec::with_capacity(PAGE);
        while let Some(r) = rows.next().map_err(fail)? {
            out.push(staged_from_row(r).map_err(fail)??);
        }
        Ok(out)
    }
}

fn staged_from_row(r: &rusqlite::Row) -> rusqlite::Result<Result<(RelPath, Staged), CatalogError>> {
    let path: String = r.get(0)?;
    let op: i64 = r.get(1)?;
    let kind: Option<i64> = r.get(2)?;
    let size: Option<i64> = r.get(3)?;
    let sha: Option<Vec<u8>> = r.get(4)?;
    let target: Option<String> = r.get(5)?;
    let bad = |m: &str| CatalogError::Corrupt(format!("staged {path:?}: {m}"));
    Ok((|| {
        let rel = RelPath::new(&path).map_err(|e| bad(&e.to_string()))?;
        let staged = match (op, kind, sha, target) {
            (1, ..) => Staged::Remove,
            (0, Some(0), Some(sha), _) => Staged::Put(Content::File {
                size: size.unwrap_or(0) as u64,
                sha256: Digest::from_slice(&sha).ok_or_else(|| bad("digest is not 32 bytes"))?,
            }),
            (0, Some(1), _, Some(target)) => Staged::Put(Content::Symlink { target }),
            _ => return Err(bad("unknown row")),
        };
        Ok((rel, staged))
    })())
}

impl StagedSource for DiskStaging {
    fn sorted(&self) -> StagedIter<'_> {
        let mut buffer = std::collections::VecDeque::new();
        let mut last: Option<String> = None;
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if buffer.is_empty() && !done {
                match self.page(last.as_deref()) {
                    Ok(page) => {
                        done = page.len() < PAGE;
                        last = page.last().map(|(p, _)| p.as_str().to_string());
                        buffer.extend(page);
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
            }
            buffer.pop_front().map(Ok)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comes_back_sorted_by_bytes_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = DiskStaging::new(dir.path()).unwrap();
        let names: Vec<String> = (0..10_000)
            .rev()
            .map(|i| format!("d{}/f{i}", i % 7))
            .chain(["p-x".into(), "p/z".into(), "p".into()])
            .collect();
        for n in &names {
            let c = Content::File { size: 1, sha256: Digest::of(n.as_bytes()) };
            s.insert(&RelPath::new(n).unwrap(), &Staged::Put(c)).unwrap();
        }
        let dup = s.insert(&RelPath::new("p").unwrap(), &Staged::Remove).unwrap_err();
        assert_eq!(dup.to_string(), "p is listed twice");
        s.seal().unwrap();
        let got: Vec<String> = s.sorted().map(|r| r.unwrap().0.as_str().to_string()).collect();
        let mut want = names.clone();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, want);
        let mut blobs = 0;
        s.for_each_blob(&mut |_, _| {
            blobs += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(blobs, names.len());
        // Read back through the index: no temp b-tree (whose files would go to /tmp).
        let conn = s.conn.lock().unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT DISTINCT sha256, size FROM staged WHERE op = 0 AND kind = 0 ORDER BY sha256",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(plan.iter().all(|p| !p.contains("TEMP B-TREE")), "{plan:?}");
        assert!(plan.iter().any(|p| p.contains("staged_blobs")), "{plan:?}");
    }
}
