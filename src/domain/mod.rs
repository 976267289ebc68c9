//! Validated identifiers of the domain, parsed once at the edge and trusted everywhere else.

mod archive_name;
mod channel_name;
pub mod digest;
mod rel_path;
pub mod snapshot_id;

pub use archive_name::{ArchiveName, ArchiveNameError};
pub use channel_name::{ChannelName, ChannelNameError, NodeName, NodeNameError};
pub use digest::{Digest, DigestError};
pub use rel_path::{LinkTarget, RelPath, RelPathError};
pub use snapshot_id::{SnapshotId, SnapshotIdError};
