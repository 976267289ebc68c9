-- Who may reference a blob in a commit (docs/api.md, "Which blobs a commit may use").
--
-- Digests are public (every Packages file lists them), so knowing one proves nothing. A
-- commit may reference a blob only if the caller can already read it, or sent its bytes.

-- Which archives hold each blob, and in how many entry rows: maintained by every commit,
-- so "is this blob in an archive the caller can read" is one index probe, and the row
-- count is the reference count that garbage collection and space accounting need.
CREATE TABLE blob_archives (
    sha256     BLOB    NOT NULL,
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    rows       INTEGER NOT NULL,            -- entry rows of this archive naming the blob
    PRIMARY KEY (sha256, archive_id)
) WITHOUT ROWID;

INSERT INTO blob_archives (sha256, archive_id, rows)
    SELECT sha256, archive_id, COUNT(*) FROM entries WHERE sha256 IS NOT NULL GROUP BY sha256, archive_id;

-- Blobs whose bytes a token has uploaded (sent, hashed, matched): it may reference them
-- for a while even if they are stored already for someone else.
CREATE TABLE upload_grants (
    token_id   INTEGER NOT NULL,
    sha256     BLOB    NOT NULL,
    granted_at INTEGER NOT NULL,            -- unix seconds of the latest matching upload
    PRIMARY KEY (token_id, sha256)
) WITHOUT ROWID;
