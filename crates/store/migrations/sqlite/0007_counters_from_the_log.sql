-- A conversation's counter is its message log's last row: the max seq is the seq of the newest message, its time
-- that message's send time. The log's (conversation_id, seq) index finds it with one seek, in the very leaf the
-- next append writes to, whereas the table kept beside the log cost every append an upsert and a page of its own
-- (one 4 KiB WAL frame per commit of one message; see BENCHMARKS.md). The log is append-only (deletions
-- and revokes are marks beside it), so its last seq never goes back and seqs stay 1, 2, 3, ... with no gap and
-- no reuse. (PostgreSQL keeps its counter table: there the row lock on it orders appends across nodes.)
DROP TABLE conversation_seqs;
