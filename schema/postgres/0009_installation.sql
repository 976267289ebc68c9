-- What every process of one installation must agree on and that SQLite installations keep
-- in their data directory: the secret behind the metrics labels of private archives
-- (`label.key`). Frontends on other hosts have other data directories, so with this
-- catalog it lives here, made once by whichever process starts first.
CREATE TABLE installation (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    label_key BYTEA    NOT NULL CHECK (length(label_key) = 32)
);
