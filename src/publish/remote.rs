//! Commits a manifest sent over the network: the JSON body is read as a stream into a
//! disk-backed stage (never whole into memory), every entry is validated, every blob must
//! be stored with the announced size and usable by the caller, and the commit follows the
//! same rules as a local publish.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::plan::{Mode, Staged};
use super::staging::{DiskStaging, StageError};
use super::{PublishError, PublishOptions, commit_staged, plan_and_commit};
use crate::catalog::{CatalogError, Snapshot};
use crate::domain::{ArchiveName, Digest, RelPath, SnapshotId};
use crate::manifest::{Content, ManifestEntry};
use crate::store::Store;
use crate::wire::WireEntry;

/// Most digests a 409 lists; a client uploads those and tries again.
const MAX_MISSING_LISTED: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Invalid(String),
    #[error("the manifest references {} blob(s) the server does not have; upload them first", .0.len())]
    MissingBlobs(Vec<Digest>),
    #[error(
        "base {base} is not the latest snapshot of '{archive}' ({latest}); fetch the latest and recompute the changes"
    )]
    StaleBase { archive: ArchiveName, base: String, latest: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("blob store: {0}")]
    Store(#[from] std::io::Error),
    #[error(transparent)]
    Stage(StageError),
}

impl From<StageError> for RemoteError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::Invalid(m) => RemoteError::Invalid(m),
            StageError::Io(io) => RemoteError::Store(io),
            // The stage is on the data disk: when it fills, say so (507), as for blobs.
            StageError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                RemoteError::Store(std::io::Error::new(std::io::ErrorKind::StorageFull, e))
            }
            other => RemoteError::Stage(other),
        }
    }
}

fn invalid(msg: impl Into<String>) -> RemoteError {
    RemoteError::Invalid(msg.into())
}

/// Whether the caller may reference a blob (see `auth::blob_access`); blocking.
pub type MayUse<'a> = &'a dyn Fn(&Digest) -> Result<bool, CatalogError>;

/// Turns a wire entry into a manifest entry, or says precisely what is wrong with it.
pub fn parse_entry(e: &WireEntry) -> Result<ManifestEntry, RemoteError> {
    let shown: String = e.path().chars().take(120).collect();
    let path = RelPath::new(e.path()).map_err(|err| invalid(format!("path {shown:?}: {err}")))?;
    let content = match e {
        WireEntry::File { size, sha256, .. } => Content::File {
            size: *size,
            sha256: sha256.parse().map_err(|err| invalid(format!("path {shown:?}: {err}")))?,
        },
        WireEntry::Symlink { target, .. } => {
            if target.is_empty() || target.contains('\0') || path.resolve_link(target).is_none() {
                return Err(invalid(format!("path {shown:?}: symlink target {target:?} points outside the tree")));
            }
            Content::Symlink { target: target.clone() }
        }
    };
    Ok(ManifestEntry { path, content })
}

/// The parts of a commit body other than its entries (which went to the stage).
#[derive(Debug, Default)]
pub struct CommitHeader {
    pub base: Option<SnapshotId>,
    pub source: Option<serde_json::Value>,
    pub manifest: bool,
    pub changes: bool,
}

impl CommitHeader {
    fn mode(&self) -> Result<Mode, RemoteError> {
        match (self.base.is_some(), self.manifest, self.changes) {
            (_, true, true) => Err(invalid("give either a full 'manifest' or 'base' with 'upsert'/'remove', not both")),
            (true, true, false) => Err(invalid("give either a full 'manifest' or 'base' with changes, not both")),
            (false, true, false) => Ok(Mode::Full),
            (true, false, _) => Ok(Mode::Changes),
            (false, false, _) => Err(invalid("the request needs a 'manifest', or a 'base' with 'upsert'/'remove'")),
        }
    }
}

/// Longest JSON string a commit body may hold (paths are at most 4096 bytes).
pub const MAX_JSON_STRING: usize = 64 << 10;
/// Most bytes of JSON one entry (or removed path) of a commit body, or its `source`, may take.
pub const MAX_JSON_VALUE: u64 = 64 << 10;

/// What `Guarded` enforces, shared with the visitors that say which value is being read.
#[derive(Default)]
struct Limits {
    in_string: Cell<bool>,
    escaped: Cell<bool>,
    string_len: Cell<usize>,
    /// Bytes left for the value being read, and what it is (for the message).
    budget: Cell<Option<(u64, &'static str)>>,
    failure: RefCell<Option<String>>,
}

impl Limits {
    fn bound(&self, what: &'static str) {
        self.budget.set(Some((MAX_JSON_VALUE, what)));
    }

    fn unbound(&self) {
        self.budget.set(None);
    }

    fn fail(&self, msg: String) -> std::io::Error {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, msg.clone());
        *self.failure.borrow_mut() = Some(msg);
        e
    }

    /// Accounts for bytes the parser takes: a JSON string, and a bounded value, may not
    /// grow past their limits (serde_json holds a whole string, and serde a whole tagged
    /// entry or `serde_json::Value`, in memory before any check could see them).
    fn take(&self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some((left, what)) = self.budget.get() {
            let Some(left) = left.checked_sub(bytes.len() as u64) else {
                return Err(self.fail(format!("{what} is longer than {MAX_JSON_VALUE} bytes of JSON")));
            };
            self.budget.set(Some((left, what)));
        }
        for &b in bytes {
            if !self.in_string.get() {
                if b == b'"' {
                    self.in_string.set(true);
                    self.string_len.set(0);
                }
                continue;
            }
            if self.escaped.get() {
                self.escaped.set(false);
            } else if b == b'\\' {
                self.escaped.set(true);
            } else if b == b'"' {
                self.in_string.set(false);
                continue;
            }
            self.string_len.set(self.string_len.get() + 1);
            if self.string_len.get() > MAX_JSON_STRING {
                return Err(self.fail(format!("the body holds a JSON string longer than {MAX_JSON_STRING} bytes")));
            }
        }
        Ok(())
    }
}

/// A reader that enforces `Limits` on every byte the JSON parser takes from it.
struct Guarded<R> {
    inner: R,
    limits: Rc<Limits>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.limits.take(&buf[..n])?;
        Ok(n)
    }
}

/// Reads a commit body (`wire::CommitRequest` as JSON) from `reader` entry by entry into
/// `stage`. Blocking. Memory stays bounded whatever the body: see `Limits`.
pub fn stage_json(reader: impl Read, stage: &mut DiskStaging) -> Result<CommitHeader, RemoteError> {
    let mut failure = None;
    let limits = Rc::new(Limits::default());
    let buffered = std::io::BufReader::with_capacity(256 * 1024, reader);
    let mut de = serde_json::Deserializer::from_reader(Guarded { inner: buffered, limits: limits.clone() });
    let visitor = BodyVisitor { stage, failure: &mut failure, limits: &limits };
    let parsed = de::Deserializer::deserialize_map(&mut de, visitor).and_then(|h| de.end().map(|()| h));
    if let Some(f) = limits.failure.borrow_mut().take() {
        return Err(invalid(f));
    }
    if let Some(f) = failure {
        return Err(f);
    }
    let header = parsed.map_err(|e| invalid(format!("invalid JSON body: {e}")))?;
    stage.seal()?;
    Ok(header)
}

const FIELDS: &[&str] = &["base", "manifest", "upsert", "remove", "source"];

struct BodyVisitor<'s> {
    stage: &'s mut DiskStaging,
    failure: &'s mut Option<RemoteError>,
    limits: &'s Limits,
}

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = CommitHeader;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a commit object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CommitHeader, A::Error> {
        let mut h = CommitHeader::default();
        while let Some(key) = map.next_key::<String>()? {
            let (stage, failure, limits) = (&mut *self.stage, &mut *self.failure, self.limits);
            match key.as_str() {
                "base" => h.base = map.next_value()?,
                "source" => {
                    limits.bound("'source'");
                    h.source = map.next_value()?;
                    limits.unbound();
                }
                "manifest" => {
                    h.manifest = true;
                    map.next_value_seed(EntriesSeed {
                        stage,
                        failure,
                        limits,
                        remove: false,
                        what: "an entry of 'manifest'",
                    })?;
                }
                "upsert" => {
                    h.changes = true;
                    map.next_value_seed(EntriesSeed {
                        stage,
                        failure,
                        limits,
                        remove: false,
                        what: "an entry of 'upsert'",
                    })?;
                }
                "remove" => {
                    h.changes = true;
                    map.next_value_seed(EntriesSeed {
                        stage,
                        failure,
                        limits,
                        remove: true,
                        what: "a path of 'remove'",
                    })?;
                }
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            }
        }
        Ok(h)
    }
}

/// The array of `manifest`, `upsert` (entries) or `remove` (paths), staged one by one.
struct EntriesSeed<'s> {
    stage: &'s mut DiskStaging,
    failure: &'s mut Option<RemoteError>,
    limits: &'s Limits,
    /// An array of paths (`remove`) rather than of entries.
    remove: bool,
    /// One element, as error messages name it.
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(if self.remove { "an array of paths" } else { "an array of entries" })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.limits.bound(self.what);
            let staged = if self.remove {
                let Some(p) = seq.next_element::<String>()? else {
                    self.limits.unbound();
                    return Ok(());
                };
                RelPath::new(&p)
                    .map(|path| (path, Staged::Remove))
                    .map_err(|e| invalid(format!("remove {:?}: {e}", p.chars().take(120).collect::<String>())))
            } else {
                let Some(e) = seq.next_element::<WireEntry>()? else {
                    self.limits.unbound();
                    return Ok(());
                };
                parse_entry(&e).map(|m| (m.path, Staged::Put(m.content)))
            };
            self.limits.unbound();
            let result = staged.and_then(|(path, op)| self.stage.insert(&path, &op).map_err(RemoteError::from));
            if let Err(e) = result {
                *self.failure = Some(e);
                return Err(de::Error::custom("stopped at an invalid entry"));
            }
        }
    }
}

/// Every blob the stage names must be usable by the caller and stored with the announced
/// size. One the caller may not use is reported missing, exactly like one the server
/// lacks, and its size is not compared: the answer must not tell whether it is stored.
fn check_blobs(store: &Store, stage: &DiskStaging, may_use: MayUse) -> Result<(), RemoteError> {
    let mut missing = Vec::new();
    let mut failure = None;
    let result = stage.for_each_blob(&mut |digest, size| {
        let may = match may_use(&digest) {
            Ok(may) => may,
            // The catalog failed, not the request: never a 400.
            Err(e) => {
                failure = Some(RemoteError::Catalog(e));
                return Err(StageError::Invalid(String::new()));
            }
        };
        // The commit is about to reference it: claimed unless referenced (`gc::rely_on`).
        let found = if may { crate::gc::rely_on_sized(store, &digest).map_err(StageError::Io) } else { Ok(None) };
        match found {
            Ok(None) => {
                if missing.len() < MAX_MISSING_LISTED {
                    missing.push(digest);
                }
            }
            Ok(Some(stored)) if stored != size => {
                failure = Some(invalid(format!("blob {digest} is {stored} bytes, the manifest says {size}")));
                return Err(StageError::Invalid(String::new()));
            }
            Ok(Some(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    });
    if let Some(f) = failure {
        return Err(f);
    }
    result?;
    if missing.is_empty() { Ok(()) } else { Err(RemoteError::MissingBlobs(missing)) }
}

/// Commits what `stage_json` staged: a full manifest, or changes to `header.base`, which
/// must be the latest snapshot (409 otherwise: never a silent merge).
pub fn commit_staged_request(
    store: &Store,
    archive: &ArchiveName,
    header: &CommitHeader,
    stage: &DiskStaging,
    source: serde_json::Value,
    may_use: MayUse,
) -> Result<Snapshot, RemoteError> {
    let mode = header.mode()?;
    // Entries kept from a base were checked when they were committed to this archive;
    // only what the caller stages needs checking.
    check_blobs(store, stage, may_use)?;
    let opts = PublishOptions { progress: &super::NoProgress, source, always: true };
    let plan_error = |e: PublishError| match e {
        PublishError::Invalid(m) => RemoteError::Invalid(m),
        other => RemoteError::Publish(other),
    };
    let Some(base) = header.base else {
        return commit_staged(store, archive, stage, &opts).map(|(s, _)| s).map_err(plan_error);
    };
    let stale = |latest: String| RemoteError::StaleBase { archive: archive.clone(), base: base.to_string(), latest };
    let Some(latest) = store.catalog.latest(archive)? else {
        return Err(stale("none: the archive has no snapshots".into()));
    };
    if latest.id != base {
        return Err(stale(latest.id.to_string()));
    }
    match plan_and_commit(store, archive, Some(&latest), stage, mode, &opts) {
        Ok((s, _)) => Ok(s),
        Err(PublishError::Catalog(CatalogError::Conflict { .. })) => {
            Err(stale("a newer one, committed meanwhile".into()))
        }
        Err(e) => Err(plan_error(e)),
    }
}
