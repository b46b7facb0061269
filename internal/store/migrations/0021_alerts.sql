-- 0021: alert rules and webhooks (loaded from the config file when `mxray
-- serve` starts), which alerts are firing, the alerts raised, and the
-- persistent webhook outbox, so that an alert survives a webhook outage
-- and a restart.
--
-- Portable SQL (see 0001). Times are Unix seconds; 0 means never.

CREATE TABLE alert_rules (
    name       TEXT   NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL,             -- dmarc_fail_rate, new_source, tls_failures, reports_stopped, quarantine_growth
    domain     TEXT   NOT NULL,             -- '' for every domain
    threshold  DOUBLE PRECISION NOT NULL,   -- percent, or a count, per kind
    min_volume BIGINT NOT NULL,             -- messages needed before a rate counts
    window_s   BIGINT NOT NULL              -- seconds
);

CREATE TABLE webhooks (
    name   TEXT NOT NULL PRIMARY KEY,
    url    TEXT NOT NULL,
    secret TEXT NOT NULL                    -- HMAC-SHA256 key of X-Mxray-Signature
);

-- A rule's subjects (a domain, a domain and a source IP) that are firing:
-- an alert is raised when a subject starts firing, not on every check.
CREATE TABLE alert_state (
    rule    TEXT   NOT NULL,
    subject TEXT   NOT NULL,
    since   BIGINT NOT NULL,
    PRIMARY KEY (rule, subject)
);

CREATE TABLE alerts (
    id       {{ID}},
    rule     TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    subject  TEXT   NOT NULL,
    fired_at BIGINT NOT NULL,
    body     TEXT   NOT NULL                -- the JSON sent to the webhooks
);

CREATE TABLE webhook_outbox (
    id           {{ID}},
    alert        BIGINT  NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    webhook      TEXT    NOT NULL,          -- webhooks.name
    created_at   BIGINT  NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt BIGINT  NOT NULL,
    delivered_at BIGINT  NOT NULL,          -- 0 while pending
    last_error   TEXT    NOT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (delivered_at, next_attempt);
