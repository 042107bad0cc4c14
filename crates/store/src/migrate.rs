//! `palaver admin migrate`: copies a single-node install's SQLite database into PostgreSQL.
//!
//! # What it does
//!
//! Every table of the SQLite file (except SQLite's own and the migrations bookkeeping) is copied into the table
//! of the same name in PostgreSQL, whose schema [`PgStore::connect`] has just brought up to date. Columns are
//! matched by name and converted by the PostgreSQL column's type (SQLite's 0/1 integers become BOOLEAN, and so
//! on), so the copy follows the schemas as they grow without a line per table here.
//!
//! Rows are read in primary-key order, in batches, and written with an upsert (`ON CONFLICT (key) DO UPDATE`),
//! each batch in one PostgreSQL transaction together with a progress row (`palaver_migrate_progress`: the last
//! key copied per table). So:
//! - **resumable**: an interrupted run (Ctrl-C, a lost connection, a reboot) is run again and goes on after
//!   the last committed batch;
//! - **a running install**: the source may be in use by a node started with `--sqlite-shared` (SQLite's WAL lets
//!   us read beside its writer; a node holds its file alone otherwise, and the copy then says so). Rows written
//!   to it after their table was copied are picked up by running the command again with `--restart` once the
//!   single node is stopped: every row is then copied again (upserts: nothing is duplicated) and verified.
//!
//! The one table PostgreSQL has and SQLite has not is `conversation_seqs`, each conversation's seq counter: the
//! SQLite store reads a conversation's counter off its message log (the newest message), PostgreSQL keeps it in
//! a row that orders appends across nodes. Once the log is copied, the counters are derived from it.
//!
//! # Verification
//!
//! Afterwards each table is compared on both sides: its row count, and a checksum that does not depend on row
//! order (the wrapping sum of a SHA-256 prefix of each row's canonical form). Any difference is reported, never
//! silently accepted.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Row as _};

use crate::postgres::{PgStore, quote_ident};
use crate::{Result, StoreError};

/// Rows per batch (one PostgreSQL transaction each).
const BATCH: usize = 500;

/// One table's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    pub source_checksum: u64,
    pub target_checksum: u64,
    /// Rows written by this run (0 for a table a previous run had finished).
    pub copied: u64,
}

impl TableReport {
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_checksum == self.target_checksum
    }
}

/// A column's value, typed by the PostgreSQL column it goes to.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int8(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
    Text(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int8,
    Int4,
    Bool,
    Bytes,
    Text,
}

impl Kind {
    fn of(pg_type: &str) -> Self {
        match pg_type {
            "bigint" => Self::Int8,
            "integer" | "smallint" => Self::Int4,
            "boolean" => Self::Bool,
            "bytea" => Self::Bytes,
            _ => Self::Text,
        }
    }
}

struct Column {
    name: String,
    kind: Kind,
}

struct Table {
    name: String,
    columns: Vec<Column>,
    /// Indexes into `columns` of the primary key, in key order.
    key: Vec<usize>,
}

fn from_sqlite(row: &SqliteRow, i: usize, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Int8 => Value::Int8(row.try_get(i)?),
        Kind::Int4 => {
            let v: Option<i64> = row.try_get(i)?;
            let v = v.map(i32::try_from).transpose().map_err(|e| StoreError::Backend(format!("column {i}: {e}")))?;
            Value::Int4(v)
        }
        Kind::Bool => Value::Bool(row.try_get::<Option<i64>, _>(i)?.map(|v| v != 0)),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
        Kind::Text => Value::Text(row.try_get(i)?),
    })
}

fn from_pg(row: &PgRow, i: usize, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Int8 => Value::Int8(row.try_get(i)?),
        Kind::Int4 => Value::Int4(row.try_get(i)?),
        Kind::Bool => Value::Bool(row.try_get(i)?),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
        Kind::Text => Value::Text(row.try_get(i)?),
    })
}

/// The row's canonical bytes for the checksum: the same on both sides whatever the storage types.
fn canonical(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        let text = match v {
            Value::Int8(Some(n)) => n.to_string(),
            Value::Int4(Some(n)) => n.to_string(),
            Value::Bool(Some(b)) => u8::from(*b).to_string(),
            Value::Bytes(Some(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
            Value::Text(Some(s)) => s.clone(),
            _ => "\u{0}null".to_string(),
        };
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

fn row_hash(values: &[Value]) -> u64 {
    let digest = Sha256::digest(canonical(values));
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

/// A key as stored in the progress table (one line of text per value, typed).
fn encode_key(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::Int8(Some(n)) => format!("i{n}"),
            Value::Int4(Some(n)) => format!("i{n}"),
            Value::Bool(Some(b)) => format!("i{}", u8::from(*b)),
            Value::Bytes(Some(b)) => format!("b{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
            Value::Text(Some(s)) => format!("t{}", s.replace('\\', "\\\\").replace('\n', "\\n")),
            _ => "n".to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_key(text: &str, table: &Table) -> Result<Vec<Value>> {
    let parts: Vec<&str> = text.split('\n').collect();
    if parts.len() != table.key.len() {
        return Err(StoreError::Backend(format!("progress of {} does not match its key", table.name)));
    }
    let bad = || StoreError::Backend(format!("unreadable progress of {}", table.name));
    parts
        .iter()
        .zip(&table.key)
        .map(|(part, &i)| {
            let kind = table.columns[i].kind;
            let (tag, rest) = part.split_at(part.len().min(1));
            Ok(match (tag, kind) {
                ("i", Kind::Int8) => Value::Int8(Some(rest.parse().map_err(|_| bad())?)),
                ("i", Kind::Int4) => Value::Int4(Some(rest.parse().map_err(|_| bad())?)),
                ("i", Kind::Bool) => Value::Bool(Some(rest == "1")),
                ("b", Kind::Bytes) => Value::Bytes(Some(
                    (0..rest.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(rest.get(i..i + 2).unwrap_or(""), 16).map_err(|_| bad()))
                        .collect::<Result<_>>()?,
                )),
                ("t", Kind::Text) => Value::Text(Some(rest.replace("\\n", "\n").replace("\\\\", "\\"))),
                _ => return Err(bad()),
            })
        })
        .collect()
}

fn bind_sqlite<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    v: &Value,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match v.clone() {
        Value::Int8(n) => q.bind(n),
        Value::Int4(n) => q.bind(n.map(i64::from)),
        Value::Bool(b) => q.bind(b.map(i64::from)),
        Value::Bytes(b) => q.bind(b),
        Value::Text(s) => q.bind(s),
    }
}

fn bind_pg<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    v: Value,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match v {
        Value::Int8(n) => q.bind(n),
        Value::Int4(n) => q.bind(n),
        Value::Bool(b) => q.bind(b),
        Value::Bytes(b) => q.bind(b),
        Value::Text(s) => q.bind(s),
    }
}

/// Copies the SQLite database at `from` into the PostgreSQL database at `to` (see the module docs), calling
/// `progress(table, rows copied so far)` after each batch. `restart` forgets a previous run's progress.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    restart: bool,
    mut progress: impl FnMut(&str, u64),
) -> Result<Vec<TableReport>> {
    if !from.exists() {
        return Err(StoreError::NotFound(format!("SQLite database {}", from.display())));
    }
    // A server that stopped without closing (killed) left its newest messages in the message journal: they are
    // replayed into the file first. While a server runs it owns the journal, and the copy has what the server
    // has flushed (a second or so behind); the copy after it stops takes the rest.
    let in_use = !crate::sqlite::replay_journal(from)?;
    let source = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(from).read_only(true))
        .await?;
    if in_use {
        if let Err(e) = sqlx::query("SELECT COUNT(*) FROM sqlite_master").execute(&source).await {
            return Err(StoreError::Backend(format!(
                "{} is held by the running node that uses it ({e}): stop the node and run this again, or restart \
                 it with --sqlite-shared to copy while it runs",
                from.display()
            )));
        }
        tracing::warn!(
            "{} is in use by a running server: copying what it has flushed; stop it and copy again to finish",
            from.display()
        );
    }
    let target = PgStore::connect(to, 4).await?;
    let pg = target.pool();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS palaver_migrate_progress \
         (table_name TEXT PRIMARY KEY, last_key TEXT, copied BIGINT NOT NULL DEFAULT 0, done BOOLEAN NOT NULL DEFAULT FALSE)",
    )
    .execute(pg)
    .await?;
    if restart {
        sqlx::query("DELETE FROM palaver_migrate_progress").execute(pg).await?;
    }

    let tables = tables(&source, pg).await?;
    let mut reports = Vec::new();
    for table in &tables {
        let copied = copy_table(&source, pg, table, &mut progress).await?;
        let (source_rows, source_checksum) = checksum_sqlite(&source, table).await?;
        let (target_rows, target_checksum) = checksum_pg(pg, table).await?;
        reports.push(TableReport {
            table: table.name.clone(),
            source_rows,
            target_rows,
            source_checksum,
            target_checksum,
            copied,
        });
    }
    counters_from_the_log(pg).await?;
    source.close().await;
    target.close().await;
    Ok(reports)
}

/// Sets each conversation's counter to its newest copied message (never lowering one: a resumed run finds them
/// set already).
async fn counters_from_the_log(pg: &sqlx::PgPool) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversation_seqs (conversation_id, max_seq, max_seq_time) \
         SELECT DISTINCT ON (conversation_id) conversation_id, seq, send_time FROM messages \
         ORDER BY conversation_id, seq DESC \
         ON CONFLICT (conversation_id) DO UPDATE SET max_seq = EXCLUDED.max_seq, max_seq_time = EXCLUDED.max_seq_time \
         WHERE conversation_seqs.max_seq < EXCLUDED.max_seq",
    )
    .execute(pg)
    .await?;
    Ok(())
}

/// The tables to copy, with their columns typed by PostgreSQL and their keys from SQLite.
async fn tables(source: &SqlitePool, pg: &sqlx::PgPool) -> Result<Vec<Table>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(source)
    .await?;
    let mut out = Vec::new();
    for name in names {
        let pg_columns: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(&name)
        .fetch_all(pg)
        .await?
        .into_iter()
        .collect();
        if pg_columns.is_empty() {
            return Err(StoreError::Backend(format!(
                "table {name} has no PostgreSQL counterpart: this build's PostgreSQL migrations lag its SQLite ones"
            )));
        }
        let info =
            sqlx::query(AssertSqlSafe(format!("PRAGMA table_info({})", quote_ident(&name)))).fetch_all(source).await?;
        let mut columns = Vec::new();
        let mut key: Vec<(i64, usize)> = Vec::new();
        for row in &info {
            let column: String = row.try_get("name")?;
            let pk: i64 = row.try_get("pk")?;
            let Some(pg_type) = pg_columns.get(&column) else {
                return Err(StoreError::Backend(format!("column {name}.{column} is missing in PostgreSQL")));
            };
            if pk > 0 {
                key.push((pk, columns.len()));
            }
            columns.push(Column { name: column, kind: Kind::of(pg_type) });
        }
        if key.is_empty() {
            return Err(StoreError::Backend(format!("table {name} has no primary key to copy it by")));
        }
        key.sort();
        out.push(Table { name, columns, key: key.into_iter().map(|(_, i)| i).collect() });
    }
    // Referenced tables first (`groups` before `group_members`): a row must find the row its foreign key names.
    let references: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::TEXT, r.relname::TEXT FROM pg_constraint k \
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid \
         WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace",
    )
    .fetch_all(pg)
    .await?;
    let mut ordered: Vec<Table> = Vec::with_capacity(out.len());
    while !out.is_empty() {
        let ready = out.iter().position(|t| {
            references.iter().all(|(from, to)| {
                from != &t.name
                    || to == &t.name
                    || ordered.iter().any(|o| &o.name == to)
                    || !out.iter().any(|o| &o.name == to)
            })
        });
        let Some(i) = ready else {
            return Err(StoreError::Backend("the tables' foreign keys form a cycle".into()));
        };
        ordered.push(out.remove(i));
    }
    Ok(ordered)
}

fn column_list(table: &Table) -> String {
    table.columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ")
}

fn key_list(table: &Table) -> String {
    table.key.iter().map(|&i| quote_ident(&table.columns[i].name)).collect::<Vec<_>>().join(", ")
}

/// Copies `table` from where the progress row says, batch by batch. Returns the rows written by this run.
async fn copy_table(
    source: &SqlitePool,
    pg: &sqlx::PgPool,
    table: &Table,
    progress: &mut impl FnMut(&str, u64),
) -> Result<u64> {
    let state: Option<(Option<String>, i64, bool)> =
        sqlx::query_as("SELECT last_key, copied, done FROM palaver_migrate_progress WHERE table_name = $1")
            .bind(&table.name)
            .fetch_optional(pg)
            .await?;
    let (mut last, mut total) = match state {
        Some((_, copied, true)) => {
            progress(&table.name, u64::try_from(copied).unwrap_or(0));
            return Ok(0);
        }
        Some((key, copied, false)) => {
            (key.map(|k| decode_key(&k, table)).transpose()?, u64::try_from(copied).unwrap_or(0))
        }
        None => (None, 0),
    };
    let columns = column_list(table);
    let keys = key_list(table);
    let placeholders = vec!["?"; table.key.len()].join(", ");
    let mut written = 0;
    loop {
        let sql = match &last {
            None => format!("SELECT {columns} FROM {} ORDER BY {keys} LIMIT {BATCH}", quote_ident(&table.name)),
            Some(_) => format!(
                "SELECT {columns} FROM {} WHERE ({keys}) > ({placeholders}) ORDER BY {keys} LIMIT {BATCH}",
                quote_ident(&table.name)
            ),
        };
        let mut q = sqlx::query(AssertSqlSafe(sql));
        if let Some(last) = &last {
            for v in last {
                q = bind_sqlite(q, v);
            }
        }
        let rows = q.fetch_all(source).await?;
        if rows.is_empty() {
            break;
        }
        let mut values = Vec::with_capacity(rows.len());
        for row in &rows {
            let row_values: Vec<Value> =
                table.columns.iter().enumerate().map(|(i, c)| from_sqlite(row, i, c.kind)).collect::<Result<_>>()?;
            values.push(row_values);
        }
        let next_key: Vec<Value> =
            values.last().map(|v| table.key.iter().map(|&i| v[i].clone()).collect()).unwrap_or_default();
        let n = values.len() as u64;
        write_batch(pg, table, values, &next_key, total + n).await?;
        total += n;
        written += n;
        last = Some(next_key);
        progress(&table.name, total);
    }
    sqlx::query(
        "INSERT INTO palaver_migrate_progress (table_name, last_key, copied, done) VALUES ($1, NULL, $2, TRUE) \
         ON CONFLICT (table_name) DO UPDATE SET done = TRUE, copied = excluded.copied",
    )
    .bind(&table.name)
    .bind(i64::try_from(total).unwrap_or(i64::MAX))
    .execute(pg)
    .await?;
    Ok(written)
}

/// Upserts one batch and records the progress, in one transaction.
async fn write_batch(
    pg: &sqlx::PgPool,
    table: &Table,
    rows: Vec<Vec<Value>>,
    last_key: &[Value],
    total: u64,
) -> Result<()> {
    let width = table.columns.len();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", quote_ident(&table.name), column_list(table));
    for r in 0..rows.len() {
        if r > 0 {
            sql.push_str(", ");
        }
        let ph: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        sql.push_str(&format!("({})", ph.join(", ")));
    }
    let updates: Vec<String> = (0..width)
        .filter(|i| !table.key.contains(i))
        .map(|i| format!("{0} = excluded.{0}", quote_ident(&table.columns[i].name)))
        .collect();
    if updates.is_empty() {
        sql.push_str(&format!(" ON CONFLICT ({}) DO NOTHING", key_list(table)));
    } else {
        sql.push_str(&format!(" ON CONFLICT ({}) DO UPDATE SET {}", key_list(table), updates.join(", ")));
    }
    let mut tx = pg.begin().await?;
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        for v in row {
            q = bind_pg(q, v);
        }
    }
    q.execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO palaver_migrate_progress (table_name, last_key, copied, done) VALUES ($1, $2, $3, FALSE) \
         ON CONFLICT (table_name) DO UPDATE SET last_key = excluded.last_key, copied = excluded.copied",
    )
    .bind(&table.name)
    .bind(encode_key(last_key))
    .bind(i64::try_from(total).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn checksum_sqlite(source: &SqlitePool, table: &Table) -> Result<(u64, u64)> {
    let sql = format!("SELECT {} FROM {}", column_list(table), quote_ident(&table.name));
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(source).await?;
    let mut sum = 0u64;
    for row in &rows {
        let values: Vec<Value> =
            table.columns.iter().enumerate().map(|(i, c)| from_sqlite(row, i, c.kind)).collect::<Result<_>>()?;
        sum = sum.wrapping_add(row_hash(&values));
    }
    Ok((rows.len() as u64, sum))
}

async fn checksum_pg(pg: &sqlx::PgPool, table: &Table) -> Result<(u64, u64)> {
    let sql = format!("SELECT {} FROM {}", column_list(table), quote_ident(&table.name));
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pg).await?;
    let mut sum = 0u64;
    for row in &rows {
        let values: Vec<Value> =
            table.columns.iter().enumerate().map(|(i, c)| from_pg(row, i, c.kind)).collect::<Result<_>>()?;
        sum = sum.wrapping_add(row_hash(&values));
    }
    Ok((rows.len() as u64, sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_progress_table() {
        let table = Table {
            name: "t".into(),
            columns: vec![
                Column { name: "a".into(), kind: Kind::Text },
                Column { name: "b".into(), kind: Kind::Int8 },
                Column { name: "c".into(), kind: Kind::Bytes },
            ],
            key: vec![0, 1, 2],
        };
        let key = vec![Value::Text(Some("x\ny\\".into())), Value::Int8(Some(-3)), Value::Bytes(Some(vec![0, 255]))];
        assert_eq!(decode_key(&encode_key(&key), &table).unwrap(), key);
    }

    #[test]
    fn checksums_see_every_column_and_not_the_storage_type() {
        let a = [Value::Int4(Some(1)), Value::Bool(Some(true)), Value::Text(Some("x".into()))];
        let b = [Value::Int8(Some(1)), Value::Int8(Some(1)), Value::Text(Some("x".into()))];
        assert_eq!(row_hash(&a), row_hash(&b));
        let c = [Value::Int4(Some(1)), Value::Bool(Some(false)), Value::Text(Some("x".into()))];
        assert_ne!(row_hash(&a), row_hash(&c));
    }
}
