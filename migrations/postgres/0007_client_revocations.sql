-- Client watermarks in the revocation log. PostgreSQL twin of
-- migrations/sqlite/0007_client_revocations.sql.
-- kind 'client': subject = client id, not_after = watermark: every access token of the client
-- (its `client_id` claim) with iat <= not_after is revoked. Written when an operator disables,
-- deletes or re-keys a client.

ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('access_token', 'session', 'user', 'client'));
