//! Streams a byte range of a blob to the client without blocking async workers: each chunk
//! is read on the blocking pool, whatever backend the blob comes from.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;

use crate::blob::BlobRead;
use crate::metrics::Metrics;

/// Bytes read per blocking hop; files up to this size are sent in one piece.
pub const CHUNK: u64 = 256 * 1024;

/// `reader` is already positioned at the first byte to send; `len` bytes follow.
pub fn body_from_reader(reader: Box<dyn BlobRead>, len: u64, metrics: Arc<Metrics>) -> Body {
    let stream = futures::stream::unfold(Some((reader, len)), move |state| {
        let metrics = metrics.clone();
        async move {
            let (mut reader, remaining) = state?;
            if remaining == 0 {
                return None;
            }
            let chunk = remaining.min(CHUNK) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; chunk];
                let mut filled = 0;
                while filled < chunk {
                    match reader.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(filled);
                Ok((reader, buf))
            })
            .await;
            match read {
                Ok(Ok((reader, buf))) if !buf.is_empty() => {
                    metrics.bytes_served.inc_by(buf.len() as u64);
                    let left = remaining - buf.len() as u64;
                    Some((Ok(Bytes::from(buf)), Some((reader, left))))
                }
                // A blob shorter than its manifest says: end the body early so the client
                // sees a truncated transfer rather than hanging.
                Ok(Ok(_)) => Some((Err(std::io::Error::other("blob is shorter than recorded")), None)),
                Ok(Err(e)) => Some((Err(e), None)),
                Err(join) => Some((Err(std::io::Error::other(join)), None)),
            }
        }
    });
    // Fused: body layers may poll once more after the end, which `unfold` forbids.
    Body::from_stream(futures::StreamExt::fuse(stream))
}

/// Bytes handed to the connection per step of a mapped body.
const MAP_STEP: usize = 2 << 20;

/// A slice of a mapped file, sent without copying it into a buffer of ours.
struct MapSlice {
    map: Arc<memmap2::Mmap>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// Maps `file` for reading. Blocking.
///
/// Safety of the mapping: blobs are immutable files. asof writes a blob to a temporary file
/// and renames it into place, and gc, purge and quarantine unlink or rename it, which leaves
/// a mapping valid; nothing of asof truncates or rewrites a stored blob in place. Only an
/// outside process truncating a file of the store could make a read of the mapping fault.
pub fn map(file: &std::fs::File) -> std::io::Result<Arc<memmap2::Mmap>> {
    // SAFETY: see above; the file is never modified in place while mapped.
    let map = unsafe { memmap2::Mmap::map(file)? };
    Ok(Arc::new(map))
}

/// `start..start + len` of a mapped blob. Each step's pages are read in on the blocking pool
/// first (`MADV_POPULATE_READ`), so that the async worker writing them to the socket never
/// waits for the disk; the kernel then copies straight from the page cache to the socket.
pub fn body_from_map(map: Arc<memmap2::Mmap>, start: u64, len: u64, metrics: Arc<Metrics>) -> Body {
    let end = (start + len) as usize;
    let stream = futures::stream::unfold(start as usize, move |at| {
        let (map, metrics) = (map.clone(), metrics.clone());
        async move {
            if at >= end {
                return None;
            }
            let range = at..(at + MAP_STEP).min(end);
            let populate = {
                let (map, range) = (map.clone(), range.clone());
                tokio::task::spawn_blocking(move || populate(&map, range)).await
            };
            match populate {
                Ok(Ok(())) => {
                    metrics.bytes_served.inc_by(range.len() as u64);
                    let next = range.end;
                    Some((Ok(Bytes::from_owner(MapSlice { map, range })), next))
                }
                Ok(Err(e)) => Some((Err(e), end)),
                Err(join) => Some((Err(std::io::Error::other(join)), end)),
            }
        }
    });
    Body::from_stream(futures::StreamExt::fuse(stream))
}

/// Reads the pages of `range` in. Blocking.
fn populate(map: &memmap2::Mmap, range: std::ops::Range<usize>) -> std::io::Result<()> {
    // Page-aligned start, as madvise requires.
    let page = 4096;
    let from = range.start / page * page;
    match map.advise_range(memmap2::Advice::PopulateRead, from, range.end - from) {
        Ok(()) => Ok(()),
        // Kernels before 5.14 lack it: touching a byte per page reads them in just the same.
        Err(e) if e.raw_os_error() == Some(22) => {
            let sum = (from..range.end).step_by(page).fold(0u8, |acc, i| acc ^ map[i]);
            std::hint::black_box(sum);
            Ok(())
        }
        Err(e) => Err(e),
    }
}
