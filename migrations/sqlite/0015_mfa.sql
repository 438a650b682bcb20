-- Multi-factor authentication (issue 15). SQLite twin of migrations/postgres/0015_mfa.sql.
--
-- mfa_factors: a user's second factors, TOTP authenticators and (later) WebAuthn passkeys,
-- each with the name the user gave it. A factor is pending (confirmed_at NULL) from its
-- enrolment until the user proves it works; pending factors that were never confirmed are
-- purged. TOTP: secret_enc is the shared secret, AES-256-GCM under the master key (as signing
-- keys), enc_key_id the key that sealed it, and last_step the highest time step accepted (a
-- code of that step or an earlier one is refused: no replay). Passkey: credential is the
-- serialized credential and credential_id its id, unique across users (NULL for TOTP).
-- mfa_recovery_codes: a user's single-use recovery codes, only their SHA-256 kept; a code is
-- spent when used_at is set, and a new set replaces the old one whole.

CREATE TABLE mfa_factors (
    id            TEXT    NOT NULL CONSTRAINT mfa_factors_pkey PRIMARY KEY,
    user_id       TEXT    NOT NULL CONSTRAINT mfa_factors_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CONSTRAINT mfa_factors_kind_check CHECK (kind IN ('totp', 'passkey')),
    name          TEXT    NOT NULL,
    secret_enc    BLOB,
    enc_key_id    TEXT,
    credential    TEXT,
    credential_id TEXT             CONSTRAINT mfa_factors_credential_id_key UNIQUE,
    confirmed_at  INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id);
-- What the purge of abandoned enrolments walks.
CREATE INDEX mfa_factors_pending_idx ON mfa_factors (created_at) WHERE confirmed_at IS NULL;

CREATE TABLE mfa_recovery_codes (
    user_id    TEXT    NOT NULL CONSTRAINT mfa_recovery_codes_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    CONSTRAINT mfa_recovery_codes_pkey PRIMARY KEY (user_id, code_hash)
);
