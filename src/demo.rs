//! `asof serve --demo`: records a small signed apt archive in two versions from the
//! fixtures compiled into the binary, so a newcomer can point apt at it at once.

use std::path::{Path, PathBuf};

use anyhow::Context;
use include_dir::{Dir, include_dir};

use crate::domain::{ArchiveName, SnapshotId};
use crate::publish::{NoProgress, PublishOptions, publish_dir};
use crate::store::Store;

static APT_FIXTURES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/fixtures/apt");
static DEMO_KEYRING: &[u8] = include_bytes!("../fixtures/keys/test-signing.gpg");

pub const ARCHIVE: &str = "demo";
pub const SUITE: &str = "stable";

pub struct Demo {
    pub archive: ArchiveName,
    pub snapshots: Vec<SnapshotId>,
    pub keyring: PathBuf,
}

/// Publishes the demo archive unless it already has snapshots; writes its keyring.
pub fn prepare(store: &Store, data_dir: &Path) -> anyhow::Result<Demo> {
    let archive: ArchiveName = ARCHIVE.parse().expect("valid demo archive name");
    let keyring = data_dir.join("demo-archive-keyring.gpg");
    std::fs::write(&keyring, DEMO_KEYRING).with_context(|| format!("writing {}", keyring.display()))?;
    // An archive that does not exist yet simply has no snapshots.
    let mut snapshots: Vec<SnapshotId> =
        store.catalog.snapshots(&archive, &Default::default())?.iter().map(|s| s.id).collect();
    if snapshots.is_empty() {
        let tmp = tempfile::tempdir().context("creating a temp dir for the demo trees")?;
        APT_FIXTURES.extract(tmp.path()).context("extracting the demo trees")?;
        for version in ["v1", "v2"] {
            let opts = PublishOptions {
                progress: &NoProgress,
                source: serde_json::json!({ "method": "demo", "tree": version }),
                always: true,
            };
            let report = publish_dir(store, &archive, &tmp.path().join(version), &opts)?;
            snapshots.push(report.snapshot);
        }
    }
    Ok(Demo { archive, snapshots, keyring })
}
