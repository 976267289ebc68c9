-- Rollout channels (src/rollout): a named, moving pointer into one archive's history,
-- advanced ring by ring. Times are Unix milliseconds; snapshot IDs Unix seconds.

CREATE TABLE channels (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    archive    TEXT    NOT NULL,
    spec       TEXT    NOT NULL,            -- JSON: rings, gate, advance (rollout::spec::SpecJson)
    version    INTEGER NOT NULL,            -- bumped by every write (optimistic concurrency)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE rollouts (
    id         INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    requested  INTEGER NOT NULL,            -- the ID asked for
    target     INTEGER NOT NULL,            -- the snapshot it resolved to (by floor)
    started_at INTEGER NOT NULL,
    status     TEXT    NOT NULL,            -- running, paused, completed, aborted, superseded
    reason     TEXT,                        -- why it is paused
    ended_at   INTEGER,
    resumed_at INTEGER NOT NULL,
    rings      TEXT    NOT NULL             -- JSON: per ring {from, started_at}
);
CREATE INDEX rollouts_by_channel ON rollouts (channel_id, id);

-- Each node's latest report on a rollout, for the health gate.
CREATE TABLE rollout_reports (
    rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
    node       TEXT    NOT NULL,
    failed     INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (rollout_id, node)
) WITHOUT ROWID;

-- The audit history: who changed what, when (automatic changes by 'asof').
CREATE TABLE channel_events (
    id         INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels(id),
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL             -- JSON
);
CREATE INDEX channel_events_by_channel ON channel_events (channel_id, id);
