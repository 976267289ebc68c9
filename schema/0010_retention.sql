-- Applying retention (docs/operations.md, "Retention"; docs/api.md, "Deleted snapshots").
--
-- A deleted snapshot leaves a tombstone: its ID, so that a request for exactly that ID
-- answers 410 instead of silently serving another snapshot's bytes; and its sequence
-- number, so that entry rows it started that live on in later snapshots still say when
-- they last changed (their Last-Modified and "since").
CREATE TABLE deleted_snapshots (
    archive_id   INTEGER NOT NULL REFERENCES archives(id),
    seq          INTEGER NOT NULL,
    id           INTEGER NOT NULL,          -- the snapshot ID, unix seconds
    committed_at INTEGER NOT NULL,          -- unix milliseconds, as it was
    digest       BLOB    NOT NULL,          -- its manifest digest, as it was
    deleted_at   INTEGER NOT NULL,          -- unix seconds
    deleted_by   TEXT    NOT NULL,
    PRIMARY KEY (archive_id, seq),
    UNIQUE (archive_id, id)
) WITHOUT ROWID;

-- Deleting snapshot s (kept neighbours a < s < b) removes the entry rows only s held:
-- those that start after a and end by b. Found by where they end, so a deletion reads
-- O(rows it removes + rows b closed), never the archive.
CREATE INDEX entries_closed ON entries (archive_id, last_seq) WHERE last_seq IS NOT NULL;
