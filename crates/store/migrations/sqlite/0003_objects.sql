-- Files: named objects over content-addressed blobs, and the multipart uploads that create them.

-- A name (what download URLs carry, `<userID>/…`) pointing at stored content. The content is addressed by
-- OpenIM's hash (md5 of the comma-joined part md5s), so many names can share one blob and a repeated upload of
-- the same bytes stores nothing new.
CREATE TABLE objects (
    name         TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    hash         TEXT    NOT NULL,
    storage_key  TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    cause        TEXT    NOT NULL DEFAULT '',
    create_time  INTEGER NOT NULL
);
-- "Is this content stored already?"
CREATE INDEX objects_by_hash ON objects (hash);

-- An upload in progress: parts are PUT to presigned URLs, then `complete` turns it into an object. A row past its
-- expire_time is abandoned; the server's sweeper deletes its parts and the row.
CREATE TABLE object_uploads (
    upload_id         TEXT    PRIMARY KEY,
    user_id           TEXT    NOT NULL,
    hash              TEXT    NOT NULL,
    size              INTEGER NOT NULL,
    part_size         INTEGER NOT NULL,
    part_count        INTEGER NOT NULL,
    storage_key       TEXT    NOT NULL,
    backend_upload_id TEXT    NOT NULL DEFAULT '',
    expire_time       INTEGER NOT NULL,
    create_time       INTEGER NOT NULL
);
CREATE INDEX object_uploads_by_expiry ON object_uploads (expire_time);
