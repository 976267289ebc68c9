//! Content-addressed blob storage: the async, range-based `BlobStore` trait, its blocking
//! face `BlockingBlobs` for code already on the blocking pool, and the backends: files on
//! this machine (`local`) and object storage, S3 or Azure Blob (`object`).

#[cfg(test)]
pub(crate) mod conformance;
pub mod local;
pub mod location;
pub mod object;
pub mod stream;

use std::io::{self, Read, Seek};
use std::ops::Range;
use std::time::Duration;

pub use local::LocalBlobStore;
pub use location::BlobLocation;
pub use object::ObjectBlobStore;

use crate::domain::Digest;

/// Bytes arriving piece by piece, from a store or for one.
pub type ByteStream = futures::stream::BoxStream<'static, io::Result<bytes::Bytes>>;

/// What serving and uploads need from blob storage, shaped like an object store's API so
/// that a network backend needs no blocking at all; the local backend does its blocking
/// file work on the blocking pool itself. Jobs that already run on the blocking pool
/// (publish, gc, scrub, verify) use `blocking()`, the same store's synchronous face.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Size of a stored blob, or `None` when absent.
    async fn size(&self, digest: &Digest) -> io::Result<Option<u64>>;

    /// Whether a blob is stored, marking it as just used (see `BlockingBlobs::contains`).
    async fn contains(&self, digest: &Digest) -> io::Result<bool>;

    /// The bytes `range` of a blob, or `None` when absent. The range must lie within the
    /// blob (callers know its size from the manifest).
    async fn get_range(&self, digest: &Digest, range: Range<u64>) -> io::Result<Option<ByteStream>>;

    /// Stores the bytes of `src`, hashing them on the way in: nothing is visible unless
    /// the content hashes to `expected` and has `expected_len` bytes (when given), and an
    /// existing blob is never overwritten. Visible atomically, complete and durable.
    async fn put(
        &self,
        src: ByteStream,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<PutOutcome, PutError>;

    /// Removes a blob; absent blobs are not an error.
    async fn delete(&self, digest: &Digest) -> io::Result<()>;

    /// A URL from which a client may download the blob for `ttl` without credentials, for
    /// stores that can sign one (object storage); `None` otherwise.
    async fn presign(&self, digest: &Digest, ttl: Duration) -> io::Result<Option<String>> {
        let _ = (digest, ttl);
        Ok(None)
    }

    /// The same store, synchronously: every method blocks, so call it on the blocking pool.
    fn blocking(&self) -> &dyn BlockingBlobs;

    /// Whether blobs are files on this machine (`BlockingBlobs::open_local` finds them), so
    /// that a reader does better to map them than to stream them.
    fn has_local_files(&self) -> bool {
        false
    }
}

/// A readable, seekable blob whose length is known up front (for Content-Length and Range).
pub trait BlobRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobRead for T {}

pub struct BlobReader {
    pub len: u64,
    pub reader: Box<dyn BlobRead>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    pub digest: Digest,
    pub size: u64,
    /// False when a blob with this digest was already stored and nothing was written.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("content hashes to {actual}, expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content is {actual} bytes, expected {expected}")]
    LengthMismatch { expected: u64, actual: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl PutError {
    /// Whether `size` bytes hashing to `digest` are what the caller announced.
    pub fn check(digest: Digest, size: u64, expected: Option<&Digest>, expected_len: Option<u64>) -> Result<(), Self> {
        if let Some(limit) = expected_len
            && size != limit
        {
            return Err(PutError::LengthMismatch { expected: limit, actual: size });
        }
        match expected {
            Some(exp) if *exp != digest => Err(PutError::DigestMismatch { expected: *exp, actual: digest }),
            _ => Ok(()),
        }
    }
}

/// A blob being written piece by piece; dropping it unfinished discards everything.
pub trait BlobWriter: Send {
    /// Blocking: appends bytes (and hashes them).
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Blocking: stores the blob if it hashes to `expected` and has `expected_len` bytes.
    /// The content is made durable before the answer, whether or not an identical blob
    /// was stored already, so that the time taken does not tell which.
    fn finish(self: Box<Self>, expected: Option<&Digest>, expected_len: Option<u64>) -> Result<PutOutcome, PutError>;
}

/// A blob moved aside by `BlockingBlobs::retire`; dropping it unresolved restores it.
pub trait RetiredBlob: Send {
    fn size(&self) -> u64;
    /// Deletes the bytes for good.
    fn discard(self: Box<Self>) -> io::Result<()>;
    /// Puts the blob back where it was.
    fn restore(self: Box<Self>) -> io::Result<()>;
}

/// The synchronous face of a blob store, for jobs on the blocking pool: bulk writes with
/// deferred durability, whole-store listing, and garbage collection's and scrub's moves.
pub trait BlockingBlobs: Send + Sync + 'static {
    /// Size of a stored blob, or `None` when absent.
    fn size(&self, digest: &Digest) -> io::Result<Option<u64>>;

    /// Whether a blob is stored, for a caller about to reference it: a stored blob is
    /// marked as just used, which restarts its garbage-collection grace period.
    fn contains(&self, digest: &Digest) -> io::Result<bool> {
        Ok(self.claim(digest)?.is_some())
    }

    /// Size and last store or claim of a blob (its modification time), without marking it.
    fn last_use(&self, digest: &Digest) -> io::Result<Option<(u64, std::time::SystemTime)>>;

    /// `size`, marking the blob as just used (see `contains`).
    fn claim(&self, digest: &Digest) -> io::Result<Option<u64>>;

    /// Garbage collection: moves a blob aside unless it was used (stored or claimed)
    /// within `idle`; `None` when it is absent or was used. The caller then discards or
    /// restores it; a process killed in between leaves it aside (see `left_aside`).
    fn retire(&self, digest: &Digest, idle: std::time::Duration) -> io::Result<Option<Box<dyn RetiredBlob>>>;

    /// Blobs `retire` moved aside and nobody discarded or restored (the collection was
    /// killed). Only a collection holding the gc lock may call this: a live one's blobs
    /// set aside are its own.
    fn left_aside(&self) -> io::Result<Vec<(Digest, Box<dyn RetiredBlob>)>>;

    /// Where a blob lies that a collection set aside, if it is (for `verify`).
    fn aside_location(&self, digest: &Digest) -> io::Result<Option<String>>;

    /// Opens a blob for reading, or `None` when absent.
    fn open(&self, digest: &Digest) -> io::Result<Option<BlobReader>>;

    /// The blob as a file on this machine, for backends that keep one, so that large files
    /// can be sent from a memory map instead of read through a buffer; `None` when absent,
    /// and always for backends without local files (they are streamed with `open`).
    fn open_local(&self, digest: &Digest) -> io::Result<Option<std::fs::File>> {
        let _ = digest;
        Ok(None)
    }

    /// Stores the bytes of `src`, hashing while writing. When `expected` is given, nothing
    /// is stored unless the content hashes to it (and is `expected_len` bytes long), and a
    /// blob already stored is claimed instead, reading nothing. The blob becomes visible
    /// atomically, complete and durable, or not at all.
    fn put(
        &self,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<PutOutcome, PutError> {
        if let Some(d) = expected
            && let Some(size) = self.claim(d)?
        {
            return Ok(PutOutcome { digest: *d, size, created: false });
        }
        let mut writer = self.writer()?;
        stream::copy_into(writer.as_mut(), src, expected_len)?;
        writer.finish(expected, expected_len)
    }

    /// Starts a blob whose bytes arrive in pieces (HTTP uploads): the caller reads the
    /// network asynchronously and hands each complete chunk over on the blocking pool, so
    /// a stalled client never holds a thread. Nothing is visible until `finish`.
    fn writer(&self) -> io::Result<Box<dyn BlobWriter>>;

    /// Starts a batch of puts (a publish's new blobs) whose durability is paid for together
    /// at `BlobBatch::commit` rather than blob by blob. The default stores each blob at once.
    fn batch(&self) -> Box<dyn BlobBatch + '_> {
        Box::new(Immediate { store: self, totals: Default::default() })
    }

    /// Calls `f` for every stored blob (for `verify` and, later, garbage collection).
    fn for_each(&self, f: &mut dyn FnMut(Digest) -> io::Result<()>) -> io::Result<()>;

    /// Removes a blob (garbage collection, tests). Absent blobs are not an error.
    fn remove(&self, digest: &Digest) -> io::Result<()>;

    /// Human-readable location of a blob for operator messages (never sent to clients).
    fn describe(&self, digest: &Digest) -> String;

    /// Scrub: moves a blob's bytes, found not to hash to its name, atomically into the
    /// store's quarantine area, where nothing deletes them. Returns where they went (for
    /// operators), or `None` when the blob is absent.
    fn quarantine(&self, digest: &Digest) -> io::Result<Option<String>>;
}

/// New blobs a batch stored (created, not found already stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTotals {
    pub blobs: u64,
    pub bytes: u64,
}

/// Puts whose blobs become visible under their digest only at `commit`, and only once their
/// bytes are durable: a store may write every blob first and then make them durable
/// together. A batch dropped uncommitted stores nothing (at most temp files are left, swept
/// as after any killed writer). Puts may run on many threads at once.
pub trait BlobBatch: Send + Sync {
    /// Blocking: checks the bytes of `src` as `BlockingBlobs::put` does, failing with the same
    /// errors, and keeps them for `commit`. Answers the digest and size; a blob already
    /// stored is claimed (as `put` does) and nothing is written. A store may commit part of
    /// the batch on its own (to bound what it holds), always durable before visible.
    fn put_deferred(
        &self,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<(Digest, u64), PutError>;

    /// Blocking: makes every blob put so far durable and visible (call once every
    /// `put_deferred` returned). Answers what the whole batch newly stored.
    fn commit(&self) -> Result<BatchTotals, PutError>;
}

/// The default batch: each put is an ordinary `put`, durable and visible at once.
struct Immediate<'a, S: ?Sized> {
    store: &'a S,
    totals: std::sync::Mutex<BatchTotals>,
}

impl<S: BlockingBlobs + ?Sized> BlobBatch for Immediate<'_, S> {
    fn put_deferred(
        &self,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<(Digest, u64), PutError> {
        let out = self.store.put(src, expected, expected_len)?;
        if out.created {
            let mut t = self.totals.lock().unwrap_or_else(|p| p.into_inner());
            t.blobs += 1;
            t.bytes += out.size;
        }
        Ok((out.digest, out.size))
    }

    fn commit(&self) -> Result<BatchTotals, PutError> {
        Ok(*self.totals.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
