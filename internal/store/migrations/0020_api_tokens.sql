-- 0020: API tokens for `mxray serve` (`mxray token create/list/revoke`).
--
-- Only the SHA-256 of a token is kept: a copy of the database does not let
-- anyone call the API. Times are Unix seconds; 0 means never.
CREATE TABLE api_tokens (
    id         {{ID}},
    name       TEXT   NOT NULL,
    hash       TEXT   NOT NULL,             -- SHA-256 of the token, hex
    created_at BIGINT NOT NULL,
    last_used  BIGINT NOT NULL,             -- 0 when never used
    revoked_at BIGINT NOT NULL,             -- 0 while the token is valid
    CONSTRAINT api_tokens_hash UNIQUE (hash)
);
