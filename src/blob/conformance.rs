//! The behaviour every blob backend must show, as cases that each take a fresh, empty
//! store: content addressing, verification on the way in, conditional puts, ranges, the
//! blocking face, and garbage collection's and scrub's moves. A backend's tests instantiate
//! them all with `blob_conformance!`, so the local store, S3 and Azure are held to one
//! contract.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{BlobStore, PutError, stream};
use crate::domain::Digest;

/// A fresh, empty store, a way to plant arbitrary bytes under a digest's name (as a
/// corrupted disk or bucket would), and whatever must outlive the store.
pub(crate) struct Fixture {
    pub store: Arc<dyn BlobStore>,
    pub plant: Box<Plant>,
    pub _guard: Box<dyn Send + Sync>,
}

/// Writes bytes under a digest's name, bypassing every check.
pub(crate) type Plant = dyn Fn(&Digest, &[u8]) + Send + Sync;

/// Expands to one `#[test]` per case, each on a fixture from `$new` (an `Option<Fixture>`:
/// `None` when the backend's server is not available, which its factory reports).
macro_rules! blob_conformance {
    ($new:expr) => {
        $crate::blob::conformance::blob_conformance!(@cases $new;
            put_is_content_addressed_and_a_second_put_creates_nothing,
            wrong_digest_or_length_stores_nothing,
            ranges_are_exact_and_absent_blobs_are_none,
            delete_removes_and_absent_is_not_an_error,
            a_stored_blob_is_never_overwritten,
            concurrent_puts_of_one_blob_all_succeed,
            concurrent_claims_of_one_blob_all_succeed,
            a_blob_larger_than_memory_spools_and_reads_back,
            the_blocking_face_reads_seeks_lists_and_writes,
            retire_spares_recent_use_and_restores_or_discards,
            a_claim_after_retire_finds_nothing,
            quarantine_moves_bytes_out_of_reach,
            presigned_urls_serve_the_bytes_when_offered,
        );
    };
    (@cases $new:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(f) = $new {
                    $crate::blob::conformance::$case(f);
                }
            }
        )*
    };
}
pub(crate) use blob_conformance;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn put(store: &dyn BlobStore, bytes: &[u8]) -> super::PutOutcome {
    let d = Digest::of(bytes);
    store.put(stream::once(Bytes::copy_from_slice(bytes)), Some(&d), Some(bytes.len() as u64)).await.unwrap()
}

async fn read(store: &dyn BlobStore, d: &Digest, range: std::ops::Range<u64>) -> Option<Vec<u8>> {
    let s = store.get_range(d, range).await.unwrap()?;
    Some(stream::collect(s).await.unwrap())
}

/// Bytes that differ from blob to blob and do not compress to nothing.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed).collect()
}

pub(crate) fn put_is_content_addressed_and_a_second_put_creates_nothing(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        let first = put(s, b"hello").await;
        assert_eq!((first.digest, first.size, first.created), (Digest::of(b"hello"), 5, true));
        let again = put(s, b"hello").await;
        assert_eq!((again.digest, again.size, again.created), (first.digest, 5, false));
        // Unchecked puts are named by what they hash to.
        let free = s.put(stream::once(Bytes::from_static(b"free")), None, None).await.unwrap();
        assert_eq!((free.digest, free.created), (Digest::of(b"free"), true));
        // A stream that must not be polled after its end (as a request body's is not).
        let pieces =
            futures::stream::unfold(
                0u8,
                |n| async move { (n < 3).then(|| (Ok(Bytes::from(vec![b'a' + n; 2])), n + 1)) },
            );
        let out = s.put(Box::pin(pieces), Some(&Digest::of(b"aabbcc")), Some(6)).await.unwrap();
        assert_eq!((out.digest, out.size, out.created), (Digest::of(b"aabbcc"), 6, true));
        assert_eq!(s.size(&first.digest).await.unwrap(), Some(5));
        assert!(s.contains(&first.digest).await.unwrap());
        assert!(!s.contains(&Digest::of(b"absent")).await.unwrap());
    });
}

pub(crate) fn wrong_digest_or_length_stores_nothing(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        let wrong = Digest::of(b"other");
        let e = s.put(stream::once(Bytes::from_static(b"hello")), Some(&wrong), None).await.unwrap_err();
        assert!(matches!(e, PutError::DigestMismatch { expected, actual } if expected == wrong && actual == Digest::of(b"hello")));
        let e = s.put(stream::once(Bytes::from_static(b"hello")), None, Some(3)).await.unwrap_err();
        assert!(matches!(e, PutError::LengthMismatch { expected: 3, actual: 5 }), "{e}");
        let e = s.put(stream::once(Bytes::from_static(b"hello")), None, Some(9)).await.unwrap_err();
        assert!(matches!(e, PutError::LengthMismatch { expected: 9, actual: 5 }), "{e}");
        // A stream that fails midway stores nothing either.
        let failing = futures::stream::iter([Ok(Bytes::from_static(b"hel")), Err(std::io::Error::other("cut"))]);
        let d = Digest::of(b"hello");
        assert!(s.put(Box::pin(failing), Some(&d), Some(5)).await.is_err());
        assert_eq!(s.size(&d).await.unwrap(), None);
        assert_eq!(s.size(&wrong).await.unwrap(), None);
        let blocking = f.store.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            blocking.blocking().for_each(&mut |d| {
                all.push(d);
                Ok(())
            })?;
            Ok::<_, std::io::Error>(all)
        });
        assert_eq!(listed.await.unwrap().unwrap(), Vec::<Digest>::new());
    });
}

pub(crate) fn ranges_are_exact_and_absent_blobs_are_none(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        let bytes = pattern(100_000, 1);
        let d = put(s, &bytes).await.digest;
        assert_eq!(read(s, &d, 0..100_000).await.unwrap(), bytes);
        assert_eq!(read(s, &d, 1234..5678).await.unwrap(), &bytes[1234..5678]);
        assert_eq!(read(s, &d, 99_999..100_000).await.unwrap(), &bytes[99_999..]);
        assert_eq!(read(s, &d, 500..500).await.unwrap(), b"");
        assert_eq!(read(s, &Digest::of(b"absent"), 0..1).await, None);
        assert_eq!(read(s, &Digest::of(b"absent"), 0..0).await, None);
    });
}

pub(crate) fn delete_removes_and_absent_is_not_an_error(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        let d = put(s, b"doomed").await.digest;
        s.delete(&d).await.unwrap();
        assert_eq!(s.size(&d).await.unwrap(), None);
        assert_eq!(read(s, &d, 0..6).await, None);
        s.delete(&d).await.unwrap();
        // And it can be stored again.
        assert!(put(s, b"doomed").await.created);
    });
}

pub(crate) fn a_stored_blob_is_never_overwritten(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        // Bytes that do not hash to their name (a corrupted disk, a bad copy) stay as they
        // are for scrub to find: a put of the right bytes does not silently replace them.
        let d = Digest::of(b"right");
        (f.plant)(&d, b"wrong");
        let out = put(s, b"right").await;
        assert_eq!((out.digest, out.created), (d, false));
        assert_eq!(read(s, &d, 0..5).await.unwrap(), b"wrong");
    });
}

pub(crate) fn concurrent_puts_of_one_blob_all_succeed(f: Fixture) {
    runtime().block_on(async {
        let bytes = pattern(300_000, 2);
        let puts = (0..4).map(|_| {
            let (store, bytes) = (f.store.clone(), bytes.clone());
            tokio::spawn(async move { put(store.as_ref(), &bytes).await })
        });
        // Which of them created it is a race; each answers the digest and size, and the
        // stored bytes are the one copy.
        for outcome in futures::future::join_all(puts).await {
            let o = outcome.unwrap();
            assert_eq!((o.digest, o.size), (Digest::of(&bytes), 300_000));
        }
        assert_eq!(read(f.store.as_ref(), &Digest::of(&bytes), 0..300_000).await.unwrap(), bytes);
    });
}

pub(crate) fn concurrent_claims_of_one_blob_all_succeed(f: Fixture) {
    runtime().block_on(async {
        let d = put(f.store.as_ref(), b"popular").await.digest;
        // A publish relying on one blob from many files at once.
        let claims = (0..32).map(|_| {
            let store = f.store.clone();
            tokio::spawn(async move { store.contains(&d).await.unwrap() })
        });
        for found in futures::future::join_all(claims).await {
            assert!(found.unwrap());
        }
    });
}

pub(crate) fn a_blob_larger_than_memory_spools_and_reads_back(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        // Over the object store's in-memory spool and its single-PUT limit: sent in parts.
        let bytes = pattern((65 << 20) + 12_345, 3);
        let chunks: Vec<std::io::Result<Bytes>> =
            bytes.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let d = Digest::of(&bytes);
        let out = s.put(Box::pin(futures::stream::iter(chunks)), Some(&d), Some(bytes.len() as u64)).await.unwrap();
        assert_eq!((out.digest, out.size, out.created), (d, bytes.len() as u64, true));
        let tail = (bytes.len() - 100) as u64..bytes.len() as u64;
        assert_eq!(read(s, &d, tail.clone()).await.unwrap(), &bytes[tail.start as usize..]);
        assert_eq!(Digest::of(&read(s, &d, 0..bytes.len() as u64).await.unwrap()), d);
        assert!(!put(s, &bytes).await.created);
    });
}

pub(crate) fn the_blocking_face_reads_seeks_lists_and_writes(f: Fixture) {
    let b = f.store.blocking();
    let bytes = pattern(50_000, 4);
    let d = Digest::of(&bytes);
    let out = b.put(&mut bytes.as_slice(), Some(&d), Some(50_000)).unwrap();
    assert!(out.created);
    assert!(!b.put(&mut bytes.as_slice(), Some(&d), Some(50_000)).unwrap().created);
    let mut blob = b.open(&d).unwrap().unwrap();
    assert_eq!(blob.len, 50_000);
    blob.reader.seek(SeekFrom::Start(40_000)).unwrap();
    let mut tail = Vec::new();
    blob.reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, &bytes[40_000..]);
    let mut w = b.writer().unwrap();
    w.write(b"pie").unwrap();
    w.write(b"ces").unwrap();
    assert_eq!(w.written(), 6);
    let pieces = w.finish(Some(&Digest::of(b"pieces")), Some(6)).unwrap();
    assert!(pieces.created);
    let mut listed = Vec::new();
    b.for_each(&mut |d| {
        listed.push(d);
        Ok(())
    })
    .unwrap();
    listed.sort();
    let mut want = vec![d, pieces.digest];
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(b.size(&d).unwrap(), Some(50_000));
    assert!(b.open(&Digest::of(b"absent")).unwrap().is_none());
    b.remove(&d).unwrap();
    assert_eq!(b.size(&d).unwrap(), None);
}

pub(crate) fn retire_spares_recent_use_and_restores_or_discards(f: Fixture) {
    let b = f.store.blocking();
    let keep = b.put(&mut &b"keep"[..], None, None).unwrap().digest;
    let drop = b.put(&mut &b"drop"[..], None, None).unwrap().digest;
    // Just stored: within any grace period.
    assert!(b.retire(&keep, Duration::from_secs(3600)).unwrap().is_none());
    assert_eq!(b.size(&keep).unwrap(), Some(4));
    std::thread::sleep(Duration::from_millis(1100));
    let retired = b.retire(&keep, Duration::from_millis(500)).unwrap().expect("idle long enough");
    assert_eq!(retired.size(), 4);
    assert_eq!(b.size(&keep).unwrap(), None, "set aside");
    assert!(b.aside_location(&keep).unwrap().is_some());
    retired.restore().unwrap();
    assert_eq!(b.size(&keep).unwrap(), Some(4));
    assert!(b.aside_location(&keep).unwrap().is_none());
    let gone = b.retire(&drop, Duration::from_millis(500)).unwrap().expect("idle long enough");
    // A collection killed here leaves it aside, for the next one to find.
    let aside: Vec<Digest> = b
        .left_aside()
        .unwrap()
        .into_iter()
        .map(|(d, r)| {
            std::mem::forget(r);
            d
        })
        .collect();
    assert_eq!(aside, vec![drop]);
    gone.discard().unwrap();
    assert_eq!(b.size(&drop).unwrap(), None);
    assert!(b.aside_location(&drop).unwrap().is_none());
    assert!(b.left_aside().unwrap().is_empty());
    assert!(b.retire(&drop, Duration::ZERO).unwrap().is_none(), "absent");
}

pub(crate) fn a_claim_after_retire_finds_nothing(f: Fixture) {
    let b = f.store.blocking();
    let d = b.put(&mut &b"claimed"[..], None, None).unwrap().digest;
    std::thread::sleep(Duration::from_millis(1100));
    let retired = b.retire(&d, Duration::from_millis(500)).unwrap().expect("idle");
    // A publisher looking now must store the bytes again rather than rely on them.
    assert_eq!(b.claim(&d).unwrap(), None);
    assert!(b.put(&mut &b"claimed"[..], Some(&d), Some(7)).unwrap().created);
    retired.discard().unwrap();
    assert_eq!(b.size(&d).unwrap(), Some(7), "the new copy stays");
    // A claim restarts the grace period: stored 3.5 s ago, claimed now, it is spared by an
    // idle time of 3 s. (Object stores date objects to the second, so no shorter margins.)
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(b.claim(&d).unwrap(), Some(7));
    assert!(b.retire(&d, Duration::from_secs(3)).unwrap().is_none());
    let (_, last) = b.last_use(&d).unwrap().unwrap();
    assert!(last > std::time::SystemTime::now() - Duration::from_secs(60));
}

pub(crate) fn quarantine_moves_bytes_out_of_reach(f: Fixture) {
    let b = f.store.blocking();
    let d = Digest::of(b"good");
    (f.plant)(&d, b"rotten");
    let location = b.quarantine(&d).unwrap().expect("present");
    assert!(location.contains(&d.hex()), "{location}");
    assert_eq!(b.size(&d).unwrap(), None);
    assert_eq!(b.quarantine(&d).unwrap(), None);
    assert!(b.put(&mut &b"good"[..], Some(&d), Some(4)).unwrap().created, "the good bytes can come back");
}

pub(crate) fn presigned_urls_serve_the_bytes_when_offered(f: Fixture) {
    runtime().block_on(async {
        let s = f.store.as_ref();
        let bytes = pattern(70_000, 5);
        let d = put(s, &bytes).await.digest;
        let Some(url) = s.presign(&d, Duration::from_secs(60)).await.unwrap() else {
            assert!(s.has_local_files(), "only the local store offers none");
            return;
        };
        let got = reqwest::get(&url).await.unwrap();
        assert_eq!(got.status(), 200, "{url}");
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
        let plain = url.split('?').next().unwrap().to_string();
        let refused = reqwest::get(&plain).await.unwrap().status();
        assert_eq!(refused, 403, "unsigned, the URL is refused");
    });
}
