//! Blobs in object storage (S3 or Azure Blob, through the `object_store` crate) under
//! `<prefix>/sha256/ab/cd/<hex>`. Bytes are hashed into local scratch space before
//! anything is uploaded, so only verified content ever gets a digest's name, and a put
//! never overwrites a stored blob (`If-None-Match: *`). Garbage collection's grace period
//! is kept with markers under `claims/`, since an object's modification time cannot be
//! touched.
//!
//! Requests run on a runtime of the store's own, so the store works the same from an
//! async handler, the blocking pool or a command's main thread.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};

use super::location::BlobLocation;
use super::{BlobReader, BlobStore, BlobWriter, BlockingBlobs, ByteStream, PutError, PutOutcome, RetiredBlob};
use crate::domain::Digest;
use crate::domain::digest::Hasher;

/// Blobs up to this size are uploaded with one conditional PUT from memory; larger ones in
/// parts streamed from the spool file.
const SINGLE_PUT_MAX: u64 = 64 << 20;
const PART_SIZE: usize = 16 << 20;
/// Bytes a spool keeps in memory before it moves to a temp file.
const SPOOL_IN_MEMORY: usize = 8 << 20;
/// Bytes fetched per request by a blocking reader.
const READ_WINDOW: u64 = 8 << 20;

#[derive(Clone)]
pub struct ObjectBlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    signer: Arc<dyn Signer>,
    /// `s3://bucket/prefix`, for operator messages.
    url: String,
    /// Keys start with this (no slash at either end; empty for the bucket's root).
    prefix: String,
    /// Where uploads are hashed before they are sent (on the data disk).
    scratch: PathBuf,
    claims: Arc<RecentClaims>,
    runtime: Runtime,
}

/// Claim markers this process wrote lately. A publish may rely on one blob from many files
/// at once: its claims are serialized and a marker written less than `CLAIM_REUSE` ago
/// serves the next claim too, so they cost one PUT rather than one each (grace periods are
/// hours; a second of age changes nothing). Serialized, not merely skipped, because a claim
/// may rely on the marker only once it is written.
struct RecentClaims {
    stripes: [tokio::sync::Mutex<()>; 64],
    written: std::sync::Mutex<std::collections::HashMap<Digest, std::time::Instant>>,
}

const CLAIM_REUSE: Duration = Duration::from_secs(1);

impl Default for RecentClaims {
    fn default() -> Self {
        Self { stripes: std::array::from_fn(|_| Default::default()), written: Default::default() }
    }
}

impl RecentClaims {
    fn stripe(&self, d: &Digest) -> &tokio::sync::Mutex<()> {
        &self.stripes[d.as_bytes()[0] as usize % self.stripes.len()]
    }

    fn fresh(&self, d: &Digest) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.get(d).is_some_and(|t| t.elapsed() < CLAIM_REUSE)
    }

    fn wrote(&self, d: Digest) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if written.len() >= 100_000 {
            written.retain(|_, t| t.elapsed() < CLAIM_REUSE);
        }
        written.insert(d, std::time::Instant::now());
    }
}

/// The store's own runtime, shut down without waiting when the store goes (a store may be
/// dropped on an async thread, where waiting is not allowed).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl ObjectBlobStore {
    /// Connects to `location` with the standard environment (`AWS_*` or `AZURE_*`)
    /// overridden by `options` (`object_store` configuration keys such as `aws_endpoint`).
    pub fn open(location: &BlobLocation, options: &[(String, String)], scratch: PathBuf) -> io::Result<Self> {
        let (store, signer, prefix): (Arc<dyn ObjectStore>, Arc<dyn Signer>, &str) = match location {
            BlobLocation::Local => return Err(io::Error::other("not an object-storage location")),
            BlobLocation::S3 { bucket, prefix } => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(io::Error::other)?, v);
                }
                let s = Arc::new(b.build().map_err(io::Error::other)?);
                (s.clone(), s, prefix)
            }
            BlobLocation::Azure { container, prefix } => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_container_name(container);
                for (k, v) in options {
                    b = b.with_config(k.parse().map_err(io::Error::other)?, v);
                }
                let s = Arc::new(b.build().map_err(io::Error::other)?);
                (s.clone(), s, prefix)
            }
        };
        std::fs::create_dir_all(&scratch)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("asof-blobs")
            .enable_all()
            .build()?;
        let inner = Inner {
            store,
            signer,
            url: location.to_string(),
            prefix: prefix.to_string(),
            scratch,
            claims: Default::default(),
            runtime: Runtime(Some(runtime)),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.inner.runtime.0.as_ref().expect("present until dropped").handle()
    }

    /// Runs `f` on the store's runtime and awaits it from any runtime.
    async fn run<T: Send + 'static>(&self, f: impl Future<Output = io::Result<T>> + Send + 'static) -> io::Result<T> {
        self.handle().spawn(f).await.map_err(io::Error::other)?
    }

    /// Runs `f` on the store's runtime and blocks this thread until it is done (never call
    /// it on an async thread).
    fn wait<T: Send + 'static>(&self, f: impl Future<Output = io::Result<T>> + Send + 'static) -> io::Result<T> {
        futures::executor::block_on(self.handle().spawn(f)).map_err(io::Error::other)?
    }

    fn key(&self, area: &str, name: &str) -> Key {
        let p = &self.inner.prefix;
        if p.is_empty() { Key::from(format!("{area}/{name}")) } else { Key::from(format!("{p}/{area}/{name}")) }
    }

    fn blob_key(&self, d: &Digest) -> Key {
        let hex = d.hex();
        self.key("sha256", &format!("{}/{}/{hex}", &hex[..2], &hex[2..4]))
    }

    fn claim_key(&self, d: &Digest) -> Key {
        self.key("claims", &d.hex())
    }

    fn aside_key(&self, d: &Digest) -> Key {
        self.key("gc", &d.hex())
    }

    fn spool(&self) -> io::Result<ObjectWriter> {
        Ok(ObjectWriter { store: self.clone(), spool: Spool::Memory(Vec::new()), hasher: Hasher::new(), size: 0 })
    }
}

/// What `object_store` says, in the terms the rest of asof uses.
fn io_error(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e.to_string()),
        e => io::Error::other(e.to_string()),
    }
}

/// `None` for an absent object.
fn found<T>(r: object_store::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(io_error(e)),
    }
}

fn absent_is_ok(r: object_store::Result<()>) -> io::Result<()> {
    found(r).map(|_| ())
}

/// The object operations, as futures owning what they need (they run on the store's
/// runtime, which outlives any borrow of the caller).
impl ObjectBlobStore {
    fn head_blob(&self, d: &Digest) -> impl Future<Output = io::Result<Option<object_store::ObjectMeta>>> + use<> {
        let (store, key) = (self.inner.store.clone(), self.blob_key(d));
        async move { found(store.head(&key).await) }
    }

    /// Marks the blob as used, then looks it up: a collection that moves it aside after
    /// the mark sees the mark and puts it back; one that moved it before, the lookup sees.
    /// A blob absent at a first look is not marked (the caller stores it anyway), which
    /// spares a publish's new blobs a marker each.
    fn claim_blob(&self, d: &Digest) -> impl Future<Output = io::Result<Option<u64>>> + use<> {
        let (store, marker, claims, digest) =
            (self.inner.store.clone(), self.claim_key(d), self.inner.claims.clone(), *d);
        let (first_look, head) = (self.head_blob(d), self.head_blob(d));
        async move {
            if first_look.await?.is_none() {
                return Ok(None);
            }
            {
                let _one_at_a_time = claims.stripe(&digest).lock().await;
                if !claims.fresh(&digest) {
                    store.put(&marker, PutPayload::default()).await.map_err(io_error)?;
                    claims.wrote(digest);
                }
            }
            Ok(head.await?.map(|m| m.size))
        }
    }

    /// Size and the later of the blob's store and its last claim.
    fn last_use_of(&self, d: &Digest) -> impl Future<Output = io::Result<Option<(u64, SystemTime)>>> + use<> {
        let (store, marker) = (self.inner.store.clone(), self.claim_key(d));
        let head = self.head_blob(d);
        async move {
            let Some(meta) = head.await? else { return Ok(None) };
            let claimed = found(store.head(&marker).await)?.map(|m| m.last_modified);
            let last = claimed.map_or(meta.last_modified, |c| c.max(meta.last_modified));
            Ok(Some((meta.size, last.into())))
        }
    }

    fn range_bytes(&self, d: &Digest, range: Range<u64>) -> impl Future<Output = io::Result<Option<Bytes>>> + use<> {
        let (store, key) = (self.inner.store.clone(), self.blob_key(d));
        async move {
            if range.is_empty() {
                return Ok(found(store.head(&key).await)?.map(|_| Bytes::new()));
            }
            found(store.get_range(&key, range).await)
        }
    }

    /// Copies `from` to `to`, then deletes `from`; false when `from` is absent.
    fn move_object(&self, from: Key, to: Key) -> impl Future<Output = io::Result<bool>> + use<> {
        let store = self.inner.store.clone();
        async move {
            if found(store.copy(&from, &to).await)?.is_none() {
                return Ok(false);
            }
            store.delete(&from).await.map_err(io_error)?;
            Ok(true)
        }
    }

    /// Deletes objects; absent ones are not an error.
    fn delete_keys(&self, keys: [Key; 2]) -> impl Future<Output = io::Result<()>> + use<> {
        let store = self.inner.store.clone();
        async move {
            for key in keys {
                absent_is_ok(store.delete(&key).await)?;
            }
            Ok(())
        }
    }

    /// Uploads a checked spool under its digest unless that name is taken.
    fn upload(&self, spool: Spool, digest: Digest, size: u64) -> impl Future<Output = io::Result<bool>> + use<> {
        let (store, key) = (self.inner.store.clone(), self.blob_key(&digest));
        let head = self.head_blob(&digest);
        async move {
            let tmp = match spool {
                Spool::File(tmp) if size > SINGLE_PUT_MAX => tmp,
                small => {
                    let payload = PutPayload::from_bytes(small.into_bytes()?);
                    let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
                    return match store.put_opts(&key, payload, opts).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                        Err(e) => Err(io_error(e)),
                    };
                }
            };
            // Parts cannot be put conditionally; the name is checked first instead. Two
            // writers racing past the check upload the same verified bytes.
            if head.await?.is_some() {
                return Ok(false);
            }
            let upload = store.put_multipart(&key).await.map_err(io_error)?;
            let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut file = tokio::fs::File::from_std(tmp.reopen()?);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf).await?;
                if n == 0 {
                    break;
                }
                parts.wait_for_capacity(4).await.map_err(io_error)?;
                parts.write(&buf[..n]);
            }
            parts.finish().await.map_err(io_error)?;
            Ok(true)
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for ObjectBlobStore {
    async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        Ok(self.run(self.head_blob(digest)).await?.map(|m| m.size))
    }

    async fn contains(&self, digest: &Digest) -> io::Result<bool> {
        Ok(self.run(self.claim_blob(digest)).await?.is_some())
    }

    async fn get_range(&self, digest: &Digest, range: Range<u64>) -> io::Result<Option<ByteStream>> {
        let (store, key) = (self.inner.store.clone(), self.blob_key(digest));
        if range.is_empty() {
            let present = self.run(self.head_blob(digest)).await?.is_some();
            return Ok(present.then(|| futures::stream::empty().boxed()));
        }
        let opts = GetOptions { range: Some(GetRange::Bounded(range)), ..Default::default() };
        let Some(got) = self.run(async move { found(store.get_opts(&key, opts).await) }).await? else {
            return Ok(None);
        };
        // The body is read on the store's runtime and handed over through a short queue,
        // so the caller's runtime never drives the store's connections.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
        self.handle().spawn(async move {
            let mut body = got.into_stream();
            while let Some(chunk) = body.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(io_error)).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Some(tokio_stream_of(rx)))
    }

    async fn put(
        &self,
        src: ByteStream,
        expected: Option<&Digest>,
        expected_len: Option<u64>,
    ) -> Result<PutOutcome, PutError> {
        super::stream::finish_from(Box::new(self.spool()?), src, expected, expected_len).await
    }

    async fn delete(&self, digest: &Digest) -> io::Result<()> {
        self.run(self.delete_keys([self.blob_key(digest), self.claim_key(digest)])).await
    }

    async fn presign(&self, digest: &Digest, ttl: Duration) -> io::Result<Option<String>> {
        let (signer, key) = (self.inner.signer.clone(), self.blob_key(digest));
        let url = self
            .run(async move { signer.signed_url(axum::http::Method::GET, &key, ttl).await.map_err(io_error) })
            .await?;
        Ok(Some(url.to_string()))
    }

    fn blocking(&self) -> &dyn BlockingBlobs {
        self
    }
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> ByteStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

impl BlockingBlobs for ObjectBlobStore {
    fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        Ok(self.wait(self.head_blob(digest))?.map(|m| m.size))
    }

    fn last_use(&self, digest: &Digest) -> io::Result<Option<(u64, SystemTime)>> {
        self.wait(self.last_use_of(digest))
    }

    fn claim(&self, digest: &Digest) -> io::Result<Option<u64>> {
        self.wait(self.claim_blob(digest))
    }

    fn retire(&self, digest: &Digest, idle: Duration) -> io::Result<Option<Box<dyn RetiredBlob>>> {
        let Some((size, last)) = self.last_use(digest)? else { return Ok(None) };
        if last > SystemTime::now() - idle {
            return Ok(None);
        }
        if !self.wait(self.move_object(self.blob_key(digest), self.aside_key(digest)))? {
            return Ok(None);
        }
        let retired = ObjectRetired { store: self.clone(), digest: *digest, size, resolved: false };
        // Checked after the move, as the local store does: a claim marked before the move
        // is seen here; one marked after it finds no blob and stores the bytes again.
        let marker = self.claim_key(digest);
        let store = self.inner.store.clone();
        let claimed = self.wait(async move { found(store.head(&marker).await) })?;
        if claimed.is_some_and(|m| SystemTime::from(m.last_modified) > SystemTime::now() - idle) {
            Box::new(retired).restore()?;
            return Ok(None);
        }
        Ok(Some(Box::new(retired)))
    }

    fn left_aside(&self) -> io::Result<Vec<(Digest, Box<dyn RetiredBlob>)>> {
        let found: Vec<(Digest, u64)> = self.list_area("gc")?;
        Ok(found
            .into_iter()
            .map(|(digest, size)| {
                let r: Box<dyn RetiredBlob> =
                    Box::new(ObjectRetired { store: self.clone(), digest, size, resolved: false });
                (digest, r)
            })
            .collect())
    }

    fn aside_location(&self, digest: &Digest) -> io::Result<Option<String>> {
        let (store, tomb) = (self.inner.store.clone(), self.aside_key(digest));
        let here = self.wait(async move { found(store.head(&tomb).await) })?;
        Ok(here.map(|_| format!("{}/gc/{}", self.inner.url, digest.hex())))
    }

    fn open(&self, digest: &Digest) -> io::Result<Option<BlobReader>> {
        let Some(len) = BlockingBlobs::size(self, digest)? else { return Ok(None) };
        let reader = WindowReader { store: self.clone(), digest: *digest, len, pos: 0, window: Bytes::new() };
        Ok(Some(BlobReader { len, reader: Box::new(reader) }))
    }

    fn writer(&self) -> io::Result<Box<dyn BlobWriter>> {
        Ok(Box::new(self.spool()?))
    }

    fn for_each(&self, f: &mut dyn FnMut(Digest) -> io::Result<()>) -> io::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Digest>>(1024);
        let (store, prefix) = (self.inner.store.clone(), self.key("sha256", ""));
        // Listed on the store's runtime, consumed here as the pages arrive.
        self.handle().spawn(async move {
            let mut listing = store.list(Some(&prefix));
            while let Some(item) = listing.next().await {
                let digest = item.map_err(io_error).map(|m| m.location.filename().and_then(|n| n.parse().ok()));
                let sent = match digest {
                    Ok(Some(d)) => tx.send(Ok(d)),
                    Ok(None) => continue,
                    Err(e) => tx.send(Err(e)),
                };
                if sent.is_err() {
                    break;
                }
            }
        });
        for item in rx {
            f(item?)?;
        }
        Ok(())
    }

    fn remove(&self, digest: &Digest) -> io::Result<()> {
        self.wait(self.delete_keys([self.blob_key(digest), self.claim_key(digest)]))
    }

    fn describe(&self, digest: &Digest) -> String {
        let hex = digest.hex();
        format!("{}/sha256/{}/{}/{hex}", self.inner.url, &hex[..2], &hex[2..4])
    }

    fn quarantine(&self, digest: &Digest) -> io::Result<Option<String>> {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("{}.{nanos}", digest.hex());
        let moved = self.wait(self.move_object(self.blob_key(digest), self.key("quarantine", &name)))?;
        Ok(moved.then(|| format!("{}/quarantine/{name}", self.inner.url)))
    }
}

impl ObjectBlobStore {
    /// Digests and sizes of the objects in `<prefix>/<area>/` named by a digest.
    fn list_area(&self, area: &str) -> io::Result<Vec<(Digest, u64)>> {
        let (store, prefix) = (self.inner.store.clone(), self.key(area, ""));
        self.wait(async move {
            let mut out = Vec::new();
            let mut listing = store.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(io_error)?;
                if let Some(d) = meta.location.filename().and_then(|n| n.parse().ok()) {
                    out.push((d, meta.size));
                }
            }
            Ok(out)
        })
    }
}

/// Upload bytes gathered while hashed: in memory while small, then in a temp file.
enum Spool {
    Memory(Vec<u8>),
    File(tempfile::NamedTempFile),
}

impl Spool {
    fn into_bytes(self) -> io::Result<Bytes> {
        match self {
            Spool::Memory(v) => Ok(Bytes::from(v)),
            Spool::File(f) => Ok(Bytes::from(std::fs::read(f.path())?)),
        }
    }
}

/// A blob on its way into object storage; nothing is sent before `finish` has checked it.
struct ObjectWriter {
    store: ObjectBlobStore,
    spool: Spool,
    hasher: Hasher,
    size: u64,
}

impl BlobWriter for ObjectWriter {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if let Spool::Memory(buf) = &self.spool
            && buf.len() + chunk.len() > SPOOL_IN_MEMORY
        {
            let mut file = tempfile::Builder::new().prefix("upload-").tempfile_in(&self.store.inner.scratch)?;
            file.write_all(buf)?;
            self.spool = Spool::File(file);
        }
        match &mut self.spool {
            Spool::Memory(buf) => {
                buf.extend_from_slice(chunk);
                Ok(())
            }
            Spool::File(file) => file.write_all(chunk),
        }
    }

    fn written(&self) -> u64 {
        self.size
    }

    fn finish(self: Box<Self>, expected: Option<&Digest>, expected_len: Option<u64>) -> Result<PutOutcome, PutError> {
        let ObjectWriter { store, mut spool, hasher, size } = *self;
        let digest = hasher.finish();
        PutError::check(digest, size, expected, expected_len)?;
        if let Spool::File(f) = &mut spool {
            f.flush()?;
        }
        let created = store.wait(store.upload(spool, digest, size))?;
        if !created {
            // Stored already: this put is a use, which restarts the grace period.
            store.claim(&digest)?;
        }
        Ok(PutOutcome { digest, size, created })
    }
}

/// A blocking reader fetching a window of the blob per request.
struct WindowReader {
    store: ObjectBlobStore,
    digest: Digest,
    len: u64,
    pos: u64,
    window: Bytes,
}

impl Read for WindowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.window.is_empty() {
            if self.pos >= self.len {
                return Ok(0);
            }
            let end = (self.pos + READ_WINDOW).min(self.len);
            let got = self.store.wait(self.store.range_bytes(&self.digest, self.pos..end))?;
            self.window = got.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "blob removed while read"))?;
            if self.window.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob is shorter than listed"));
            }
        }
        let n = buf.len().min(self.window.len());
        buf[..n].copy_from_slice(&self.window.split_to(n));
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for WindowReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target != self.pos {
            self.window = Bytes::new();
            self.pos = target;
        }
        Ok(target)
    }
}

/// A blob a collection copied to `gc/` and deleted from its home.
struct ObjectRetired {
    store: ObjectBlobStore,
    digest: Digest,
    size: u64,
    resolved: bool,
}

impl ObjectRetired {
    fn put_back(&mut self) -> io::Result<()> {
        self.resolved = true;
        // A publisher may have stored the same bytes again meanwhile: they are equal.
        let (tomb, home) = (self.store.aside_key(&self.digest), self.store.blob_key(&self.digest));
        if self.store.wait(self.store.move_object(tomb, home))? {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, format!("blob {} is no longer set aside", self.digest)))
        }
    }
}

impl RetiredBlob for ObjectRetired {
    fn size(&self) -> u64 {
        self.size
    }

    fn discard(mut self: Box<Self>) -> io::Result<()> {
        self.resolved = true;
        self.store
            .wait(self.store.delete_keys([self.store.aside_key(&self.digest), self.store.claim_key(&self.digest)]))
    }

    fn restore(mut self: Box<Self>) -> io::Result<()> {
        self.put_back()
    }
}

impl Drop for ObjectRetired {
    /// Neither discarded nor restored (an error on the way): the blob goes back.
    fn drop(&mut self) {
        if !self.resolved {
            let _ = self.put_back();
        }
    }
}

/// Stores on the S3 and Azure emulators that `scripts/services.sh start s3 azure` runs
/// (their addresses in `ASOF_TEST_S3_*` and `ASOF_TEST_AZURE_*`), each under a fresh
/// prefix of the `asof-test` bucket or container, emptied afterwards.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::blob::conformance::Fixture;

    /// The named variables, or `None` (after a loud message) outside CI when the service was
    /// not started. In CI (`CI` set) a missing service fails the test.
    fn vars<const N: usize>(service: &str, names: [&str; N]) -> Option<[String; N]> {
        let found: Vec<String> = names.iter().filter_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty())).collect();
        if found.len() == N {
            return Some(found.try_into().expect("N values"));
        }
        if std::env::var_os("CI").is_some() {
            panic!("{} is not set: scripts/test.sh starts {service} with scripts/services.sh", names[0]);
        }
        eprintln!("SKIPPED: {} is not set (run `scripts/services.sh start {service}` first)", names[0]);
        None
    }

    pub(crate) fn s3_options() -> Option<Vec<(String, String)>> {
        let [endpoint, key, secret] =
            vars("s3", ["ASOF_TEST_S3_ENDPOINT", "ASOF_TEST_S3_ACCESS_KEY_ID", "ASOF_TEST_S3_SECRET_ACCESS_KEY"])?;
        let pairs = [
            ("aws_endpoint", endpoint),
            ("aws_access_key_id", key),
            ("aws_secret_access_key", secret),
            ("aws_region", "us-east-1".into()),
            ("aws_allow_http", "true".into()),
            ("aws_virtual_hosted_style_request", "false".into()),
        ];
        Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    pub(crate) fn azure_options() -> Option<Vec<(String, String)>> {
        let [endpoint, account, key] =
            vars("azure", ["ASOF_TEST_AZURE_ENDPOINT", "ASOF_TEST_AZURE_ACCOUNT", "ASOF_TEST_AZURE_KEY"])?;
        let pairs = [
            ("azure_storage_endpoint", endpoint),
            ("azure_storage_account_name", account),
            ("azure_storage_account_key", key),
            ("azure_allow_http", "true".into()),
        ];
        Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A fresh prefix, so that tests running at once never see each other's blobs.
    pub(crate) fn fresh_prefix() -> String {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).expect("randomness");
        format!("t{}", hex::encode(b))
    }

    fn fixture(location: BlobLocation, options: Vec<(String, String)>) -> Fixture {
        let scratch = tempfile::tempdir().unwrap();
        let store = ObjectBlobStore::open(&location, &options, scratch.path().to_path_buf()).unwrap();
        let planted = store.clone();
        let plant = move |d: &Digest, bytes: &[u8]| {
            let (raw, key, bytes) = (planted.inner.store.clone(), planted.blob_key(d), Bytes::copy_from_slice(bytes));
            planted.wait(async move { raw.put(&key, bytes.into()).await.map(|_| ()).map_err(io_error) }).unwrap();
        };
        let guard = Emptied { store: store.clone(), _scratch: scratch };
        Fixture { store: Arc::new(store), plant: Box::new(plant), _guard: Box::new(guard) }
    }

    pub(crate) fn s3() -> Option<Fixture> {
        let location = BlobLocation::S3 { bucket: "asof-test".into(), prefix: fresh_prefix() };
        Some(fixture(location, s3_options()?))
    }

    pub(crate) fn azure() -> Option<Fixture> {
        let location = BlobLocation::Azure { container: "asof-test".into(), prefix: fresh_prefix() };
        Some(fixture(location, azure_options()?))
    }

    /// Deletes everything under the store's prefix when the test is over.
    struct Emptied {
        store: ObjectBlobStore,
        _scratch: tempfile::TempDir,
    }

    impl Drop for Emptied {
        fn drop(&mut self) {
            let (raw, prefix) = (self.store.inner.store.clone(), Key::from(self.store.inner.prefix.as_str()));
            let _ = self.store.wait(async move {
                let keys: Vec<Key> =
                    raw.list(Some(&prefix)).filter_map(|m| async { m.ok().map(|m| m.location) }).collect().await;
                for k in keys {
                    let _ = raw.delete(&k).await;
                }
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod s3_conformance {
    crate::blob::conformance::blob_conformance!(super::testing::s3());
}

#[cfg(test)]
mod azure_conformance {
    crate::blob::conformance::blob_conformance!(super::testing::azure());
}
