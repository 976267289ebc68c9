-- Per ring of a rollout, how many nodes reported and how many of those failed, counted
-- since `since` (the rollout's start or last resume, Unix ms), so that a report updates
-- one counter instead of recounting every node's report: O(rings) per report, not O(nodes).
-- A row from an earlier `since` is recounted from rollout_reports once, then kept up.
CREATE TABLE rollout_ring_health (
    rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
    ring       INTEGER NOT NULL,
    since      INTEGER NOT NULL,
    reports    INTEGER NOT NULL,
    failures   INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, ring)
) WITHOUT ROWID;
