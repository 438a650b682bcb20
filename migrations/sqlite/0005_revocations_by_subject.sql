-- Looking a user's watermark up in the revocation log (a login that raced "log out
-- everywhere" must not start a session). SQLite twin of the PostgreSQL file of the same name.
CREATE INDEX revocations_subject_idx ON revocations (kind, subject);
