-- Token core: users, roles, clients, signing keys, refresh-token families.
-- PostgreSQL twin of migrations/sqlite/0001_token_core.sql (same tables and constraint names).
-- Ids are UUID text, times are integer Unix seconds, lists are JSON arrays in TEXT.

CREATE TABLE users (
    id             TEXT    NOT NULL CONSTRAINT users_pkey PRIMARY KEY,
    email          TEXT    NOT NULL CONSTRAINT users_email_key UNIQUE,
    username       TEXT             CONSTRAINT users_username_key UNIQUE,
    display_name   TEXT,
    is_active      BOOLEAN NOT NULL DEFAULT TRUE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT,
    attributes     TEXT    NOT NULL DEFAULT '{}',
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    last_login_at  BIGINT
);

CREATE TABLE roles (
    id          TEXT    NOT NULL CONSTRAINT roles_pkey PRIMARY KEY,
    name        TEXT    NOT NULL CONSTRAINT roles_name_key UNIQUE,
    description TEXT,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE role_permissions (
    role_id    TEXT NOT NULL CONSTRAINT role_permissions_role_fkey REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    CONSTRAINT role_permissions_pkey PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL CONSTRAINT user_roles_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL CONSTRAINT user_roles_role_fkey REFERENCES roles (id) ON DELETE CASCADE,
    CONSTRAINT user_roles_pkey PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON user_roles (role_id);

CREATE TABLE clients (
    id                   TEXT    NOT NULL CONSTRAINT clients_pkey PRIMARY KEY,
    name                 TEXT    NOT NULL,
    kind                 TEXT    NOT NULL CONSTRAINT clients_kind_check CHECK (kind IN ('public', 'confidential')),
    secret_hash          TEXT,
    is_enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    grant_types          TEXT    NOT NULL,
    scopes               TEXT    NOT NULL,
    redirect_uris        TEXT    NOT NULL DEFAULT '[]',
    audiences            TEXT    NOT NULL DEFAULT '[]',
    default_audience     TEXT,
    access_token_ttl     BIGINT,
    refresh_idle_ttl     BIGINT,
    refresh_absolute_ttl BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

CREATE TABLE signing_keys (
    kid             TEXT    NOT NULL CONSTRAINT signing_keys_pkey PRIMARY KEY,
    alg             TEXT    NOT NULL,
    state           TEXT    NOT NULL CONSTRAINT signing_keys_state_check CHECK (state IN ('pending', 'active', 'retired', 'removed')),
    public_jwk      TEXT    NOT NULL,
    private_key_enc BYTEA   NOT NULL,
    enc_key_id      TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    activated_at    BIGINT,
    retired_at      BIGINT,
    removed_at      BIGINT
);
CREATE INDEX signing_keys_state_idx ON signing_keys (state);

CREATE TABLE refresh_token_families (
    id                  TEXT    NOT NULL CONSTRAINT refresh_token_families_pkey PRIMARY KEY,
    client_id           TEXT    NOT NULL CONSTRAINT refresh_token_families_client_fkey REFERENCES clients (id) ON DELETE CASCADE,
    user_id             TEXT    NOT NULL CONSTRAINT refresh_token_families_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    scope               TEXT    NOT NULL,
    audience            TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    absolute_expires_at BIGINT  NOT NULL,
    revoked_at          BIGINT,
    revoked_reason      TEXT
);
CREATE INDEX refresh_token_families_user_idx ON refresh_token_families (user_id);
CREATE INDEX refresh_token_families_client_idx ON refresh_token_families (client_id);
CREATE INDEX refresh_token_families_expiry_idx ON refresh_token_families (absolute_expires_at);

CREATE TABLE refresh_tokens (
    id          TEXT    NOT NULL CONSTRAINT refresh_tokens_pkey PRIMARY KEY,
    family_id   TEXT    NOT NULL CONSTRAINT refresh_tokens_family_fkey REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL CONSTRAINT refresh_tokens_token_hash_key UNIQUE,
    generation  BIGINT  NOT NULL,
    parent_id   TEXT,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    replaced_by TEXT
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
