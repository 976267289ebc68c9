//! Sends a byte range of a blob to the client without blocking async workers: large local
//! files from memory maps, anything else as its store streams it.

use futures::StreamExt;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;

use crate::blob::ByteStream;
use crate::metrics::Metrics;

/// Bytes read per blocking hop; files up to this size are sent in one piece.
pub const CHUNK: u64 = 256 * 1024;

/// A blob's bytes as they come from its store, counted as served.
pub fn body_from_stream(bytes: ByteStream, metrics: Arc<Metrics>) -> Body {
    Body::from_stream(bytes.inspect(move |chunk| {
        if let Ok(c) = chunk {
            metrics.bytes_served.inc_by(c.len() as u64);
        }
    }))
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
