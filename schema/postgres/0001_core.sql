-- asof metadata on PostgreSQL: the core tables (archives, snapshots, manifests as validity
-- intervals, blob references, the seal, the serve epoch, and the retention tables the read
-- view consults). The same model as the SQLite schema under schema/ (0001 to 0015), written
-- as one file: see the comments there for why each table and index exists. Later files here
-- add the tables of the other stores (tokens, packages, signing, channels, lifecycle).
--
-- Paths compare in byte order (COLLATE "C"), as SQLite's BINARY does: the live manifest is
-- streamed in path order and diffed against a scan in that order.

CREATE TABLE archives (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,              -- unix seconds
    private     BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE snapshots (
    archive_id   BIGINT NOT NULL REFERENCES archives(id),
    seq          BIGINT NOT NULL,
    id           BIGINT NOT NULL,              -- the snapshot ID, unix seconds
    committed_at BIGINT NOT NULL,              -- unix milliseconds
    digest       BYTEA  NOT NULL,
    files        BIGINT NOT NULL,
    bytes        BIGINT NOT NULL,
    added        BIGINT NOT NULL,
    changed      BIGINT NOT NULL,
    removed      BIGINT NOT NULL,
    source       TEXT   NOT NULL,              -- JSON
    PRIMARY KEY (archive_id, seq),
    UNIQUE (archive_id, id)
);

CREATE TABLE entries (
    archive_id  BIGINT NOT NULL,
    path        TEXT COLLATE "C" NOT NULL,
    first_seq   BIGINT NOT NULL,
    last_seq    BIGINT,                        -- exclusive end; NULL while live
    parent_hash BIGINT NOT NULL,
    kind        SMALLINT NOT NULL,             -- 0 file, 1 symlink, 2 directory
    size        BIGINT NOT NULL,
    sha256      BYTEA,
    target      TEXT,
    PRIMARY KEY (archive_id, path, first_seq)
);
CREATE INDEX entries_by_parent ON entries (archive_id, parent_hash, first_seq);
CREATE INDEX entries_live ON entries (archive_id, path) WHERE last_seq IS NULL;
CREATE INDEX entries_closed ON entries (archive_id, last_seq) WHERE last_seq IS NOT NULL;

CREATE TABLE blob_archives (
    sha256     BYTEA  NOT NULL,
    archive_id BIGINT NOT NULL REFERENCES archives(id),
    rows       BIGINT NOT NULL,
    size       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sha256, archive_id)
);
CREATE INDEX blob_archives_by_archive ON blob_archives (archive_id);

CREATE TABLE seal (
    id           SMALLINT PRIMARY KEY CHECK (id = 1),
    sealed_until BIGINT NOT NULL               -- unix seconds
);
INSERT INTO seal (id, sealed_until) VALUES (1, 0);

CREATE TABLE deleted_snapshots (
    archive_id   BIGINT NOT NULL REFERENCES archives(id),
    seq          BIGINT NOT NULL,
    id           BIGINT NOT NULL,
    committed_at BIGINT NOT NULL,
    digest       BYTEA  NOT NULL,
    deleted_at   BIGINT NOT NULL,
    deleted_by   TEXT   NOT NULL,
    PRIMARY KEY (archive_id, seq),
    UNIQUE (archive_id, id)
);

CREATE TABLE retention_policies (
    archive_id BIGINT PRIMARY KEY REFERENCES archives(id),
    policy     TEXT   NOT NULL,
    set_at     BIGINT NOT NULL,
    set_by     TEXT   NOT NULL
);

-- The serve epoch (schema/0015_serve_epoch.sql): moved by triggers on whatever a final
-- answer was derived from, other than commits. On PostgreSQL every move is also announced
-- on the channel `asof_serve_epoch`, so that other frontends drop their caches at once.
CREATE TABLE serve_epoch (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO serve_epoch (id, n) VALUES (1, 0);

CREATE FUNCTION asof_bump_serve_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE serve_epoch SET n = n + 1 WHERE id = 1;
    PERFORM pg_notify('asof_serve_epoch', '');
    RETURN NULL;
END $$;

CREATE TRIGGER serve_epoch_archive_private AFTER UPDATE OF private ON archives
    FOR EACH ROW WHEN (OLD.private IS DISTINCT FROM NEW.private) EXECUTE FUNCTION asof_bump_serve_epoch();
CREATE TRIGGER serve_epoch_archive_gone AFTER DELETE ON archives
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
CREATE TRIGGER serve_epoch_deleted_snapshots AFTER INSERT OR UPDATE OR DELETE ON deleted_snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
CREATE TRIGGER serve_epoch_retention_policies AFTER INSERT OR UPDATE OR DELETE ON retention_policies
    FOR EACH STATEMENT EXECUTE FUNCTION asof_bump_serve_epoch();
