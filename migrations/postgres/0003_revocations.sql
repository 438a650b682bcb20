-- The revocation log: the denylists' source of truth and the revocation feed
-- (GET /oauth2/revocations). PostgreSQL twin of migrations/sqlite/0003_revocations.sql.
-- kind: 'access_token' (subject = jti), 'session' (subject = refresh-token family id, the
-- access tokens' sid), 'user' (subject = user id, not_after = watermark: tokens with
-- iat <= not_after are revoked). Entries are deleted once expires_at has passed: no token
-- they cover can still be valid then.

CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT revocations_pkey PRIMARY KEY,
    kind       TEXT   NOT NULL CONSTRAINT revocations_kind_check CHECK (kind IN ('access_token', 'session', 'user')),
    subject    TEXT   NOT NULL,
    not_after  BIGINT,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expiry_idx ON revocations (expires_at);
