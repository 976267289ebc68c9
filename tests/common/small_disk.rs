//! A small tmpfs for disk-full tests (needs root), unmounted on drop.

use std::path::{Path, PathBuf};

pub struct SmallDisk {
    pub dir: PathBuf,
    _keep: Option<tempfile::TempDir>,
}

impl SmallDisk {
    /// On a temp directory of its own.
    pub fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = Self::mount_at(dir.path(), megabytes);
        disk._keep = Some(dir);
        disk
    }

    /// On `dir` (created if missing), e.g. inside another data directory.
    pub fn mount_at(dir: &Path, megabytes: u32) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs root to mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir: dir.to_path_buf(), _keep: None }
    }

    /// Fills the disk until `leave` bytes are free.
    pub fn fill_leaving(&self, leave: u64) {
        let st = rustix::fs::statvfs(&self.dir).unwrap();
        let free = st.f_bavail * st.f_frsize;
        let filler = vec![0u8; free.saturating_sub(leave) as usize];
        std::fs::write(self.dir.join("filler"), filler).unwrap();
    }

    /// Writes until the disk answers ENOSPC.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}
