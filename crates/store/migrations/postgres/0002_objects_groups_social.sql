-- The PostgreSQL side of SQLite's 0003_objects, 0004_groups and 0005_social (see those files for what each table
-- and column is for). Types follow the Rust fields, as in 0001.

CREATE TABLE objects (
    name         TEXT   PRIMARY KEY,
    user_id      TEXT   NOT NULL,
    hash         TEXT   NOT NULL,
    storage_key  TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT   NOT NULL,
    cause        TEXT   NOT NULL DEFAULT '',
    create_time  BIGINT NOT NULL
);
CREATE INDEX objects_by_hash ON objects (hash);

CREATE TABLE object_uploads (
    upload_id         TEXT    PRIMARY KEY,
    user_id           TEXT    NOT NULL,
    hash              TEXT    NOT NULL,
    size              BIGINT  NOT NULL,
    part_size         BIGINT  NOT NULL,
    part_count        INTEGER NOT NULL,
    storage_key       TEXT    NOT NULL,
    backend_upload_id TEXT    NOT NULL DEFAULT '',
    expire_time       BIGINT  NOT NULL,
    create_time       BIGINT  NOT NULL
);
CREATE INDEX object_uploads_by_expiry ON object_uploads (expire_time);

CREATE TABLE group_requests (
    group_id        TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    handle_result   INTEGER NOT NULL DEFAULT 0,
    req_msg         TEXT    NOT NULL DEFAULT '',
    handle_msg      TEXT    NOT NULL DEFAULT '',
    req_time        BIGINT  NOT NULL DEFAULT 0,
    handle_user_id  TEXT    NOT NULL DEFAULT '',
    handle_time     BIGINT  NOT NULL DEFAULT 0,
    ex              TEXT    NOT NULL DEFAULT '',
    join_source     INTEGER NOT NULL DEFAULT 0,
    inviter_user_id TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_requests_by_user ON group_requests (user_id, req_time);
CREATE INDEX group_requests_by_group ON group_requests (group_id, handle_result, req_time);

ALTER TABLE groups ADD COLUMN notification_update_time BIGINT NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN notification_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN max_seq_cap BIGINT NOT NULL DEFAULT -1;
CREATE INDEX group_members_by_role ON group_members (group_id, role_level);
CREATE INDEX group_members_by_user_role ON group_members (user_id, role_level);

CREATE TABLE message_deletions (
    owner_user_id   TEXT   NOT NULL,
    conversation_id TEXT   NOT NULL,
    seq             BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, owner_user_id, seq)
);

CREATE TABLE message_revokes (
    conversation_id  TEXT    NOT NULL,
    seq              BIGINT  NOT NULL,
    revoker_user_id  TEXT    NOT NULL,
    revoker_role     INTEGER NOT NULL DEFAULT 0,
    revoker_nickname TEXT    NOT NULL DEFAULT '',
    revoke_time      BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE INDEX friends_by_friend ON friends (friend_user_id);

CREATE TABLE user_commands (
    user_id     TEXT    NOT NULL,
    type        INTEGER NOT NULL,
    uuid        TEXT    NOT NULL,
    value       TEXT    NOT NULL DEFAULT '',
    ex          TEXT    NOT NULL DEFAULT '',
    create_time BIGINT  NOT NULL,
    PRIMARY KEY (user_id, type, uuid)
);

CREATE TABLE client_configs (
    user_id    TEXT NOT NULL,
    config_key TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (user_id, config_key)
);

CREATE TABLE push_tokens (
    user_id     TEXT    NOT NULL,
    platform_id INTEGER NOT NULL,
    token       TEXT    NOT NULL,
    expire_time BIGINT  NOT NULL DEFAULT 0,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (user_id, platform_id)
);

CREATE TABLE app_badges (
    user_id      TEXT    NOT NULL PRIMARY KEY,
    unread_count INTEGER NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE client_logs (
    log_id        TEXT   NOT NULL PRIMARY KEY,
    user_id       TEXT   NOT NULL,
    platform      TEXT   NOT NULL DEFAULT '',
    url           TEXT   NOT NULL,
    filename      TEXT   NOT NULL DEFAULT '',
    app_framework TEXT   NOT NULL DEFAULT '',
    version       TEXT   NOT NULL DEFAULT '',
    ex            TEXT   NOT NULL DEFAULT '',
    create_time   BIGINT NOT NULL
);
CREATE INDEX client_logs_by_user ON client_logs (user_id, create_time);
