//! One suite's signed Release files: fetched, verified, and chosen. apt reads InRelease
//! first and falls back to Release + Release.gpg, so one verifying form is enough; the
//! other form, when it does not verify, is left out of the snapshot with a warning rather
//! than failing the run (deb.debian.org has served a BAD Release.gpg beside a good
//! InRelease), and the run fails only when neither verifies.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::deb822::clearsigned_text;
use super::fetch::Fetcher;
use super::release::{IndexRef, IndexSelection, ReleaseError, parse_release};
use super::scope::MirrorScope;
use super::signature::{Keyring, SignatureError, Verified};
use super::{MirrorError, MirrorSpec};
use crate::domain::RelPath;

const RELEASE_LIMIT: u64 = 64 * 1024 * 1024;

/// What one suite's Release files gave.
pub(super) struct SuiteState {
    pub suite: String,
    /// The upstream Release files kept for the snapshot, byte for byte, by path.
    pub release_files: BTreeMap<RelPath, Vec<u8>>,
    /// The chosen index files of the Release, relative to `dists/<suite>/`.
    pub indices: Vec<IndexRef>,
    pub fingerprints: Vec<String>,
    /// Release files left out because their signature did not verify.
    pub warnings: Vec<String>,
    /// The Release says `Acquire-By-Hash: yes`.
    pub by_hash: bool,
}

impl SuiteState {
    /// An index's path in the archive.
    pub fn index_path(&self, idx: &IndexRef) -> RelPath {
        RelPath::new(&format!("dists/{}/{}", self.suite, idx.path)).expect("suite and index paths are valid")
    }

    /// Where to ask upstream for an index first: its by-hash path when the Release offers
    /// one, as apt does. A by-hash file never changes, so a mirror caught mid-sync (a CDN
    /// serving a new InRelease beside old indices under their plain names) still answers it.
    pub fn by_hash_path(&self, idx: &IndexRef) -> Option<String> {
        let path = self.index_path(idx);
        let dir = path.as_str().rsplit_once('/').map_or("", |(d, _)| d);
        self.by_hash.then(|| format!("{dir}/by-hash/SHA256/{}", idx.sha256.hex()))
    }
}

/// Runs a gpgv verification on the blocking pool: it waits on a child process and on files.
async fn verify_off_thread(
    f: impl FnOnce() -> Result<Verified, SignatureError> + Send + 'static,
) -> Result<Verified, SignatureError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SignatureError::Gpgv(std::io::Error::other(e)))?
}

struct Upstream {
    inrelease: Option<Vec<u8>>,
    release: Option<Vec<u8>>,
    release_gpg: Option<Vec<u8>>,
}

/// The signed Release text, and which of the upstream files stay in the snapshot.
struct Choice {
    signed: Vec<u8>,
    keep_inrelease: bool,
    keep_pair: bool,
    fingerprints: Vec<String>,
    warnings: Vec<String>,
}

async fn choose(suite: &str, up: &Upstream, keyring: &Arc<Keyring>) -> Result<Choice, MirrorError> {
    let sig_err = |file, source| MirrorError::Signature { suite: suite.to_string(), file, source };
    let inrelease = match &up.inrelease {
        Some(bytes) => {
            let (k, bytes) = (keyring.clone(), bytes.clone());
            Some(verify_off_thread(move || k.verify_inline(&bytes)).await)
        }
        None => None,
    };
    let pair = match (&up.release, &up.release_gpg) {
        (Some(rel), Some(sig)) => {
            let (k, rel, sig) = (keyring.clone(), rel.clone(), sig.clone());
            Some(verify_off_thread(move || k.verify_detached(&rel, &sig)).await.map_err(|e| ("Release.gpg", e)))
        }
        (Some(_), None) => {
            Some(Err(("Release", SignatureError::Invalid("upstream has no InRelease and no Release.gpg".into()))))
        }
        (None, _) => None,
    };
    match (inrelease, pair) {
        (Some(Ok(v)), pair) => {
            let mut warnings = Vec::new();
            if let Some(Err((file, e))) = &pair {
                let reason = match file {
                    &"Release" => "upstream has no Release.gpg".to_string(),
                    _ => format!("{file} refused: {e}"),
                };
                warnings.push(format!(
                    "suite {suite}: Release and Release.gpg left out of the snapshot (InRelease verified, and apt reads it first): {reason}"
                ));
            }
            let keep_pair = matches!(pair, Some(Ok(_)));
            Ok(Choice { signed: v.signed, keep_inrelease: true, keep_pair, fingerprints: v.fingerprints, warnings })
        }
        (inrelease, Some(Ok(v))) => {
            let mut warnings = Vec::new();
            if let Some(Err(e)) = inrelease {
                warnings.push(format!(
                    "suite {suite}: InRelease left out of the snapshot (Release and Release.gpg verified): InRelease refused: {e}"
                ));
            }
            Ok(Choice {
                signed: v.signed,
                keep_inrelease: false,
                keep_pair: true,
                fingerprints: v.fingerprints,
                warnings,
            })
        }
        // Neither verifies: the InRelease's reason when there is one, as apt reports it.
        (Some(Err(e)), _) => Err(sig_err("InRelease", e)),
        (None, Some(Err((file, e)))) => Err(sig_err(file, e)),
        (None, None) => unreachable!("fetch_suite returns NoRelease before choosing"),
    }
}

/// Fetches and verifies one suite's Release files and picks the indices `spec` wants.
/// Stores nothing: the caller decides whether this run records anything.
pub(super) async fn fetch_suite(
    fetcher: &Fetcher,
    upstream: &str,
    suite: &str,
    spec: &MirrorSpec,
    keyring: Option<&Arc<Keyring>>,
) -> Result<SuiteState, MirrorError> {
    let suite_path =
        RelPath::new(suite).map_err(|e| MirrorError::Config(format!("suite {suite:?} is not a valid path: {e}")))?;
    let dir = format!("{upstream}dists/{suite_path}/");
    let inrelease = fetcher.get_small(&format!("{dir}InRelease"), RELEASE_LIMIT).await?;
    let release = fetcher.get_small(&format!("{dir}Release"), RELEASE_LIMIT).await?;
    let release_gpg = match &release {
        Some(_) => fetcher.get_small(&format!("{dir}Release.gpg"), RELEASE_LIMIT).await?,
        None => None,
    };
    if inrelease.is_none() && release.is_none() {
        return Err(MirrorError::NoRelease { suite: suite.into(), url: dir });
    }
    let up = Upstream { inrelease, release, release_gpg };
    let choice = match keyring {
        Some(k) => choose(suite, &up, k).await?,
        None => Choice {
            signed: match (&up.inrelease, &up.release) {
                (Some(inr), _) => {
                    let text = String::from_utf8_lossy(inr);
                    // Not clearsigned after all: read it as the Release text it then is.
                    clearsigned_text(&text).map_or_else(|| inr.clone(), String::into_bytes)
                }
                (None, rel) => rel.clone().expect("InRelease or Release exists here"),
            },
            keep_inrelease: true,
            keep_pair: true,
            fingerprints: Vec::new(),
            warnings: Vec::new(),
        },
    };
    let text = String::from_utf8(choice.signed)
        .map_err(|_| MirrorError::Release { suite: suite.into(), source: ReleaseError::BadLine("not UTF-8".into()) })?;
    let parsed = parse_release(&text).map_err(|source| MirrorError::Release { suite: suite.into(), source })?;
    let selection = IndexSelection {
        components: pick(suite, &spec.components, &parsed.components, "component")?,
        architectures: pick(suite, &spec.architectures, &parsed.architectures, "architecture")?,
        scope: spec.scope.clone(),
    };
    let by_hash = parsed.by_hash;
    let indices: Vec<IndexRef> = parsed.files.into_iter().filter(|f| selection.wants(&f.path)).collect();
    if indices.is_empty() {
        return Err(MirrorError::Selection {
            suite: suite.into(),
            reason: "no index file matches the chosen components, architectures and scope".into(),
        });
    }
    let mut release_files = BTreeMap::new();
    let kept = [
        ("InRelease", up.inrelease.filter(|_| choice.keep_inrelease)),
        ("Release", up.release.filter(|_| choice.keep_pair)),
        ("Release.gpg", up.release_gpg.filter(|_| choice.keep_pair)),
    ];
    for (name, bytes) in kept {
        if let Some(bytes) = bytes {
            release_files.insert(RelPath::new(&format!("dists/{suite_path}/{name}")).expect("valid"), bytes);
        }
    }
    Ok(SuiteState {
        suite: suite.to_string(),
        release_files,
        indices,
        fingerprints: choice.fingerprints,
        warnings: choice.warnings,
        by_hash,
    })
}

/// The wanted components or architectures, each checked against the Release; empty wants
/// all it lists.
fn pick(suite: &str, wanted: &[String], available: &[String], what: &str) -> Result<Vec<String>, MirrorError> {
    if wanted.is_empty() {
        return Ok(available.to_vec());
    }
    for w in wanted {
        let listed = available.iter().any(|a| a == w || a.rsplit('/').next() == Some(w.as_str()));
        if w != "all" && !listed {
            return Err(MirrorError::Selection {
                suite: suite.into(),
                reason: format!("{what} {w:?} is not in its Release file (it has: {})", available.join(" ")),
            });
        }
    }
    Ok(wanted.to_vec())
}

/// The scope as recorded in a snapshot's source, to tell a changed scope from an
/// unchanged upstream.
pub(super) fn scope_json(scope: &MirrorScope) -> serde_json::Value {
    serde_json::to_value(scope).expect("the scope serializes")
}
