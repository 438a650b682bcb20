-- Signing-key lifecycle: pending (published, not signing) -> active -> retired -> removed.
-- A pending key records when it becomes active; at most one key is active and at most one
-- is pending, enforced by partial unique indexes so that concurrent instances cannot both
-- win a transition (the loser sees a conflict or zero rows affected).

ALTER TABLE signing_keys ADD COLUMN activate_at INTEGER;

-- Existing keys keep their history: their activation time is when they became active
-- (or were created, for keys that never were).
UPDATE signing_keys SET activate_at = COALESCE(activated_at, created_at);

-- Earlier versions could, in a start-up race between instances, leave more than one active
-- key. Keep the newest active and retire the others (they stay published).
UPDATE signing_keys
   SET state = 'retired',
       retired_at = COALESCE(retired_at, CAST(strftime('%s', 'now') AS INTEGER))
 WHERE state = 'active'
   AND kid <> (SELECT kid FROM signing_keys WHERE state = 'active'
                ORDER BY created_at DESC, kid DESC LIMIT 1);
UPDATE signing_keys
   SET state = 'retired',
       retired_at = COALESCE(retired_at, CAST(strftime('%s', 'now') AS INTEGER))
 WHERE state = 'pending'
   AND kid <> (SELECT kid FROM signing_keys WHERE state = 'pending'
                ORDER BY created_at DESC, kid DESC LIMIT 1);

CREATE UNIQUE INDEX signing_keys_one_active_idx ON signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_pending_idx ON signing_keys (state) WHERE state = 'pending';

-- Access tokens now live at most one day, per client too (the global setting already was):
-- that bounds how long a retired key must stay published. Clamp older per-client overrides.
UPDATE clients SET access_token_ttl = 86400 WHERE access_token_ttl > 86400;
