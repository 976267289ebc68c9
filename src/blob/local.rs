//! Blobs as files under `<root>/sha256/ab/cd/<hex>`, written through a temp file in
//! `<root>/tmp`, fsynced, renamed into place, and the directory fsynced; a batch (a
//! publish) writes all its temp files first, fsyncs them in parallel, renames them and
//! fsyncs each directory once.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

use super::{
    BatchTotals, BlobBatch, BlobReader, BlobStore, BlobWriter, BlockingBlobs, ByteStream, PutError, PutOutcome,
    RetiredBlob,
};
use crate::domain::Digest;
use crate::domain::digest::Hasher;

#[derive(Clone)]
pub struct LocalBlobStore {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Fan-out directories whose entries up to `root` this process has fsynced. Another
    /// process (or one that died) may have created a directory without making it durable,
    /// so existence alone proves nothing; each directory is synced once per process.
    durable_dirs: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
}

const COPY_BUF: usize = 256 * 1024;
/// A batch commits on its own once it holds this many blobs or bytes: what it remembers
/// per blob (a temp path) and the unsynced bytes in the page cache stay bounded, while a
/// fan-out directory (65,536 of them) still gathers several blobs per fsync.
const BATCH_BLOBS: usize = 65_536;
const BATCH_BYTES: u64 = 1 << 30;

impl LocalBlobStore {
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("sha256"))?;
        fs::create_dir_all(root.join("tmp"))?;
        fs::create_dir_all(root.join("gc"))?;
        fs::create_dir_all(root.join("quarantine"))?;
        fsync_dir(&root)?;
        if let Some(parent) = root.parent() {
            fsync_dir(parent)?;
        }
        fsync_dir(&root.join("sha256"))?;
        // Blobs in `gc/` are left alone here: a live collection may have set them aside,
        // and only a collection (holding the gc lock) resolves them (`left_aside`).
        Ok(Self { inner: std::sync::Arc::new(Inner { root, durable_dirs: Default::default() }) })
    }

    fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The one place that turns a digest into a storage location.
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        self.inner.path_of(digest)
    }

    fn local_writer(&self) -> io::Result<LocalWriter> {
        // The temp file deletes itself on drop, so an abandoned upload leaves nothing.
        let tmp = tempfile::Builder::new().prefix("put-").tempfile_in(self.root().join("tmp"))?;
        Ok(LocalWriter { store: self.inner.clone(), tmp, hasher: Hasher::new(), size: 0 })
    }

    /// Copies `src` into a temp file, hashing it; refuses more than `expected_len` bytes
    /// as soon as they arrive.
    fn write_from(&self, src: &mut dyn Read, expected_len: Option<u64>) -> Result<LocalWriter, PutError> {
        let mut writer = self.local_writer()?;
        super::stream::copy_into(&mut writer, src, expected_len)?;
        Ok(writer)
    }

    /// Deletes temp files left by writers that died more than `older_than` ago.
    pub fn sweep_temp(&self, older_than: Duration) -> io::Result<usize> {
        let mut removed = 0;
        let cutoff = SystemTime::now() - older_than;
        for entry in fs::read_dir(self.root().join("tmp"))? {
            let entry = entry?;
            if entry.metadata()?.modified()? < cutoff {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Inner {
    fn path_of(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("sha256").join(&hex[..2]).join(&hex[2..4]).join(hex)
    }

    /// Makes `sha256/ab/cd` exist durably before a blob is renamed into it.
    fn ensure_dir_durable(&self, dir: &Path) -> io::Result<()> {
        self.ensure_dirs_durable(std::iter::once(dir))
    }

    /// `ensure_dir_durable` for many directories, each parent fsynced once, in parallel.
    fn ensure_dirs_durable<'p>(&self, dirs: impl Iterator<Item = &'p Path>) -> io::Result<()> {
        let missing: std::collections::BTreeSet<&Path> = {
            let known = self.durable_dirs.lock().expect("not poisoned");
            dirs.filter(|d| !known.contains(*d)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        missing.par_iter().try_for_each(fs::create_dir_all)?;
        let parents: std::collections::BTreeSet<&Path> = missing.iter().filter_map(|d| d.parent()).collect();
        parents.par_iter().try_for_each(|p| fsync_dir(p))?;
        let grands: std::collections::BTreeSet<&Path> = parents.iter().filter_map(|p| p.parent()).collect();
        grands.iter().try_for_each(|g| fsync_dir(g))?;
        self.durable_dirs.lock().expect("not poisoned").extend(missing.into_iter().map(Path::to_path_buf));
        Ok(())
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlockingBlobs for LocalBlobStore {
    fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.path_of(digest)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_local(&self, digest: &Digest) -> io::Result<Option<File>> {
        match File::open(self.path_of(digest)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open(&self, digest: &Digest) -> io::Result<Option<BlobReader>> {
        match File::open(self.path_of(digest)) {
            Ok(f) => {
                let len = f.metadata()?.len();
                Ok(Some(BlobReader { len, reader: Box::new(f) }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn writer(&self) -> io::Result<Box<dyn BlobWriter>> {
        Ok(Box::new(self.local_writer()?))
    }

    fn batch(&self) -> Box<dyn BlobBatch + '_> {
        Box::new(LocalBatch { store: self, pending: Default::default(), totals: Default::default() })
    }

    fn for_each(&self, f: &mut dyn FnMut(Digest) -> io::Result<()>) -> io::Result<()> {
        let mut stack = vec![self.root().join("sha256")];
        while let Some(dir) = stack.pop() {
            let mut names: Vec<_> = fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
            names.sort_by_key(|e| e.file_name());
            for entry in names {
                if entry.file_type()?.is_dir() {
                    stack.push(entry.path());
                } else if let Some(d) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                    f(d)?;
                }
            }
        }
        Ok(())
    }

    fn last_use(&self, digest: &Digest) -> io::Result<Option<(u64, SystemTime)>> {
        match fs::metadata(self.path_of(digest)) {
            Ok(m) => Ok(Some((m.len(), m.modified()?))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn claim(&self, digest: &Digest) -> io::Result<Option<u64>> {
        let path = self.path_of(digest);
        if !touch(&path)? {
            return Ok(None);
        }
        // Looked up again after the touch: a collection's move can land between the
        // touch's path lookup and its write, touching the file already aside; then it is
        // no longer here, and the claim fails (the caller stores the bytes again).
        BlockingBlobs::size(self, digest)
    }

    fn retire(&self, digest: &Digest, idle: Duration) -> io::Result<Option<Box<dyn RetiredBlob>>> {
        let path = self.path_of(digest);
        let tomb = self.root().join("gc").join(digest.hex());
        match fs::rename(&path, &tomb) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            r => r?,
        }
        let mut retired = LocalRetired { tomb, home: path, size: 0, restored: false };
        // Checked after the move: a claim either touched the file before it (seen here) or
        // found no file and stores the bytes again.
        let meta = fs::metadata(&retired.tomb)?;
        retired.size = meta.len();
        if meta.modified()? > SystemTime::now() - idle {
            retired.restore()?;
            return Ok(None);
        }
        Ok(Some(Box::new(retired)))
    }

    fn left_aside(&self) -> io::Result<Vec<(Digest, Box<dyn RetiredBlob>)>> {
        let mut found: Vec<(Digest, Box<dyn RetiredBlob>)> = Vec::new();
        for entry in fs::read_dir(self.root().join("gc"))? {
            let entry = entry?;
            let Some(d) = entry.file_name().to_str().and_then(|n| n.parse::<Digest>().ok()) else { continue };
            let size = match entry.metadata() {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let home = self.path_of(&d);
            self.inner.ensure_dir_durable(home.parent().expect("blob paths have a parent"))?;
            found.push((d, Box::new(LocalRetired { tomb: entry.path(), home, size, restored: false })));
        }
        Ok(found)
    }

    fn aside_location(&self, digest: &Digest) -> io::Result<Option<String>> {
        let tomb = self.root().join("gc").join(digest.hex());
        match fs::symlink_metadata(&tomb) {
            Ok(_) => Ok(Some(tomb.display().to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn remove(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.path_of(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn describe(&self, digest: &Digest) -> String {
        self.path_of(digest).display().to_string()
    }

    fn quarantine(&self, digest: &Digest) -> io::Result<Option<String>> {
        // Named by digest and time: a blob quarantined twice keeps both sets of bytes.
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = self.root().join("quarantine");
        let dest = dir.join(format!("{}.{nanos}", digest.hex()));
        match fs::rename(self.path_of(digest), &dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            r => r?,
        }
        fsync_dir(&dir)?;
        Ok(Some(dest.display().to_string()))
    }
}

/// The async face: each call does its file work on the blocking pool.
#[async_trait::async_trait]
impl BlobStore for LocalBlobStore {
    async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        let (store, digest) = (self.clone(), *digest);
        on_pool(move || BlockingBlobs::size(&store, &digest)).await
    }

    async fn contains(&self, digest: &Digest) -> io::Result<bool> {
        let (store, digest) = (self.clone(), *digest);
        on_pool(move || BlockingBlobs::contains(&store, &digest)).await
    }

    async fn get_range(&self, digest: &Digest, range: std::ops::Range<u64>) -> io::Result<Option<ByteStream>> {
        let (store, digest) = (self.clone(), *digest);
        let start = range.start;
        let opened = on_pool(move || {
            let Some(mut file) = store.open_local(&digest)? else { return Ok(None) };
            io::Seek::seek(&mut file, io::SeekFrom::Start(start))?;
            Ok(Some(file))
        })
        .await?;
        Ok(opened.map(|file| super::stream::from_reader(Box::new(file), range.end - range.start)))
    }

    async fn put(
        &self,
        src: ByteStream,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<PutOutcome, PutError> {
        let store = self.clone();
        let writer = on_pool(move || store.writer()).await?;
        super::stream::finish_from(writer, src, expected, expected_len).await
    }

    async fn delete(&self, digest: &Digest) -> io::Result<()> {
        let (store, digest) = (self.clone(), *digest);
        on_pool(move || store.remove(&digest)).await
    }

    fn blocking(&self) -> &dyn BlockingBlobs {
        self
    }

    fn has_local_files(&self) -> bool {
        true
    }
}

async fn on_pool<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// Sets a blob's modification time to now, by path (a descriptor opened earlier could
/// touch a file already moved aside). False when there is no such blob.
fn touch(path: &Path) -> io::Result<bool> {
    match filetime::set_file_mtime(path, filetime::FileTime::now()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A blob moved to `<root>/gc/<hex>` by `retire`.
struct LocalRetired {
    tomb: PathBuf,
    home: PathBuf,
    size: u64,
    restored: bool,
}

impl LocalRetired {
    fn restore(mut self) -> io::Result<()> {
        self.restored = true;
        put_back(&self.tomb, &self.home)
    }
}

/// Moves a blob set aside back home, unless a publisher stored the same bytes there
/// meanwhile (a claim that found no file stores them again): that copy is kept, since its
/// modification time says it was just used, which the set-aside copy would undo.
fn put_back(tomb: &Path, home: &Path) -> io::Result<()> {
    match fs::hard_link(tomb, home) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    fs::remove_file(tomb)
}

impl RetiredBlob for LocalRetired {
    fn size(&self) -> u64 {
        self.size
    }

    fn discard(mut self: Box<Self>) -> io::Result<()> {
        self.restored = true;
        match fs::remove_file(&self.tomb) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn restore(self: Box<Self>) -> io::Result<()> {
        LocalRetired::restore(*self)
    }
}

impl Drop for LocalRetired {
    /// Neither discarded nor restored (an error on the way): the blob goes back.
    fn drop(&mut self) {
        if !self.restored {
            let _ = put_back(&self.tomb, &self.home);
        }
    }
}

/// A blob on its way into the store: a temp file in `<root>/tmp`, hashed as it grows.
struct LocalWriter {
    store: std::sync::Arc<Inner>,
    tmp: tempfile::NamedTempFile,
    hasher: Hasher,
    size: u64,
}

impl BlobWriter for LocalWriter {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.tmp.write_all(chunk)?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    fn written(&self) -> u64 {
        self.size
    }

    fn finish(self: Box<Self>, expected: Option<&Digest>, expected_len: Option<u64>) -> Result<PutOutcome, PutError> {
        let (store, tmp, digest, size) = self.checked(expected, expected_len)?;
        // Durable before the existence check: a stored and a new blob take the same time.
        tmp.as_file().sync_all()?;
        let dest = store.path_of(&digest);
        // Still there after the touch: see `claim`.
        if touch(&dest)? && dest.exists() {
            return Ok(PutOutcome { digest, size, created: false });
        }
        tmp.as_file().set_permissions(fs::Permissions::from_mode(0o444))?;
        let dir = dest.parent().expect("blob paths have a parent");
        store.ensure_dir_durable(dir)?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        fsync_dir(dir)?;
        Ok(PutOutcome { digest, size, created: true })
    }
}

impl LocalWriter {
    /// The written bytes, if they are what the caller said they would be.
    #[allow(clippy::type_complexity)]
    fn checked(
        self,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<(std::sync::Arc<Inner>, tempfile::NamedTempFile, Digest, u64), PutError> {
        let LocalWriter { store, tmp, hasher, size } = self;
        let digest = hasher.finish();
        PutError::check(digest, size, expected, expected_len)?;
        Ok((store, tmp, digest, size))
    }
}

/// A blob of a batch: complete and checked in a closed temp file, neither durable nor
/// visible yet. (Closed: a batch holds up to `BATCH_BLOBS` of them, more than a process
/// may keep open.)
struct Pending {
    tmp: tempfile::TempPath,
    digest: Digest,
    size: u64,
}

#[derive(Default)]
struct PendingSet {
    blobs: Vec<Pending>,
    bytes: u64,
}

/// `BlockingBlobs::batch` of the local store.
struct LocalBatch<'a> {
    store: &'a LocalBlobStore,
    pending: std::sync::Mutex<PendingSet>,
    totals: std::sync::Mutex<BatchTotals>,
}

impl BlobBatch for LocalBatch<'_> {
    fn put_deferred(
        &self,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<(Digest, u64), PutError> {
        if let Some(d) = expected
            && let Some(size) = self.store.claim(d)?
        {
            return Ok((*d, size));
        }
        let (_, tmp, digest, size) = self.store.write_from(src, expected_len)?.checked(expected, expected_len)?;
        tmp.as_file().set_permissions(fs::Permissions::from_mode(0o444))?;
        let full = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.blobs.push(Pending { tmp: tmp.into_temp_path(), digest, size });
            p.bytes += size;
            (p.blobs.len() >= BATCH_BLOBS || p.bytes >= BATCH_BYTES).then(|| std::mem::take(&mut *p))
        };
        if let Some(full) = full {
            self.settle(full.blobs)?;
        }
        Ok((digest, size))
    }

    fn commit(&self) -> Result<BatchTotals, PutError> {
        let rest = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        self.settle(rest.blobs)?;
        Ok(*self.totals.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl LocalBatch<'_> {
    /// Makes `blobs` durable, then visible: every temp file fsynced (in parallel), then
    /// renamed into place unless the blob is stored already, then each directory that
    /// received one fsynced once. Killed anywhere, no name points at bytes not durable.
    fn settle(&self, mut blobs: Vec<Pending>) -> Result<(), PutError> {
        if blobs.is_empty() {
            return Ok(());
        }
        blobs.par_iter().try_for_each(|p| File::open(&p.tmp)?.sync_all())?;
        // The same bytes put twice: one copy is enough (the other's temp file goes).
        blobs.sort_unstable_by_key(|a| a.digest);
        blobs.dedup_by(|a, b| a.digest == b.digest);
        let inner = &self.store.inner;
        let dests: Vec<PathBuf> = blobs.iter().map(|p| inner.path_of(&p.digest)).collect();
        inner.ensure_dirs_durable(dests.iter().filter_map(|d| d.parent()))?;
        let created: Vec<Option<u64>> = blobs
            .into_par_iter()
            .zip(&dests)
            .map(|(p, dest)| {
                // Still there after the touch: see `claim`.
                if touch(dest)? && dest.exists() {
                    return Ok(None);
                }
                p.tmp.persist(dest).map_err(|e| e.error)?;
                Ok(Some(p.size))
            })
            .collect::<io::Result<_>>()?;
        let dirs: std::collections::BTreeSet<&Path> =
            dests.iter().zip(&created).filter(|(_, c)| c.is_some()).filter_map(|(d, _)| d.parent()).collect();
        dirs.par_iter().try_for_each(|d| fsync_dir(d))?;
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        for size in created.into_iter().flatten() {
            totals.blobs += 1;
            totals.bytes += size;
        }
        Ok(())
    }
}

/// Hashes an open file from its current position without storing it (to skip blobs the
/// store already has). It takes a file, not a path, so that callers decide how it is opened
/// (a publish opens without following symlinks, see `publish::tree`).
pub fn hash_file(file: &File) -> io::Result<(Digest, u64)> {
    let mut r = BufReader::with_capacity(COPY_BUF, file);
    let mut hasher = Hasher::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}

#[cfg(test)]
mod conformance {
    use super::*;
    use crate::blob::conformance::{Fixture, blob_conformance};

    fn fresh() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let planted = store.clone();
        let plant = move |d: &Digest, bytes: &[u8]| {
            let path = planted.path_of(d);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        };
        Some(Fixture { store: std::sync::Arc::new(store), plant: Box::new(plant), _guard: Box::new(dir) })
    }

    blob_conformance!(fresh());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BatchTotals;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let a = store.blocking().put(&mut &b"hello"[..], None, None).unwrap();
        assert!(a.created);
        assert_eq!(a.digest, Digest::of(b"hello"));
        let b = store.blocking().put(&mut &b"hello"[..], None, None).unwrap();
        assert!(!b.created);
        let mut s = String::new();
        store.open(&a.digest).unwrap().unwrap().reader.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    fn stored(store: &LocalBlobStore) -> Vec<Digest> {
        let mut all = Vec::new();
        store
            .for_each(&mut |d| {
                all.push(d);
                Ok(())
            })
            .unwrap();
        all
    }

    fn temp_files(dir: &Path) -> usize {
        fs::read_dir(dir.join("tmp")).unwrap().count()
    }

    #[test]
    fn a_batch_shows_nothing_until_commit_then_everything_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let old = store.blocking().put(&mut &b"old"[..], None, None).unwrap().digest;
        let batch = store.batch();
        let a = batch.put_deferred(&mut &b"alpha"[..], Some(&Digest::of(b"alpha")), Some(5)).unwrap();
        assert_eq!(a, (Digest::of(b"alpha"), 5));
        // The same new bytes twice, and bytes already stored: one copy, one blob, no write.
        assert_eq!(batch.put_deferred(&mut &b"beta!"[..], None, None).unwrap(), (Digest::of(b"beta!"), 5));
        assert_eq!(batch.put_deferred(&mut &b"beta!"[..], None, None).unwrap(), (Digest::of(b"beta!"), 5));
        assert_eq!(batch.put_deferred(&mut &b"old"[..], Some(&old), Some(3)).unwrap(), (old, 3));
        assert_eq!(stored(&store), [old]);
        assert_eq!(store.blocking().size(&a.0).unwrap(), None);
        assert_eq!(temp_files(dir.path()), 3);
        assert_eq!(batch.commit().unwrap(), BatchTotals { blobs: 2, bytes: 10 });
        let mut all = stored(&store);
        all.sort();
        let mut want = vec![old, Digest::of(b"alpha"), Digest::of(b"beta!")];
        want.sort();
        assert_eq!(all, want);
        assert_eq!(temp_files(dir.path()), 0);
        let meta = fs::metadata(store.path_of(&a.0)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o444);
        assert_eq!(fs::read(store.path_of(&a.0)).unwrap(), b"alpha");
        // Committing again adds nothing.
        assert_eq!(batch.commit().unwrap(), BatchTotals { blobs: 2, bytes: 10 });
    }

    #[test]
    fn a_batch_never_committed_leaves_no_blob_under_a_digest_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        // Forgotten, as a process killed before the commit forgets it: temp files stay.
        let killed = store.batch();
        killed.put_deferred(&mut &b"one"[..], None, None).unwrap();
        killed.put_deferred(&mut &b"two"[..], Some(&Digest::of(b"two")), Some(3)).unwrap();
        std::mem::forget(killed);
        assert_eq!(stored(&store), []);
        assert_eq!(temp_files(dir.path()), 2);
        assert_eq!(store.sweep_temp(Duration::ZERO).unwrap(), 2);
        // Dropped (an error on the way): the temp files go too.
        let dropped = store.batch();
        dropped.put_deferred(&mut &b"three"[..], None, None).unwrap();
        drop(dropped);
        assert_eq!(stored(&store), []);
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[test]
    fn put_deferred_refuses_what_put_refuses_with_the_same_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let wrong = Digest::of(b"other");
        let batch = store.batch();
        for (expected, len) in [(Some(&wrong), None), (None, Some(3)), (None, Some(9)), (Some(&wrong), Some(5))] {
            let by_put = store.blocking().put(&mut &b"hello"[..], expected, len).unwrap_err();
            let by_batch = batch.put_deferred(&mut &b"hello"[..], expected, len).unwrap_err();
            assert_eq!(by_batch.to_string(), by_put.to_string());
            assert_eq!(std::mem::discriminant(&by_batch), std::mem::discriminant(&by_put));
        }
        assert_eq!(
            batch.put_deferred(&mut &b"hello"[..], Some(&wrong), None).unwrap_err().to_string(),
            format!("content hashes to {}, expected {wrong}", Digest::of(b"hello"))
        );
        assert_eq!(batch.commit().unwrap(), BatchTotals::default());
        assert_eq!(stored(&store), []);
        assert_eq!(temp_files(dir.path()), 0);
    }

    #[test]
    fn wrong_digest_or_length_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let wrong = Digest::of(b"other");
        assert!(matches!(
            store.blocking().put(&mut &b"hello"[..], Some(&wrong), None),
            Err(PutError::DigestMismatch { .. })
        ));
        assert!(matches!(
            store.blocking().put(&mut &b"hello"[..], None, Some(3)),
            Err(PutError::LengthMismatch { .. })
        ));
        let mut n = 0;
        store
            .for_each(&mut |_| {
                n += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 0);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
