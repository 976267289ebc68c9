-- Rollout channels (schema/0008_channels.sql and 0014_rollout_health.sql of the SQLite
-- schema). Times are Unix milliseconds; snapshot IDs Unix seconds.

CREATE TABLE channels (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL UNIQUE,
    archive    TEXT   NOT NULL,
    spec       TEXT   NOT NULL,              -- JSON (rollout::spec::SpecJson)
    version    BIGINT NOT NULL,              -- bumped by every write (optimistic concurrency)
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rollouts (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels(id),
    requested  BIGINT NOT NULL,
    target     BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    status     TEXT   NOT NULL,
    reason     TEXT,
    ended_at   BIGINT,
    resumed_at BIGINT NOT NULL,
    rings      TEXT   NOT NULL               -- JSON: per ring {from, started_at}
);
CREATE INDEX rollouts_by_channel ON rollouts (channel_id, id);

CREATE TABLE rollout_reports (
    rollout_id BIGINT  NOT NULL REFERENCES rollouts(id),
    node       TEXT COLLATE "C" NOT NULL,
    failed     BOOLEAN NOT NULL,
    at         BIGINT  NOT NULL,
    PRIMARY KEY (rollout_id, node)
);

CREATE TABLE channel_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id BIGINT NOT NULL REFERENCES channels(id),
    at         BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    detail     TEXT   NOT NULL               -- JSON
);
CREATE INDEX channel_events_by_channel ON channel_events (channel_id, id);

CREATE TABLE rollout_ring_health (
    rollout_id BIGINT NOT NULL REFERENCES rollouts(id),
    ring       BIGINT NOT NULL,
    since      BIGINT NOT NULL,
    reports    BIGINT NOT NULL,
    failures   BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, ring)
);
