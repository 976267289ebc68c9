//! Rollout channels: a named, moving pointer into one archive's history that a fleet
//! follows, advanced ring by ring. `spec` says what a channel is, `assign` which ring a
//! node is in, `machine` how a rollout moves (pure functions of state and time), `gate`
//! when failure reports pause it, `store` where it is kept and `service` ties them together.

pub mod assign;
pub mod gate;
pub mod machine;
pub mod seen;
pub mod service;
pub mod spec;
pub mod store;
pub mod view;

pub use machine::{Event, RingState, Rollout, RolloutError, Status};
pub use spec::{Advance, ChannelSpec, Gate, Ring, SpecError};
pub use store::{ChannelRecord, ChannelStore, ChannelWrite};

/// Milliseconds since the Unix epoch: the clock of every rollout decision.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 with milliseconds, as every rollout time is printed.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
