-- Browser sign-in (authorization code flow, OpenID Connect). SQLite twin of
-- migrations/postgres/0008_browser_sign_in.sql.
--
-- clients: the OpenID Connect registration settings (post-logout redirects, browser origins,
-- first-party, back-channel logout, the ID token's signing algorithm).
-- sso_sessions: Latchkey's own sign-in session (the browser's cookie); only the SHA-256 of the
-- cookie's secret is stored. clients is a JSON array of the client ids it issued codes to.
-- authorization_codes: single-use codes, stored hashed; used_at and the redemption columns are
-- set in the same UPDATE that uses a code, so a second use can revoke what the first issued.
-- consents: the scopes a user approved for a client.
-- refresh_token_families: the SSO session a family was started from (sid, auth_time, amr),
-- and whether it was granted offline_access (it then outlives the session).

ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';

CREATE TABLE sso_sessions (
    id                  TEXT    NOT NULL CONSTRAINT sso_sessions_pkey PRIMARY KEY,
    secret_hash         TEXT    NOT NULL CONSTRAINT sso_sessions_secret_hash_key UNIQUE,
    user_id             TEXT    NOT NULL CONSTRAINT sso_sessions_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    auth_time           INTEGER  NOT NULL,
    amr                 TEXT    NOT NULL,
    remember            BOOLEAN NOT NULL,
    created_at          INTEGER  NOT NULL,
    last_seen_at        INTEGER  NOT NULL,
    idle_expires_at     INTEGER  NOT NULL,
    absolute_expires_at INTEGER  NOT NULL,
    user_agent          TEXT,
    ip                  TEXT,
    clients             TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX sso_sessions_user_idx ON sso_sessions (user_id);
CREATE INDEX sso_sessions_idle_idx ON sso_sessions (idle_expires_at);
CREATE INDEX sso_sessions_absolute_idx ON sso_sessions (absolute_expires_at);

CREATE TABLE authorization_codes (
    code_hash         TEXT    NOT NULL CONSTRAINT authorization_codes_pkey PRIMARY KEY,
    client_id         TEXT    NOT NULL CONSTRAINT authorization_codes_client_fkey REFERENCES clients (id) ON DELETE CASCADE,
    user_id           TEXT    NOT NULL CONSTRAINT authorization_codes_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri      TEXT    NOT NULL,
    code_challenge    TEXT,
    nonce             TEXT,
    scope             TEXT    NOT NULL,
    resource          TEXT,
    auth_time         INTEGER  NOT NULL,
    session_id        TEXT    NOT NULL,
    amr               TEXT    NOT NULL,
    created_at        INTEGER  NOT NULL,
    expires_at        INTEGER  NOT NULL,
    used_at           INTEGER,
    family_id         TEXT,
    access_jti        TEXT,
    access_expires_at INTEGER
);
CREATE INDEX authorization_codes_expiry_idx ON authorization_codes (expires_at);

CREATE TABLE consents (
    user_id    TEXT    NOT NULL CONSTRAINT consents_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL CONSTRAINT consents_client_fkey REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    granted_at INTEGER  NOT NULL,
    CONSTRAINT consents_pkey PRIMARY KEY (user_id, client_id)
);

ALTER TABLE refresh_token_families ADD COLUMN sso_session_id TEXT;
ALTER TABLE refresh_token_families ADD COLUMN auth_time INTEGER;
ALTER TABLE refresh_token_families ADD COLUMN amr TEXT;
ALTER TABLE refresh_token_families ADD COLUMN offline_access BOOLEAN NOT NULL DEFAULT 0;
CREATE INDEX refresh_token_families_session_idx ON refresh_token_families (sso_session_id);
