-- Signing mode of published archives (docs/api.md, "Re-signed Release files").
--
-- An archive with a row in `archive_signing` is served with its Release files re-signed
-- by that key, with a `Snapshots:` field added so that apt >= 2.7 finds its snapshots.
-- The key lives here rather than in a file of one frontend so that several frontends on
-- one catalog sign alike. It is an unprotected secret key (armored OpenPGP).
CREATE TABLE archive_signing (
    archive_id   INTEGER PRIMARY KEY REFERENCES archives(id),
    fingerprint  TEXT    NOT NULL,          -- upper-case hex of the signing key
    secret_key   TEXT    NOT NULL,          -- armored secret key, as given
    public_key   TEXT    NOT NULL,          -- armored public key, served for Signed-By
    set_at       INTEGER NOT NULL           -- unix seconds
);

-- Every re-signed file ever served, by snapshot, path and base URL: its bytes are a blob,
-- and once recorded they are what that URL answers forever (an immutable answer must not
-- change when the key is rotated or signing is turned off). The first writer wins.
CREATE TABLE resigned_files (
    archive_id INTEGER NOT NULL REFERENCES archives(id),
    seq        INTEGER NOT NULL,            -- the snapshot
    path       TEXT    NOT NULL,            -- dists/<suite>/{InRelease,Release,Release.gpg}
    base       TEXT    NOT NULL,            -- the base URL in its Snapshots: field
    sha256     BLOB    NOT NULL,
    size       INTEGER NOT NULL,
    made_at    INTEGER NOT NULL,            -- unix seconds: its Last-Modified
    PRIMARY KEY (archive_id, seq, path, base)
) WITHOUT ROWID;
