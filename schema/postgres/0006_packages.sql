-- The package index (schema/0005_packages.sql and 0007_package_paragraphs.sql of the SQLite
-- schema): what each snapshot's apt indices list, as validity intervals.

CREATE TABLE package_indices (
    id           BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id   BIGINT   NOT NULL,
    kind         SMALLINT NOT NULL,          -- 0 binary (Packages), 1 source (Sources)
    suite        TEXT     NOT NULL,
    component    TEXT     NOT NULL,
    architecture TEXT     NOT NULL,
    UNIQUE (archive_id, kind, suite, component, architecture)
);

CREATE TABLE packages (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id     BIGINT NOT NULL,
    index_id       BIGINT NOT NULL REFERENCES package_indices(id),
    name           TEXT COLLATE "C" NOT NULL,
    version        TEXT   NOT NULL,
    source         TEXT,
    source_version TEXT,
    filename       TEXT,
    size           BIGINT NOT NULL,
    sha256         BYTEA,
    first_seq      BIGINT NOT NULL,
    last_seq       BIGINT,
    paragraph      BIGINT                    -- first 8 bytes of SHA-256 of the paragraph
);
CREATE INDEX packages_by_name ON packages (archive_id, name);
CREATE INDEX packages_live ON packages (index_id, paragraph) WHERE last_seq IS NULL;
CREATE INDEX packages_first ON packages (archive_id, first_seq);
CREATE INDEX packages_last ON packages (archive_id, last_seq) WHERE last_seq IS NOT NULL;

CREATE TABLE package_index_state (
    archive_id  BIGINT PRIMARY KEY,
    indexed_seq BIGINT NOT NULL
);

CREATE TABLE package_index_problems (
    archive_id BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    path       TEXT   NOT NULL,
    problem    TEXT   NOT NULL,
    PRIMARY KEY (archive_id, seq, path)
);
