//! Turns "the latest manifest" and "what the publisher sent" into the O(changes) commit
//! plan, walking both in path byte order so that neither side is ever held in memory: the
//! latest manifest streams from the catalog, the publisher's side from a `StagedSource`
//! (a sorted vector for local publishes, a disk-backed stage for HTTP commits).
//!
//! A plan takes two walks. The first (`summarize`) checks the new tree's shape, counts and
//! digests it, and collects its directories (the only state kept: O(directories)). The
//! second (`PlannedChanges`, a `ChangeSource`) runs inside the commit's transaction and
//! yields the upserts and removals.

use std::collections::BTreeSet;

use crate::catalog::{Catalog, CatalogError, Change, ChangeSource, CommitPlan, Snapshot};
use crate::domain::{ArchiveName, RelPath, SnapshotId};
use crate::manifest::{Content, DigestBuilder, ManifestEntry};

/// What the publisher says about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    Put(Content),
    Remove,
}

/// Whether the publisher sent the whole new tree or changes to the latest snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Changes,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The publisher's input is wrong (a 400 over HTTP).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

pub type StagedIter<'a> = Box<dyn Iterator<Item = Result<(RelPath, Staged), CatalogError>> + 'a>;

/// The publisher's side of a plan, readable any number of times in path byte order
/// (directories are never staged: they are derived).
pub trait StagedSource: Sync {
    fn sorted(&self) -> StagedIter<'_>;
}

/// A staged side held in memory (local publishes, whose scan is in memory anyway).
pub struct MemoryStaged(Vec<(RelPath, Staged)>);

impl MemoryStaged {
    /// Files and symlinks of a full tree, in any order.
    pub fn full(entries: impl IntoIterator<Item = ManifestEntry>) -> Self {
        let mut v: Vec<(RelPath, Staged)> = entries
            .into_iter()
            .filter(|e| e.content != Content::Dir)
            .map(|e| (e.path, Staged::Put(e.content)))
            .collect();
        v.sort_by(|a, b| a.0.as_str().as_bytes().cmp(b.0.as_str().as_bytes()));
        Self(v)
    }
}

impl StagedSource for MemoryStaged {
    fn sorted(&self) -> StagedIter<'_> {
        Box::new(self.0.iter().cloned().map(Ok))
    }
}

/// The result of the first walk.
#[derive(Debug, Clone)]
pub struct Summary {
    pub plan: CommitPlan,
    /// The snapshot the plan was computed against (named in error messages).
    pub base: Option<SnapshotId>,
    /// Every directory of the new tree.
    pub dirs: BTreeSet<String>,
}

impl Summary {
    /// The new tree has the same files and symlinks as `latest`.
    pub fn unchanged_from(&self, latest: Option<&Snapshot>) -> bool {
        latest.is_some_and(|l| l.digest == self.plan.digest)
    }
}

/// First walk: shape, counts, digest and directories of the new tree.
pub fn summarize(
    catalog: &dyn Catalog,
    archive: &ArchiveName,
    latest: Option<&Snapshot>,
    staged: &dyn StagedSource,
    mode: Mode,
    source: serde_json::Value,
) -> Result<Summary, PlanError> {
    let base_seq = latest.map_or(0, |s| s.key.seq);
    let base = latest.map(|s| s.id);
    let mut plan = CommitPlan {
        base_seq,
        digest: crate::domain::Digest::of(b""),
        files: 0,
        bytes: 0,
        added: 0,
        changed: 0,
        removed: 0,
        source,
    };
    let mut digest = DigestBuilder::new();
    let mut dirs = BTreeSet::new();
    let mut shape = ShapeCheck::default();
    let at = Base { seq: base_seq, id: base };
    walk(catalog, archive, at, staged, mode, None, &mut |path, live, next| {
        let live = live.filter(|c| **c != Content::Dir);
        match (live, next) {
            (Some(_), None) => plan.removed += 1,
            (None, None) => {}
            (live, Some(next)) => {
                shape.visit(path)?;
                digest.push(path, next);
                plan.files += 1;
                plan.bytes += next.size();
                match live {
                    None => plan.added += 1,
                    Some(old) if old != next => plan.changed += 1,
                    Some(_) => {}
                }
                // Innermost first: once a directory is known, so are those above it.
                let ancestors: Vec<&str> = path.ancestors().collect();
                for a in ancestors.into_iter().rev() {
                    if dirs.contains(a) {
                        break;
                    }
                    dirs.insert(a.to_string());
                }
            }
        }
        Ok(())
    })?;
    if plan.files == 0 {
        return Err(PlanError::Invalid("a snapshot needs at least one file".into()));
    }
    plan.digest = digest.finish();
    Ok(Summary { plan, base, dirs })
}

/// Second walk, run by the catalog inside the commit: the upserts and removals.
pub struct PlannedChanges<'a> {
    pub catalog: &'a dyn Catalog,
    pub archive: &'a ArchiveName,
    pub staged: &'a dyn StagedSource,
    pub mode: Mode,
    pub summary: &'a Summary,
}

impl ChangeSource for PlannedChanges<'_> {
    fn for_each(&self, f: &mut dyn FnMut(Change) -> Result<(), CatalogError>) -> Result<(), CatalogError> {
        let at = Base { seq: self.summary.plan.base_seq, id: self.summary.base };
        let dirs = Some(&self.summary.dirs);
        let result = walk(self.catalog, self.archive, at, self.staged, self.mode, dirs, &mut |path, live, next| {
            match next {
                Some(n) if live != Some(n) => {
                    f(Change::Upsert(ManifestEntry { path: path.clone(), content: n.clone() }))?
                }
                None if live.is_some() => f(Change::Remove(path.clone()))?,
                _ => {}
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(PlanError::Catalog(e)) => Err(e),
            // The first walk saw the same input and accepted it.
            Err(PlanError::Invalid(m)) => Err(CatalogError::Corrupt(format!("plan changed between walks: {m}"))),
        }
    }
}

/// Rejects a tree where a path lies below a file or symlink. In path byte order every
/// path that starts with P follows P contiguously, so the candidates for "a file above
/// this path" form a stack of prefixes of the current path.
#[derive(Default)]
struct ShapeCheck {
    stack: Vec<String>,
}

impl ShapeCheck {
    fn visit(&mut self, path: &RelPath) -> Result<(), PlanError> {
        let p = path.as_str();
        while self.stack.last().is_some_and(|top| !p.starts_with(top.as_str())) {
            self.stack.pop();
        }
        if let Some(above) = self.stack.iter().find(|f| p.as_bytes().get(f.len()) == Some(&b'/')) {
            return Err(PlanError::Invalid(format!("{p} is below {above}, which is a file or symlink")));
        }
        self.stack.push(p.to_string());
        Ok(())
    }
}

/// The snapshot a walk compares against.
#[derive(Clone, Copy)]
struct Base {
    seq: u64,
    id: Option<SnapshotId>,
}

type Visit<'v> = dyn FnMut(&RelPath, Option<&Content>, Option<&Content>) -> Result<(), PlanError> + 'v;

/// Walks the latest manifest and the new tree together in path byte order and calls
/// `visit(path, live, next)` for every path on either side. Directories: the live ones
/// are visited only when `dirs` (the new tree's) is given, and then `dirs` supplies the
/// new side; without it, live directories are skipped.
fn walk(
    catalog: &dyn Catalog,
    archive: &ArchiveName,
    base: Base,
    staged: &dyn StagedSource,
    mode: Mode,
    dirs: Option<&BTreeSet<String>>,
    visit: &mut Visit<'_>,
) -> Result<(), PlanError> {
    let mut next = NextSide::new(staged.sorted(), dirs);
    let mut failure: Option<PlanError> = None;
    let mut step = |live: Option<ManifestEntry>, next: &mut NextSide| -> Result<(), PlanError> {
        // Everything the new side has before this live path is new.
        while let Some(path) = next.peek_path()? {
            if live.as_ref().is_some_and(|l| l.path.as_str().as_bytes() <= path.as_bytes()) {
                break;
            }
            let (path, op) = next.take()?.expect("peeked");
            visit_one(&path, None, Some(op), mode, base.id, dirs.is_some(), visit)?;
        }
        let Some(live) = live else { return Ok(()) };
        let op = if next.peek_path()? == Some(live.path.as_str()) { next.take()?.map(|(_, op)| op) } else { None };
        visit_one(&live.path, Some(&live.content), op, mode, base.id, dirs.is_some(), visit)
    };
    let walked = catalog.for_each_live(archive, base.seq, &mut |live| {
        step(Some(live), &mut next).map_err(|e| {
            failure = Some(e);
            CatalogError::Corrupt("walk stopped".into())
        })
    });
    if let Some(f) = failure {
        return Err(f);
    }
    walked?;
    step(None, &mut next)
}

fn visit_one(
    path: &RelPath,
    live: Option<&Content>,
    op: Option<Staged>,
    mode: Mode,
    base: Option<SnapshotId>,
    with_dirs: bool,
    visit: &mut Visit<'_>,
) -> Result<(), PlanError> {
    let next = match (op, live) {
        (Some(Staged::Put(c)), _) => Some(c),
        (Some(Staged::Remove), None) => {
            let base = base.map_or_else(|| "the base snapshot".to_string(), |b| b.to_string());
            return Err(PlanError::Invalid(format!("cannot remove {path}: it is not in {base}")));
        }
        (Some(Staged::Remove), Some(Content::Dir)) => {
            return Err(PlanError::Invalid(format!(
                "cannot remove {path}: it is a directory; remove the files below it"
            )));
        }
        (Some(Staged::Remove), Some(_)) => None,
        (None, Some(Content::Dir)) if !with_dirs => return Ok(()),
        (None, Some(Content::Dir)) => None,
        (None, Some(c)) if mode == Mode::Changes => Some(c.clone()),
        (None, _) => None,
    };
    visit(path, live, next.as_ref())
}

/// The new side of the walk: staged entries merged with the new tree's directories.
struct NextSide<'a> {
    staged: std::iter::Peekable<StagedIter<'a>>,
    dirs: Option<std::iter::Peekable<std::collections::btree_set::Iter<'a, String>>>,
}

impl<'a> NextSide<'a> {
    fn new(staged: StagedIter<'a>, dirs: Option<&'a BTreeSet<String>>) -> Self {
        Self { staged: staged.peekable(), dirs: dirs.map(|d| d.iter().peekable()) }
    }

    fn peek_staged(&mut self) -> Result<Option<&str>, PlanError> {
        if matches!(self.staged.peek(), Some(Err(_)))
            && let Some(Err(e)) = self.staged.next()
        {
            return Err(e.into());
        }
        Ok(self.staged.peek().and_then(|r| r.as_ref().ok()).map(|(p, _)| p.as_str()))
    }

    fn peek_path(&mut self) -> Result<Option<&str>, PlanError> {
        let dir = self.dirs.as_mut().and_then(|d| d.peek().map(|s| s.as_str()));
        let staged = self.peek_staged()?;
        Ok(match (staged, dir) {
            (Some(s), Some(d)) => Some(if d.as_bytes() < s.as_bytes() { d } else { s }),
            (s, d) => s.or(d),
        })
    }

    fn take(&mut self) -> Result<Option<(RelPath, Staged)>, PlanError> {
        let dir = self.dirs.as_mut().and_then(|d| d.peek().map(|s| s.to_string()));
        let staged = self.peek_staged()?.map(str::to_string);
        let take_dir = match (&staged, &dir) {
            (Some(s), Some(d)) => d.as_bytes() < s.as_bytes(),
            (None, Some(_)) => true,
            _ => false,
        };
        if take_dir {
            let d = self.dirs.as_mut().and_then(Iterator::next).expect("peeked");
            let path = RelPath::new(d).map_err(|e| CatalogError::Corrupt(format!("directory {d:?}: {e}")))?;
            return Ok(Some((path, Staged::Put(Content::Dir))));
        }
        Ok(self.staged.next().transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Digest;
    use crate::manifest::content_digest;
    use crate::store::Store;

    fn file(p: &str, data: &str) -> ManifestEntry {
        ManifestEntry {
            path: RelPath::new(p).unwrap(),
            content: Content::File { size: data.len() as u64, sha256: Digest::of(data.as_bytes()) },
        }
    }

    fn changes_of(store: &Store, archive: &ArchiveName, staged: &MemoryStaged) -> (Summary, Vec<Change>) {
        let latest = store.catalog.latest(archive).unwrap();
        let summary =
            summarize(store.catalog.as_ref(), archive, latest.as_ref(), staged, Mode::Full, serde_json::Value::Null)
                .unwrap();
        let planned =
            PlannedChanges { catalog: store.catalog.as_ref(), archive, staged, mode: Mode::Full, summary: &summary };
        let mut out = Vec::new();
        planned
            .for_each(&mut |c| {
                out.push(c);
                Ok(())
            })
            .unwrap();
        (summary, out)
    }

    fn commit(store: &Store, archive: &ArchiveName, entries: Vec<ManifestEntry>) -> (Summary, Vec<Change>) {
        let staged = MemoryStaged::full(entries);
        let (summary, changes) = changes_of(store, archive, &staged);
        store.catalog.commit(archive, &summary.plan, &changes).unwrap();
        (summary, changes)
    }

    #[test]
    fn plan_contains_only_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(tmp.path()).unwrap();
        let a: ArchiveName = "a".parse().unwrap();
        let (first, _) = commit(&store, &a, vec![file("a/x", "1"), file("a/y", "2"), file("b/z", "3")]);
        assert_eq!((first.plan.added, first.plan.files), (3, 3));
        let next = vec![file("a/x", "1"), file("a/y", "changed"), file("c/new", "4")];
        let digest = content_digest(&next);
        let (summary, changes) = changes_of(&store, &a, &MemoryStaged::full(next));
        let shown: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Upsert(e) => format!("+{}", e.path),
                Change::Remove(p) => format!("-{p}"),
            })
            .collect();
        assert_eq!(shown, ["+a/y", "-b", "-b/z", "+c", "+c/new"]);
        assert_eq!((summary.plan.added, summary.plan.changed, summary.plan.removed), (1, 1, 1));
        assert_eq!(summary.plan.files, 3);
        assert_eq!(summary.plan.digest, digest);
    }

    #[test]
    fn paths_below_files_are_refused_whatever_lies_between() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(tmp.path()).unwrap();
        let a: ArchiveName = "a".parse().unwrap();
        // "p-x" and "p.y" sort between "p" and "p/z".
        let staged = MemoryStaged::full(vec![file("p", "1"), file("p-x", "2"), file("p.y", "3"), file("p/z", "4")]);
        let err =
            summarize(store.catalog.as_ref(), &a, None, &staged, Mode::Full, serde_json::Value::Null).unwrap_err();
        assert_eq!(err.to_string(), "p/z is below p, which is a file or symlink");
        let ok = MemoryStaged::full(vec![file("p", "1"), file("p-x/a", "2"), file("pq/z", "4")]);
        summarize(store.catalog.as_ref(), &a, None, &ok, Mode::Full, serde_json::Value::Null).unwrap();
    }
}
