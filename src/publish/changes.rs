//! `publish --changes`: a publish whose cost follows the change, not the archive. The
//! publisher lists the paths added, changed or removed since the latest snapshot; only those
//! are looked at in the tree, and the plan merges them with the live manifest, streamed in
//! path order, into exactly the snapshot a full publish of the same tree would make.
//!
//! Nothing walks the tree and nothing holds the live manifest: memory is O(changes). The
//! live manifest is still read once, streamed, because the snapshot's content digest
//! (`manifest::DigestBuilder`) is a sequential hash over every entry in path order, and its
//! definition must not change (existing snapshots are verified against it). That stream is
//! the one O(archive) part left: 0.34 s for 60,033 live entries on a loaded 2-core machine
//! (docs/operations.md), against 0.32 s to hash 1,733 listed files. It is what keeps the
//! time from being flat as the archive grows; an incremental digest would need a new
//! definition, which existing snapshots rule out.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Instant;

use rayon::prelude::*;
use rustix::fs::FileType;

use super::tree::DirCursor;
use super::{PublishError, PublishOptions, PublishReport, ScanError, TreeRoot};
use crate::blob::BlobBatch;
use crate::catalog::{CatalogError, Change, CommitPlan, Snapshot};
use crate::domain::{ArchiveName, RelPath};
use crate::manifest::{Content, DigestBuilder, ManifestEntry};
use crate::store::Store;

/// Said when an archive has no snapshot yet: a change list needs something to change.
pub const NO_BASE: &str = "--changes needs a previous snapshot; publish the whole tree first";

/// One path of a change list, with the line it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub line: usize,
    pub path: RelPath,
}

/// Reads a change list: one path per line, relative to the tree (a leading `./`, as `find .`
/// writes, is dropped); blank lines and lines starting with `#` are ignored, and a path
/// listed twice counts once. Sorted by path bytes, the order every plan walks in.
pub fn parse_list(reader: impl BufRead) -> Result<Vec<Listed>, PublishError> {
    let mut by_path: BTreeMap<Vec<u8>, Listed> = BTreeMap::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let bytes = line.map_err(|e| PublishError::Invalid(format!("line {n}: {e}")))?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| PublishError::Invalid(format!("line {n}: not valid UTF-8")))?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            continue;
        }
        let raw = text.strip_prefix("./").unwrap_or(text);
        let path = RelPath::new(raw).map_err(|e| {
            let shown: String = text.chars().take(120).collect();
            PublishError::Invalid(format!("line {n}: invalid path {shown:?}: {e}"))
        })?;
        by_path.entry(path.as_str().as_bytes().to_vec()).or_insert(Listed { line: n, path });
    }
    Ok(by_path.into_values().collect())
}

/// What a listed path is now in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    File,
    Symlink(String),
    /// A directory: only meaningful where the latest snapshot had a file (now removed).
    Dir,
    Absent,
}

/// Looks at one listed path through `cursor` (no symlink followed on the way), checking a
/// symlink's target as the scan of a full publish would.
pub fn look(cursor: &mut DirCursor, path: &RelPath) -> Result<Found, PublishError> {
    let Some(st) = cursor.lstat(path)? else { return Ok(Found::Absent) };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(Found::File),
        FileType::Directory => Ok(Found::Dir),
        FileType::Symlink => {
            let raw = cursor.read_link(path)?;
            let target = raw
                .to_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ScanError::BadTarget { path: path.clone(), target: raw.clone().into() })?
                .to_string();
            if path.resolve_link(&target).is_none() {
                return Err(ScanError::EscapingSymlink { path: path.clone(), target }.into());
            }
            Ok(Found::Symlink(target))
        }
        FileType::Fifo => Err(ScanError::Unsupported { path: path.clone(), kind: "named pipe" }.into()),
        FileType::Socket => Err(ScanError::Unsupported { path: path.clone(), kind: "socket" }.into()),
        FileType::CharacterDevice | FileType::BlockDevice => {
            Err(ScanError::Unsupported { path: path.clone(), kind: "device" }.into())
        }
        FileType::Unknown => Err(ScanError::Unsupported { path: path.clone(), kind: "special file" }.into()),
    }
}

/// A listed path and what the new tree has there.
#[derive(Debug, Clone)]
pub struct Op {
    pub line: usize,
    pub path: RelPath,
    pub next: Next,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Put(Content),
    Dir,
    Absent,
}

/// Looks at every listed path and stores the bytes of the files among them, in parallel.
fn ingest_listed(
    store: &Store,
    root: &TreeRoot,
    listed: &[Listed],
    blobs: &dyn BlobBatch,
    progress: &dyn super::Progress,
) -> Result<Vec<Op>, PublishError> {
    let mut cursor = root.cursor();
    let found: Vec<(&Listed, Found)> =
        listed.iter().map(|l| look(&mut cursor, &l.path).map(|f| (l, f))).collect::<Result<_, _>>()?;
    found
        .par_iter()
        .map_init(
            || root.cursor(),
            |cursor, (l, found)| {
                let next = match found {
                    Found::File => {
                        let content = ingest_one(store, cursor, &l.path, blobs)?;
                        progress.advance(content.size());
                        Next::Put(content)
                    }
                    Found::Symlink(target) => Next::Put(Content::Symlink { target: target.clone() }),
                    Found::Dir => Next::Dir,
                    Found::Absent => Next::Absent,
                };
                Ok(Op { line: l.line, path: l.path.clone(), next })
            },
        )
        .collect()
}

/// Stores a listed file. Unlike a full publish there is no set of the live manifest's
/// digests to answer "may this blob be relied on" (it would be O(archive)): every file asks
/// `gc::rely_on`, which for a thousand files is a thousand point queries.
fn ingest_one(
    store: &Store,
    cursor: &mut DirCursor,
    path: &RelPath,
    blobs: &dyn BlobBatch,
) -> Result<Content, PublishError> {
    let (mut file, _) = cursor.open_file(path)?;
    let (sha256, size) = super::hash_and_store(&mut file, path, blobs, |d| crate::gc::rely_on(store, d))?;
    Ok(Content::File { size, sha256 })
}

/// Publishes the paths of `listed` from the tree under `dir` as changes to the latest
/// snapshot of `archive` (see the module comment). The stat cache is neither read nor
/// written: its next full publish rehashes the files changed here, and only those.
pub fn publish_changes(
    store: &Store,
    archive: &ArchiveName,
    dir: &std::path::Path,
    listed: &[Listed],
    opts: &PublishOptions,
) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    let base = store.catalog.latest(archive)?.ok_or_else(|| PublishError::Invalid(NO_BASE.into()))?;
    let root = TreeRoot::open(dir)?;
    opts.progress.start(listed.len() as u64);
    // New blobs become durable and visible together, before the commit (as in a full publish).
    let blobs = store.blobs.blocking().batch();
    let ops = ingest_listed(store, &root, listed, blobs.as_ref(), opts.progress)?;
    let new = blobs.commit().map_err(PublishError::Blobs)?;
    opts.progress.finish();
    let ingested = started.elapsed();
    let planned = plan(store, archive, &base, &ops, opts.source.clone())?;
    let planned_at = started.elapsed();
    check_sample(&root, &planned.sample)?;
    let (snapshot, unchanged) = if planned.plan.digest == base.digest && !opts.always {
        (base, true)
    } else {
        (commit(store, archive, &base, &planned)?, false)
    };
    tracing::debug!(
        ingest_ms = ingested.as_millis() as u64,
        plan_ms = (planned_at - ingested).as_millis() as u64,
        commit_ms = (started.elapsed() - planned_at).as_millis() as u64,
        "publish --changes phases"
    );
    Ok(PublishReport {
        archive: archive.clone(),
        snapshot: snapshot.id,
        digest: snapshot.digest,
        files: snapshot.files,
        bytes: snapshot.bytes,
        new_blobs: new.blobs,
        new_bytes: new.bytes,
        added: snapshot.added,
        changed: snapshot.changed,
        removed: snapshot.removed,
        duration_ms: started.elapsed().as_millis(),
        unchanged,
    })
}

/// Commits against `base` only: another publish committing meanwhile is refused, not
/// re-planned, because the list said what changed since `base`, not since that one.
fn commit(store: &Store, archive: &ArchiveName, base: &Snapshot, planned: &Planned) -> Result<Snapshot, PublishError> {
    match store.catalog.commit(archive, &planned.plan, &planned.changes) {
        Ok(s) => {
            crate::packages::index::index_after_commit(store, archive);
            Ok(s)
        }
        Err(CatalogError::Conflict { .. }) => Err(PublishError::Invalid(format!(
            "another publish to {archive} committed while this one was planned; the change list was relative to {}: \
             list the changes since the latest snapshot, or publish the whole tree",
            base.id
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Checks, before committing, that unlisted files of a sample still have the size the live
/// manifest records: a list that misses changes must not silently publish a tree that
/// differs from the directory. Why this sample: the files every publish of an apt archive
/// rewrites are the `Release`/`InRelease` indices under `dists/`, so a list produced by a
/// tool that forgot them (or a list for another tree) fails on them, always; and up to
/// `SAMPLE` more, evenly spread over the manifest, catch a list for the wrong directory or a
/// tree regenerated from scratch. Sizes only (the manifest has no mtimes; hashing would cost
/// reads), at most a few hundred `fstatat`s: a few milliseconds, whatever the archive.
fn check_sample(root: &TreeRoot, sample: &[(RelPath, u64)]) -> Result<(), PublishError> {
    let mut cursor = root.cursor();
    let full = "the change list is incomplete: publish the whole tree (without --changes)";
    for (path, size) in sample {
        let st = cursor.lstat(path)?;
        let problem = match st {
            None => "is missing from the tree".to_string(),
            Some(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => {
                format!("is now {} in the tree", kind(FileType::from_raw_mode(st.st_mode)))
            }
            Some(st) if st.st_size as u64 != *size => {
                format!("is {} bytes in the tree, {size} in the latest snapshot", st.st_size)
            }
            Some(_) => continue,
        };
        return Err(PublishError::Invalid(format!("{path} is not listed as changed but {problem}; {full}")));
    }
    Ok(())
}

fn kind(t: FileType) -> &'static str {
    match t {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        _ => "something other than a regular file",
    }
}

/// Unlisted live files whose size is checked, besides every `Release` and `InRelease`.
const SAMPLE: u64 = 256;

/// The commit a change list makes, and the sample to check before it.
pub struct Planned {
    pub plan: CommitPlan,
    pub changes: Vec<Change>,
    pub sample: Vec<(RelPath, u64)>,
}

/// Merges `ops` (sorted by path) with the live manifest of `base`, streamed in path order.
pub fn plan(
    store: &Store,
    archive: &ArchiveName,
    base: &Snapshot,
    ops: &[Op],
    source: serde_json::Value,
) -> Result<Planned, PublishError> {
    let mut merge = Merge::new(base, ops);
    let mut failure = None;
    let streamed = store.catalog.for_each_live(archive, base.key.seq, &mut |live| {
        merge.live(live).map_err(|e| {
            failure = Some(e);
            CatalogError::Corrupt("walk stopped".into())
        })
    });
    if let Some(f) = failure {
        return Err(f);
    }
    streamed.map_err(|e| match e {
        CatalogError::Conflict { .. } => PublishError::Invalid(format!(
            "another publish to {archive} committed while this one was planned; the change list was relative to {}: \
             list the changes since the latest snapshot, or publish the whole tree",
            base.id
        )),
        other => other.into(),
    })?;
    merge.finish(base, source)
}

/// What the new tree has at an ancestor directory of a path it puts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AncestorWas {
    /// Not in the latest snapshot: the directory is new.
    Absent,
    Dir,
    /// A file or symlink, listed (removed) when `listed`; unlisted is refused.
    Other {
        listed: bool,
    },
}

/// The state of the streamed merge. Every map is keyed by listed paths or their ancestors:
/// O(changes × depth), never O(archive).
struct Merge<'o> {
    ops: std::iter::Peekable<std::slice::Iter<'o, Op>>,
    digest: DigestBuilder,
    added: u64,
    changed: u64,
    removed: u64,
    bytes_in: u64,
    bytes_out: u64,
    changes: BTreeMap<String, Change>,
    /// Ancestors of every put path, with the first such path (for messages).
    put_ancestors: BTreeMap<String, (AncestorWas, String)>,
    /// Ancestors of removed paths: directories that may become empty (`true` once some
    /// entry of the new tree is seen below them).
    maybe_empty: BTreeMap<String, bool>,
    /// The parent directory last marked non-empty (entries come grouped by directory).
    last_parent: String,
    /// `P/` while the subtree of a live directory `P` is being removed.
    removing: Option<String>,
    sample: Vec<(RelPath, u64)>,
    sample_every: u64,
    live_files: u64,
}

impl<'o> Merge<'o> {
    fn new(base: &Snapshot, ops: &'o [Op]) -> Self {
        let mut put_ancestors = BTreeMap::new();
        let mut maybe_empty = BTreeMap::new();
        for op in ops {
            for a in op.path.ancestors() {
                if matches!(op.next, Next::Put(_)) {
                    put_ancestors.entry(a.to_string()).or_insert((AncestorWas::Absent, op.path.to_string()));
                } else {
                    maybe_empty.insert(a.to_string(), false);
                }
            }
        }
        Self {
            ops: ops.iter().peekable(),
            digest: DigestBuilder::new(),
            added: 0,
            changed: 0,
            removed: 0,
            bytes_in: 0,
            bytes_out: 0,
            changes: BTreeMap::new(),
            put_ancestors,
            maybe_empty,
            last_parent: String::from("\0"),
            removing: None,
            sample: Vec::new(),
            sample_every: (base.files / SAMPLE).max(1),
            live_files: 0,
        }
    }

    /// The next live entry: first the listed paths before it (none of which is live), then
    /// it, listed or not.
    fn live(&mut self, live: ManifestEntry) -> Result<(), PublishError> {
        while let Some(op) = self.ops.next_if(|op| op.path.as_str().as_bytes() < live.path.as_str().as_bytes()) {
            self.op_without_live(op)?;
        }
        if self.removing.as_ref().is_some_and(|p| !live.path.as_str().starts_with(p.as_str())) {
            self.removing = None;
        }
        // A put path below this one, if any (rare: only ancestors of put paths are keys).
        let below = self.put_ancestors.get_mut(live.path.as_str()).map(|state| {
            state.0 =
                if live.content == Content::Dir { AncestorWas::Dir } else { AncestorWas::Other { listed: false } };
            state.1.clone()
        });
        match self.ops.next_if(|op| op.path == live.path) {
            Some(op) => self.op_with_live(op, live),
            None => self.unlisted(live, below),
        }
    }

    /// A listed path the latest snapshot does not have.
    fn op_without_live(&mut self, op: &Op) -> Result<(), PublishError> {
        match &op.next {
            Next::Put(c) => {
                self.not_below_removed(op)?;
                self.added += 1;
                self.bytes_in += c.size();
                self.keep(&op.path, c);
                self.upsert(&op.path, c.clone());
                Ok(())
            }
            Next::Dir => Err(is_a_dir(op)),
            Next::Absent => Err(PublishError::Invalid(format!(
                "line {}: {} is neither in the tree nor in the latest snapshot",
                op.line, op.path
            ))),
        }
    }

    fn op_with_live(&mut self, op: &Op, live: ManifestEntry) -> Result<(), PublishError> {
        let was_dir = live.content == Content::Dir;
        match (&op.next, was_dir) {
            (Next::Dir, true) => return Err(is_a_dir(op)),
            (Next::Put(c), _) => {
                self.not_below_removed(op)?;
                if was_dir {
                    self.added += 1;
                    self.start_removing(&op.path);
                } else if *c != live.content {
                    self.changed += 1;
                    self.bytes_out += live.content.size();
                } else {
                    self.bytes_out += live.content.size();
                }
                self.bytes_in += c.size();
                self.keep(&op.path, c);
                if *c != live.content {
                    self.upsert(&op.path, c.clone());
                }
            }
            (Next::Absent, true) => {
                self.start_removing(&op.path);
                self.remove(&op.path);
            }
            (Next::Absent | Next::Dir, false) => {
                if let Some(state) = self.put_ancestors.get_mut(op.path.as_str()) {
                    state.0 = AncestorWas::Other { listed: true };
                }
                self.removed += 1;
                self.bytes_out += live.content.size();
                self.remove(&op.path);
            }
        }
        Ok(())
    }

    /// A path put below a directory that the list removes: the tree changed between the
    /// looks (only a concurrent edit can do that), and the plan would leave a file without
    /// its directory.
    fn not_below_removed(&self, op: &Op) -> Result<(), PublishError> {
        match &self.removing {
            Some(dir) if op.path.as_str().starts_with(dir.as_str()) => Err(PublishError::Invalid(format!(
                "line {}: {} is in the tree but {} is not: the tree changed during the publish; publish again",
                op.line,
                op.path,
                dir.trim_end_matches('/')
            ))),
            _ => Ok(()),
        }
    }

    fn unlisted(&mut self, live: ManifestEntry, below: Option<String>) -> Result<(), PublishError> {
        let is_dir = live.content == Content::Dir;
        if self.removing.as_ref().is_some_and(|p| live.path.as_str().starts_with(p.as_str())) {
            if !is_dir {
                self.removed += 1;
                self.bytes_out += live.content.size();
            }
            self.remove(&live.path);
            return Ok(());
        }
        if is_dir {
            return Ok(());
        }
        if let Some(below) = below {
            return Err(PublishError::Invalid(format!(
                "{below} is below {}, which is a file or symlink in the latest snapshot and is not listed; \
                 list it too, or publish the whole tree",
                live.path
            )));
        }
        self.keep(&live.path, &live.content);
        if let Content::File { size, .. } = live.content {
            self.live_files += 1;
            let indices =
                live.path.as_str().starts_with("dists/") && matches!(live.path.file_name(), "Release" | "InRelease");
            if indices || self.live_files.is_multiple_of(self.sample_every) {
                self.sample.push((live.path, size));
            }
        }
        Ok(())
    }

    /// An entry of the new tree: digested, and its directories are not empty.
    fn keep(&mut self, path: &RelPath, content: &Content) {
        self.digest.push(path, content);
        if self.maybe_empty.is_empty() || self.last_parent == path.parent() {
            return;
        }
        path.parent().clone_into(&mut self.last_parent);
        for a in path.ancestors() {
            if let Some(seen) = self.maybe_empty.get_mut(a) {
                *seen = true;
            }
        }
    }

    fn start_removing(&mut self, dir: &RelPath) {
        if self.removing.is_none() {
            self.removing = Some(format!("{dir}/"));
        }
    }

    fn upsert(&mut self, path: &RelPath, content: Content) {
        let entry = ManifestEntry { path: path.clone(), content };
        self.changes.insert(path.to_string(), Change::Upsert(entry));
    }

    fn remove(&mut self, path: &RelPath) {
        self.changes.insert(path.to_string(), Change::Remove(path.clone()));
    }

    /// The listed paths after the last live entry, then the directories: new ones above put
    /// paths, emptied ones above removed paths.
    fn finish(mut self, base: &Snapshot, source: serde_json::Value) -> Result<Planned, PublishError> {
        while let Some(op) = self.ops.next() {
            self.op_without_live(op)?;
        }
        for (dir, (was, _)) in std::mem::take(&mut self.put_ancestors) {
            if matches!(was, AncestorWas::Absent | AncestorWas::Other { .. }) {
                let path = RelPath::new(&dir).map_err(|e| CatalogError::Corrupt(format!("directory {dir:?}: {e}")))?;
                self.upsert(&path, Content::Dir);
            }
        }
        for (dir, _) in std::mem::take(&mut self.maybe_empty).into_iter().filter(|(_, seen)| !seen) {
            let path = RelPath::new(&dir).map_err(|e| CatalogError::Corrupt(format!("directory {dir:?}: {e}")))?;
            self.remove(&path);
        }
        let files = (base.files + self.added).checked_sub(self.removed);
        let bytes = (base.bytes + self.bytes_in).checked_sub(self.bytes_out);
        let (Some(files), Some(bytes)) = (files, bytes) else {
            return Err(CatalogError::Corrupt(format!("snapshot {} counts fewer files than it lists", base.id)).into());
        };
        if files == 0 {
            return Err(PublishError::Invalid("a snapshot needs at least one file".into()));
        }
        let plan = CommitPlan {
            base_seq: base.key.seq,
            digest: self.digest.finish(),
            files,
            bytes,
            added: self.added,
            changed: self.changed,
            removed: self.removed,
            source,
        };
        Ok(Planned { plan, changes: self.changes.into_values().collect(), sample: self.sample })
    }
}

fn is_a_dir(op: &Op) -> PublishError {
    PublishError::Invalid(format!(
        "line {}: {} is a directory in the tree; list the files below it instead",
        op.line, op.path
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Digest;

    fn rel(p: &str) -> RelPath {
        RelPath::new(p).unwrap()
    }

    #[test]
    fn lists_are_sorted_deduplicated_and_commented() {
        let listed = parse_list(&b"# header\n./b\n\n  \na/x\r\nb\n   # indented comment\n"[..]).unwrap();
        let got: Vec<(usize, &str)> = listed.iter().map(|l| (l.line, l.path.as_str())).collect();
        assert_eq!(got, [(5, "a/x"), (2, "b")]);
        let err = parse_list(&b"a\nb//c\n"[..]).unwrap_err();
        assert_eq!(err.to_string(), "line 2: invalid path \"b//c\": path 'b//c' has an empty segment");
    }

    /// Only a concurrent edit can make a listed directory absent while a path below it is
    /// present; the plan refuses rather than leave a file without its directory.
    #[test]
    fn a_put_below_a_removed_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_local(tmp.path()).unwrap();
        let archive: ArchiveName = "a".parse().unwrap();
        let file = |p: &str| ManifestEntry {
            path: rel(p),
            content: Content::File { size: 1, sha256: Digest::of(p.as_bytes()) },
        };
        let first = vec![file("d/x"), file("top")];
        crate::publish::commit_manifest(
            &store,
            &archive,
            first,
            &PublishOptions { progress: &super::super::NoProgress, source: serde_json::Value::Null, always: true },
        )
        .unwrap();
        let base = store.catalog.latest(&archive).unwrap().unwrap();
        let ops = [
            Op { line: 1, path: rel("d"), next: Next::Absent },
            Op { line: 2, path: rel("d/y"), next: Next::Put(file("d/y").content) },
        ];
        let err = plan(&store, &archive, &base, &ops, serde_json::Value::Null).err().unwrap();
        assert_eq!(
            err.to_string(),
            "line 2: d/y is in the tree but d is not: the tree changed during the publish; publish again"
        );
        let ops = [Op { line: 1, path: rel("d"), next: Next::Absent }];
        let planned = plan(&store, &archive, &base, &ops, serde_json::Value::Null).unwrap();
        let shown: Vec<String> = planned
            .changes
            .iter()
            .map(|c| match c {
                Change::Upsert(e) => format!("+{}", e.path),
                Change::Remove(p) => format!("-{p}"),
            })
            .collect();
        assert_eq!(shown, ["-d", "-d/x"]);
        assert_eq!((planned.plan.files, planned.plan.removed, planned.plan.bytes), (1, 1, 1));
        assert_eq!(planned.plan.digest, crate::manifest::content_digest(&[file("top")]));
    }
}
