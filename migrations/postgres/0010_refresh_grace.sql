-- The refresh grace window (README, Tokens): a client may allow a used refresh token to be
-- presented again for a few seconds (a lost response, two tabs refreshing at once). PostgreSQL
-- twin of migrations/sqlite/0010_refresh_grace.sql.
--
-- clients: refresh_grace_secs (0..300) and refresh_grace_uses (1..100); NULL follows the
-- server defaults (tokens.refresh_grace_secs, 0: no grace, and tokens.refresh_grace_uses).
-- refresh_token_families: what a rotation keeps of the generation it replaced, for the window
-- only: the SHA-256 of its secret (prev_token_hash), the end of the window (grace_until), the
-- retries used so far (grace_retries) and the successor refresh token sealed with AES-256-GCM
-- under a key derived from the master key, bound to the family and generation
-- (grace_successor). A retry answers that same successor. The next rotation replaces them,
-- a revocation and the hourly housekeeping clear them. None of these columns is indexed, so
-- a rotation stays an in-place (HOT) update of one row.

ALTER TABLE clients ADD COLUMN refresh_grace_secs BIGINT;
ALTER TABLE clients ADD COLUMN refresh_grace_uses BIGINT;

ALTER TABLE refresh_token_families ADD COLUMN prev_token_hash TEXT;
ALTER TABLE refresh_token_families ADD COLUMN grace_until BIGINT;
ALTER TABLE refresh_token_families ADD COLUMN grace_retries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_token_families ADD COLUMN grace_successor TEXT;
