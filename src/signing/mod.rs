//! The signing mode of published archives: asof serves their Release files re-signed with
//! the archive's key and a `Snapshots:` field, so apt >= 2.7's `-S ID` finds the snapshots
//! without client configuration (docs/api.md, "Re-signed Release files").

pub mod key;
pub mod release;
pub mod resign;
pub mod store;

pub use key::{ArchiveKey, KeyError};
pub use store::{Recorded, SigningStore, StoredKey};
