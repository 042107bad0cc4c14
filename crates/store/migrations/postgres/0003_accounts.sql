-- The PostgreSQL side of SQLite's 0006_accounts (see there): password accounts, blocked users, and the index the
-- admin console's newest-first listings use.

CREATE TABLE accounts (
    user_id       TEXT   NOT NULL PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE blocked_users (
    user_id    TEXT   NOT NULL PRIMARY KEY,
    blocked_at BIGINT NOT NULL
);

CREATE INDEX users_by_create_time ON users (create_time);
