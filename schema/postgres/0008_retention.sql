-- Retention (schema/0009_lifecycle.sql and 0010_retention.sql of the SQLite schema): pins.
-- Policies and the tombstones of deleted snapshots are in 0001_core.sql, which the read
-- view needs; `entries_closed` there finds what a deletion removes.

CREATE TABLE snapshot_pins (
    archive_id BIGINT NOT NULL REFERENCES archives(id),
    id         BIGINT NOT NULL,              -- the snapshot ID (unix seconds), as resolved
    reason     TEXT   NOT NULL,
    pinned_at  BIGINT NOT NULL,
    pinned_by  TEXT   NOT NULL,
    PRIMARY KEY (archive_id, id)
);
