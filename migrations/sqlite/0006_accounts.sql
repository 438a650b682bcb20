-- Self-service accounts and the audit trail. SQLite twin of migrations/postgres/0006_accounts.sql.
--
-- account_tokens: single-use secrets sent by mail (email verification, password reset,
-- magic sign-in, invitations). Only the SHA-256 of the secret is stored; a magic link also
-- has a short code, stored as an HMAC (code_hash), with a count of wrong attempts. A row is
-- used once (used_at), superseded by a newer one of the same purpose, or expires.
-- audit_events: append-only security events; user_id has no foreign key so that events
-- outlive the account (deletion scrubs their ip and user agent instead).

ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_changed_at INTEGER;

CREATE TABLE account_tokens (
    id         TEXT    NOT NULL CONSTRAINT account_tokens_pkey PRIMARY KEY,
    purpose    TEXT    NOT NULL CONSTRAINT account_tokens_purpose_check CHECK (purpose IN ('verify_email', 'password_reset', 'magic_link', 'invite')),
    token_hash TEXT    NOT NULL CONSTRAINT account_tokens_token_hash_key UNIQUE,
    code_hash  TEXT,
    user_id    TEXT             CONSTRAINT account_tokens_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    client_id  TEXT,
    data       TEXT    NOT NULL DEFAULT '{}',
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_email_idx ON account_tokens (email, purpose);
CREATE INDEX account_tokens_expiry_idx ON account_tokens (expires_at);

CREATE TABLE audit_events (
    id         INTEGER NOT NULL CONSTRAINT audit_events_pkey PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    user_id    TEXT,
    client_id  TEXT,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, id);
CREATE INDEX audit_events_event_idx ON audit_events (event, id);
