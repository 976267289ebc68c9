//! Read-side domain logic: which snapshot an ID means (and whether that answer is final),
//! what a path means inside a snapshot (symlinks, apt's by-hash), and what a suite's
//! Release says (its hash lists, Valid-Until).

mod path;
pub mod release;
mod time;

pub use path::{PathError, Releases, Resolved, resolve_path};
pub use time::{Resolution, TimeError, latest_in_view, resolve_id, resolve_in_view, resolve_latest};
