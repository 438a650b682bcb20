-- MFA policies (issue 15). PostgreSQL twin of migrations/sqlite/0016_mfa_policy.sql.
--
-- roles.require_mfa and clients.require_mfa: a user holding such a role, or signing in for
-- such a client, must use a second factor (the global setting is mfa.required).
-- mfa_enrolment_asked: when a user covered by a policy, without a second factor, was first
-- asked to set one up; the grace period (mfa.enrolment_grace) counts from then.

ALTER TABLE roles ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE mfa_enrolment_asked (
    user_id        TEXT   NOT NULL CONSTRAINT mfa_enrolment_asked_pkey PRIMARY KEY
                          CONSTRAINT mfa_enrolment_asked_user_fkey REFERENCES users (id) ON DELETE CASCADE,
    first_asked_at BIGINT NOT NULL
);
