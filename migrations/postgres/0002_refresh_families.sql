-- Refresh tokens: one row per family instead of one row per generation.
-- PostgreSQL twin of migrations/sqlite/0002_refresh_families.sql.
--
-- A rotation is now a single-row primary-key UPDATE (no INSERT, no index touched: the updated
-- columns are not indexed, so PostgreSQL can update in place). The row holds the SHA-256 of
-- the current generation's secret; older generations are recognised by the HMAC tag inside
-- the token value (src/crypto/refresh_token.rs), so reuse detection still covers every
-- earlier generation.
--
-- Upgrade note: refresh tokens issued before this migration used another format and cannot be
-- presented any more; their families are dropped, and those users sign in again.

DROP TABLE refresh_tokens;
DROP TABLE refresh_token_families;

CREATE TABLE refresh_token_families (
    id                  TEXT    NOT NULL CONSTRAINT refresh_token_families_pkey PRIMARY KEY,
    client_id           TEXT    NOT NULL CONSTRAINT refresh_token_families_client_fkey REFERENCES clients (id) ON DELETE CASCADE,
    user_id             TEXT    NOT NULL CONSTRAINT refresh_token_families_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    scope               TEXT    NOT NULL,
    audience            TEXT    NOT NULL,
    generation          BIGINT  NOT NULL,
    token_hash          TEXT    NOT NULL,
    expires_at          BIGINT  NOT NULL,
    issued_at           BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    absolute_expires_at BIGINT  NOT NULL,
    revoked_at          BIGINT,
    revoked_reason      TEXT
) WITH (fillfactor = 80);
CREATE INDEX refresh_token_families_user_idx ON refresh_token_families (user_id);
CREATE INDEX refresh_token_families_client_idx ON refresh_token_families (client_id);
CREATE INDEX refresh_token_families_expiry_idx ON refresh_token_families (absolute_expires_at);
