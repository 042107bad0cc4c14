-- Accounts for people (passwords for Palaver's own /account/login) and the operator's blocks.
--
-- A user (the `users` row, OpenIM's user) may exist without an account: app back-ends register users through
-- /user/user_register and log them in with /auth/get_user_token. An account adds a password to a user; it is
-- created in the same transaction as the user by /account/register.

CREATE TABLE accounts (
    user_id       TEXT    NOT NULL PRIMARY KEY,
    -- The argon2id hash as a PHC string (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`): algorithm, parameters and
    -- salt travel with the hash, so parameters can be raised later without a migration.
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Users the operator has blocked: they cannot log in or be issued tokens. Any user can be blocked, with or
-- without an account.
CREATE TABLE blocked_users (
    user_id    TEXT    NOT NULL PRIMARY KEY,
    blocked_at INTEGER NOT NULL
);

-- The console lists the newest users first.
CREATE INDEX users_by_create_time ON users (create_time);
