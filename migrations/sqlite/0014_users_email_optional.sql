-- A user may have no email address (issue 13): a GitHub account without a verified email
-- signs up with none, as the provider gave none that Latchkey could trust. Twin of
-- migrations/postgres/0014_users_email_optional.sql.
--
-- SQLite cannot drop a NOT NULL constraint, so the table is rebuilt (the procedure of
-- https://www.sqlite.org/lang_altertable.html#otheralter) and the listing indexes of 0013
-- made again, in the migration's one transaction. Eight tables reference users with ON DELETE
-- CASCADE: with foreign keys on, DROP TABLE users would delete their rows. Foreign keys cannot
-- be switched inside a transaction, so SqlStore<Sqlite>::migrate runs every migration on one
-- connection with them off, runs PRAGMA foreign_key_check after (a violation stops start-up)
-- and closes that connection. The rows are copied unchanged, so no reference can dangle.
-- UNIQUE still holds for every address given; SQLite, like PostgreSQL, lets any number of rows
-- have none.

CREATE TABLE users_new (
    id                   TEXT    NOT NULL CONSTRAINT users_pkey PRIMARY KEY,
    email                TEXT             CONSTRAINT users_email_key UNIQUE,
    username             TEXT             CONSTRAINT users_username_key UNIQUE,
    display_name         TEXT,
    is_active            BOOLEAN NOT NULL DEFAULT 1,
    email_verified       BOOLEAN NOT NULL DEFAULT 0,
    password_hash        TEXT,
    attributes           TEXT    NOT NULL DEFAULT '{}',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    last_login_at        INTEGER,
    must_change_password BOOLEAN NOT NULL DEFAULT 0,
    password_changed_at  INTEGER
);

INSERT INTO users_new (id, email, username, display_name, is_active, email_verified,
                       password_hash, attributes, created_at, updated_at, last_login_at,
                       must_change_password, password_changed_at)
SELECT id, email, username, display_name, is_active, email_verified,
       password_hash, attributes, created_at, updated_at, last_login_at,
       must_change_password, password_changed_at
FROM users;

DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

CREATE INDEX users_created_idx ON users (created_at, id);
CREATE INDEX users_active_created_idx ON users (is_active, created_at, id);
CREATE INDEX users_verified_created_idx ON users (email_verified, created_at, id);
CREATE INDEX users_active_verified_created_idx ON users (is_active, email_verified, created_at, id);
