//! Which stored blobs a caller may reference in a commit, or learn exist.
//!
//! Digests are public (every InRelease and Packages file lists them), so naming one proves
//! nothing. A caller may use a blob only if it can read it already (some archive it may
//! read references it: public archives count) or it sent those very bytes itself in an
//! upload that hashed to the digest (an upload grant, valid for `UPLOAD_GRANT_TTL`). For
//! any other blob the server behaves as if it were not stored: `missing` lists it, an
//! upload is read, hashed and accepted (dedup still stores it once), and a commit naming it
//! is refused as missing. Admin tokens may use every blob.

use super::{AuthStore, Principal};
use crate::catalog::{Catalog, CatalogError};
use crate::domain::Digest;

/// How long an upload lets its token reference the blob (uploads precede their commit).
pub const UPLOAD_GRANT_TTL_SECS: i64 = 7 * 24 * 3600;

pub struct BlobAccess<'a> {
    pub principal: &'a Principal,
    pub catalog: &'a dyn Catalog,
    pub auth: &'a dyn AuthStore,
    pub now: i64,
}

impl BlobAccess<'_> {
    /// Blocking. Whether the caller may reference (and learn of) `digest`.
    pub fn may_use(&self, digest: &Digest) -> Result<bool, CatalogError> {
        if self.principal.is_admin() || self.may_read(digest)? {
            return Ok(true);
        }
        self.auth.upload_granted(self.principal.token_id, digest, self.now - UPLOAD_GRANT_TTL_SECS)
    }

    /// Whether an archive the caller can read references `digest`.
    pub fn may_read(&self, digest: &Digest) -> Result<bool, CatalogError> {
        Ok(self.catalog.blob_holders(digest)?.iter().any(|h| !h.private || self.principal.can_read(&h.archive)))
    }
}
