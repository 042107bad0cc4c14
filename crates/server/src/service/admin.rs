//! What the admin console shows and does beyond OpenIM's own admin routes: an overview of the server, and
//! searches over every user and group.

use super::App;
use crate::error::{ApiError, ApiResult};
use palaver_store::{DirectoryCounts, Group, Page, User};
use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

/// Most rows one console search returns.
pub const MAX_SEARCH_PAGE: i64 = 200;
/// How long storage figures are reused before the data folder is walked again.
const STORAGE_TTL: Duration = Duration::from_secs(10);
/// Most directory entries one walk of the objects folder visits.
const MAX_WALK: usize = 1_000_000;

/// Bytes on disk under the data folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageUsage {
    /// The SQLite database file.
    pub database_bytes: u64,
    /// Its write-ahead logs: SQLite's WAL (grows between checkpoints) and the message journal (the last second or
    /// so of messages, not yet flushed into the database, and the spare files it writes over).
    pub wal_bytes: u64,
    /// Uploaded objects (local-disk object storage).
    pub objects_bytes: u64,
    pub objects_files: u64,
    /// Whether the walk of the objects folder stopped early (very many files): the figures are then lower bounds.
    pub objects_partial: bool,
}

/// The console's overview.
#[derive(Debug, Clone)]
pub struct Overview {
    pub version: &'static str,
    pub started_at_ms: i64,
    pub uptime: Duration,
    /// Whether the store answered.
    pub store_ok: bool,
    pub connections_by_platform: BTreeMap<i32, usize>,
    pub online_users: usize,
    pub counts: Option<DirectoryCounts>,
    pub storage: StorageUsage,
    /// Per minute over the last hour (oldest first), and the totals since start.
    pub messages_per_minute: Vec<u64>,
    pub connections_per_minute: Vec<u64>,
    pub logins_per_minute: Vec<u64>,
    pub login_failures_per_minute: Vec<u64>,
    pub totals: [u64; 4],
    pub recent_errors: Vec<crate::recent::RecentEvent>,
}

/// A user as the console lists it.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub user: User,
    pub blocked: bool,
    pub online_platforms: Vec<i32>,
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Walks `data_dir` for the figures of [`StorageUsage`]. Blocking.
fn measure_storage(data_dir: &Path) -> StorageUsage {
    let mut usage = StorageUsage {
        database_bytes: file_len(&data_dir.join("palaver.db")),
        wal_bytes: file_len(&data_dir.join("palaver.db-wal")),
        ..StorageUsage::default()
    };
    usage.wal_bytes += palaver_store::sqlite::journal_bytes(&data_dir.join("palaver.db"));
    let mut stack = vec![data_dir.join("objects")];
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            visited += 1;
            if visited > MAX_WALK {
                usage.objects_partial = true;
                return usage;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => {
                    usage.objects_files += 1;
                    usage.objects_bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
                }
                _ => {}
            }
        }
    }
    usage
}

fn page(page_number: i32, show_number: i32) -> ApiResult<Page> {
    if page_number < 1 || show_number < 1 || i64::from(show_number) > MAX_SEARCH_PAGE {
        return Err(ApiError::args(format!("pageNumber must be >= 1 and showNumber 1 to {MAX_SEARCH_PAGE}")));
    }
    Ok(Page { offset: i64::from(page_number - 1) * i64::from(show_number), limit: i64::from(show_number) })
}

impl App {
    /// Storage figures, from the cache when fresh.
    pub async fn storage_usage(&self) -> StorageUsage {
        if let Some((at, usage)) = *self.storage_cache.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < STORAGE_TTL
        {
            return usage;
        }
        let dir = self.config.data_dir.clone();
        let usage = tokio::task::spawn_blocking(move || measure_storage(&dir)).await.unwrap_or_default();
        *self.storage_cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), usage));
        usage
    }

    /// Everything the console's overview shows.
    pub async fn overview(&self) -> Overview {
        let counts = match self.store.directory_counts().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "store did not answer the overview");
                None
            }
        };
        let stats = &self.stats;
        Overview {
            version: env!("CARGO_PKG_VERSION"),
            started_at_ms: stats.started_at_ms,
            uptime: stats.uptime(),
            store_ok: counts.is_some(),
            connections_by_platform: self.hub.connections_by_platform(),
            online_users: self.hub.online_user_count(),
            counts,
            storage: self.storage_usage().await,
            messages_per_minute: stats.per_minute(&stats.messages),
            connections_per_minute: stats.per_minute(&stats.connections),
            logins_per_minute: stats.per_minute(&stats.logins),
            login_failures_per_minute: stats.per_minute(&stats.login_failures),
            totals: [
                stats.messages.total(),
                stats.connections.total(),
                stats.logins.total(),
                stats.login_failures.total(),
            ],
            recent_errors: crate::recent::events(),
        }
    }

    /// Users whose id or nickname contains `keyword`, newest first, with their block and online state.
    pub async fn search_users(
        &self,
        keyword: &str,
        page_number: i32,
        show_number: i32,
    ) -> ApiResult<(Vec<UserRow>, i64)> {
        let (users, total) = self.store.search_users(keyword.trim(), page(page_number, show_number)?).await?;
        let ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
        let blocked = self.store.blocked_users(&ids).await?;
        let rows = users
            .into_iter()
            .map(|user| UserRow {
                blocked: blocked.contains(&user.user_id),
                online_platforms: self.hub.online_platforms(&user.user_id),
                user,
            })
            .collect();
        Ok((rows, total))
    }

    /// Groups whose id or name contains `keyword`, newest first, with their member counts.
    pub async fn search_groups(
        &self,
        keyword: &str,
        page_number: i32,
        show_number: i32,
    ) -> ApiResult<(Vec<(Group, u32)>, i64)> {
        let (groups, total) = self.store.search_groups(keyword.trim(), page(page_number, show_number)?).await?;
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let count = self.store.group_member_count(&group.group_id).await?;
            out.push((group, count));
        }
        Ok((out, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_walk_counts_objects_and_database_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("palaver.db"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("palaver.db-wal"), [0u8; 20]).unwrap();
        std::fs::write(dir.path().join("palaver.db-log.000007"), [0u8; 3]).unwrap();
        std::fs::write(dir.path().join("palaver.db-log.lock"), [0u8; 1000]).unwrap();
        std::fs::create_dir_all(dir.path().join("objects/a/b")).unwrap();
        std::fs::write(dir.path().join("objects/a/one"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("objects/a/b/two"), [0u8; 5]).unwrap();
        let usage = measure_storage(dir.path());
        assert_eq!(
            usage,
            StorageUsage {
                database_bytes: 100,
                wal_bytes: 23,
                objects_bytes: 15,
                objects_files: 2,
                objects_partial: false
            }
        );
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(page(2, 50).unwrap(), Page { offset: 50, limit: 50 });
        assert!(page(0, 10).is_err() && page(1, 0).is_err() && page(1, 201).is_err());
    }
}
