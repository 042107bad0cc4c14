//! Online status and subscriptions to it (WS 2005 and the `/user/*status*` routes). The state lives in the
//! hub, beside the connections it describes; see [`crate::hub::Hub`] for how changes are pushed.

use super::App;
use crate::{
    error::{ApiError, ApiResult},
    hub::{ConnHandle, MAX_SUBSCRIPTIONS},
};
use palaver_protocol::pb::{sdkws, user as pbuser};

/// `genre` of `/user/subscribe_users_status`.
const SUBSCRIBE: i32 = 1;
const UNSUBSCRIBE: i32 = 2;

fn check_ids(ids: &[String]) -> ApiResult<()> {
    if ids.len() > MAX_SUBSCRIPTIONS {
        return Err(ApiError::args(format!("at most {MAX_SUBSCRIPTIONS} userIDs")));
    }
    if ids.iter().any(|id| id.is_empty() || id.len() > 64) {
        return Err(ApiError::args("userIDs must be 1 to 64 bytes each"));
    }
    Ok(())
}

impl App {
    /// `/user/get_users_status`: each user's online status (at most [`super::user::MAX_USER_IDS`] users).
    pub fn users_status(&self, user_ids: &[String]) -> ApiResult<Vec<pbuser::OnlineStatus>> {
        super::user::check_lookup("userIDs", user_ids)?;
        Ok(self.online_status(user_ids))
    }

    /// Each user's online status (1 online, 0 offline) and the platforms it is connected on.
    fn online_status(&self, user_ids: &[String]) -> Vec<pbuser::OnlineStatus> {
        user_ids
            .iter()
            .map(|u| {
                let platform_ids = self.bus.online_platforms(u);
                pbuser::OnlineStatus { user_id: u.clone(), status: i32::from(!platform_ids.is_empty()), platform_ids }
            })
            .collect()
    }

    /// WS 2005 from a connection: (un)subscribes it, and answers the current platforms of the users it
    /// subscribed to.
    pub fn subscribe_connection(
        &self,
        conn: &ConnHandle,
        r: &sdkws::SubUserOnlineStatus,
    ) -> ApiResult<sdkws::SubUserOnlineStatusTips> {
        check_ids(&r.subscribe_user_id)?;
        check_ids(&r.unsubscribe_user_id)?;
        self.hub.subscribe(conn, &r.subscribe_user_id, &r.unsubscribe_user_id).map_err(ApiError::args)?;
        let subscribers = r
            .subscribe_user_id
            .iter()
            .map(|u| sdkws::SubUserOnlineStatusElem {
                user_id: u.clone(),
                online_platform_ids: self.bus.online_platforms(u),
            })
            .collect();
        Ok(sdkws::SubUserOnlineStatusTips { subscribers })
    }

    /// `/user/subscribe_users_status`: `subscriber` (un)subscribes to users; answers the subscribed users'
    /// status. Pushes go to all of the subscriber's connections.
    pub fn subscribe_users_status(
        &self,
        subscriber: &str,
        user_ids: &[String],
        genre: i32,
    ) -> ApiResult<Vec<pbuser::OnlineStatus>> {
        check_ids(user_ids)?;
        match genre {
            SUBSCRIBE => {
                self.hub.subscribe_user(subscriber, user_ids, &[]).map_err(ApiError::args)?;
                Ok(self.online_status(user_ids))
            }
            UNSUBSCRIBE => {
                self.hub.subscribe_user(subscriber, &[], user_ids).map_err(ApiError::args)?;
                Ok(Vec::new())
            }
            other => Err(ApiError::args(format!("genre must be 1 (subscribe) or 2 (unsubscribe), not {other}"))),
        }
    }

    /// `/user/get_subscribe_users_status`: the status of every user `subscriber` watches.
    pub fn subscribed_users_status(&self, subscriber: &str) -> Vec<pbuser::OnlineStatus> {
        self.online_status(&self.hub.subscriptions_of(subscriber))
    }
}
