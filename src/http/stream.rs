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
