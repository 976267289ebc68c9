-- The seal: no snapshot of any archive will ever be stamped at or before `sealed_until`.
--
-- `asof serve` advances it (to now minus the settle margin) in a write transaction, which
-- waits for any publish in flight; commits stamp their ID above it. A reader that sees the
-- seal and an archive's latest snapshot in one read transaction knows that the answer for
-- any ID up to the seal can never change, whatever the clocks of the machines involved do.

CREATE TABLE seal (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    sealed_until INTEGER NOT NULL          -- unix seconds
);

INSERT INTO seal (id, sealed_until) VALUES (1, 0);
