-- The tables a conversation's first message writes to (its two owners' rows, their conversation lists' heads and
-- logs) and a login reads from (the rows three times, the heads three times), rebuilt WITHOUT ROWID: each is looked
-- up by its primary key alone, and a rowid table keeps that key in an index of its own beside the table, so that
-- every lookup descends two B-trees (the index, then the table by rowid) and every insert writes both. Keyed by
-- their primary keys, they take one descent and one write (`version_log` keeps its second index). See BENCHMARKS.md,
-- "The third machine, a fourth session". Columns and their order are unchanged.

CREATE TABLE conversations_by_key (
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
    max_seq_cap       INTEGER NOT NULL DEFAULT -1,
    PRIMARY KEY (owner_user_id, conversation_id)
) WITHOUT ROWID;
INSERT INTO conversations_by_key SELECT * FROM conversations;
DROP TABLE conversations;
ALTER TABLE conversations_by_key RENAME TO conversations;

CREATE TABLE version_lists_by_key (
    kind        TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    version_id  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    min_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, owner)
) WITHOUT ROWID;
INSERT INTO version_lists_by_key SELECT * FROM version_lists;
DROP TABLE version_lists;
ALTER TABLE version_lists_by_key RENAME TO version_lists;

CREATE TABLE version_log_by_key (
    kind       TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    element_id TEXT    NOT NULL,
    change     INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (kind, owner, element_id)
) WITHOUT ROWID;
INSERT INTO version_log_by_key SELECT * FROM version_log;
DROP TABLE version_log;
ALTER TABLE version_log_by_key RENAME TO version_log;
CREATE INDEX version_log_by_version ON version_log (kind, owner, version);
