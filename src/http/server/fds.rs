//! The open-files limit: raised to the hard limit at start-up (as nginx's
//! `worker_rlimit_nofile`), and the connection cap derived from it.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept back from connections for SQLite, the listener, logs and mirror runs.
const RESERVED_FDS: u64 = 64;

/// Raises the soft RLIMIT_NOFILE to the hard limit and logs both. Returns the soft limit
/// in force afterwards (`None`: unlimited).
pub fn raise_nofile_limit() -> Option<u64> {
    let before = getrlimit(Resource::Nofile);
    let Some(hard) = before.maximum else {
        tracing::info!(soft = ?before.current, hard = "unlimited", "open-files limit left as is");
        return before.current;
    };
    if before.current == Some(hard) {
        tracing::info!(soft = hard, hard, "open-files limit");
        return Some(hard);
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) }) {
        Ok(()) => {
            tracing::info!(soft_before = ?before.current, soft = hard, hard, "raised the open-files limit");
            Some(hard)
        }
        Err(e) => {
            tracing::warn!(error = %e, soft = ?before.current, hard, "could not raise the open-files limit");
            before.current
        }
    }
}

/// The default connection cap: each connection may hold its socket and an open blob,
/// so half of what is left after the reserve.
pub fn default_max_connections() -> usize {
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(1 << 20);
    cap_for(soft)
}

fn cap_for(soft_limit: u64) -> usize {
    (soft_limit.saturating_sub(RESERVED_FDS) / 2).clamp(1, 1 << 20) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_leaves_room_for_blob_files() {
        assert_eq!(cap_for(256), 96);
        assert_eq!(cap_for(1024), 480);
        assert_eq!(cap_for(10), 1);
        assert_eq!(cap_for(u64::MAX), 1 << 20);
    }
}
