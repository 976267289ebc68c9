//! Package intelligence: what the apt indices of each snapshot say about packages.

pub mod index;
pub mod parse;
pub mod query;
pub mod spill;
pub mod store;
pub mod version;
