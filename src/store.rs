//! The data directory of the embedded default: `asof.db` (SQLite), `blobs/`, `tmp/` and
//! `label.key`.
//! `Store` bundles a catalog and a blob store; everything else takes one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::auth::AuthStore;
use crate::blob::{BlobLocation, BlobStore, LocalBlobStore, ObjectBlobStore};
use crate::catalog::{Catalog, CatalogBackend, Reads, SqliteCatalog};

#[derive(Clone)]
pub struct Store {
    pub catalog: Arc<dyn Catalog>,
    pub blobs: Arc<dyn BlobStore>,
    pub auth: Arc<dyn AuthStore>,
    pub packages: Arc<dyn crate::packages::store::PackageStore>,
    /// Archive keys and recorded re-signed files (`signing`).
    pub signing: Arc<dyn crate::signing::SigningStore>,
    /// Rollout channels (`rollout`).
    pub channels: Arc<dyn crate::rollout::ChannelStore>,
    /// Retention policies and pins (`retention`).
    pub retention: Arc<dyn crate::retention::RetentionStore>,
    /// Garbage-collection candidates (`gc`).
    pub gc: Arc<dyn crate::gc::GcCatalog>,
    /// Scrub state: rotation, verified times, quarantined blobs (`scrub`).
    pub scrub: Arc<dyn crate::scrub::ScrubCatalog>,
    /// Takedowns in force and their audit log (`takedown`).
    pub takedowns: Arc<dyn crate::takedown::TakedownStore>,
    /// Per-archive blob counts (`space`).
    pub space: Arc<dyn crate::space::SpaceCatalog>,
    /// One holder at a time for gc, scrub and mirror runs, across processes.
    pub jobs: Arc<dyn crate::catalog::JobLocks>,
    /// What tells the serving caches to drop answers (`http::hot`).
    pub epoch: Arc<dyn crate::catalog::ServeEpoch>,
    /// Token uses waiting to be written (by `auth::last_use::spawn_flusher` under `serve`).
    pub last_use: Arc<crate::auth::LastUse>,
    /// Local scratch space for request bodies and commit stages (on the data disk).
    pub scratch: PathBuf,
    /// This installation's secret for the metrics labels of private archives
    /// (`metrics::archive_label`), kept in `label.key` of the data directory, or in the
    /// catalog when that is PostgreSQL (frontends on other hosts must agree on it).
    pub label_key: [u8; 32],
}

/// Where a store's parts live: the data directory (scratch space, `label.key`, and
/// `asof.db` and `blobs/` unless they are elsewhere), and optionally a PostgreSQL catalog
/// and an object-storage bucket.
#[derive(Debug, Clone)]
pub struct Location {
    pub data: PathBuf,
    /// `postgres://…`; `None`: the embedded SQLite catalog.
    pub catalog: Option<String>,
    pub blobs: BlobLocation,
}

impl Store {
    /// Opens (creating if needed) the embedded default under `data_dir`, for a command.
    pub fn open_local(data_dir: &Path) -> anyhow::Result<Self> {
        Self::open(
            &Location { data: data_dir.to_path_buf(), catalog: None, blobs: BlobLocation::Local },
            Reads::Buffered,
        )
    }

    /// Opens the store at `at`; `reads` applies to the embedded catalog only.
    pub fn open(at: &Location, reads: Reads) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&at.data).with_context(|| format!("creating data directory {}", at.data.display()))?;
        match &at.catalog {
            None => {
                let db = db_path(&at.data);
                let catalog = SqliteCatalog::open(&db, reads)
                    .with_context(|| format!("opening metadata database {}", db.display()))?;
                // Every process on this catalog shares the data directory.
                let jobs = Arc::new(crate::catalog::FileJobLocks::new(&at.data));
                let key = label_key(&at.data).context("reading or creating label.key in the data directory")?;
                Self::with_catalog(at, Arc::new(catalog), jobs, key)
            }
            Some(url) => {
                let catalog = Arc::new(crate::catalog::PgCatalog::open(url).context("opening the PostgreSQL catalog")?);
                // Processes on other hosts share only the catalog: the key lives there.
                let key = catalog.label_key(random_key()?).context("reading the label key from the catalog")?;
                Self::with_catalog(at, catalog.clone(), catalog, key)
            }
        }
    }

    /// The store at `at` (blobs, scratch, label key) around `catalog`.
    fn with_catalog<C: CatalogBackend>(
        at: &Location,
        catalog: Arc<C>,
        jobs: Arc<dyn crate::catalog::JobLocks>,
        label_key: [u8; 32],
    ) -> anyhow::Result<Self> {
        let data_dir = at.data.as_path();
        let scratch = data_dir.join("tmp");
        std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        sweep_scratch(&scratch);
        let blobs = open_blobs(at, &scratch)?;
        Ok(Self {
            catalog: catalog.clone(),
            blobs,
            auth: catalog.clone(),
            packages: catalog.clone(),
            signing: catalog.clone(),
            gc: catalog.clone(),
            scrub: catalog.clone(),
            space: catalog.clone(),
            epoch: catalog.clone(),
            jobs,
            retention: catalog.clone(),
            takedowns: catalog.clone(),
            channels: catalog,
            last_use: Default::default(),
            scratch,
            label_key,
        })
    }
}

/// The blob store `at` names: `blobs/` of the data directory, or a bucket (uploads hashed
/// in `scratch` before they are sent).
fn open_blobs(at: &Location, scratch: &Path) -> anyhow::Result<Arc<dyn BlobStore>> {
    if at.blobs == BlobLocation::Local {
        let blobs = LocalBlobStore::open(at.data.join("blobs"))
            .with_context(|| format!("opening blob store in {}", at.data.display()))?;
        // Temp files older than a day belong to writers that died; younger ones may be live.
        if let Err(e) = blobs.sweep_temp(Duration::from_secs(24 * 3600)) {
            tracing::warn!(error = %e, "could not sweep stale temp blobs");
        }
        return Ok(Arc::new(blobs));
    }
    let blobs = ObjectBlobStore::open(&at.blobs, &[], scratch.to_path_buf())
        .with_context(|| format!("opening the blob store {}", at.blobs))?;
    Ok(Arc::new(blobs))
}

/// The secret of `label.key`, created (random, readable by the owner only) on first use.
/// Written to a temp file, synced, then linked into place without clobbering, so that a
/// process killed mid-write leaves no short key and two first starts agree on one key.
/// An empty `label.key` is what versions before this one left when killed mid-write; it
/// never held a key, so it is replaced.
fn label_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join("label.key");
    match std::fs::metadata(&path) {
        Ok(m) if m.len() == 0 => std::fs::remove_file(&path)?,
        Ok(_) => return read_label_key(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let key = random_key()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".label.key.")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(data_dir)?;
    std::io::Write::write_all(&mut tmp, &key)?;
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => {
            std::fs::File::open(data_dir)?.sync_all()?;
            Ok(key)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => read_label_key(&path),
        Err(e) => Err(e.error.into()),
    }
}

fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(key)
}

fn read_label_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let bytes = std::fs::read(path)?;
    bytes.try_into().map_err(|b: Vec<u8>| anyhow::anyhow!("{} has {} bytes, not 32", path.display(), b.len()))
}

/// Removes scratch files of processes that died more than a day ago (younger ones may
/// belong to a live request of another process).
fn sweep_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let cutoff = std::time::SystemTime::now() - Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        if e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("asof.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_key_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = label_key(dir.path()).unwrap();
        assert_eq!(label_key(dir.path()).unwrap(), first);
        assert_eq!(std::fs::read(dir.path().join("label.key")).unwrap(), first);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["label.key"], "the temp file was linked away");
    }

    #[test]
    fn an_empty_label_key_left_by_a_killed_writer_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("label.key"), b"").unwrap();
        let key = label_key(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("label.key")).unwrap(), key);
    }

    #[test]
    fn a_short_label_key_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("label.key"), b"abc").unwrap();
        let err = label_key(dir.path()).unwrap_err().to_string();
        assert_eq!(err, format!("{} has 3 bytes, not 32", dir.path().join("label.key").display()));
    }
}
