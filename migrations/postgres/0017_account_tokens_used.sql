-- The purge of spent account tokens (issue 16): a batch takes the tokens expired or used more
-- than a day ago (`expires_at <= $1 OR used_at <= $2`). expires_at has an index (0006);
-- used_at had none, so each batch read the whole table. Only used tokens are indexed: an
-- unused token's used_at is NULL, and the comparison in the purge implies NOT NULL.
CREATE INDEX account_tokens_used_idx ON account_tokens (used_at) WHERE used_at IS NOT NULL;
