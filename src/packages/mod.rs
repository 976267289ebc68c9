//! Package intelligence: what the apt indices of each snapshot say about packages.

pub mod version;
