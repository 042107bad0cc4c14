//! `/user/*`: registration, profiles, the receive option, user commands, online status, client config.

use super::Ctx;
use crate::{
    error::{ApiError, ApiResult},
    service::App,
};
use palaver_protocol::pb::user as pb;
use palaver_store::{User, UserCommand, UserPatch};
use std::sync::Arc;

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
    let users = app.users_info(&req.user_ids).await?;
    Ok(pb::GetDesignateUsersResp { users_info: users.into_iter().map(crate::service::wire::user_info).collect() })
}

/// # POST /user/update_user_info_ex (self or admin)
pub(super) async fn update_user_info_ex(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::UpdateUserInfoExReq,
) -> ApiResult<pb::UpdateUserInfoExResp> {
    let info = req.user_info.ok_or_else(|| ApiError::args("userInfo is missing"))?;
    ctx.caller.check_access(&info.user_id)?;
    let patch = UserPatch {
        user_id: info.user_id,
        nickname: info.nickname.map(|v| v.value),
        face_url: info.face_url.map(|v| v.value),
        ex: info.ex.map(|v| v.value),
        global_recv_msg_opt: info.global_recv_msg_opt.map(|v| v.value),
    };
    app.update_user(patch, &ctx.caller.user_id, &ctx.operation_id).await?;
    Ok(pb::UpdateUserInfoExResp::default())
}

/// # POST /user/set_global_msg_recv_opt: 0 receive, 1 refuse 1:1 messages, 2 receive without offline push.
pub(super) async fn set_global_msg_recv_opt(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetGlobalRecvMessageOptReq,
) -> ApiResult<pb::SetGlobalRecvMessageOptResp> {
    ctx.caller.check_access(&req.user_id)?;
    let patch =
        UserPatch { user_id: req.user_id, global_recv_msg_opt: Some(req.global_recv_msg_opt), ..UserPatch::default() };
    app.update_user(patch, &ctx.caller.user_id, &ctx.operation_id).await?;
    Ok(pb::SetGlobalRecvMessageOptResp::default())
}

/// # POST /user/process_user_command_add
pub(super) async fn process_user_command_add(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ProcessUserCommandAddReq,
) -> ApiResult<pb::ProcessUserCommandAddResp> {
    ctx.caller.check_access(&req.user_id)?;
    let command = UserCommand {
        user_id: req.user_id,
        command_type: req.r#type,
        uuid: req.uuid,
        value: req.value.map(|v| v.value).unwrap_or_default(),
        ex: req.ex.map(|v| v.value).unwrap_or_default(),
        create_time: 0,
    };
    app.add_user_command(command, &ctx.operation_id).await?;
    Ok(pb::ProcessUserCommandAddResp::default())
}

/// # POST /user/process_user_command_update (`null` leaves `value` or `ex` as it is)
pub(super) async fn process_user_command_update(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ProcessUserCommandUpdateReq,
) -> ApiResult<pb::ProcessUserCommandUpdateResp> {
    ctx.caller.check_access(&req.user_id)?;
    let (value, ex) = (req.value.map(|v| v.value), req.ex.map(|v| v.value));
    app.update_user_command(&req.user_id, req.r#type, &req.uuid, value.as_deref(), ex.as_deref(), &ctx.operation_id)
        .await?;
    Ok(pb::ProcessUserCommandUpdateResp::default())
}

/// # POST /user/process_user_command_delete
pub(super) async fn process_user_command_delete(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ProcessUserCommandDeleteReq,
) -> ApiResult<pb::ProcessUserCommandDeleteResp> {
    ctx.caller.check_access(&req.user_id)?;
    app.delete_user_command(&req.user_id, req.r#type, &req.uuid, &ctx.operation_id).await?;
    Ok(pb::ProcessUserCommandDeleteResp::default())
}

/// # POST /user/process_user_command_get: the user's commands of one type.
pub(super) async fn process_user_command_get(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ProcessUserCommandGetReq,
) -> ApiResult<pb::ProcessUserCommandGetResp> {
    ctx.caller.check_access(&req.user_id)?;
    let commands = app.user_commands(&req.user_id, Some(req.r#type)).await?;
    Ok(pb::ProcessUserCommandGetResp {
        command_resp: commands
            .into_iter()
            .map(|c| pb::CommandInfoResp {
                r#type: c.command_type,
                create_time: c.create_time,
                uuid: c.uuid,
                value: c.value,
                ex: c.ex,
            })
            .collect(),
    })
}

/// # POST /user/process_user_command_get_all
pub(super) async fn process_user_command_get_all(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::ProcessUserCommandGetAllReq,
) -> ApiResult<pb::ProcessUserCommandGetAllResp> {
    ctx.caller.check_access(&req.user_id)?;
    let commands = app.user_commands(&req.user_id, None).await?;
    Ok(pb::ProcessUserCommandGetAllResp {
        command_resp: commands
            .into_iter()
            .map(|c| pb::AllCommandInfoResp {
                r#type: c.command_type,
                create_time: c.create_time,
                uuid: c.uuid,
                value: c.value,
                ex: c.ex,
            })
            .collect(),
    })
}

/// # POST /user/subscribe_users_status: `genre` 1 subscribes the user to others' online status, 2 cancels.
pub(super) async fn subscribe_users_status(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SubscribeOrCancelUsersStatusReq,
) -> ApiResult<pb::SubscribeOrCancelUsersStatusResp> {
    ctx.caller.check_access(&req.user_id)?;
    Ok(pb::SubscribeOrCancelUsersStatusResp {
        status_list: app.subscribe_users_status(&req.user_id, &req.user_ids, req.genre)?,
    })
}

/// # POST /user/get_subscribe_users_status: the status of every user the user watches.
pub(super) async fn get_subscribe_users_status(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetSubscribeUsersStatusReq,
) -> ApiResult<pb::GetSubscribeUsersStatusResp> {
    ctx.caller.check_access(&req.user_id)?;
    Ok(pb::GetSubscribeUsersStatusResp { status_list: app.subscribed_users_status(&req.user_id) })
}

/// # POST /user/get_users_status: online status of users (1 online, 0 offline) and their platforms.
pub(super) async fn get_users_status(
    app: Arc<App>,
    _ctx: Ctx,
    req: pb::GetUserStatusReq,
) -> ApiResult<pb::GetUserStatusResp> {
    Ok(pb::GetUserStatusResp { status_list: app.users_status(&req.user_ids)? })
}

/// # POST /user/get_user_client_config: the client configuration for the user (defaults overridden by its
/// own entries).
pub(super) async fn get_user_client_config(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetUserClientConfigReq,
) -> ApiResult<pb::GetUserClientConfigResp> {
    if !req.user_id.is_empty() {
        ctx.caller.check_access(&req.user_id)?;
    }
    Ok(pb::GetUserClientConfigResp { configs: app.user_client_config(&req.user_id).await? })
}

/// # POST /user/set_user_client_config (admin; `userID` "" sets the defaults)
pub(super) async fn set_user_client_config(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::SetUserClientConfigReq,
) -> ApiResult<pb::SetUserClientConfigResp> {
    ctx.caller.require_admin()?;
    app.set_user_client_config(&req.user_id, req.configs).await?;
    Ok(pb::SetUserClientConfigResp::default())
}

/// # POST /user/del_user_client_config (admin)
pub(super) async fn del_user_client_config(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::DelUserClientConfigReq,
) -> ApiResult<pb::DelUserClientConfigResp> {
    ctx.caller.require_admin()?;
    app.delete_user_client_config(&req.user_id, &req.keys).await?;
    Ok(pb::DelUserClientConfigResp::default())
}

/// # POST /user/account_check (admin)
pub(super) async fn account_check(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::AccountCheckReq,
) -> ApiResult<pb::AccountCheckResp> {
    ctx.caller.require_admin()?;
    let registered = app.account_check(&req.check_user_ids).await?;
    let results = req
        .check_user_ids
        .into_iter()
        .zip(registered)
        .map(|(user_id, registered)| pb::account_check_resp::SingleUserStatus {
            user_id,
            account_status: i32::from(registered),
        })
        .collect();
    Ok(pb::AccountCheckResp { results })
}
