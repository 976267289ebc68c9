//! The real apt-get, isolated from the host's configuration (APT_CONFIG plus -o Dir::...).

use std::path::Path;
use std::process::Command;

/// Runs apt-get against one sources line in a fresh, isolated apt root, and returns the
/// bytes of the downloaded files by name.
pub fn apt_download(root: &Path, source_line: &str, packages: &[&str]) -> Vec<(String, Vec<u8>)> {
    apt_download_with_auth(root, source_line, packages, None)
}

/// As `apt_download`, with `auth` as the content of apt's auth.conf (netrc format).
pub fn apt_download_with_auth(
    root: &Path,
    source_line: &str,
    packages: &[&str],
    auth: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    for d in ["empty", "state/lists/partial", "cache/archives/partial", "dl"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("status"), "").unwrap();
    std::fs::write(root.join("auth.conf"), auth.unwrap_or("")).unwrap();
    std::fs::write(root.join("sources.list"), format!("{source_line}\n")).unwrap();
    // Dir::Etc::Parts must come from APT_CONFIG: apt reads apt.conf.d before parsing -o.
    std::fs::write(
        root.join("apt.conf"),
        format!("Dir::Etc::Main \"/dev/null\";\nDir::Etc::Parts \"{}/empty\";\n", root.display()),
    )
    .unwrap();
    let apt = |args: &[&str], cwd: &Path| {
        let out = Command::new("apt-get")
            .current_dir(cwd)
            .env("APT_CONFIG", root.join("apt.conf"))
            .arg("-o")
            .arg(format!("Dir::Etc::SourceList={}/sources.list", root.display()))
            .arg("-o")
            .arg(format!("Dir::Etc::SourceParts={}/empty", root.display()))
            .arg("-o")
            .arg(format!("Dir::State={}/state", root.display()))
            .arg("-o")
            .arg(format!("Dir::State::status={}/status", root.display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}/cache", root.display()))
            .arg("-o")
            .arg(format!("Dir::Etc::netrc={}/auth.conf", root.display()))
            .arg("-o")
            .arg(format!("Dir::Etc::netrcparts={}/empty", root.display()))
            .args(["-o", "APT::Architecture=amd64", "-o", "APT::Sandbox::User=root"])
            .args(args)
            .output()
            .expect("apt-get is installed on Debian");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "apt-get {args:?} failed:\n{text}");
        // apt exits 0 on some failures it only warns about (e.g. a bad signature on
        // update of an already-known repo): any W:/E: line fails the test.
        assert!(!text.lines().any(|l| l.starts_with("W:") || l.starts_with("E:")), "apt-get {args:?} warned:\n{text}");
        text
    };
    apt(&["update"], root);
    let mut args = vec!["download"];
    args.extend_from_slice(packages);
    apt(&args, &root.join("dl"));
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(root.join("dl"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}
