//! `asof archive signing`: turn the re-signing of an archive's Release files on or off, or
//! show its state.

use std::path::Path;

use anyhow::{Context, bail};

use crate::domain::ArchiveName;
use crate::signing::{ArchiveKey, StoredKey};
use crate::store::Store;

/// `--key FILE`: checks the key, stores it; prints the fingerprint.
pub fn set(store: &Store, archive: &ArchiveName, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading the signing key {}", file.display()))?;
    let Ok(armored) = String::from_utf8(bytes) else {
        bail!(
            "{} is not an armored key (binary?); export it with `gpg --armor --export-secret-keys KEYID`",
            file.display()
        );
    };
    let key = ArchiveKey::from_armored(&armored).with_context(|| format!("{} cannot sign", file.display()))?;
    let now = chrono::Utc::now().timestamp();
    let stored = StoredKey {
        fingerprint: key.fingerprint.clone(),
        secret_key: key.secret_armored,
        public_key: key.public_armored,
        set_at: now,
    };
    let replaced = store.signing.set_signing_key(archive, Some(&stored), now)?;
    eprintln!(
        "archive {archive}: Release files are now served re-signed by {}{}; users get the public key from \
         /api/v1/archives/{archive}/-/signing-key",
        key.fingerprint,
        if replaced { " (replacing the previous key; files already served keep their signature)" } else { "" }
    );
    println!("{}", key.fingerprint);
    Ok(())
}

/// `--off`: forgets the key; what was served re-signed stays recorded.
pub fn off(store: &Store, archive: &ArchiveName) -> anyhow::Result<()> {
    if store.catalog.archive(archive)?.is_none() {
        bail!("no archive named '{archive}'");
    }
    if store.signing.set_signing_key(archive, None, chrono::Utc::now().timestamp())? {
        eprintln!(
            "archive {archive}: signing is off; Release files are served as published, except where a \
             re-signed one was already served for a final ID"
        );
    } else {
        eprintln!("archive {archive}: signing was already off");
    }
    Ok(())
}

/// No option: prints the key's fingerprint, or `off`.
pub fn show(store: &Store, archive: &ArchiveName) -> anyhow::Result<()> {
    if store.catalog.archive(archive)?.is_none() {
        bail!("no archive named '{archive}'");
    }
    match store.signing.signing_key(archive)? {
        Some(k) => println!("{}", k.fingerprint),
        None => println!("off"),
    }
    Ok(())
}
