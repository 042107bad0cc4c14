-- Groups at parity with OpenIM: join applications, announcement metadata, members' read caps, role lookups.

-- The latest application of a user to a group (a new one replaces it); handle_result 0 pending, 1 accepted,
-- -1 refused. inviter_user_id is set when a member's invitation needed approval.
CREATE TABLE group_requests (
    group_id        TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    handle_result   INTEGER NOT NULL DEFAULT 0,
    req_msg         TEXT    NOT NULL DEFAULT '',
    handle_msg      TEXT    NOT NULL DEFAULT '',
    req_time        INTEGER NOT NULL DEFAULT 0,
    handle_user_id  TEXT    NOT NULL DEFAULT '',
    handle_time     INTEGER NOT NULL DEFAULT 0,
    ex              TEXT    NOT NULL DEFAULT '',
    join_source     INTEGER NOT NULL DEFAULT 0,
    inviter_user_id TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, user_id)
);
-- "The applications I made", newest first.
CREATE INDEX group_requests_by_user ON group_requests (user_id, req_time);
-- "The applications to the groups I manage", newest first, and the unhandled count.
CREATE INDEX group_requests_by_group ON group_requests (group_id, handle_result, req_time);

-- Who last set the group's announcement, and when (GroupInfo.notificationUpdateTime / notificationUserID).
ALTER TABLE groups ADD COLUMN notification_update_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN notification_user_id TEXT NOT NULL DEFAULT '';

-- The highest seq the owner may read in this conversation; -1: no cap (0 is a cap: nothing). Set to the group's
-- max seq when a member leaves (quits, is kicked, or the group is dismissed): a former member keeps the history
-- it had and sees nothing after. Cleared when it joins again (with min_seq moved to the new join).
ALTER TABLE conversations ADD COLUMN max_seq_cap INTEGER NOT NULL DEFAULT -1;

-- Owners and admins of a group (permission checks, application routing), and "the groups I manage".
CREATE INDEX group_members_by_role ON group_members (group_id, role_level);
CREATE INDEX group_members_by_user_role ON group_members (user_id, role_level);
