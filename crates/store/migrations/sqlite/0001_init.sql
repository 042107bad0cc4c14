-- Palaver's SQLite schema, version 1.
--
-- Portability: the PostgreSQL store keeps its own migrations, but the queries in `src/sqlite.rs` are meant to read
-- the same there, so this schema sticks to types and constraints both engines have: INTEGER for every i64 (times
-- are INTEGER milliseconds since the Unix epoch), BLOB for bytes (BYTEA in PostgreSQL), TEXT for strings, and
-- 0/1 INTEGER for booleans (BOOLEAN there). Columns are NOT NULL with defaults so rows map to the plain Rust
-- structs in `model.rs` without Options.
--
-- No foreign keys between users and the rows that name them (tokens, conversations, members): the services
-- decide who may own what (an admin or system sender need not be a registered user), and a foreign key here
-- would turn a service-level rule into a surprise failure in the middle of a message append. The one foreign
-- key is group_members -> groups, whose rows only ever come into being together.

CREATE TABLE users (
    user_id             TEXT    NOT NULL PRIMARY KEY,
    nickname            TEXT    NOT NULL DEFAULT '',
    face_url            TEXT    NOT NULL DEFAULT '',
    ex                  TEXT    NOT NULL DEFAULT '',
    create_time         INTEGER NOT NULL DEFAULT 0,
    app_manger_level    INTEGER NOT NULL DEFAULT 0,
    global_recv_msg_opt INTEGER NOT NULL DEFAULT 0
);

-- Tokens are stored by their SHA-256 only; the token itself is given to the client once.
CREATE TABLE tokens (
    hash        BLOB    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL,
    platform_id INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
-- Login policy and kicks look up "the live tokens of this user on this platform".
CREATE INDEX tokens_by_user_platform ON tokens (user_id, platform_id);

-- The per-conversation seq counter. A conversation has a row from its first message on; no row means max seq 0.
-- `append_message` bumps it with an upsert in the same transaction as the message insert, so seqs are 1, 2, 3, ...
-- with no gap and no duplicate.
CREATE TABLE conversation_seqs (
    conversation_id TEXT    NOT NULL PRIMARY KEY,
    max_seq         INTEGER NOT NULL,
    -- send time (ms) of the message that took max_seq
    max_seq_time    INTEGER NOT NULL
);

-- The message log. `data` is the whole `sdkws.MsgData`, protobuf-encoded with its seq set, so what a pull returns
-- is byte-for-byte what was acknowledged; the other columns exist only to find rows.
-- client_msg_id is NULL for a message sent without one (never a duplicate of anything: NULLs are distinct in a
-- UNIQUE constraint on both SQLite and PostgreSQL).
CREATE TABLE messages (
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    client_msg_id   TEXT,
    server_msg_id   TEXT    NOT NULL,
    send_id         TEXT    NOT NULL,
    send_time       INTEGER NOT NULL,
    data            BLOB    NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    -- a resend of the same clientMsgID finds the original instead of storing a second copy
    UNIQUE (conversation_id, client_msg_id)
);

-- One user's view of one conversation. Groups use read diffusion: a group message is stored once, and each
-- member only has this row (its read cursor and its start, min_seq).
CREATE TABLE conversations (
    owner_user_id     TEXT    NOT NULL,
    conversation_id   TEXT    NOT NULL,
    conversation_type INTEGER NOT NULL,
    user_id           TEXT    NOT NULL DEFAULT '',
    group_id          TEXT    NOT NULL DEFAULT '',
    recv_msg_opt      INTEGER NOT NULL DEFAULT 0,
    is_pinned         INTEGER NOT NULL DEFAULT 0,
    is_private_chat   INTEGER NOT NULL DEFAULT 0,
    burn_duration     INTEGER NOT NULL DEFAULT 0,
    group_at_type     INTEGER NOT NULL DEFAULT 0,
    attached_info     TEXT    NOT NULL DEFAULT '',
    ex                TEXT    NOT NULL DEFAULT '',
    min_seq           INTEGER NOT NULL DEFAULT 0,
    has_read_seq      INTEGER NOT NULL DEFAULT 0,
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
    create_time         INTEGER NOT NULL DEFAULT 0,
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
    join_time        INTEGER NOT NULL DEFAULT 0,
    join_source      INTEGER NOT NULL DEFAULT 0,
    inviter_user_id  TEXT    NOT NULL DEFAULT '',
    operator_user_id TEXT    NOT NULL DEFAULT '',
    mute_end_time    INTEGER NOT NULL DEFAULT 0,
    ex               TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id)
);
-- "The groups this user is in" (joined-group lists, login sync).
CREATE INDEX group_members_by_user ON group_members (user_id);
