-- Portable across SQLite and PostgreSQL: ids TEXT generated in Rust, times BIGINT ms, JSON as TEXT, flags INTEGER 0/1.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    user_name TEXT NOT NULL REFERENCES users(name),
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE platforms (
    name TEXT PRIMARY KEY,
    isv TEXT NOT NULL,
    tenant TEXT NOT NULL,
    cloud TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    platform TEXT NOT NULL REFERENCES platforms(name),
    cloud TEXT NOT NULL,
    components_json TEXT NOT NULL,
    last_seen BIGINT
);
CREATE INDEX hosts_by_platform ON hosts(platform);

CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    platform TEXT NOT NULL REFERENCES platforms(name),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    used_by_agent TEXT
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    host TEXT NOT NULL,
    platform TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX agents_by_host ON agents(host);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
