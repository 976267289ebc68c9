//! asof: a point-in-time archive snapshot service.
//!
//! Layers, innermost first: `domain` (validated identifiers), `manifest` (what a snapshot
//! holds), `blob` and `catalog` (storage traits and their embedded backends), `store` (the
//! data directory), `publish` and `verify` (operations), `http` (the server) and `cli`.
//! Errors: each layer has its own `thiserror` enum; `anyhow` only in the CLI and for
//! start-up; `http::ApiError` is the one error type at the HTTP edge.

pub mod auth;
pub mod background;
pub mod benchgen;
pub mod blob;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod gc;
pub mod http;
pub mod manifest;
pub mod metrics;
pub mod migrate;
pub mod mirror;
pub mod packages;
pub mod publish;
pub mod push;
pub mod resolve;
pub mod retention;
pub mod rollout;
pub mod scrub;
pub mod signing;
pub mod space;
pub mod store;
pub mod takedown;
pub mod verify;
pub mod wire;
