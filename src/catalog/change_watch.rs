//! Tells, without blocking, whether the embedded catalog may have been written since the
//! last look, by this process or any other: an inotify watch on the database's directory.
//! The kernel queues the event inside the writer's `write`, before its commit returns, so a
//! reader that looks after a commit finished always sees it; the serving caches rely on
//! that to drop answers the moment a takedown or a deletion commits (`http::hot`).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::inotify;
use rustix::io::Errno;

pub struct ChangeWatch {
    fd: OwnedFd,
    /// How many times a look found the database written. Drained and counted under one
    /// lock, so that a look that finds nothing left to drain still sees the count of the
    /// look that drained it.
    seen: Mutex<()>,
    writes: AtomicU64,
}

impl super::ChangeSignal for ChangeWatch {
    /// A count that grows whenever the database may have been written since the previous
    /// call. When nothing happened: one `ioctl` asking how much is queued, and an
    /// uncontended lock, so that concurrent requests never queue behind each other's
    /// syscalls (they did when every look read under the lock: futex waits on every
    /// other request in the serving profile).
    fn writes(&self) -> u64 {
        if rustix::io::ioctl_fionread(&self.fd).is_ok_and(|queued| queued == 0) {
            // Nothing is queued now, but a look that took events out just before may not
            // have counted them yet: it holds the lock from its read to its count.
            drop(self.seen.lock().unwrap_or_else(|p| p.into_inner()));
            return self.writes.load(Ordering::SeqCst);
        }
        self.drain()
    }
}

impl ChangeWatch {
    /// Watches the directory holding `db`: SQLite writes the WAL and the database file with
    /// `write`, and recreates the WAL, all visible as directory events (the shared-memory
    /// index is written through a mapping and is not, but no commit skips the WAL).
    pub fn new(db: &Path) -> std::io::Result<Self> {
        let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        let events = inotify::WatchFlags::MODIFY
            | inotify::WatchFlags::CREATE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::DELETE
            | inotify::WatchFlags::CLOSE_WRITE;
        inotify::add_watch(&fd, dir, events)?;
        // Start as "written": nothing has been read through this watch yet.
        Ok(Self { fd, seen: Mutex::new(()), writes: AtomicU64::new(1) })
    }

    /// Takes every queued event out and counts them as one write.
    fn drain(&self) -> u64 {
        let _one_look = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let mut buf = [0u8; 4096];
        let mut drained = false;
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => break,
                Ok(_) => drained = true,
                Err(Errno::INTR) => continue,
                // EAGAIN: nothing (more) queued. Anything else: count it as a write, so
                // that a broken watch costs a re-check, never a stale answer.
                Err(Errno::AGAIN) => break,
                Err(_) => {
                    drained = true;
                    break;
                }
            }
        }
        if drained { self.writes.fetch_add(1, Ordering::SeqCst) + 1 } else { self.writes.load(Ordering::SeqCst) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ChangeSignal;

    #[test]
    fn a_write_by_anyone_to_a_file_beside_the_database_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("asof.db");
        std::fs::write(&db, b"x").unwrap();
        let watch = ChangeWatch::new(&db).unwrap();
        let first = watch.writes();
        assert_eq!(watch.writes(), first, "nothing happened");
        std::fs::write(dir.path().join("asof.db-wal"), b"frame").unwrap();
        let after = watch.writes();
        assert!(after > first);
        assert_eq!(watch.writes(), after, "each write is counted once");
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        let created = watch.writes();
        std::fs::write(dir.path().join("blobs/inner"), b"y").unwrap();
        assert_eq!(watch.writes(), created, "files in subdirectories are not the database");
    }
}
