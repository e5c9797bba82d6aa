-- Alerting: events, current alerts, acknowledgements, maintenance, silences, deliveries.
-- Portable across SQLite and PostgreSQL (see 0001): ids TEXT, times BIGINT ms, JSON as TEXT.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    cloud TEXT NOT NULL,
    isv TEXT NOT NULL,
    tenant TEXT NOT NULL,
    platform TEXT NOT NULL,
    host TEXT NOT NULL,
    monitor TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    state_from TEXT,
    state_to TEXT,
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    message TEXT NOT NULL,
    actor TEXT,
    data_json TEXT NOT NULL
);
CREATE INDEX events_by_time ON events(at_ms);
CREATE INDEX events_by_platform ON events(platform, at_ms);

CREATE TABLE alerts (
    alert_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    cloud TEXT NOT NULL,
    isv TEXT NOT NULL,
    tenant TEXT NOT NULL,
    platform TEXT NOT NULL,
    host TEXT NOT NULL,
    monitor TEXT NOT NULL,
    metric TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    state TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    level_name TEXT,
    message TEXT NOT NULL,
    flapping INTEGER NOT NULL,
    acked_by TEXT,
    acked_at BIGINT,
    ack_comment TEXT,
    notified_state TEXT,
    notified_at BIGINT,
    escalation_level INTEGER NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alerts_by_platform ON alerts(platform);

CREATE TABLE maintenance_windows (
    id TEXT PRIMARY KEY,
    scope_json TEXT NOT NULL,
    schedule_json TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE silences (
    id TEXT PRIMARY KEY,
    matchers_json TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    notification_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX deliveries_by_time ON deliveries(at_ms);

-- Small named cursors of background workers (e.g. the last maintenance tick).
CREATE TABLE worker_cursors (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
