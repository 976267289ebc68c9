-- Each package row keeps a digest of the index paragraph it came from (the first 8 bytes of
-- its SHA-256), so that indexing a snapshot parses only the paragraphs no live row came
-- from instead of a whole Packages file. Rows indexed before have none (NULL): they are
-- matched by content the first time their index changes, and get one then.
ALTER TABLE packages ADD COLUMN paragraph INTEGER;

-- Live rows by index and digest: what indexing reads, without touching the table.
DROP INDEX packages_live;
CREATE INDEX packages_live ON packages (index_id, paragraph) WHERE last_seq IS NULL;
