//! Writes real Debian binary packages: an `ar` archive of `debian-binary`, `control.tar.gz`
//! and an uncompressed `data.tar` holding one file of random (incompressible) bytes.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::model::FileInfo;
use super::rng::RandomReader;

/// A writer that hashes (SHA-256 and MD5) and counts what goes through it.
pub struct HashingWriter<W> {
    inner: W,
    sha256: Sha256,
    md5: Md5,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, sha256: Sha256::new(), md5: Md5::new(), len: 0 }
    }

    pub fn finish(self) -> (W, FileInfo) {
        let info = FileInfo { size: self.len, sha256: self.sha256.finalize().into(), md5: self.md5.finalize().into() };
        (self.inner, info)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha256.update(&buf[..n]);
        self.md5.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes bytes already in memory.
pub fn info_of(bytes: &[u8]) -> FileInfo {
    FileInfo { size: bytes.len() as u64, sha256: Sha256::digest(bytes).into(), md5: Md5::digest(bytes).into() }
}

fn ar_header(name: &str, mtime: u64, size: u64) -> Vec<u8> {
    let h = format!("{name:<16}{mtime:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 100644);
    debug_assert_eq!(h.len(), 60);
    h.into_bytes()
}

fn tar_header(path: &str, size: u64, mode: u32, mtime: u64, kind: tar::EntryType) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_username("root")?;
    h.set_groupname("root")?;
    h.set_entry_type(kind);
    h.set_cksum();
    Ok(h)
}

fn control_tar_gz(control: &str, mtime: u64) -> io::Result<Vec<u8>> {
    let gz = GzEncoder::new(Vec::new(), Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.append(&tar_header("./", 0, 0o755, mtime, tar::EntryType::Directory)?, io::empty())?;
    let bytes = control.as_bytes();
    tar.append(&tar_header("./control", bytes.len() as u64, 0o644, mtime, tar::EntryType::Regular)?, bytes)?;
    tar.into_inner()?.finish()
}

/// The directories and the one file of a package's data.tar.
fn data_layout(package: &str) -> (Vec<String>, String) {
    let dir = format!("./usr/share/{package}/");
    (vec!["./".into(), "./usr/".into(), "./usr/share/".into(), dir.clone()], format!("{dir}payload.bin"))
}

/// Writes a .deb to `path` whose data.tar holds `payload` random bytes from `seed`.
pub fn write_deb(
    path: &Path,
    package: &str,
    control: &str,
    payload: u64,
    seed: u64,
    mtime: u64,
) -> io::Result<FileInfo> {
    let (dirs, file) = data_layout(package);
    if file.len() >= 100 {
        return Err(io::Error::other(format!("package name too long for a plain tar header: {package}")));
    }
    let control_tgz = control_tar_gz(control, mtime)?;
    // A tar of short names: one 512-byte header per entry, the payload padded to 512, and
    // two zero blocks at the end.
    let data_len = 512 * (dirs.len() as u64 + 1) + payload.div_ceil(512) * 512 + 1024;

    let out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
    let mut w = HashingWriter::new(out);
    w.write_all(b"!<arch>\n")?;
    w.write_all(&ar_header("debian-binary", mtime, 4))?;
    w.write_all(b"2.0\n")?;
    w.write_all(&ar_header("control.tar.gz", mtime, control_tgz.len() as u64))?;
    w.write_all(&control_tgz)?;
    if control_tgz.len() % 2 == 1 {
        w.write_all(b"\n")?;
    }
    w.write_all(&ar_header("data.tar", mtime, data_len))?;
    let before = w.len;
    let mut tar = tar::Builder::new(&mut w);
    for d in &dirs {
        tar.append(&tar_header(d, 0, 0o755, mtime, tar::EntryType::Directory)?, io::empty())?;
    }
    tar.append(&tar_header(&file, payload, 0o644, mtime, tar::EntryType::Regular)?, RandomReader::new(seed, payload))?;
    tar.into_inner()?;
    if w.len - before != data_len {
        return Err(io::Error::other(format!(
            "data.tar of {package}: wrote {} bytes, expected {data_len}",
            w.len - before
        )));
    }
    // data_len is a multiple of 512: no ar padding needed.
    let (out, info) = w.finish();
    let file = out.into_inner().map_err(|e| e.into_error())?;
    drop(file);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar_headers_are_sixty_bytes() {
        assert_eq!(ar_header("debian-binary", 1_700_000_000, 4).len(), 60);
        assert_eq!(ar_header("data.tar", 1_700_000_000, 123_456_789).len(), 60);
    }
}
