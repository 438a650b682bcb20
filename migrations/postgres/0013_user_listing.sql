-- User listing at scale (README, Users; issue 16): `users list` and GET /admin/v1/users page
-- in (created_at, id) order, by keyset (`after`: the id of the last user of the previous
-- page) or by offset. PostgreSQL twin of migrations/sqlite/0013_user_listing.sql.
--
-- Every filter has an index that yields its users already in that order, so the first page
-- of any filter (and any page after a keyset cursor) reads one page of index entries instead
-- of scanning and sorting the table:
-- - no filter: users_created_idx (created_at, id);
-- - --active, --verified, both: users_active_created_idx, users_verified_created_idx,
--   users_active_verified_created_idx;
-- - --role: user_roles keeps its user's creation time (user_created_at: a user's created_at
--   never changes, and every insert copies it from the users row), indexed with the role
--   (user_roles_role_created_idx), which also serves what user_roles_role_idx served.
-- A substring of the email (--email-contains) cannot use a b-tree index: it walks the order
-- of the other filters' index and stops after one page of matches.
-- None of these columns changes at sign-in (last_login_at), so that update stays HOT.

CREATE INDEX users_created_idx ON users (created_at, id);
CREATE INDEX users_active_created_idx ON users (is_active, created_at, id);
CREATE INDEX users_verified_created_idx ON users (email_verified, created_at, id);
CREATE INDEX users_active_verified_created_idx ON users (is_active, email_verified, created_at, id);

ALTER TABLE user_roles ADD COLUMN user_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE user_roles SET user_created_at = u.created_at FROM users u WHERE u.id = user_roles.user_id;
DROP INDEX user_roles_role_idx;
CREATE INDEX user_roles_role_created_idx ON user_roles (role_id, user_created_at, user_id);
