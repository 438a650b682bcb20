-- Client watermarks in the revocation log. SQLite twin of
-- migrations/postgres/0007_client_revocations.sql.
-- kind 'client': subject = client id, not_after = watermark: every access token of the client
-- (its `client_id` claim) with iat <= not_after is revoked. Written when an operator disables,
-- deletes or re-keys a client.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with every entry and
-- its seq, and with the highest seq ever assigned (sqlite_sequence), so feed cursors and the
-- denylists' cursors stay valid.

CREATE TABLE revocations_new (
    seq        INTEGER NOT NULL CONSTRAINT revocations_pkey PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CONSTRAINT revocations_kind_check CHECK (kind IN ('access_token', 'session', 'user', 'client')),
    subject    TEXT    NOT NULL,
    not_after  INTEGER,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO revocations_new (seq, kind, subject, not_after, revoked_at, expires_at)
    SELECT seq, kind, subject, not_after, revoked_at, expires_at FROM revocations;
DELETE FROM sqlite_sequence WHERE name = 'revocations_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocations_new', seq FROM sqlite_sequence WHERE name = 'revocations';
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_expiry_idx ON revocations (expires_at);
CREATE INDEX revocations_subject_idx ON revocations (kind, subject);
