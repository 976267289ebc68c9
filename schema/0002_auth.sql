-- Tokens and private archives.
--
-- A token is `asof_<id>_<secret>`; only SHA-256(secret) is stored, and it is compared in
-- constant time after the row is found by id. Scopes are a JSON array of strings:
-- "admin", "publish:<pattern>", "read:<pattern>" where a pattern is an archive name, a
-- prefix ending in "/*", or "*".

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,          -- unix seconds
    expires_at   INTEGER,                   -- unix seconds; NULL = never
    revoked_at   INTEGER,
    last_used_at INTEGER
);

ALTER TABLE archives ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
