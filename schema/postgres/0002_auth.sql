-- Tokens, upload grants and garbage-collection candidates (schema/0002_auth.sql,
-- 0004_blob_access.sql and 0009_lifecycle.sql of the SQLite schema). Only SHA-256 of a
-- token's secret is stored; scopes are a JSON array of strings.

CREATE TABLE tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT   NOT NULL,
    secret_hash  BYTEA  NOT NULL,
    scopes       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,              -- unix seconds
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

-- Blobs whose bytes a token has uploaded: it may reference them for a while.
CREATE TABLE upload_grants (
    token_id   BIGINT NOT NULL,
    sha256     BYTEA  NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, sha256)
);
CREATE INDEX upload_grants_by_sha256 ON upload_grants (sha256, granted_at);

-- Blobs nothing references, since when (garbage collection visits due ones only).
CREATE TABLE gc_candidates (
    sha256 BYTEA  PRIMARY KEY,
    since  BIGINT NOT NULL
);
CREATE INDEX gc_candidates_due ON gc_candidates (since);
