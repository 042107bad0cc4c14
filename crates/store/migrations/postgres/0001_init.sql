-- Palaver's PostgreSQL schema, version 1: the same tables as SQLite's 0001 + 0002, in PostgreSQL's types.
--
-- Column types follow the Rust fields exactly, because sqlx decodes PostgreSQL values strictly: an `i64` field is
-- BIGINT, an `i32` field INTEGER, a `bool` BOOLEAN (SQLite stores 0/1 integers), bytes BYTEA. Times are BIGINT
-- milliseconds since the Unix epoch, as in SQLite, so `palaver admin migrate` copies values without converting.
-- The comments on SQLite's schema (crates/store/migrations/sqlite) say what each table is for.

CREATE TABLE users (
    user_id             TEXT    NOT NULL PRIMARY KEY,
    nickname            TEXT    NOT NULL DEFAULT '',
    face_url            TEXT    NOT NULL DEFAULT '',
    ex                  TEXT    NOT NULL DEFAULT '',
    create_time         BIGINT  NOT NULL DEFAULT 0,
    app_manger_level    INTEGER NOT NULL DEFAULT 0,
    global_recv_msg_opt INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tokens (
    hash        BYTEA   NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    platform_id INTEGER NOT NULL,
    expires_at  BIGINT  NOT NULL,
    status      BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX tokens_by_user_platform ON tokens (user_id, platform_id);

-- The per-conversation seq counter. `append_message` bumps it with an upsert first thing in its transaction: the
-- row lock it takes serialises every writer of the conversation, on every node, until that transaction ends.
CREATE TABLE conversation_seqs (
    conversation_id TEXT   NOT NULL PRIMARY KEY,
    max_seq         BIGINT NOT NULL,
    max_seq_time    BIGINT NOT NULL
);

CREATE TABLE messages (
    conversation_id TEXT   NOT NULL,
    seq             BIGINT NOT NULL,
    client_msg_id   TEXT,
    server_msg_id   TEXT   NOT NULL,
    send_id         TEXT   NOT NULL,
    send_time       BIGINT NOT NULL,
    data            BYTEA  NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, client_msg_id)
);

CREATE TABLE conversations (
    owner_user_id     TEXT    NOT NULL,
    conversation_id   TEXT    NOT NULL,
    conversation_type INTEGER NOT NULL,
    user_id           TEXT    NOT NULL DEFAULT '',
    group_id          TEXT    NOT NULL DEFAULT '',
    recv_msg_opt      INTEGER NOT NULL DEFAULT 0,
    is_pinned         BOOLEAN NOT NULL DEFAULT FALSE,
    is_private_chat   BOOLEAN NOT NULL DEFAULT FALSE,
    burn_duration     INTEGER NOT NULL DEFAULT 0,
    group_at_type     INTEGER NOT NULL DEFAULT 0,
    attached_info     TEXT    NOT NULL DEFAULT '',
    ex                TEXT    NOT NULL DEFAULT '',
    min_seq           BIGINT  NOT NULL DEFAULT 0,
    has_read_seq      BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_user_id, conversation_id)
);

CREATE TABLE groups (
    group_id            TEXT    NOT NULL PRIMARY KEY,
    group_name          TEXT    NOT NULL DEFAULT '',
    notification        TEXT    NOT NULL DEFAULT '',
    introduction        TEXT    NOT NULL DEFAULT '',
    face_url            TEXT    NOT NULL DEFAULT '',
    owner_user_id       TEXT    NOT NULL DEFAULT '',
    creator_user_id     TEXT    NOT NULL DEFAULT '',
    create_time         BIGINT  NOT NULL DEFAULT 0,
    ex                  TEXT    NOT NULL DEFAULT '',
    status              INTEGER NOT NULL DEFAULT 0,
    group_type          INTEGER NOT NULL DEFAULT 0,
    need_verification   INTEGER NOT NULL DEFAULT 0,
    look_member_info    INTEGER NOT NULL DEFAULT 0,
    apply_member_friend INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE group_members (
    group_id         TEXT    NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
    user_id          TEXT    NOT NULL,
    nickname         TEXT    NOT NULL DEFAULT '',
    face_url         TEXT    NOT NULL DEFAULT '',
    role_level       INTEGER NOT NULL DEFAULT 0,
    join_time        BIGINT  NOT NULL DEFAULT 0,
    join_source      INTEGER NOT NULL DEFAULT 0,
    inviter_user_id  TEXT    NOT NULL DEFAULT '',
    operator_user_id TEXT    NOT NULL DEFAULT '',
    mute_end_time    BIGINT  NOT NULL DEFAULT 0,
    ex               TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE friends (
    owner_user_id    TEXT    NOT NULL,
    friend_user_id   TEXT    NOT NULL,
    remark           TEXT    NOT NULL DEFAULT '',
    create_time      BIGINT  NOT NULL DEFAULT 0,
    add_source       INTEGER NOT NULL DEFAULT 0,
    operator_user_id TEXT    NOT NULL DEFAULT '',
    ex               TEXT    NOT NULL DEFAULT '',
    is_pinned        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (owner_user_id, friend_user_id)
);

CREATE TABLE friend_requests (
    from_user_id    TEXT    NOT NULL,
    to_user_id      TEXT    NOT NULL,
    handle_result   INTEGER NOT NULL DEFAULT 0,
    req_msg         TEXT    NOT NULL DEFAULT '',
    create_time     BIGINT  NOT NULL DEFAULT 0,
    handler_user_id TEXT    NOT NULL DEFAULT '',
    handle_msg      TEXT    NOT NULL DEFAULT '',
    handle_time     BIGINT  NOT NULL DEFAULT 0,
    ex              TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (from_user_id, to_user_id)
);
CREATE INDEX friend_requests_by_to ON friend_requests (to_user_id, create_time);

CREATE TABLE blacks (
    owner_user_id    TEXT    NOT NULL,
    block_user_id    TEXT    NOT NULL,
    create_time      BIGINT  NOT NULL DEFAULT 0,
    add_source       INTEGER NOT NULL DEFAULT 0,
    operator_user_id TEXT    NOT NULL DEFAULT '',
    ex               TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (owner_user_id, block_user_id)
);

CREATE TABLE version_lists (
    kind        TEXT   NOT NULL,
    owner       TEXT   NOT NULL,
    version_id  TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    min_version BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, owner)
);

CREATE TABLE version_log (
    kind       TEXT   NOT NULL,
    owner      TEXT   NOT NULL,
    element_id TEXT   NOT NULL,
    change     BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    PRIMARY KEY (kind, owner, element_id)
);
CREATE INDEX version_log_by_version ON version_log (kind, owner, version);
