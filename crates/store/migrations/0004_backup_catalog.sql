-- Backup catalog: what agents report having committed to the ISVs' repositories (base backups and
-- archived WAL files, per platform and database) and each database's latest failure. The repository
-- stays the truth; these rows let operators see coverage without reading it.
-- Portable across SQLite and PostgreSQL (see 0001): ids TEXT, times BIGINT ms, counts BIGINT.
CREATE TABLE backup_databases (
    platform TEXT NOT NULL,
    database_name TEXT NOT NULL,
    host TEXT NOT NULL,
    isv TEXT NOT NULL,
    first_reported_at_ms BIGINT NOT NULL,
    last_reported_at_ms BIGINT NOT NULL,
    failure_what TEXT,
    failure_message TEXT,
    failure_at_ms BIGINT,
    PRIMARY KEY (platform, database_name)
);

CREATE TABLE base_backups (
    platform TEXT NOT NULL,
    database_name TEXT NOT NULL,
    id TEXT NOT NULL,
    host TEXT NOT NULL,
    isv TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    stopped_at_ms BIGINT NOT NULL,
    start_lsn TEXT NOT NULL,
    stop_lsn TEXT NOT NULL,
    timeline BIGINT NOT NULL,
    start_wal TEXT NOT NULL,
    stop_wal TEXT NOT NULL,
    files BIGINT NOT NULL,
    plain_bytes BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL,
    reported_at_ms BIGINT NOT NULL,
    PRIMARY KEY (platform, database_name, id)
);
CREATE INDEX base_backups_by_time ON base_backups (platform, database_name, started_at_ms);

CREATE TABLE wal_files (
    platform TEXT NOT NULL,
    database_name TEXT NOT NULL,
    name TEXT NOT NULL,
    timeline BIGINT NOT NULL,
    segment BIGINT NOT NULL,
    plain_bytes BIGINT NOT NULL,
    stored_bytes BIGINT NOT NULL,
    archived_at_ms BIGINT NOT NULL,
    upload_ms BIGINT NOT NULL,
    reported_at_ms BIGINT NOT NULL,
    PRIMARY KEY (platform, database_name, name)
);
CREATE INDEX wal_files_in_order ON wal_files (platform, database_name, timeline, segment);
