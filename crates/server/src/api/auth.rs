//! `/auth/*`: tokens.

use super::Ctx;
use crate::{error::ApiResult, service::App};
use palaver_protocol::pb::auth as pb;
use std::sync::Arc;

/// # POST /auth/get_admin_token
pub(super) async fn get_admin_token(app: Arc<App>, req: pb::GetAdminTokenReq) -> ApiResult<pb::GetAdminTokenResp> {
    let (token, expire_time_seconds) = app.admin_token(&req.secret, &req.user_id).await?;
    Ok(pb::GetAdminTokenResp { token, expire_time_seconds })
}

/// # POST /auth/get_user_token (admin)
pub(super) async fn get_user_token(
    app: Arc<App>,
    ctx: Ctx,
    req: pb::GetUserTokenReq,
) -> ApiResult<pb::GetUserTokenResp> {
    ctx.caller.require_admin()?;
    let (token, expire_time_seconds) = app.issue_token(&req.user_id, req.platform_id).await?;
    Ok(pb::GetUserTokenResp { token, expire_time_seconds })
}

/// # POST /auth/parse_token
pub(super) async fn parse_token(app: Arc<App>, req: pb::ParseTokenReq) -> ApiResult<pb::ParseTokenResp> {
    let caller = app.authenticate(&req.token).await?;
    let row = app.store.token(&caller.token_hash).await?;
    let expire_time_seconds = row.map(|t| (t.expires_at - crate::service::now_ms()) / 1000).unwrap_or_default();
    Ok(pb::ParseTokenResp { user_id: caller.user_id, platform_id: caller.platform_id, expire_time_seconds })
}

/// # POST /auth/force_logout (admin)
pub(super) async fn force_logout(app: Arc<App>, ctx: Ctx, req: pb::ForceLogoutReq) -> ApiResult<pb::ForceLogoutResp> {
    ctx.caller.require_admin()?;
    app.force_logout(&req.user_id, req.platform_id).await?;
    Ok(pb::ForceLogoutResp::default())
}
