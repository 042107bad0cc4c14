//! `/palaver/admin/*`: what the admin console needs beyond OpenIM's own admin routes. Admin token only.
//!
//! The console also uses OpenIM's routes where they fit: `/auth/get_admin_token` to sign in,
//! `/account/register` (with the admin token) to create accounts, `/group/get_group_member_list` and
//! `/group/dismiss_group` for groups.

use super::Ctx;
use crate::{
    error::ApiResult,
    service::{App, wire},
};
use palaver_protocol::{constant::platform, pb::sdkws};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, sync::Arc};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Empty {}

#[derive(Debug, Serialize)]
pub(super) struct Done {}

#[derive(Debug, Serialize)]
pub(super) struct Storage {
    #[serde(rename = "databaseBytes")]
    database_bytes: u64,
    #[serde(rename = "walBytes")]
    wal_bytes: u64,
    #[serde(rename = "objectsBytes")]
    objects_bytes: u64,
    #[serde(rename = "objectsFiles")]
    objects_files: u64,
    #[serde(rename = "objectsPartial")]
    objects_partial: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct Series {
    /// Per minute over the last hour, oldest first; the last entry is the current (unfinished) minute.
    #[serde(rename = "perMinute")]
    per_minute: Vec<u64>,
    /// Since the server started.
    total: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct RecentError {
    time: i64,
    level: &'static str,
    target: String,
    text: String,
}

#[derive(Debug, Serialize)]
pub(super) struct OverviewResp {
    version: &'static str,
    #[serde(rename = "startedAt")]
    started_at: i64,
    #[serde(rename = "uptimeSeconds")]
    uptime_seconds: u64,
    /// `ok` when the store answers, else `store unavailable`.
    health: &'static str,
    /// Live gateway connections per platform name, and in all.
    connections: BTreeMap<String, usize>,
    #[serde(rename = "connectionCount")]
    connection_count: usize,
    #[serde(rename = "onlineUsers")]
    online_users: usize,
    users: i64,
    accounts: i64,
    groups: i64,
    messages: i64,
    storage: Storage,
    /// Messages stored, gateway connections accepted, password logins and failed logins.
    rates: BTreeMap<&'static str, Series>,
    #[serde(rename = "recentErrors")]
    recent_errors: Vec<RecentError>,
}

/// # POST /palaver/admin/overview (admin)
pub(super) async fn overview(app: Arc<App>, ctx: Ctx, _req: Empty) -> ApiResult<OverviewResp> {
    ctx.caller.require_admin()?;
    let o = app.overview().await;
    let counts = o.counts.unwrap_or_default();
    let connections = o
        .connections_by_platform
        .iter()
        .map(|(p, n)| (platform::name(*p).unwrap_or("unknown").to_string(), *n))
        .collect();
    let series = |per_minute: Vec<u64>, total: u64| Series { per_minute, total };
    let [messages, connects, logins, failures] = o.totals;
    Ok(OverviewResp {
        version: o.version,
        started_at: o.started_at_ms,
        uptime_seconds: o.uptime.as_secs(),
        health: if o.store_ok { "ok" } else { "store unavailable" },
        connection_count: o.connections_by_platform.values().sum(),
        connections,
        online_users: o.online_users,
        users: counts.users,
        accounts: counts.accounts,
        groups: counts.groups,
        messages: counts.messages,
        storage: Storage {
            database_bytes: o.storage.database_bytes,
            wal_bytes: o.storage.wal_bytes,
            objects_bytes: o.storage.objects_bytes,
            objects_files: o.storage.objects_files,
            objects_partial: o.storage.objects_partial,
        },
        rates: BTreeMap::from([
            ("messages", series(o.messages_per_minute, messages)),
            ("connections", series(o.connections_per_minute, connects)),
            ("logins", series(o.logins_per_minute, logins)),
            ("loginFailures", series(o.login_failures_per_minute, failures)),
        ]),
        recent_errors: o
            .recent_errors
            .into_iter()
            .rev()
            .map(|e| RecentError { time: e.time, level: e.level, target: e.target, text: e.text })
            .collect(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SearchReq {
    keyword: String,
    pagination: Option<sdkws::RequestPagination>,
}

impl SearchReq {
    fn page(&self) -> (i32, i32) {
        self.pagination.as_ref().map_or((1, 20), |p| (p.page_number, p.show_number))
    }
}

#[derive(Debug, Serialize)]
pub(super) struct UserRow {
    #[serde(flatten)]
    user: sdkws::UserInfo,
    blocked: bool,
    /// Platforms the user is connected on now.
    #[serde(rename = "onlinePlatformIDs")]
    online_platform_ids: Vec<i32>,
}

#[derive(Debug, Serialize)]
pub(super) struct SearchUsersResp {
    total: i64,
    users: Vec<UserRow>,
}

/// # POST /palaver/admin/search_users (admin)
pub(super) async fn search_users(app: Arc<App>, ctx: Ctx, req: SearchReq) -> ApiResult<SearchUsersResp> {
    ctx.caller.require_admin()?;
    let (number, show) = req.page();
    let (rows, total) = app.search_users(&req.keyword, number, show).await?;
    let users = rows
        .into_iter()
        .map(|r| UserRow { user: wire::user_info(r.user), blocked: r.blocked, online_platform_ids: r.online_platforms })
        .collect();
    Ok(SearchUsersResp { total, users })
}

#[derive(Debug, Serialize)]
pub(super) struct SearchGroupsResp {
    total: i64,
    groups: Vec<sdkws::GroupInfo>,
}

/// # POST /palaver/admin/search_groups (admin)
pub(super) async fn search_groups(app: Arc<App>, ctx: Ctx, req: SearchReq) -> ApiResult<SearchGroupsResp> {
    ctx.caller.require_admin()?;
    let (number, show) = req.page();
    let (groups, total) = app.search_groups(&req.keyword, number, show).await?;
    Ok(SearchGroupsResp { total, groups: groups.into_iter().map(wire::group_info).collect() })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct BlockReq {
    #[serde(rename = "userID")]
    user_id: String,
    blocked: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct BlockResp {
    /// False when the user already was in the asked state.
    changed: bool,
}

/// # POST /palaver/admin/block_user (admin): blocks (and logs out everywhere) or unblocks a user.
pub(super) async fn block_user(app: Arc<App>, ctx: Ctx, req: BlockReq) -> ApiResult<BlockResp> {
    ctx.caller.require_admin()?;
    let changed = app.set_user_blocked(&req.user_id, req.blocked).await?;
    Ok(BlockResp { changed })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct UserReq {
    #[serde(rename = "userID")]
    user_id: String,
}

/// # POST /palaver/admin/force_logout (admin): revokes the user's tokens on every platform and kicks every
/// connection (OpenIM's `/auth/force_logout` does one platform).
pub(super) async fn force_logout(app: Arc<App>, ctx: Ctx, req: UserReq) -> ApiResult<Done> {
    ctx.caller.require_admin()?;
    app.force_logout_everywhere(&req.user_id).await?;
    Ok(Done {})
}
