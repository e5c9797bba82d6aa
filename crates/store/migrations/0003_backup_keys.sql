-- Backup encryption keys: only the public half (an age X25519 recipient) of each ISV's key pairs.
-- The private half never reaches the server; the ISV's key custodian keeps it.
CREATE TABLE backup_keys (
    id TEXT PRIMARY KEY,
    isv TEXT NOT NULL,
    recipient TEXT NOT NULL UNIQUE,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX backup_keys_isv ON backup_keys (isv);
