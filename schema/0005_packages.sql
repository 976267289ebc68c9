-- The package index: what the apt indices (Packages, Sources) of each snapshot list, as
-- validity intervals like `entries`. A snapshot that changes k packages adds O(k) rows.

-- One row per index of an archive: dists/<suite>/<component>/binary-<arch>/Packages or
-- .../source/Sources. Package rows point here instead of repeating the three names.
CREATE TABLE package_indices (
    id           INTEGER PRIMARY KEY,
    archive_id   INTEGER NOT NULL,
    kind         INTEGER NOT NULL,          -- 0 binary (Packages), 1 source (Sources)
    suite        TEXT    NOT NULL,
    component    TEXT    NOT NULL,
    architecture TEXT    NOT NULL,          -- of the index: binary-<arch>, or 'source'
    UNIQUE (archive_id, kind, suite, component, architecture)
);

CREATE TABLE packages (
    id             INTEGER PRIMARY KEY,
    archive_id     INTEGER NOT NULL,
    index_id       INTEGER NOT NULL REFERENCES package_indices(id),
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    source         TEXT,                    -- NULL: the same as name
    source_version TEXT,                    -- NULL: the same as version
    filename       TEXT,                    -- the .deb, or the .dsc of a source; NULL: where
                                            -- Debian's pool layout puts it (packages::parse::pool_filename)
    size           INTEGER NOT NULL,
    sha256         BLOB,                    -- of that file, when the index gives it
    first_seq      INTEGER NOT NULL,
    last_seq       INTEGER                  -- exclusive end; NULL = in the latest snapshot
);

-- History of one package, and "first snapshot with a version satisfying ...".
CREATE INDEX packages_by_name ON packages (archive_id, name);
-- The live rows of one index, which each indexed snapshot diffs against.
CREATE INDEX packages_live ON packages (index_id) WHERE last_seq IS NULL;
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
