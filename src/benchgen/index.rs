//! Packages paragraphs, control files, Release and InRelease, as Debian writes them.

use std::fmt::Write as _;

use base64::Engine;

use super::model::{Binary, FileInfo, Source, description};
use super::rng::Rng;

/// The `control` file inside a .deb.
pub fn control_file(src: &Source, b: &Binary) -> String {
    let mut s = String::with_capacity(512);
    common_fields(&mut s, src, b);
    let (short, long) = description(&b.name, b.desc_seed);
    let _ = writeln!(s, "Section: {}", b.section);
    let _ = writeln!(s, "Priority: {}", b.priority);
    let _ = writeln!(s, "Description: {short}");
    for l in long {
        let _ = writeln!(s, " {l}");
    }
    s
}

fn installed_size(b: &Binary) -> u64 {
    // The payload is "compressed" data; installed files are ~2.5x larger, in KiB.
    (b.payload * 5 / 2).div_ceil(1024) + 12
}

fn common_fields(s: &mut String, src: &Source, b: &Binary) {
    let _ = writeln!(s, "Package: {}", b.name);
    if src.name != b.name {
        let _ = writeln!(s, "Source: {}", src.name);
    }
    let _ = writeln!(s, "Version: {}", src.version.full());
    let _ = writeln!(s, "Architecture: {}", b.arch);
    let _ = writeln!(s, "Maintainer: {}", src.maintainer);
    let _ = writeln!(s, "Installed-Size: {}", installed_size(b));
    if !b.depends.is_empty() {
        let _ = writeln!(s, "Depends: {}", b.depends);
    }
}

/// One paragraph of a Packages index (with the trailing blank line).
pub fn packages_paragraph(out: &mut String, src: &Source, b: &Binary, file: &FileInfo) {
    common_fields(out, src, b);
    let (short, long) = description(&b.name, b.desc_seed);
    let _ = writeln!(out, "Description: {short}");
    for l in long {
        let _ = writeln!(out, " {l}");
    }
    let _ = writeln!(out, "Homepage: https://{}.example.org/", src.name);
    let _ = writeln!(out, "Section: {}", b.section);
    let _ = writeln!(out, "Priority: {}", b.priority);
    let _ = writeln!(out, "Filename: {}", src.pool_path(b));
    let _ = writeln!(out, "Size: {}", file.size);
    let _ = writeln!(out, "MD5sum: {}", hex::encode(file.md5));
    let _ = writeln!(out, "SHA256: {}", hex::encode(file.sha256));
    out.push('\n');
}

/// The Release file of one `binary-<arch>` directory.
pub fn binary_release(suite: &str, component: &str, arch: &str) -> String {
    format!(
        "Archive: {suite}\nOrigin: Debian\nLabel: Debian\nVersion: 12.11\nAcquire-By-Hash: no\nComponent: {component}\nArchitecture: {arch}\n"
    )
}

pub struct ReleaseFields<'a> {
    pub suite: &'a str,
    pub codename: &'a str,
    pub date: chrono::DateTime<chrono::Utc>,
    pub components: &'a [&'a str],
    pub architectures: &'a [&'a str],
}

/// The suite's Release: metadata plus size and hashes of every index below it.
pub fn release(f: &ReleaseFields, files: &[(String, FileInfo)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Origin: Debian");
    let _ = writeln!(s, "Label: Debian");
    let _ = writeln!(s, "Suite: {}", f.suite);
    let _ = writeln!(s, "Version: 12.11");
    let _ = writeln!(s, "Codename: {}", f.codename);
    let _ = writeln!(s, "Changelogs: https://metadata.ftp-master.debian.org/changelogs/@CHANGEPATH@_changelog");
    let _ = writeln!(s, "Date: {}", f.date.format("%a, %d %b %Y %H:%M:%S UTC"));
    let _ = writeln!(s, "Acquire-By-Hash: no");
    let _ = writeln!(s, "No-Support-for-Architecture-all: Packages");
    let _ = writeln!(s, "Architectures: {}", f.architectures.join(" "));
    let _ = writeln!(s, "Components: {}", f.components.join(" "));
    let _ = writeln!(s, "Description: Debian 12.11 Released 17 May 2025 (benchmark archive)");
    let _ = writeln!(s, "MD5Sum:");
    for (path, info) in files {
        let _ = writeln!(s, " {} {:>16} {path}", hex::encode(info.md5), info.size);
    }
    let _ = writeln!(s, "SHA256:");
    for (path, info) in files {
        let _ = writeln!(s, " {} {:>16} {path}", hex::encode(info.sha256), info.size);
    }
    s
}

/// Release wrapped in a clearsign-shaped envelope with a dummy signature: enough for
/// anything that serves or caches it, not for `gpgv`.
pub fn in_release(release: &str, rng: &mut Rng) -> String {
    let mut sig = vec![0u8; 566];
    rng.fill(&mut sig);
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    let mut s = String::with_capacity(release.len() + 1024);
    s.push_str("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n");
    for line in release.lines() {
        if line.starts_with('-') {
            s.push_str("- ");
        }
        s.push_str(line);
        s.push('\n');
    }
    s.push_str("-----BEGIN PGP SIGNATURE-----\n\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str("=AAAA\n-----END PGP SIGNATURE-----\n");
    s
}
