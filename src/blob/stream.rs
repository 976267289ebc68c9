//! Moving blob bytes between blocking readers and writers and async streams: a file read in
//! chunks on the blocking pool, a stream gathered into batches for a blocking writer.

use std::io::{self, Read};

use bytes::Bytes;
use futures::StreamExt;

use super::{BlobWriter, ByteStream, PutError, PutOutcome};
use crate::domain::Digest;

/// Bytes per read from a blocking reader: large enough that the hop to the blocking pool
/// is paid rarely, small enough to bound what one response holds in memory.
pub const CHUNK: u64 = 1 << 20;

/// The next `len` bytes of `reader` as a stream, each chunk read on the blocking pool.
/// A reader that ends early ends the stream with an error, so that a client sees a
/// truncated transfer rather than a short body that looks whole.
pub fn from_reader(reader: Box<dyn Read + Send>, len: u64) -> ByteStream {
    let chunks = futures::stream::unfold(Some((reader, len)), |state| async move {
        let (mut reader, remaining) = state?;
        if remaining == 0 {
            return None;
        }
        let want = remaining.min(CHUNK) as usize;
        let read = tokio::task::spawn_blocking(move || read_up_to(&mut *reader, want).map(|buf| (reader, buf))).await;
        match read {
            Ok(Ok((reader, buf))) if !buf.is_empty() => {
                let left = remaining - buf.len() as u64;
                Some((Ok(Bytes::from(buf)), Some((reader, left))))
            }
            Ok(Ok(_)) => {
                Some((Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob is shorter than recorded")), None))
            }
            Ok(Err(e)) => Some((Err(e), None)),
            Err(join) => Some((Err(io::Error::other(join)), None)),
        }
    });
    // Fused: body layers may poll once more after the end, which `unfold` forbids.
    chunks.fuse().boxed()
}

/// Reads until `want` bytes or the end, whichever comes first.
fn read_up_to(reader: &mut dyn Read, want: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The chunks of `src` gathered into batches of at least `batch` bytes (the last may be
/// shorter), so that a blocking writer is handed work in few hops. Fused, since the call
/// after the last batch polls the ended stream once more.
pub async fn next_batch(src: &mut futures::stream::Fuse<ByteStream>, batch: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    while buf.len() < batch {
        match src.next().await {
            Some(chunk) => buf.extend_from_slice(&chunk?),
            None => break,
        }
    }
    Ok((!buf.is_empty()).then_some(buf))
}

/// A stream of one piece, for callers that hold the bytes already.
pub fn once(bytes: Bytes) -> ByteStream {
    futures::stream::once(async move { Ok(bytes) }).boxed()
}

/// Gathers a whole stream into memory (small blobs, tests).
pub async fn collect(mut src: ByteStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = src.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Feeds `src` to `writer` in batches on the blocking pool, then finishes it: how a backend
/// whose writer blocks stores a stream.
pub async fn finish_from(
    mut writer: Box<dyn BlobWriter>,
    src: ByteStream,
    expected: Option<&Digest>,
    expected_len: Option<u64>,
) -> Result<PutOutcome, PutError> {
    let mut src = src.fuse();
    while let Some(batch) = next_batch(&mut src, BATCH).await? {
        writer = tokio::task::spawn_blocking(move || writer.write(&batch).map(|()| writer))
            .await
            .map_err(io::Error::other)??;
        if let Some(limit) = expected_len
            && writer.written() > limit
        {
            return Err(PutError::LengthMismatch { expected: limit, actual: writer.written() });
        }
    }
    let expected = expected.copied();
    tokio::task::spawn_blocking(move || writer.finish(expected.as_ref(), expected_len))
        .await
        .map_err(io::Error::other)?
}

/// Bytes gathered from a stream before one hop to the blocking pool writes them.
const BATCH: usize = 1 << 20;

/// Copies `src` into `writer`, refusing more than `expected_len` bytes as soon as they
/// arrive: how a blocking put fills its writer.
pub fn copy_into(writer: &mut dyn BlobWriter, src: &mut dyn Read, expected_len: Option<u64>) -> Result<(), PutError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        writer.write(&buf[..n])?;
        if let Some(limit) = expected_len
            && writer.written() > limit
        {
            return Err(PutError::LengthMismatch { expected: limit, actual: writer.written() });
        }
    }
}
