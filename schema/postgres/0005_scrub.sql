-- Scrub (schema/0012_scrub.sql of the SQLite schema): the rotating cursor over the SHA-256
-- space, when each blob last hashed to its name, quarantined blobs and the entry rows
-- they damage. BYTEA compares bytewise, as SQLite's BLOB, so 8-byte bounds cut the
-- digest space exactly at prefixes.

CREATE TABLE scrub_cursor (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    position BYTEA    NOT NULL,
    moved_at BIGINT   NOT NULL
);

CREATE TABLE scrub_verified (
    sha256      BYTEA  PRIMARY KEY,
    verified_at BIGINT NOT NULL
);

CREATE TABLE scrub_quarantine (
    sha256   BYTEA  PRIMARY KEY,
    kind     TEXT   NOT NULL,
    found_at BIGINT NOT NULL,
    size     BIGINT NOT NULL,
    detail   TEXT   NOT NULL,
    refetch  TEXT
);

CREATE TABLE scrub_damage (
    archive_id BIGINT NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    first_seq  BIGINT NOT NULL,
    sha256     BYTEA  NOT NULL,
    PRIMARY KEY (archive_id, path, first_seq)
);
CREATE INDEX scrub_damage_by_sha256 ON scrub_damage (sha256);

CREATE TRIGGER serve_epoch_scrub_quarantine AFTER INSERT OR UPDATE OR DELETE ON scrub_quarantine
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
