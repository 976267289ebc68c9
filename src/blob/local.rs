//! Blobs as files under `<root>/sha256/ab/cd/<hex>`, written through a temp file in
//! `<root>/tmp`, fsynced, renamed into place, and the directory fsynced.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{BlobReader, BlobStore, BlobWriter, PutError, PutOutcome, RetiredBlob};
use crate::domain::Digest;
use crate::domain::digest::Hasher;

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
        if self.durable_dirs.lock().expect("not poisoned").contains(dir) {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent() {
            fsync_dir(parent)?;
            if let Some(grand) = parent.parent() {
                fsync_dir(grand)?;
            }
        }
        self.durable_dirs.lock().expect("not poisoned").insert(dir.to_path_buf());
        Ok(())
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlobStore for LocalBlobStore {
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

    fn put(
        &self,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<PutOutcome, PutError> {
        if let Some(d) = expected
            && let Some(size) = self.claim(d)?
        {
            // Already stored: still consume nothing, write nothing.
            return Ok(PutOutcome { digest: *d, size, created: false });
        }
        let mut writer = self.writer()?;
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            writer.write(&buf[..n])?;
            if let Some(limit) = expected_len
                && writer.written() > limit
            {
                return Err(PutError::LengthMismatch { expected: limit, actual: writer.written() });
            }
        }
        writer.finish(expected, expected_len)
    }

    fn writer(&self) -> io::Result<Box<dyn BlobWriter>> {
        // The temp file deletes itself on drop, so an abandoned upload leaves nothing.
        let tmp = tempfile::Builder::new().prefix("put-").tempfile_in(self.root().join("tmp"))?;
        Ok(Box::new(LocalWriter { store: self.inner.clone(), tmp, hasher: Hasher::new(), size: 0 }))
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
        self.size(digest)
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
        let LocalWriter { store, tmp, hasher, size } = *self;
        if let Some(limit) = expected_len
            && size != limit
        {
            return Err(PutError::LengthMismatch { expected: limit, actual: size });
        }
        let digest = hasher.finish();
        if let Some(exp) = expected
            && *exp != digest
        {
            return Err(PutError::DigestMismatch { expected: *exp, actual: digest });
        }
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
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let a = store.put(&mut &b"hello"[..], None, None).unwrap();
        assert!(a.created);
        assert_eq!(a.digest, Digest::of(b"hello"));
        let b = store.put(&mut &b"hello"[..], None, None).unwrap();
        assert!(!b.created);
        let mut s = String::new();
        store.open(&a.digest).unwrap().unwrap().reader.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn wrong_digest_or_length_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let wrong = Digest::of(b"other");
        assert!(matches!(store.put(&mut &b"hello"[..], Some(&wrong), None), Err(PutError::DigestMismatch { .. })));
        assert!(matches!(store.put(&mut &b"hello"[..], None, Some(3)), Err(PutError::LengthMismatch { .. })));
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
