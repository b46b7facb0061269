-- 0040: accounts and sessions of the web admin (`mxray serve`, internal/web).
--
-- A password is kept only as a salted PBKDF2-HMAC-SHA256 hash in the
-- self-describing form pbkdf2-sha256$ITERATIONS$SALT$HASH; a session only
-- as the SHA-256 of its id, so a copy of the database lets no one log in.
-- Times are Unix seconds; 0 means never.
CREATE TABLE admins (
    id            {{ID}},
    name          TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login    BIGINT NOT NULL,          -- 0 when never logged in
    CONSTRAINT admins_name UNIQUE (name)
);

CREATE TABLE admin_sessions (
    hash       TEXT   NOT NULL PRIMARY KEY, -- SHA-256 of the session id, hex
    admin_id   BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf       TEXT   NOT NULL,             -- the session's form token
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);
