//! Incremental sync of versioned lists (protocol §6): friends, joined groups and conversations per user, and
//! members per group.
//!
//! A client sends the `{versionID, version}` it holds. The answer is one of:
//! - `full`: re-list everything (first sync, a list the client does not know, or a log that no longer reaches
//!   back far enough: more than [`SYNC_LIMIT`] changes, or compacted);
//! - nothing, when the client is current;
//! - the ids deleted, and the objects inserted or updated, since the client's version.
//!
//! Which objects those ids stand for is the caller's business (`find`), so one algorithm serves all four lists.

use super::App;
use crate::error::ApiResult;
use palaver_store::{Change, VersionHead, VersionKind};
use std::future::Future;

/// Most changes answered incrementally; past that the client re-lists (upstream's `syncLimit`).
pub const SYNC_LIMIT: usize = 200;

/// An incremental-sync answer, before it is mapped to the route's response type.
#[derive(Debug, Clone)]
pub struct Synced<T> {
    pub head: VersionHead,
    pub full: bool,
    pub delete: Vec<String>,
    pub insert: Vec<T>,
    pub update: Vec<T>,
    /// Group-member lists only: the group's own information changed (the log's empty element id).
    pub group_changed: bool,
    /// Group-member lists only: the members' order changed (a role change), so the client must re-fetch the
    /// member id list (the answer's `sortVersion`).
    pub sort_changed: bool,
}

impl App {
    /// Answers an incremental sync of list `kind` of `owner` for a client at `(version_id, version)`.
    /// `find` loads the objects for element ids (in any order; unknown ids are left out).
    pub async fn sync_list<T, F, Fut>(
        &self,
        kind: VersionKind,
        owner: &str,
        version_id: &str,
        version: u64,
        find: F,
    ) -> ApiResult<Synced<T>>
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = ApiResult<Vec<T>>>,
    {
        let head = self.store.version_head(kind, owner).await?;
        let client = i64::try_from(version).unwrap_or(i64::MAX);
        let mut out = Synced {
            head,
            full: false,
            delete: Vec::new(),
            insert: Vec::new(),
            update: Vec::new(),
            group_changed: false,
            sort_changed: false,
        };
        if version_id.is_empty() || client <= 0 || version_id != out.head.version_id || client > out.head.version {
            out.full = true;
            return Ok(out);
        }
        if client == out.head.version {
            return Ok(out);
        }
        let delta = self.store.version_changes(kind, owner, client, SYNC_LIMIT).await?;
        if !delta.complete || delta.head.version_id != out.head.version_id {
            out.head = delta.head;
            out.full = true;
            return Ok(out);
        }
        out.head = delta.head;
        let (mut inserted, mut updated) = (Vec::new(), Vec::new());
        for (id, change) in delta.changes {
            if id == palaver_store::GROUP_INFO_ELEMENT {
                out.group_changed = true;
                continue;
            }
            if id == palaver_store::SORT_ELEMENT {
                out.sort_changed = true;
                continue;
            }
            match change {
                Change::Insert => inserted.push(id),
                Change::Update => updated.push(id),
                Change::Delete => out.delete.push(id),
            }
        }
        if !inserted.is_empty() {
            out.insert = find(inserted).await?;
        }
        if !updated.is_empty() {
            out.update = find(updated).await?;
        }
        Ok(out)
    }

    /// The head of a list, for the full-id routes.
    pub async fn list_head(&self, kind: VersionKind, owner: &str) -> ApiResult<VersionHead> {
        Ok(self.store.version_head(kind, owner).await?)
    }
}

/// OpenIM's hash of a full id list (upstream `hashutil.IdHash`): the first 8 bytes, big-endian, of the MD5 of
/// the ids as a JSON array; 0 for an empty list. A client that sends the hash of what it has gets `equal`.
pub fn id_hash(ids: &[String]) -> u64 {
    use md5::Digest as _;
    if ids.is_empty() {
        return 0;
    }
    let json = serde_json::to_vec(ids).unwrap_or_default();
    let sum = md5::Md5::digest(&json);
    u64::from_be_bytes(sum[..8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::id_hash;

    #[test]
    fn id_hash_is_md5_prefix_of_the_json_array() {
        assert_eq!(id_hash(&[]), 0);
        // md5(`["a","b"]`) = e53f04d1bcc1428d9e8db9a93578c5eb, computed independently with Python's hashlib.
        let h = id_hash(&["a".to_string(), "b".to_string()]);
        assert_eq!(format!("{h:016x}"), EXPECTED_AB);
        assert_ne!(h, id_hash(&["b".to_string(), "a".to_string()]), "order matters, as upstream");
    }

    const EXPECTED_AB: &str = "e53f04d1bcc1428d";
}
