-- Per-user message state (deletes, revokes), user commands, client configuration, push tokens, badges and
-- uploaded client logs.

-- A message deleted for one user (owner_user_id) or, with an empty owner, for everyone in its conversation.
-- The message row itself stays: seqs must stay contiguous (clients pull by seq and treat a gap as missing
-- data), a resend of its clientMsgID must still find it, and pulls answer a deleted message as an empty one
-- with status "deleted", as OpenIM does.
CREATE TABLE message_deletions (
    owner_user_id   TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, owner_user_id, seq)
);

-- A revoked message: who revoked it, in which role, and when. Pulls answer the message with content type 2101
-- and this revoke as its content; the original row is kept, as above.
CREATE TABLE message_revokes (
    conversation_id  TEXT    NOT NULL,
    seq              INTEGER NOT NULL,
    revoker_user_id  TEXT    NOT NULL,
    revoker_role     INTEGER NOT NULL DEFAULT 0,
    revoker_nickname TEXT    NOT NULL DEFAULT '',
    revoke_time      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- "Who has this user as a friend": a profile change bumps each of their friend lists.
CREATE INDEX friends_by_friend ON friends (friend_user_id);

-- OpenIM's "user commands": small per-user records (favourites and the like) an app keeps on the server.
-- create_time is in seconds, as upstream keeps it.
CREATE TABLE user_commands (
    user_id     TEXT    NOT NULL,
    type        INTEGER NOT NULL,
    uuid        TEXT    NOT NULL,
    value       TEXT    NOT NULL DEFAULT '',
    ex          TEXT    NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL,
    PRIMARY KEY (user_id, type, uuid)
);

-- Key/value configuration handed to clients: user_id '' holds the defaults for everyone, a user's own rows
-- override them.
CREATE TABLE client_configs (
    user_id    TEXT NOT NULL,
    config_key TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (user_id, config_key)
);

-- The push token (FCM or the like) of a user's device on one platform; removed at logout.
CREATE TABLE push_tokens (
    user_id     TEXT    NOT NULL,
    platform_id INTEGER NOT NULL,
    token       TEXT    NOT NULL,
    expire_time INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, platform_id)
);

-- The badge count the app last reported, for offline pushes to carry.
CREATE TABLE app_badges (
    user_id      TEXT    NOT NULL PRIMARY KEY,
    unread_count INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Client log files a device uploaded (to object storage) and reported here, for support staff to find.
CREATE TABLE client_logs (
    log_id        TEXT    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL,
    platform      TEXT    NOT NULL DEFAULT '',
    url           TEXT    NOT NULL,
    filename      TEXT    NOT NULL DEFAULT '',
    app_framework TEXT    NOT NULL DEFAULT '',
    version       TEXT    NOT NULL DEFAULT '',
    ex            TEXT    NOT NULL DEFAULT '',
    create_time   INTEGER NOT NULL
);
CREATE INDEX client_logs_by_user ON client_logs (user_id, create_time);
