//! Job locks as session advisory locks: held by a pooled connection for as long as the
//! job runs, unlocked before the connection goes back to the pool, and released by the
//! server if the holder's process dies and its connection drops.

use crate::catalog::jobs::{JobLock, JobLocks};

use super::{Conn, PgCatalog};

/// The advisory-lock class of jobs (the object is a hash of the job's name).
const JOB_LOCK: i32 = 0x6173_6f6a; // "asoj"

fn object_of(name: &str) -> i32 {
    let d = crate::domain::Digest::of(name.as_bytes());
    i32::from_be_bytes(d.as_bytes()[..4].try_into().expect("4 bytes"))
}

struct Held {
    conn: Conn,
    object: i32,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.conn.execute("SELECT pg_advisory_unlock($1, $2)", &[&JOB_LOCK, &self.object]).is_err() {
            // Unlocked or not, this connection must not go back holding the lock.
            tracing::warn!("could not release a job lock; its connection will be closed");
        }
    }
}

impl JobLocks for PgCatalog {
    fn try_lock_job(&self, name: &str) -> std::io::Result<Option<JobLock>> {
        let mut conn = self.conn().map_err(std::io::Error::other)?;
        let object = object_of(name);
        let row = conn
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&JOB_LOCK, &object])
            .map_err(std::io::Error::other)?;
        Ok(row.get::<_, bool>(0).then(|| JobLock::new(Held { conn, object })))
    }

    fn describe_job_lock(&self, name: &str) -> String {
        format!("PostgreSQL advisory lock ({JOB_LOCK}, {}) for {name}", object_of(name))
    }
}
