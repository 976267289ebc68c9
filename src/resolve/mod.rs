//! Read-side domain logic: which snapshot an ID means (and whether that answer is final),
//! and what a path means inside a snapshot (symlinks, apt's by-hash).

mod path;
mod time;

pub use path::{Resolved, resolve_path};
pub use time::{Resolution, TimeError, resolve_id, resolve_latest};
