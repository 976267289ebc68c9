-- Space accounting (docs/operations.md, "Space accounting"): each blob's size beside its
-- per-archive reference count, filled by every commit, so that what an archive references
-- and what only it references are one query over its own rows (never a walk of the
-- blob store or of every entry).
ALTER TABLE blob_archives ADD COLUMN size INTEGER NOT NULL DEFAULT 0;

-- Back-fill: a blob's size is the same in every entry naming it (it is content-addressed;
-- `asof verify` reports any entry that disagrees with the stored bytes).
UPDATE blob_archives SET size = known.size
    FROM (SELECT sha256, MIN(size) AS size FROM entries WHERE sha256 IS NOT NULL GROUP BY sha256) AS known
    WHERE blob_archives.sha256 = known.sha256;

-- An archive's rows, in digest order (the primary key leads with the digest).
CREATE INDEX blob_archives_by_archive ON blob_archives (archive_id);
