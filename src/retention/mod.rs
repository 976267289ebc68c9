//! Snapshot retention: per-archive policies, pins, and which snapshots a policy keeps
//! (`policy`). Deleting the snapshots a policy lets go is not implemented yet; `asof
//! retention plan` shows what it would delete.

pub mod policy;

pub use policy::{Keep, Policy, evaluate};
