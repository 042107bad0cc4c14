//! Friends, friend requests and the blacklist, with the notifications that tell every affected device
//! (content types 1201-1210).
//!
//! What the SDK does with each (openim-sdk-core `internal/relation/notification.go`), and so who must get it:
//! - 1203 application: fires `OnFriendApplicationAdded` on whoever receives it (both users' devices);
//! - 1201 approved / 1202 rejected: fire `OnFriendApplicationAccepted` / `…Rejected` from the request carried
//!   in the payload, and on approval re-sync the friend list (`OnFriendAdded` on both sides);
//! - 1204 added, 1205 deleted, 1206 remark set, 1209 friend info updated, 1210 friends updated: re-sync the
//!   friend list incrementally on the devices the payload names (`OnFriendAdded`, `OnFriendDeleted`,
//!   `OnFriendInfoChanged` come from that sync), so every change here bumps the owner's friend version first;
//! - 1207 / 1208 black added / deleted: re-sync the blacklist on the owner's devices (`OnBlackAdded`,
//!   `OnBlackDeleted`).

use super::{App, Notification, NotifyOptions, now_ms, sync::Synced, wire};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::{
    constant::{content_type, friend_response, friend_source},
    errcode::ErrCode,
    pb::sdkws,
};
use palaver_store::{
    Black, Friend, FriendAnswer, FriendPatch, FriendRequest, Page, StoreError, User, VersionHead, VersionKind,
};
use std::sync::Arc;

/// Longest request or answer message, remark or `ex`.
const MAX_TEXT: usize = 1024;
/// Most users one call may name (friends to update or look up, blacklist entries to look up).
const MAX_FRIEND_IDS: usize = 1000;
/// Most rows one friend, friend-request or blacklist page returns.
pub const MAX_FRIEND_PAGE: i64 = 1000;

/// A friend row with the friend's profile (absent if the user no longer exists).
pub type FriendView = (Friend, Option<User>);

fn from_to(from: &str, to: &str) -> Option<sdkws::FromToUserId> {
    Some(sdkws::FromToUserId { from_user_id: from.to_string(), to_user_id: to.to_string() })
}

/// Refuses an id list that is empty, too long or names someone twice (OpenIM: "userID repeated").
fn check_id_list(ids: &[String], what: &str) -> ApiResult<()> {
    if ids.is_empty() {
        return Err(ApiError::args(format!("{what} is empty")));
    }
    check_id_lookup(ids, what)
}

/// Refuses an id list that is too long or names someone twice; an empty one is fine (it finds nothing).
fn check_id_lookup(ids: &[String], what: &str) -> ApiResult<()> {
    if ids.len() > MAX_FRIEND_IDS {
        return Err(ApiError::args(format!("at most {MAX_FRIEND_IDS} {what}")));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(ApiError::args(format!("{what} names {dup} twice")));
    }
    Ok(())
}

impl App {
    pub(super) async fn require_user(&self, user_id: &str) -> ApiResult<User> {
        self.store
            .users(&[user_id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| ApiError::new(ErrCode::UserIdNotFound, format!("user {user_id} is not registered")))
    }

    async fn with_users(&self, friends: Vec<Friend>) -> ApiResult<Vec<FriendView>> {
        let ids: Vec<String> = friends.iter().map(|f| f.friend_user_id.clone()).collect();
        let users = self.store.users(&ids).await?;
        Ok(friends
            .into_iter()
            .map(|f| {
                let user = users.iter().find(|u| u.user_id == f.friend_user_id).cloned();
                (f, user)
            })
            .collect())
    }

    /// Requests as the SDK sees them: with both users' names and faces.
    pub async fn friend_request_views(&self, list: Vec<FriendRequest>) -> ApiResult<Vec<sdkws::FriendRequest>> {
        let mut ids: Vec<String> = list.iter().flat_map(|r| [r.from_user_id.clone(), r.to_user_id.clone()]).collect();
        ids.sort();
        ids.dedup();
        let users = self.store.users(&ids).await?;
        let find = |id: &str| users.iter().find(|u| u.user_id == id);
        Ok(list
            .into_iter()
            .map(|r| {
                let (from, to) = (find(&r.from_user_id), find(&r.to_user_id));
                wire::friend_request(r, from, to)
            })
            .collect())
    }

    /// The request `from → to` as the SDK sees it, if there is one.
    async fn friend_request_view(&self, from: &str, to: &str) -> ApiResult<Option<sdkws::FriendRequest>> {
        let Some(request) = self.store.friend_request(from, to).await? else {
            return Ok(None);
        };
        Ok(self.friend_request_views(vec![request]).await?.pop())
    }

    async fn friends_head(&self, owner: &str) -> ApiResult<VersionHead> {
        Ok(self.store.version_head(VersionKind::Friends, owner).await?)
    }

    /// `/friend/add_friend`: `from` asks `to` to be friends (a repeated request becomes pending again).
    pub async fn apply_friend(&self, from: &str, to: &str, req_msg: &str, ex: &str, op: &str) -> ApiResult<()> {
        if from == to {
            return Err(ApiError::new(ErrCode::CanNotAddYourself, "you cannot add yourself"));
        }
        if req_msg.len() > MAX_TEXT || ex.len() > MAX_TEXT {
            return Err(ApiError::args(format!("reqMsg and ex are limited to {MAX_TEXT} bytes")));
        }
        self.require_user(from).await?;
        self.require_user(to).await?;
        if self.store.is_blocked(to, from).await? {
            return Err(ApiError::new(ErrCode::BlockedByPeer, format!("{to} has blocked you")));
        }
        let (in_from, in_to) = self.is_friend(from, to).await?;
        if in_from && in_to {
            return Err(ApiError::new(ErrCode::RelationshipAlready, format!("you and {to} are already friends")));
        }
        self.store
            .put_friend_request(&FriendRequest {
                from_user_id: from.to_string(),
                to_user_id: to.to_string(),
                req_msg: req_msg.to_string(),
                ex: ex.to_string(),
                create_time: now_ms(),
                ..FriendRequest::default()
            })
            .await?;
        let tips = sdkws::FriendApplicationTips {
            from_to_user_id: from_to(from, to),
            request: self.friend_request_view(from, to).await?,
        };
        self.notify_user(from, to, content_type::FRIEND_APPLICATION, &tips, op).await;
        Ok(())
    }

    /// `/friend/add_friend_response`: `to` accepts (1) or refuses (-1) `from`'s pending request.
    pub async fn answer_friend(
        &self,
        from: &str,
        to: &str,
        handle_result: i32,
        handle_msg: &str,
        op: &str,
    ) -> ApiResult<()> {
        let accepted = match handle_result {
            friend_response::AGREE => true,
            friend_response::REFUSE => false,
            other => return Err(ApiError::args(format!("handleResult must be 1 or -1, not {other}"))),
        };
        if handle_msg.len() > MAX_TEXT {
            return Err(ApiError::args(format!("handleMsg is limited to {MAX_TEXT} bytes")));
        }
        let request =
            self.store.friend_request(from, to).await?.ok_or_else(|| {
                ApiError::new(ErrCode::RecordNotFound, format!("no friend request from {from} to {to}"))
            })?;
        if request.handle_result != friend_response::NOT_HANDLED {
            return Err(ApiError::new(ErrCode::FriendRequestHandled, "this friend request was already answered"));
        }
        let answer = FriendAnswer {
            from_user_id: from.to_string(),
            to_user_id: to.to_string(),
            accepted,
            handle_msg: handle_msg.to_string(),
            handler_user_id: to.to_string(),
            time: now_ms(),
        };
        self.store.answer_friend_request(&answer).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::new(ErrCode::FriendRequestHandled, "this friend request was already answered")
            }
            e => e.into(),
        })?;
        // As upstream: `fromToUserID` is the request's own from/to; the notification goes from the one who
        // answered to the one who asked.
        let request = self.friend_request_view(from, to).await?;
        if accepted {
            let head = self.friends_head(from).await?;
            let tips = sdkws::FriendApplicationApprovedTips {
                from_to_user_id: from_to(from, to),
                handle_msg: handle_msg.to_string(),
                friend_version: head.version as u64,
                friend_version_id: head.version_id,
                request,
            };
            self.notify_user(to, from, content_type::FRIEND_APPLICATION_APPROVED, &tips, op).await;
        } else {
            let tips = sdkws::FriendApplicationRejectedTips {
                from_to_user_id: from_to(from, to),
                handle_msg: handle_msg.to_string(),
                request,
            };
            self.notify_user(to, from, content_type::FRIEND_APPLICATION_REJECTED, &tips, op).await;
        }
        Ok(())
    }

    /// `/friend/import_friend` (admin): makes `owner` and each of `friends` friends at once, and tells both
    /// sides (1204, which makes their SDKs re-sync friends).
    pub async fn import_friends(&self, owner: &str, friends: &[String], operator: &str, op: &str) -> ApiResult<()> {
        check_id_list(friends, "friendUserIDs")?;
        self.require_user(owner).await?;
        for friend in friends {
            if friend == owner {
                return Err(ApiError::new(ErrCode::CanNotAddYourself, "a user cannot befriend itself"));
            }
            self.require_user(friend).await?;
        }
        let now = now_ms();
        let operator_user = self.store.users(&[operator.to_string()]).await?.pop();
        for friend in friends {
            let row = |a: &str, b: &str| Friend {
                owner_user_id: a.to_string(),
                friend_user_id: b.to_string(),
                create_time: now,
                add_source: friend_source::IMPORT,
                operator_user_id: operator.to_string(),
                ..Friend::default()
            };
            self.store.add_friendship(&row(owner, friend), &row(friend, owner)).await?;
            let view = self.friend_views(owner, std::slice::from_ref(friend)).await?.pop();
            let head = self.friends_head(owner).await?;
            let tips = sdkws::FriendAddedTips {
                friend: view.map(wire::friend_info),
                operation_time: now,
                op_user: Some(sdkws::PublicUserInfo {
                    user_id: operator.to_string(),
                    nickname: operator_user.as_ref().map(|u| u.nickname.clone()).unwrap_or_default(),
                    face_url: operator_user.as_ref().map(|u| u.face_url.clone()).unwrap_or_default(),
                    ex: String::new(),
                }),
                friend_version: head.version as u64,
                friend_version_id: head.version_id,
            };
            self.notify_user(owner, friend, content_type::FRIEND_ADDED, &tips, op).await;
        }
        Ok(())
    }

    /// `/friend/delete_friend`: removes `friend` from `owner`'s list (one way, as OpenIM does).
    pub async fn delete_friend(&self, owner: &str, friend: &str, op: &str) -> ApiResult<()> {
        if !self.store.delete_friend(owner, friend).await? {
            return Err(ApiError::new(ErrCode::NotPeersFriend, format!("{friend} is not your friend")));
        }
        let head = self.friends_head(owner).await?;
        let tips = sdkws::FriendDeletedTips {
            from_to_user_id: from_to(owner, friend),
            friend_version: head.version as u64,
            friend_version_id: head.version_id,
        };
        self.notify_user(owner, friend, content_type::FRIEND_DELETED, &tips, op).await;
        Ok(())
    }

    /// `/friend/set_friend_remark`.
    pub async fn set_friend_remark(&self, owner: &str, friend: &str, remark: &str, op: &str) -> ApiResult<()> {
        if remark.len() > MAX_TEXT {
            return Err(ApiError::args(format!("remark is limited to {MAX_TEXT} bytes")));
        }
        self.require_friends(owner, std::slice::from_ref(&friend.to_string())).await?;
        let patch = FriendPatch { remark: Some(remark.to_string()), ..FriendPatch::default() };
        self.store.update_friends(owner, &[friend.to_string()], &patch).await?;
        let head = self.friends_head(owner).await?;
        let tips = sdkws::FriendInfoChangedTips {
            from_to_user_id: from_to(owner, friend),
            friend_version: head.version as u64,
            friend_version_id: head.version_id,
            friend_sort_version: 0,
        };
        self.notify_user(owner, friend, content_type::FRIEND_REMARK_SET, &tips, op).await;
        Ok(())
    }

    /// `RecordNotFound` unless every one of `friends` is in `owner`'s list.
    async fn require_friends(&self, owner: &str, friends: &[String]) -> ApiResult<()> {
        let found = self.store.friends_by_id(owner, friends).await?;
        if let Some(missing) = friends.iter().find(|id| !found.iter().any(|f| &f.friend_user_id == *id)) {
            return Err(ApiError::new(ErrCode::RecordNotFound, format!("{missing} is not a friend of {owner}")));
        }
        Ok(())
    }

    /// `/friend/update_friends`: pin, remark and `ex` of several friends at once; the owner's devices re-sync.
    pub async fn update_friends(
        &self,
        owner: &str,
        friends: &[String],
        patch: &FriendPatch,
        op: &str,
    ) -> ApiResult<()> {
        check_id_list(friends, "friendUserIDs")?;
        let too_long = |v: &Option<String>| v.as_ref().is_some_and(|s| s.len() > MAX_TEXT);
        if too_long(&patch.remark) || too_long(&patch.ex) {
            return Err(ApiError::args(format!("remark and ex are limited to {MAX_TEXT} bytes")));
        }
        self.require_friends(owner, friends).await?;
        if patch.remark.is_none() && patch.is_pinned.is_none() && patch.ex.is_none() {
            return Ok(());
        }
        self.store.update_friends(owner, friends, patch).await?;
        let head = self.friends_head(owner).await?;
        let tips = sdkws::FriendsInfoUpdateTips {
            from_to_user_id: from_to("", owner),
            friend_ids: friends.to_vec(),
            friend_version: head.version as u64,
            friend_version_id: head.version_id,
        };
        self.notify_user(owner, owner, content_type::FRIENDS_INFO_UPDATE, &tips, op).await;
        Ok(())
    }

    /// After `user_id`'s profile changed: everyone who has it as a friend gets a friend-list version bump and
    /// a 1209, so their SDKs re-sync it (`OnFriendInfoChanged`).
    pub(super) async fn friend_profile_changed(&self, user_id: &str, op: &str) -> ApiResult<()> {
        let owners = self.store.touch_friend(user_id).await?;
        let tips = sdkws::UserInfoUpdatedTips { user_id: user_id.to_string() };
        for owner in owners {
            self.notify_user(user_id, &owner, content_type::FRIEND_INFO_UPDATED, &tips, op).await;
        }
        Ok(())
    }

    /// `/friend/get_friend_list` (pages of at most [`MAX_FRIEND_PAGE`]).
    pub async fn friends_page(&self, owner: &str, page: Page) -> ApiResult<(Vec<FriendView>, i64)> {
        let (friends, total) = self.store.friends(owner, page).await?;
        Ok((self.with_users(friends).await?, total))
    }

    /// `/friend/get_designated_friends`: the named users that are in `owner`'s list.
    pub async fn designated_friends(&self, owner: &str, ids: &[String]) -> ApiResult<Vec<FriendView>> {
        check_id_lookup(ids, "friendUserIDs")?;
        self.friend_views(owner, ids).await
    }

    /// The rows of `ids` in `owner`'s list, with the friends' profiles.
    async fn friend_views(&self, owner: &str, ids: &[String]) -> ApiResult<Vec<FriendView>> {
        let friends = self.store.friends_by_id(owner, ids).await?;
        self.with_users(friends).await
    }

    /// `/friend/get_full_friend_user_ids`.
    pub async fn friend_ids(&self, owner: &str) -> ApiResult<(VersionHead, Vec<String>)> {
        let head = self.list_head(VersionKind::Friends, owner).await?;
        Ok((head, self.store.friend_ids(owner).await?))
    }

    /// `/friend/get_incremental_friends`.
    pub async fn sync_friends(&self, owner: &str, version_id: &str, version: u64) -> ApiResult<Synced<FriendView>> {
        self.sync_list(VersionKind::Friends, owner, version_id, version, |ids| async move {
            self.friend_views(owner, &ids).await
        })
        .await
    }

    /// `/friend/is_friend`: whether each is in the other's list.
    pub async fn is_friend(&self, a: &str, b: &str) -> ApiResult<(bool, bool)> {
        let in_a = !self.store.friends_by_id(a, &[b.to_string()]).await?.is_empty();
        let in_b = !self.store.friends_by_id(b, &[a.to_string()]).await?.is_empty();
        Ok((in_a, in_b))
    }

    /// Requests to (`incoming`) or from `user_id`, filtered by `handle_results` (each -1, 0 or 1; empty: all).
    pub async fn friend_requests(
        &self,
        user_id: &str,
        incoming: bool,
        handle_results: &[i32],
        page: Page,
    ) -> ApiResult<(Vec<sdkws::FriendRequest>, i64)> {
        let mut results = handle_results.to_vec();
        results.sort_unstable();
        results.dedup();
        if let Some(bad) = results.iter().find(|r| !(-1..=1).contains(*r)) {
            return Err(ApiError::args(format!("handleResults may hold -1, 0 and 1, not {bad}")));
        }
        let (list, total) = self.store.friend_requests(user_id, incoming, &results, page).await?;
        Ok((self.friend_request_views(list).await?, total))
    }

    /// `/friend/get_designated_friend_apply`: the requests between two users, both ways.
    pub async fn friend_requests_between(&self, a: &str, b: &str) -> ApiResult<Vec<sdkws::FriendRequest>> {
        let list = self.store.friend_requests_between(a, b).await?;
        self.friend_request_views(list).await
    }

    /// Pending requests to `user_id` created after `since` (ms; 0: all).
    pub async fn unhandled_friend_requests(&self, user_id: &str, since: i64) -> ApiResult<i64> {
        Ok(self.store.unhandled_friend_request_count(user_id, since.max(0)).await?)
    }

    pub async fn blacks_page(&self, owner: &str, page: Page) -> ApiResult<(Vec<(Black, Option<User>)>, i64)> {
        let (blacks, total) = self.store.blacks(owner, page).await?;
        Ok((self.blacks_with_users(blacks).await?, total))
    }

    /// `/friend/get_specified_blacks`: the named users that `owner` has blocked, in the order named.
    pub async fn specified_blacks(&self, owner: &str, ids: &[String]) -> ApiResult<Vec<(Black, Option<User>)>> {
        check_id_list(ids, "userIDList")?;
        let blacks = self.store.blacks_by_id(owner, ids).await?;
        let mut views = self.blacks_with_users(blacks).await?;
        views.sort_by_key(|(b, _)| ids.iter().position(|id| *id == b.block_user_id));
        Ok(views)
    }

    async fn blacks_with_users(&self, blacks: Vec<Black>) -> ApiResult<Vec<(Black, Option<User>)>> {
        let ids: Vec<String> = blacks.iter().map(|b| b.block_user_id.clone()).collect();
        let users = self.store.users(&ids).await?;
        Ok(blacks
            .into_iter()
            .map(|b| {
                let user = users.iter().find(|u| u.user_id == b.block_user_id).cloned();
                (b, user)
            })
            .collect())
    }

    /// Tells the owner's devices that its blacklist changed (1207/1208). Upstream also pushes this to the
    /// user who was (un)blocked, whose SDK ignores it; Palaver does not tell anyone that they were blocked.
    ///
    /// The device that made the change (`device`, its token hash) is left out: the SDK re-reads the blacklist
    /// itself after the call, and its `AddBlack` does so without the lock its notification handler takes, so a
    /// notification arriving meanwhile makes both insert the same local row and the call fail (openim-sdk-core
    /// v3.8.3-patch.10 `relation/api.go`).
    async fn black_notify(&self, owner: &str, other: &str, content_type: i32, device: Option<Arc<[u8]>>, op: &str) {
        let options = NotifyOptions { sender_only: true, except_device: device, ..NotifyOptions::default() };
        if content_type == content_type::BLACK_ADDED {
            let tips = sdkws::BlackAddedTips { from_to_user_id: from_to(owner, other) };
            self.notify_with(Notification::between_users(owner, other, content_type, &tips), options, op).await;
        } else {
            let tips = sdkws::BlackDeletedTips { from_to_user_id: from_to(owner, other) };
            self.notify_with(Notification::between_users(owner, other, content_type, &tips), options, op).await;
        }
    }

    /// `/friend/add_black`, by `operator` from the device with token hash `device`.
    pub async fn add_black(
        &self,
        owner: &str,
        blocked: &str,
        ex: &str,
        operator: &str,
        device: Option<Arc<[u8]>>,
        op: &str,
    ) -> ApiResult<()> {
        if owner == blocked {
            return Err(ApiError::args("you cannot block yourself"));
        }
        if ex.len() > MAX_TEXT {
            return Err(ApiError::args(format!("ex is limited to {MAX_TEXT} bytes")));
        }
        self.require_user(owner).await?;
        self.require_user(blocked).await?;
        self.store
            .add_black(&Black {
                owner_user_id: owner.to_string(),
                block_user_id: blocked.to_string(),
                create_time: now_ms(),
                operator_user_id: operator.to_string(),
                ex: ex.to_string(),
                ..Black::default()
            })
            .await?;
        self.black_notify(owner, blocked, content_type::BLACK_ADDED, device, op).await;
        Ok(())
    }

    /// `/friend/remove_black`, from the device with token hash `device`.
    pub async fn remove_black(&self, owner: &str, blocked: &str, device: Option<Arc<[u8]>>, op: &str) -> ApiResult<()> {
        if !self.store.remove_black(owner, blocked).await? {
            return Err(ApiError::new(ErrCode::RecordNotFound, format!("{blocked} is not on your blacklist")));
        }
        self.black_notify(owner, blocked, content_type::BLACK_DELETED, device, op).await;
        Ok(())
    }
}
