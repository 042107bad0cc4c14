-- Friends, friend requests, blacklists, and the version logs behind incremental sync (protocol §6).

-- One direction of a friendship: friend_user_id is in owner_user_id's list (OpenIM deletes one way).
CREATE TABLE friends (
    owner_user_id    TEXT    NOT NULL,
    friend_user_id   TEXT    NOT NULL,
    remark           TEXT    NOT NULL DEFAULT '',
    create_time      INTEGER NOT NULL DEFAULT 0,
    add_source       INTEGER NOT NULL DEFAULT 0,
    operator_user_id TEXT    NOT NULL DEFAULT '',
    ex               TEXT    NOT NULL DEFAULT '',
    is_pinned        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_user_id, friend_user_id)
);

-- The latest request between two users in one direction; handle_result 0 pending, 1 accepted, -1 refused.
CREATE TABLE friend_requests (
    from_user_id    TEXT    NOT NULL,
    to_user_id      TEXT    NOT NULL,
    handle_result   INTEGER NOT NULL DEFAULT 0,
    req_msg         TEXT    NOT NULL DEFAULT '',
    create_time     INTEGER NOT NULL DEFAULT 0,
    handler_user_id TEXT    NOT NULL DEFAULT '',
    handle_msg      TEXT    NOT NULL DEFAULT '',
    handle_time     INTEGER NOT NULL DEFAULT 0,
    ex              TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (from_user_id, to_user_id)
);
-- "Requests sent to me."
CREATE INDEX friend_requests_by_to ON friend_requests (to_user_id, create_time);

CREATE TABLE blacks (
    owner_user_id    TEXT    NOT NULL,
    block_user_id    TEXT    NOT NULL,
    create_time      INTEGER NOT NULL DEFAULT 0,
    add_source       INTEGER NOT NULL DEFAULT 0,
    operator_user_id TEXT    NOT NULL DEFAULT '',
    ex               TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (owner_user_id, block_user_id)
);

-- One synced list (kind: friends, joined_groups, conversations, group_members; owner: a user or a group id).
-- version_id is opaque and only changes if the list is recreated; version rises by exactly one per change, so
-- a notification carrying version N+1 lets a client at N apply it without asking. min_version: the log covers
-- changes after it (raised by compaction); a client older than that re-lists.
CREATE TABLE version_lists (
    kind        TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    version_id  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    min_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, owner)
);

-- Per element, its latest change and the version it happened at: what a client at version V is missing is
-- every row with version > V. One row per element keeps the log as small as the list itself.
CREATE TABLE version_log (
    kind       TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    element_id TEXT    NOT NULL,
    change     INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (kind, owner, element_id)
);
CREATE INDEX version_log_by_version ON version_log (kind, owner, version);
