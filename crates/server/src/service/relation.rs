//! Friends, friend requests and the blacklist.

use super::{App, now_ms, sync::Synced};
use crate::error::{ApiError, ApiResult};
use palaver_protocol::errcode::ErrCode;
use palaver_store::{
    Black, Friend, FriendAnswer, FriendPatch, FriendRequest, Page, StoreError, User, VersionHead, VersionKind,
};

/// Longest request or answer message.
const MAX_REQ_MSG: usize = 1024;

/// A friend row with the friend's profile (absent if the user no longer exists).
pub type FriendView = (Friend, Option<User>);

impl App {
    async fn require_user(&self, user_id: &str) -> ApiResult<User> {
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

    /// `/friend/add_friend`: `from` asks `to` to be friends.
    pub async fn apply_friend(&self, from: &str, to: &str, req_msg: &str, ex: &str) -> ApiResult<()> {
        if from == to {
            return Err(ApiError::new(ErrCode::CanNotAddYourself, "you cannot add yourself"));
        }
        if req_msg.len() > MAX_REQ_MSG || ex.len() > MAX_REQ_MSG {
            return Err(ApiError::args(format!("reqMsg and ex are limited to {MAX_REQ_MSG} bytes")));
        }
        self.require_user(to).await?;
        if self.store.is_blocked(to, from).await? {
            return Err(ApiError::new(ErrCode::BlockedByPeer, format!("{to} has blocked you")));
        }
        let mutual = self.store.friends_by_id(from, &[to.to_string()]).await?;
        let back = self.store.friends_by_id(to, &[from.to_string()]).await?;
        if !mutual.is_empty() && !back.is_empty() {
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
        Ok(())
    }

    /// `/friend/add_friend_response`: `to` accepts (1) or refuses (-1) `from`'s pending request.
    pub async fn answer_friend(&self, from: &str, to: &str, handle_result: i32, handle_msg: &str) -> ApiResult<()> {
        let accepted = match handle_result {
            1 => true,
            -1 => false,
            other => return Err(ApiError::args(format!("handleResult must be 1 or -1, not {other}"))),
        };
        let request =
            self.store.friend_request(from, to).await?.ok_or_else(|| {
                ApiError::new(ErrCode::RecordNotFound, format!("no friend request from {from} to {to}"))
            })?;
        if request.handle_result != 0 {
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
        })
    }

    /// `/friend/import_friend` (admin): makes `owner` and each of `friends` friends at once.
    pub async fn import_friends(&self, owner: &str, friends: &[String], operator: &str) -> ApiResult<()> {
        self.require_user(owner).await?;
        for friend in friends {
            if friend == owner {
                return Err(ApiError::new(ErrCode::CanNotAddYourself, "a user cannot befriend itself"));
            }
            self.require_user(friend).await?;
        }
        let now = now_ms();
        for friend in friends {
            let row = |a: &str, b: &str| Friend {
                owner_user_id: a.to_string(),
                friend_user_id: b.to_string(),
                create_time: now,
                operator_user_id: operator.to_string(),
                ..Friend::default()
            };
            self.store.add_friendship(&row(owner, friend), &row(friend, owner)).await?;
        }
        Ok(())
    }

    pub async fn delete_friend(&self, owner: &str, friend: &str) -> ApiResult<()> {
        if !self.store.delete_friend(owner, friend).await? {
            return Err(ApiError::new(ErrCode::NotPeersFriend, format!("{friend} is not your friend")));
        }
        Ok(())
    }

    pub async fn update_friends(&self, owner: &str, friends: &[String], patch: &FriendPatch) -> ApiResult<()> {
        Ok(self.store.update_friends(owner, friends, patch).await?)
    }

    pub async fn friends_page(&self, owner: &str, page: Page) -> ApiResult<(Vec<FriendView>, i64)> {
        let (friends, total) = self.store.friends(owner, page).await?;
        Ok((self.with_users(friends).await?, total))
    }

    pub async fn designated_friends(&self, owner: &str, ids: &[String]) -> ApiResult<Vec<FriendView>> {
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
            self.designated_friends(owner, &ids).await
        })
        .await
    }

    /// `/friend/is_friend`: whether each is in the other's list.
    pub async fn is_friend(&self, a: &str, b: &str) -> ApiResult<(bool, bool)> {
        let in_a = !self.store.friends_by_id(a, &[b.to_string()]).await?.is_empty();
        let in_b = !self.store.friends_by_id(b, &[a.to_string()]).await?.is_empty();
        Ok((in_a, in_b))
    }

    pub async fn friend_requests(
        &self,
        user_id: &str,
        incoming: bool,
        page: Page,
    ) -> ApiResult<(Vec<FriendRequest>, i64)> {
        Ok(self.store.friend_requests(user_id, incoming, page).await?)
    }

    /// Pending requests to `user_id`.
    pub async fn unhandled_friend_requests(&self, user_id: &str) -> ApiResult<i64> {
        let (all, _) = self.store.friend_requests(user_id, true, Page::ALL).await?;
        Ok(all.iter().filter(|r| r.handle_result == 0).count() as i64)
    }

    pub async fn blacks_page(&self, owner: &str, page: Page) -> ApiResult<(Vec<(Black, Option<User>)>, i64)> {
        let (blacks, total) = self.store.blacks(owner, page).await?;
        Ok((self.blacks_with_users(blacks).await?, total))
    }

    pub async fn specified_blacks(&self, owner: &str, ids: &[String]) -> ApiResult<Vec<(Black, Option<User>)>> {
        let blacks = self.store.blacks_by_id(owner, ids).await?;
        self.blacks_with_users(blacks).await
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

    pub async fn add_black(&self, owner: &str, blocked: &str, ex: &str) -> ApiResult<()> {
        if owner == blocked {
            return Err(ApiError::args("you cannot block yourself"));
        }
        self.require_user(blocked).await?;
        self.store
            .add_black(&Black {
                owner_user_id: owner.to_string(),
                block_user_id: blocked.to_string(),
                create_time: now_ms(),
                operator_user_id: owner.to_string(),
                ex: ex.to_string(),
                ..Black::default()
            })
            .await?;
        Ok(())
    }

    pub async fn remove_black(&self, owner: &str, blocked: &str) -> ApiResult<()> {
        if !self.store.remove_black(owner, blocked).await? {
            return Err(ApiError::new(ErrCode::RecordNotFound, format!("{blocked} is not on your blacklist")));
        }
        Ok(())
    }
}
