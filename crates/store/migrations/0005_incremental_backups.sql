-- An incremental base backup names the backup its changed pages go over; NULL for a full one.
ALTER TABLE base_backups ADD COLUMN parent TEXT;
