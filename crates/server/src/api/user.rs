//! `/user/*`: registration and profiles.

use super::Ctx;
use crate::{
    error::{ApiError, ApiResult},
    service::App,
};
use palaver_protocol::pb::user as pb;
use palaver_store::{User, UserPatch};
use std::sync::Arc;

/// Most user ids one lookup may name.
const MAX_IDS: usize = 1000;

/// # POST /user/user_register (admin)
pub(super) async fn user_register(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::UserRegisterReq,
) -> ApiResult<pb::UserRegisterResp> {
    ctx.caller.require_admin()?;
    let users = req
        .users
        .into_iter()
        .map(|u| User {
            user_id: u.user_id,
            nickname: u.nickname,
            face_url: u.face_url,
            ex: u.ex,
            app_manger_level: u.app_manger_level,
            global_recv_msg_opt: u.global_recv_msg_opt,
            create_time: 0,
        })
        .collect();
    app.register_users(users).await?;
    Ok(pb::UserRegisterResp::default())
}

/// # POST /user/get_users_info
pub(super) async fn get_users_info(
    app: Arc<App>,
    _ctx: Ctx,
    req: pb::GetDesignateUsersReq,
) -> ApiResult<pb::GetDesignateUsersResp> {
    if req.user_ids.len() > MAX_IDS {
        return Err(ApiError::args(format!("at most {MAX_IDS} userIDs")));
    }
    let users = app.users_info(&req.user_ids).await?;
    Ok(pb::GetDesignateUsersResp { users_info: users.into_iter().map(super::convert::user_info).collect() })
}

/// # POST /user/update_user_info_ex (self or admin)
pub(super) async fn update_user_info_ex(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::UpdateUserInfoExReq,
) -> ApiResult<pb::UpdateUserInfoExResp> {
    let info = req.user_info.ok_or_else(|| ApiError::args("userInfo is missing"))?;
    ctx.caller.check_access(&info.user_id)?;
    app.update_user(UserPatch {
        user_id: info.user_id,
        nickname: info.nickname.map(|v| v.value),
        face_url: info.face_url.map(|v| v.value),
        ex: info.ex.map(|v| v.value),
        global_recv_msg_opt: info.global_recv_msg_opt.map(|v| v.value),
    })
    .await?;
    Ok(pb::UpdateUserInfoExResp::default())
}

/// # POST /user/account_check (admin)
pub(super) async fn account_check(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::AccountCheckReq,
) -> ApiResult<pb::AccountCheckResp> {
    ctx.caller.require_admin()?;
    if req.check_user_ids.len() > MAX_IDS {
        return Err(ApiError::args(format!("at most {MAX_IDS} checkUserIDs")));
    }
    let found = app.users_info(&req.check_user_ids).await?;
    let results = req
        .check_user_ids
        .into_iter()
        .map(|id| {
            let registered = found.iter().any(|u| u.user_id == id);
            pb::account_check_resp::SingleUserStatus { user_id: id, account_status: i32::from(registered) }
        })
        .collect();
    Ok(pb::AccountCheckResp { results })
}
