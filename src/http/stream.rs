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

/// Bytes handed to the connection per step of a mapped body. Each step is its own mapping,
/// unmapped once written, so a connection holds at most about one step of the file in its
/// address space (and resident set), however large the file.
const MAP_STEP: u64 = 1 << 20;

/// One mapped step of a file, sent without copying it into a buffer of ours.
struct MapSlice {
    map: memmap2::Mmap,
    skip: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.skip..]
    }
}

/// `start..start + len` of a local blob, one mapped step at a time. Each step is mapped and
/// its pages read in (`MADV_POPULATE_READ`) on the blocking pool, so the async worker writing
/// it to the socket never waits for the disk; the kernel then copies straight from the page
/// cache to the socket, one copy instead of a read and a write.
pub fn body_from_file(file: std::fs::File, start: u64, len: u64, metrics: Arc<Metrics>) -> Body {
    let file = Arc::new(file);
    let end = start + len;
    let stream = futures::stream::unfold(start, move |at| {
        let (file, metrics) = (file.clone(), metrics.clone());
        async move {
            if at >= end {
                return None;
            }
            // Steps end on multiples of MAP_STEP (page-aligned), whatever the range's start.
            let next = ((at / MAP_STEP + 1) * MAP_STEP).min(end);
            match tokio::task::spawn_blocking(move || map_step(&file, at, next)).await {
                Ok(Ok(slice)) => {
                    metrics.bytes_served.inc_by(next - at);
                    Some((Ok(Bytes::from_owner(slice)), next))
                }
                Ok(Err(e)) => Some((Err(e), end)),
                Err(join) => Some((Err(std::io::Error::other(join)), end)),
            }
        }
    });
    Body::from_stream(futures::StreamExt::fuse(stream))
}

/// Maps `from..to` of `file` (from the page boundary below `from`) and reads its pages in.
/// Blocking.
///
/// Safety of the mapping: blobs are immutable files. asof writes a blob to a temporary file
/// and renames it into place; gc, purge and quarantine unlink or rename it, which leaves a
/// mapping valid. Nothing of asof truncates or rewrites a stored blob in place; only an
/// outside process truncating a file of the store could make a read of the mapping fault.
fn map_step(file: &std::fs::File, from: u64, to: u64) -> std::io::Result<MapSlice> {
    const PAGE: u64 = 4096;
    let offset = from / PAGE * PAGE;
    let len = (to - offset) as usize;
    if file.metadata()?.len() < to {
        return Err(std::io::Error::other("blob is shorter than recorded"));
    }
    // SAFETY: see above; the file is never modified in place while mapped.
    let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(file)? };
    match map.advise(memmap2::Advice::PopulateRead) {
        Ok(()) => {}
        // Kernels before 5.14 lack it: touching a byte per page reads them in just the same.
        Err(e) if e.raw_os_error() == Some(22) => {
            let sum = (0..len).step_by(PAGE as usize).fold(0u8, |acc, i| acc ^ map[i]);
            std::hint::black_box(sum);
        }
        Err(e) => return Err(e),
    }
    Ok(MapSlice { map, skip: (from - offset) as usize })
}
