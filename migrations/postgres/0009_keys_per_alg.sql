-- One active and one pending signing key per algorithm (twin of
-- migrations/sqlite/0009_keys_per_alg.sql). Access tokens are signed with the active key of
-- keys.signing_alg; ID tokens with the active key of the algorithm a client registered
-- (id_token_signed_response_alg: RS256 by default, ES256 or EdDSA on request), so the key ring
-- holds an active key per algorithm in use, each with its own lifecycle.
--
-- The partial unique indexes of 0004 allowed one active and one pending key in all; they
-- now allow one of each per algorithm, under the same names, so that concurrent instances
-- still cannot both win a transition of the same algorithm. Existing rows satisfy them (at
-- most one key was active and one pending).

DROP INDEX signing_keys_one_active_idx;
DROP INDEX signing_keys_one_pending_idx;

CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys (alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_pending_idx ON signing_keys (alg) WHERE state = 'pending';
