//! One holder at a time for jobs that must not overlap (garbage collection, scrub, a
//! mirror run of one archive) among every process on one catalog: a file lock beside the
//! embedded catalog, an advisory lock in PostgreSQL. Either is released when its holder
//! dies, so a killed job never blocks the next.

use std::fs::File;
use std::path::PathBuf;

/// Held until dropped.
pub struct JobLock(#[allow(dead_code)] Box<dyn Send>);

impl JobLock {
    pub fn new(held: impl Send + 'static) -> Self {
        Self(Box::new(held))
    }
}

pub trait JobLocks: Send + Sync + 'static {
    /// Takes the lock `name` unless someone holds it (`None` then). Blocking.
    fn try_lock_job(&self, name: &str) -> std::io::Result<Option<JobLock>>;

    /// Where the lock lives, for operator messages.
    fn describe_job_lock(&self, name: &str) -> String;
}

/// Locks as files of one directory (the data directory): enough when every process that
/// may run a job shares it, as with the embedded catalog.
pub struct FileJobLocks {
    dir: PathBuf,
}

impl FileJobLocks {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        // '~' occurs in no job or archive name, so the mapping is one to one.
        self.dir.join(format!("{}.lock", name.replace('/', "~")))
    }
}

impl JobLocks for FileJobLocks {
    fn try_lock_job(&self, name: &str) -> std::io::Result<Option<JobLock>> {
        std::fs::create_dir_all(&self.dir)?;
        let f = File::options().create(true).truncate(false).write(true).open(self.path(name))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(JobLock::new(f))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn describe_job_lock(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    /// What every implementation must do, given two handles on one catalog (as two
    /// processes would have).
    pub(crate) fn one_holder_at_a_time(a: &dyn JobLocks, b: &dyn JobLocks) {
        let held = a.try_lock_job("gc").unwrap().expect("free");
        assert!(b.try_lock_job("gc").unwrap().is_none(), "held by the other");
        assert!(a.try_lock_job("gc").unwrap().is_none(), "held, also for its own process");
        let other = b.try_lock_job("mirror/deb").unwrap().expect("another name is another lock");
        drop(held);
        let again = b.try_lock_job("gc").unwrap().expect("free once dropped");
        drop((again, other));
        assert!(a.try_lock_job("mirror/deb").unwrap().is_some());
    }

    #[test]
    fn files_in_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (FileJobLocks::new(dir.path()), FileJobLocks::new(dir.path()));
        one_holder_at_a_time(&a, &b);
        assert_eq!(a.describe_job_lock("mirror/deb"), dir.path().join("mirror~deb.lock").display().to_string());
    }
}
