//! A commit's changes sent in batches of arrays: each batch closes its paths' live rows in
//! one `UPDATE`, counts its blobs in one `INSERT … ON CONFLICT` and opens its new rows in one
//! `INSERT … SELECT FROM unnest(…)`, three round trips per thousand changes rather than three
//! per change.

use std::collections::{HashMap, HashSet};

use postgres::Transaction;

use super::rows::bad;
use crate::catalog::rules::parent_hash;
use crate::catalog::{Change, ChangeSource, Result};
use crate::domain::Digest;
use crate::manifest::{Content, ManifestEntry};

const BATCH: usize = 1000;

/// Closes the intervals the changes end and opens the new ones, keeping `blob_archives`.
pub(super) fn apply_changes(
    tx: &mut Transaction<'_>,
    archive_id: i64,
    seq: i64,
    prev_seq: u64,
    changes: &dyn ChangeSource,
) -> Result<()> {
    let mut batch = Batch::default();
    changes.for_each(&mut |change| {
        let path = match &change {
            Change::Remove(p) => p.as_str(),
            Change::Upsert(e) => e.path.as_str(),
        };
        // One change per path per batch: a second one must see the first applied.
        if batch.paths.contains(path) || batch.len() >= BATCH {
            std::mem::take(&mut batch).send(tx, archive_id, seq, prev_seq)?;
        }
        batch.add(change);
        Ok(())
    })?;
    batch.send(tx, archive_id, seq, prev_seq)
}

#[derive(Default)]
struct Batch {
    paths: HashSet<String>,
    removed: Vec<String>,
    upserts: Vec<ManifestEntry>,
}

impl Batch {
    fn len(&self) -> usize {
        self.paths.len()
    }

    fn add(&mut self, change: Change) {
        match change {
            Change::Remove(p) => {
                self.paths.insert(p.as_str().to_owned());
                self.removed.push(p.as_str().to_owned());
            }
            Change::Upsert(e) => {
                self.paths.insert(e.path.as_str().to_owned());
                self.upserts.push(e);
            }
        }
    }

    fn send(self, tx: &mut Transaction<'_>, archive_id: i64, seq: i64, prev_seq: u64) -> Result<()> {
        if self.paths.is_empty() {
            return Ok(());
        }
        self.close_removed(tx, archive_id, seq, prev_seq)?;
        let upserted: Vec<&str> = self.upserts.iter().map(|e| e.path.as_str()).collect();
        tx.execute(
            "UPDATE entries SET last_seq = $3 WHERE archive_id = $1 AND path = ANY($2) AND last_seq IS NULL",
            &[&archive_id, &upserted, &seq],
        )?;
        self.hold_blobs(tx, archive_id)?;
        self.open_rows(tx, archive_id, seq)
    }

    /// Every removed path must be live in the previous snapshot.
    fn close_removed(&self, tx: &mut Transaction<'_>, archive_id: i64, seq: i64, prev_seq: u64) -> Result<()> {
        if self.removed.is_empty() {
            return Ok(());
        }
        let closed: HashSet<String> = tx
            .query(
                "UPDATE entries SET last_seq = $3 WHERE archive_id = $1 AND path = ANY($2) AND last_seq IS NULL \
                 RETURNING path",
                &[&archive_id, &self.removed, &seq],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        match self.removed.iter().find(|p| !closed.contains(*p)) {
            Some(path) => Err(bad(format!("cannot remove {path}: it is not in snapshot #{prev_seq}"))),
            None => Ok(()),
        }
    }

    /// One more row referencing each blob (counted per blob, since one statement may not
    /// update a row twice).
    fn hold_blobs(&self, tx: &mut Transaction<'_>, archive_id: i64) -> Result<()> {
        let mut held: HashMap<Digest, (i64, i64)> = HashMap::new();
        for e in &self.upserts {
            if let Content::File { sha256, size } = &e.content {
                held.entry(*sha256).or_insert((0, *size as i64)).0 += 1;
            }
        }
        if held.is_empty() {
            return Ok(());
        }
        let digests: Vec<&[u8]> = held.keys().map(|d| &d.as_bytes()[..]).collect();
        let (rows, sizes): (Vec<i64>, Vec<i64>) = held.values().copied().unzip();
        tx.execute(
            "INSERT INTO blob_archives (sha256, archive_id, rows, size) \
             SELECT d, $2, n, s FROM unnest($1::bytea[], $3::bigint[], $4::bigint[]) AS t(d, n, s) \
             ON CONFLICT (sha256, archive_id) DO UPDATE SET rows = blob_archives.rows + EXCLUDED.rows",
            &[&digests, &archive_id, &rows, &sizes],
        )?;
        Ok(())
    }

    fn open_rows(&self, tx: &mut Transaction<'_>, archive_id: i64, seq: i64) -> Result<()> {
        if self.upserts.is_empty() {
            return Ok(());
        }
        let n = self.upserts.len();
        let (mut paths, mut parents, mut kinds, mut sizes, mut shas, mut targets) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in &self.upserts {
            paths.push(e.path.as_str());
            parents.push(parent_hash(e.path.parent()));
            kinds.push(e.content.kind_code() as i16);
            sizes.push(e.content.size() as i64);
            let (sha, target): (Option<&[u8]>, Option<&str>) = match &e.content {
                Content::File { sha256, .. } => (Some(&sha256.as_bytes()[..]), None),
                Content::Symlink { target } => (None, Some(target.as_str())),
                Content::Dir => (None, None),
            };
            shas.push(sha);
            targets.push(target);
        }
        tx.execute(
            "INSERT INTO entries (archive_id, path, first_seq, last_seq, parent_hash, kind, size, sha256, target) \
             SELECT $1, p, $2, NULL, h, k, s, d, t \
             FROM unnest($3::text[], $4::bigint[], $5::smallint[], $6::bigint[], $7::bytea[], $8::text[]) \
             AS u(p, h, k, s, d, t)",
            &[&archive_id, &seq, &paths, &parents, &kinds, &sizes, &shas, &targets],
        )?;
        Ok(())
    }
}
