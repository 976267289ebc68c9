-- Takedowns (schema/0011_takedowns.sql of the SQLite schema): a file hidden from every
-- snapshot that holds it, by path in one archive or by content in every archive, the bytes
-- a purge deleted, and the audit log.

CREATE TABLE takedowns (
    id         BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id BIGINT   REFERENCES archives(id),
    path       TEXT COLLATE "C",
    sha256     BYTEA,
    status     SMALLINT NOT NULL CHECK (status IN (410, 451)),
    reason     TEXT     NOT NULL,
    created_at BIGINT   NOT NULL,
    created_by TEXT     NOT NULL,
    active     BOOLEAN  NOT NULL DEFAULT true,
    purged     BOOLEAN  NOT NULL DEFAULT false,
    CHECK ((archive_id IS NULL) = (path IS NULL) AND (path IS NULL) <> (sha256 IS NULL))
);
CREATE UNIQUE INDEX takedowns_by_path ON takedowns (archive_id, path) WHERE active AND path IS NOT NULL;
CREATE UNIQUE INDEX takedowns_by_sha256 ON takedowns (sha256) WHERE active AND sha256 IS NOT NULL;

CREATE TABLE takedown_purged (
    sha256      BYTEA  PRIMARY KEY,
    takedown_id BIGINT NOT NULL REFERENCES takedowns(id)
);

CREATE TABLE takedown_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    takedown_id BIGINT NOT NULL REFERENCES takedowns(id),
    action      TEXT   NOT NULL CHECK (action IN ('takedown', 'undo', 'purge')),
    actor       TEXT   NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX takedown_log_by_takedown ON takedown_log (takedown_id, seq);

CREATE TRIGGER serve_epoch_takedowns AFTER INSERT OR UPDATE OR DELETE ON takedowns
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
CREATE TRIGGER serve_epoch_takedown_purged AFTER INSERT OR UPDATE OR DELETE ON takedown_purged
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
