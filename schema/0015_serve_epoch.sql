-- A counter that moves whenever something a final answer was derived from may have changed
-- other than by a commit: privacy, retention (policies and deleted snapshots), takedowns
-- and purges, quarantined blobs, signing keys and recorded re-signed files. Servers keep
-- final answers in memory and drop them when they see it move (`http::hot`), whichever
-- process made the change: triggers, so that no write path can forget it.
CREATE TABLE serve_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO serve_epoch (id, n) VALUES (1, 0);

CREATE TRIGGER serve_epoch_archive_private AFTER UPDATE OF private ON archives
    WHEN OLD.private IS NOT NEW.private
    BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_archive_gone AFTER DELETE ON archives
    BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_deleted_snapshots_insert AFTER INSERT ON deleted_snapshots BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_deleted_snapshots_update AFTER UPDATE ON deleted_snapshots BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_deleted_snapshots_delete AFTER DELETE ON deleted_snapshots BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_retention_policies_insert AFTER INSERT ON retention_policies BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_retention_policies_update AFTER UPDATE ON retention_policies BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_retention_policies_delete AFTER DELETE ON retention_policies BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_takedowns_insert AFTER INSERT ON takedowns BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_takedowns_update AFTER UPDATE ON takedowns BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_takedowns_delete AFTER DELETE ON takedowns BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_takedown_purged_insert AFTER INSERT ON takedown_purged BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_takedown_purged_update AFTER UPDATE ON takedown_purged BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_takedown_purged_delete AFTER DELETE ON takedown_purged BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_scrub_quarantine_insert AFTER INSERT ON scrub_quarantine BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_scrub_quarantine_update AFTER UPDATE ON scrub_quarantine BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_scrub_quarantine_delete AFTER DELETE ON scrub_quarantine BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_archive_signing_insert AFTER INSERT ON archive_signing BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_archive_signing_update AFTER UPDATE ON archive_signing BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_archive_signing_delete AFTER DELETE ON archive_signing BEGIN UPDATE serve_epoch SET n = n + 1; END;
CREATE TRIGGER serve_epoch_resigned_files_delete AFTER DELETE ON resigned_files BEGIN UPDATE serve_epoch SET n = n + 1; END;
