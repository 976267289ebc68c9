//! Opening the files of a publish tree so that nothing outside it can be read, even when
//! someone else can write to the tree while it is being published.
//!
//! Every path is resolved from a descriptor of the tree's root with no symlink followed, not
//! in its last component and not in any parent directory (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or one `openat(O_NOFOLLOW)` per component where
//! `openat2` is unavailable), and what is opened must be a regular file by `fstat` of that
//! same descriptor, which is then the one hashed and stored: there is no window between the
//! check and the use. A `DirCursor` keeps the last directory so reached open, so that files
//! taken in path order cost one `openat(O_NOFOLLOW)`, or for a stat-cache hit one
//! `fstatat(AT_SYMLINK_NOFOLLOW)`, each.
//!
//! Why this is enough, and why the scan's view of the file is not compared: the scan reads
//! file types from directory entries (it does not stat, for speed), and it walks by path,
//! so a directory swapped for a symlink during the walk would make it list another
//! directory's names. None of that can reach a snapshot: whatever name the scan produced,
//! its content is read only through a descriptor reached from the root through real
//! directories, so the file read was inside the tree when it was opened. A regular file
//! swapped for another regular file of the tree is an ordinary concurrent edit (the blob
//! store still checks that what it stores is what was hashed); a file or a directory
//! swapped for a symlink, or for anything but a regular file, fails the publish with
//! `TreeError::Changed` before anything is committed. Symlinks are re-read the same way and
//! must still hold the target the scan validated. The root itself is the directory the user
//! named, and is trusted as named.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::domain::RelPath;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path} changed during the publish: was {was}, is now {now}")]
    Changed { path: String, was: String, now: String },
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// An open publish tree: files are opened relative to it, see the module comment.
pub struct TreeRoot {
    dir: OwnedFd,
}

/// Cleared once the kernel (or a seccomp filter) refuses `openat2`: the walk by components
/// is as safe, only slower.
static OPENAT2: AtomicBool = AtomicBool::new(true);

impl TreeRoot {
    pub fn open(root: &Path) -> Result<Self, TreeError> {
        let dir = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| TreeError::Io { path: root.display().to_string(), source: e.into() })?;
        Ok(Self { dir })
    }

    /// Opens the regular file at `path` for reading; anything else there is an error.
    pub fn open_file(&self, path: &RelPath) -> Result<(File, std::fs::Metadata), TreeError> {
        let fd = resolve(self.dir.as_fd(), path.as_str(), FILE_FLAGS, OPENAT2.load(Ordering::Relaxed))
            .map_err(|e| self.explain(path.as_str(), FileType::RegularFile, e))?;
        regular(fd, path)
    }

    /// A reader of many files that keeps the directory of the last one open, so that files
    /// taken in path order (as the scan lists them) cost one call each to stat or open.
    pub fn cursor(&self) -> DirCursor<'_> {
        DirCursor { root: self, dir: None }
    }

    /// Checks that `path` is still the symlink to `target` that the scan saw.
    pub fn check_symlink(&self, path: &RelPath, target: &str) -> Result<(), TreeError> {
        let io = |e: Errno| TreeError::Io { path: path.to_string(), source: e.into() };
        let read = match path.as_str().rsplit_once('/') {
            None => rustix::fs::readlinkat(self.dir.as_fd(), path.as_str(), Vec::new()),
            Some((parent, name)) => {
                let flags = OFlags::PATH | OFlags::DIRECTORY;
                let dir = resolve(self.dir.as_fd(), parent, flags, OPENAT2.load(Ordering::Relaxed))
                    .map_err(|e| self.explain(parent, FileType::Directory, e))?;
                rustix::fs::readlinkat(&dir, name, Vec::new())
            }
        };
        let now = match read {
            Ok(now) => now,
            Err(Errno::INVAL) => return Err(self.explain(path.as_str(), FileType::Symlink, Errno::INVAL)),
            Err(e) => return Err(io(e)),
        };
        let now = now.to_string_lossy();
        if now != target {
            return Err(TreeError::Changed {
                path: path.to_string(),
                was: format!("a symlink to {target:?}"),
                now: format!("a symlink to {now:?}"),
            });
        }
        Ok(())
    }

    /// Turns a failed open into the precise change that caused it: the first component of
    /// `path` that is not what the scan saw (directories above, `leaf` at the end). This
    /// second look is for the message only; the refusal itself came from the open.
    fn explain(&self, path: &str, leaf: FileType, err: Errno) -> TreeError {
        if matches!(err, Errno::LOOP | Errno::NOTDIR | Errno::INVAL | Errno::XDEV) {
            let parts: Vec<&str> = path.split('/').collect();
            for i in 0..parts.len() {
                let prefix = parts[..=i].join("/");
                let Ok(st) = rustix::fs::statat(self.dir.as_fd(), prefix.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
                    break;
                };
                let expected = if i + 1 == parts.len() { leaf } else { FileType::Directory };
                let now = FileType::from_raw_mode(st.st_mode);
                if now != expected {
                    return changed(&prefix, expected, now);
                }
            }
        }
        TreeError::Io { path: path.to_string(), source: err.into() }
    }
}

/// O_NONBLOCK: a named pipe swapped in must not hang the open; it changes nothing for
/// reads of a regular file.
const FILE_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

/// See `TreeRoot::cursor`. The open directory was reached without symlinks; if it is moved
/// out of the tree meanwhile, what it holds is still only what its writer put there.
pub struct DirCursor<'a> {
    root: &'a TreeRoot,
    dir: Option<(String, OwnedFd)>,
}

impl DirCursor<'_> {
    /// `lstat` of the regular file at `path` (no symlink followed on the way, and a symlink
    /// there is an error), for the stat cache: a hit needs no open at all.
    pub fn stat_file(&mut self, path: &RelPath) -> Result<rustix::fs::Stat, TreeError> {
        let (dir, name) = self.dir_of(path)?;
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| TreeError::Io { path: path.to_string(), source: e.into() })?;
        let now = FileType::from_raw_mode(st.st_mode);
        if now != FileType::RegularFile {
            return Err(changed(path.as_str(), FileType::RegularFile, now));
        }
        Ok(st)
    }

    /// As `TreeRoot::open_file`.
    pub fn open_file(&mut self, path: &RelPath) -> Result<(File, std::fs::Metadata), TreeError> {
        let (dir, name) = self.dir_of(path)?;
        let fd = rustix::fs::openat(dir, name, FILE_FLAGS | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| self.root.explain(path.as_str(), FileType::RegularFile, e))?;
        regular(fd, path)
    }

    /// `lstat` of whatever is at `path` (`publish --changes` asks what each listed path now
    /// is), reached through real directories only. `None` when nothing is there that a full
    /// scan would list: missing, or below something that is not a directory.
    pub fn lstat(&mut self, path: &RelPath) -> Result<Option<rustix::fs::Stat>, TreeError> {
        let absent = |e: Errno| matches!(e, Errno::NOENT | Errno::NOTDIR | Errno::LOOP);
        let io = |e: Errno| TreeError::Io { path: path.to_string(), source: e.into() };
        let (dir, name) = match self.dir_of_raw(path) {
            Ok(found) => found,
            Err(e) if absent(e) => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(e) if absent(e) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// The target of the symlink at `path` (reached through real directories only).
    pub fn read_link(&mut self, path: &RelPath) -> Result<std::ffi::OsString, TreeError> {
        let io = |e: Errno| TreeError::Io { path: path.to_string(), source: e.into() };
        let (dir, name) = self.dir_of(path)?;
        let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(io)?;
        Ok(std::os::unix::ffi::OsStringExt::from_vec(target.into_bytes()))
    }

    /// The directory holding `path` (opened through no symlink) and the file's name in it.
    fn dir_of<'p>(&mut self, path: &'p RelPath) -> Result<(BorrowedFd<'_>, &'p str), TreeError> {
        let root = self.root;
        self.dir_of_raw(path).map_err(|e| root.explain(path.parent(), FileType::Directory, e))
    }

    /// As `dir_of`, with the bare error of the failed open.
    fn dir_of_raw<'p>(&mut self, path: &'p RelPath) -> Result<(BorrowedFd<'_>, &'p str), Errno> {
        let Some((parent, name)) = path.as_str().rsplit_once('/') else {
            return Ok((self.root.dir.as_fd(), path.as_str()));
        };
        if self.dir.as_ref().is_none_or(|(p, _)| p != parent) {
            let flags = OFlags::PATH | OFlags::DIRECTORY;
            let fd = resolve(self.root.dir.as_fd(), parent, flags, OPENAT2.load(Ordering::Relaxed))?;
            self.dir = Some((parent.to_string(), fd));
        }
        Ok((self.dir.as_ref().expect("just set").1.as_fd(), name))
    }
}

/// The file behind `fd`, which must be a regular file by its own `fstat`.
fn regular(fd: OwnedFd, path: &RelPath) -> Result<(File, std::fs::Metadata), TreeError> {
    let file = File::from(fd);
    let meta = file.metadata().map_err(|source| TreeError::Io { path: path.to_string(), source })?;
    let now = FileType::from_raw_mode(std::os::unix::fs::MetadataExt::mode(&meta));
    if now != FileType::RegularFile {
        return Err(changed(path.as_str(), FileType::RegularFile, now));
    }
    Ok((file, meta))
}

fn changed(path: &str, was: FileType, now: FileType) -> TreeError {
    TreeError::Changed { path: path.to_string(), was: kind(was).into(), now: kind(now).into() }
}

fn kind(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a named pipe",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Unknown => "something else",
    }
}

/// Opens `path` below `root` without following any symlink on the way.
fn resolve(root: BorrowedFd, path: &str, flags: OFlags, use_openat2: bool) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if use_openat2 {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        // EAGAIN: the kernel saw a concurrent rename and wants the lookup retried.
        for _ in 0..4 {
            match rustix::fs::openat2(root, path, flags, Mode::empty(), how) {
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS | Errno::PERM) => {
                    OPENAT2.store(false, Ordering::Relaxed);
                    break;
                }
                r => return r,
            }
        }
    }
    by_components(root, path, flags)
}

/// One `openat(O_NOFOLLOW)` per component: a symlink anywhere gives ELOOP (or ENOTDIR).
fn by_components(root: BorrowedFd, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let (parents, name) = path.rsplit_once('/').map_or((None, path), |(p, n)| (Some(p), n));
    let mut dir: Option<OwnedFd> = None;
    for part in parents.into_iter().flat_map(|p| p.split('/')) {
        let at = dir.as_ref().map_or(root, |d| d.as_fd());
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = Some(rustix::fs::openat(at, part, dir_flags, Mode::empty())?);
    }
    rustix::fs::openat(dir.as_ref().map_or(root, |d| d.as_fd()), name, flags, Mode::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn rel(p: &str) -> RelPath {
        RelPath::new(p).unwrap()
    }

    /// Both resolution strategies refuse a symlink in the last component and in a parent.
    #[test]
    fn symlinks_are_never_followed_by_either_strategy() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), "in tree").unwrap();
        symlink(outside.path().join("secret"), d.path().join("a/link")).unwrap();
        symlink(outside.path(), d.path().join("dirlink")).unwrap();
        let root = TreeRoot::open(d.path()).unwrap();
        for use_openat2 in [true, false] {
            let open = |p: &str| resolve(root.dir.as_fd(), p, OFlags::RDONLY, use_openat2);
            let mut s = String::new();
            File::from(open("a/b/f").unwrap()).read_to_string(&mut s).unwrap();
            assert_eq!(s, "in tree");
            assert_eq!(open("a/link").unwrap_err(), Errno::LOOP);
            assert!(matches!(open("dirlink/secret").unwrap_err(), Errno::LOOP | Errno::NOTDIR));
        }
        let err = root.open_file(&rel("dirlink/secret")).unwrap_err();
        assert_eq!(err.to_string(), "dirlink changed during the publish: was a directory, is now a symlink");
        let err = root.open_file(&rel("a/link")).unwrap_err();
        assert_eq!(err.to_string(), "a/link changed during the publish: was a regular file, is now a symlink");
        let err = root.open_file(&rel("a/b")).unwrap_err();
        assert_eq!(err.to_string(), "a/b changed during the publish: was a regular file, is now a directory");

        let mut cursor = root.cursor();
        assert_eq!(cursor.stat_file(&rel("a/b/f")).unwrap().st_size, 7);
        let err = cursor.stat_file(&rel("a/link")).unwrap_err();
        assert_eq!(err.to_string(), "a/link changed during the publish: was a regular file, is now a symlink");
        let err = cursor.open_file(&rel("a/link")).unwrap_err();
        assert_eq!(err.to_string(), "a/link changed during the publish: was a regular file, is now a symlink");
        let err = cursor.open_file(&rel("dirlink/secret")).unwrap_err();
        assert_eq!(err.to_string(), "dirlink changed during the publish: was a directory, is now a symlink");
        let err = cursor.stat_file(&rel("dirlink/secret")).unwrap_err();
        assert_eq!(err.to_string(), "dirlink changed during the publish: was a directory, is now a symlink");
        let mut s = String::new();
        cursor.open_file(&rel("a/b/f")).unwrap().0.read_to_string(&mut s).unwrap();
        assert_eq!(s, "in tree");
    }

    #[test]
    fn a_fifo_is_refused_without_hanging_and_symlink_targets_are_rechecked() {
        let d = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo").arg(d.path().join("pipe")).status().unwrap();
        assert!(status.success());
        symlink("pipe", d.path().join("l")).unwrap();
        let root = TreeRoot::open(d.path()).unwrap();
        let err = root.open_file(&rel("pipe")).unwrap_err();
        assert_eq!(err.to_string(), "pipe changed during the publish: was a regular file, is now a named pipe");
        root.check_symlink(&rel("l"), "pipe").unwrap();
        let err = root.check_symlink(&rel("l"), "other").unwrap_err();
        assert_eq!(
            err.to_string(),
            "l changed during the publish: was a symlink to \"other\", is now a symlink to \"pipe\""
        );
        let err = root.check_symlink(&rel("pipe"), "x").unwrap_err();
        assert_eq!(err.to_string(), "pipe changed during the publish: was a symlink, is now a named pipe");
    }
}
