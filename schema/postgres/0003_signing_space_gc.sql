-- Signing keys and recorded re-signed files (schema/0006_signing.sql and 0009 of the SQLite
-- schema). The key lives in the catalog so that every frontend signs alike.

CREATE TABLE archive_signing (
    archive_id  BIGINT PRIMARY KEY REFERENCES archives(id),
    fingerprint TEXT   NOT NULL,
    secret_key  TEXT   NOT NULL,
    public_key  TEXT   NOT NULL,
    set_at      BIGINT NOT NULL
);

-- Every re-signed file ever served, by snapshot, path and base URL; the first writer wins.
CREATE TABLE resigned_files (
    archive_id BIGINT NOT NULL REFERENCES archives(id),
    seq        BIGINT NOT NULL,
    path       TEXT COLLATE "C" NOT NULL,
    base       TEXT   NOT NULL,
    sha256     BYTEA  NOT NULL,
    size       BIGINT NOT NULL,
    made_at    BIGINT NOT NULL,
    PRIMARY KEY (archive_id, seq, path, base)
);
-- Garbage collection and space accounting ask by digest.
CREATE INDEX resigned_files_by_sha256 ON resigned_files (sha256);

CREATE TRIGGER serve_epoch_archive_signing AFTER INSERT OR UPDATE OR DELETE ON archive_signing
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
CREATE TRIGGER serve_epoch_resigned_files_delete AFTER DELETE ON resigned_files
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
