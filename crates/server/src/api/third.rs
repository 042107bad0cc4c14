//! `/third/*`: push tokens, app badges, client log reports.

use super::Ctx;
use crate::{
    error::ApiResult,
    service::{App, LogFile},
};
use palaver_protocol::pb::third as pb;
use std::sync::Arc;

/// # POST /third/fcm_update_token: the push token of the caller's device (`account` is the user).
pub(super) async fn fcm_update_token(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::FcmUpdateTokenReq,
) -> ApiResult<pb::FcmUpdateTokenResp> {
    ctx.caller.check_access(&req.account)?;
    app.set_push_token(&req.account, req.platform_id, &req.fcm_token, req.expire_time).await?;
    Ok(pb::FcmUpdateTokenResp::default())
}

/// # POST /third/set_app_badge
pub(super) async fn set_app_badge(app: Arc<App>, ctx: Ctx, req: pb::SetAppBadgeReq) -> ApiResult<pb::SetAppBadgeResp> {
    ctx.caller.check_access(&req.user_id)?;
    app.set_app_badge(&req.user_id, req.app_unread_count).await?;
    Ok(pb::SetAppBadgeResp::default())
}

/// # POST /third/logs/upload: log files the caller uploaded (to object storage) and now reports.
pub(super) async fn upload_logs(app: Arc<App>, ctx: Ctx, req: pb::UploadLogsReq) -> ApiResult<pb::UploadLogsResp> {
    let files: Vec<LogFile> =
        req.file_ur_ls.into_iter().map(|f| LogFile { filename: f.filename, url: f.url }).collect();
    app.upload_logs(&ctx.caller.user_id, req.platform, &files, &req.app_framework, &req.version, &req.ex).await?;
    Ok(pb::UploadLogsResp::default())
}
