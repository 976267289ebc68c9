-- The package index: what the apt indices (Packages, Sources) of each snapshot list, as
-- validity intervals like `entries`. A snapshot that changes k packages adds O(k) rows.

CREATE TABLE packages (
    id             INTEGER PRIMARY KEY,
    archive_id     INTEGER NOT NULL,
    kind           INTEGER NOT NULL,        -- 0 binary (Packages), 1 source (Sources)
    suite          TEXT    NOT NULL,        -- dists/<suite>/<component>/...
    component      TEXT    NOT NULL,
    architecture   TEXT    NOT NULL,        -- of the index: binary-<arch>, or 'source'
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    source         TEXT    NOT NULL,        -- source package (binaries), or the name (sources)
    source_version TEXT    NOT NULL,
    filename       TEXT    NOT NULL,        -- the .deb, or the .dsc of a source
    size           INTEGER NOT NULL,
    sha256         BLOB,                    -- of that file, when the index gives it
    first_seq      INTEGER NOT NULL,
    last_seq       INTEGER                  -- exclusive end; NULL = in the latest snapshot
);

-- History of one package, and "first snapshot with a version satisfying ...".
CREATE INDEX packages_by_name ON packages (archive_id, name, kind);
-- The live rows of one index, which each indexed snapshot diffs against.
CREATE INDEX packages_live ON packages (archive_id, suite, component, architecture, kind) WHERE last_seq IS NULL;
-- What changed between two snapshots: rows that start or end between them.
CREATE INDEX packages_first ON packages (archive_id, first_seq);
CREATE INDEX packages_last ON packages (archive_id, last_seq) WHERE last_seq IS NOT NULL;

-- How far each archive's package index has got (snapshots are indexed in order, each in
-- one transaction with its rows), so indexing resumes where it stopped.
CREATE TABLE package_index_state (
    archive_id  INTEGER PRIMARY KEY,
    indexed_seq INTEGER NOT NULL
);

-- Indices that could not be read (the snapshot is recorded all the same).
CREATE TABLE package_index_problems (
    archive_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    problem    TEXT    NOT NULL,
    PRIMARY KEY (archive_id, seq, path)
) WITHOUT ROWID;
