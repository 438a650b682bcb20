-- A user may have no email address (issue 13): a GitHub account without a verified email
-- signs up with none, as the provider gave none that Latchkey could trust. Twin of
-- migrations/sqlite/0014_users_email_optional.sql. users_email_key still holds for every
-- address given; any number of users may have none.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
