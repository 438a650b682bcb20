-- Federated sign-in (Google, GitHub, generic OpenID Connect). PostgreSQL twin of
-- migrations/sqlite/0011_federation.sql.
--
-- social_links: a local user's identity at an upstream provider, unique per (provider,
-- subject). email is the address as the provider gave it, email_verified whether the provider
-- asserted it; profile the provider's raw profile (JSON text, capped by the application).
-- tokens_enc: the upstream access and refresh tokens, only when the provider's store_tokens is
-- on, AES-256-GCM under the master key (as signing keys), NULL otherwise.
-- federation_one_time: single-use values: the state of an upstream sign-in (consumed by its
-- callback) and the ID tokens native apps exchanged (replay refused until they expire). Only
-- SHA-256 hashes are kept; rows past expires_at are purged.

CREATE TABLE social_links (
    id             TEXT    NOT NULL CONSTRAINT social_links_pkey PRIMARY KEY,
    provider       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    user_id        TEXT    NOT NULL CONSTRAINT social_links_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    email          TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    display_name   TEXT,
    avatar_url     TEXT,
    profile        TEXT    NOT NULL DEFAULT '{}',
    tokens_enc     BYTEA,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT,
    CONSTRAINT social_links_provider_subject_key UNIQUE (provider, subject)
);
CREATE INDEX social_links_user_idx ON social_links (user_id);

CREATE TABLE federation_one_time (
    key_hash   TEXT   NOT NULL CONSTRAINT federation_one_time_pkey PRIMARY KEY,
    purpose    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX federation_one_time_expiry_idx ON federation_one_time (expires_at);
