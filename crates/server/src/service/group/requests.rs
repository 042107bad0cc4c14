//! Join applications: made by `join_group` in groups that need approval, or by an ordinary member's
//! invitation where everyone needs approval; answered by the owner or an admin; listed for both sides.

use super::{App, Caller, MAX_GROUP_IDS, new_member, not_in_group};
use crate::{
    error::{ApiError, ApiResult},
    service::wire::{group_info, group_request},
};
use palaver_protocol::{
    constant::{content_type, group_response, join_source, role_level},
    errcode::ErrCode,
    pb::sdkws,
};
use palaver_store::{Group, GroupAnswer, GroupRequest, MemberFilter, Page, RequestQuery, StoreError, User};

/// Longest application (or invitation) message.
pub(super) const MAX_REQ_MSG: usize = 1024;
/// Most applications one listing page returns.
pub const MAX_APPLICATION_PAGE: i64 = 1000;

/// An application with what the wire shows beside it: the applicant's profile (if it still exists) and the
/// group with its member count.
pub type GroupRequestView = (GroupRequest, Option<User>, (Group, u32));

/// The SDK tells who receives an application's answer by `receiverAs`.
const RECEIVER_APPLICANT: i32 = 0;
const RECEIVER_ADMIN: i32 = 1;

fn check_handle_results(results: &[i32]) -> ApiResult<()> {
    if let Some(bad) =
        results.iter().find(|r| ![group_response::PENDING, group_response::AGREE, group_response::REFUSE].contains(r))
    {
        return Err(ApiError::args(format!("unknown handleResult {bad}")));
    }
    Ok(())
}

impl App {
    /// The ids of the group's owner and admins: who receives its applications.
    async fn manager_ids(&self, group_id: &str) -> ApiResult<Vec<String>> {
        let filter = MemberFilter { roles: vec![role_level::OWNER, role_level::ADMIN], keyword: String::new() };
        let (managers, _) = self.store.group_members_filtered(group_id, &filter, Page::ALL).await?;
        Ok(managers.into_iter().map(|m| m.user_id).collect())
    }

    /// Loads what `requests` show beside them; requests of a group that no longer exists are left out.
    async fn request_views(&self, requests: Vec<GroupRequest>) -> ApiResult<Vec<GroupRequestView>> {
        let mut user_ids: Vec<String> = requests.iter().map(|r| r.user_id.clone()).collect();
        user_ids.sort();
        user_ids.dedup();
        let mut group_ids: Vec<String> = requests.iter().map(|r| r.group_id.clone()).collect();
        group_ids.sort();
        group_ids.dedup();
        let users = self.store.users(&user_ids).await?;
        let groups = self.store.groups(&group_ids).await?;
        let groups = self.with_member_counts(groups).await?;
        Ok(requests
            .into_iter()
            .filter_map(|r| {
                let group = groups.iter().find(|(g, _)| g.group_id == r.group_id)?.clone();
                let user = users.iter().find(|u| u.user_id == r.user_id).cloned();
                Some((r, user, group))
            })
            .collect())
    }

    /// The application as notifications carry it.
    async fn request_tips(&self, group_id: &str, user_id: &str) -> ApiResult<sdkws::GroupRequest> {
        let requests = self.store.group_requests_of(group_id, &[user_id.to_string()]).await?;
        let view = self
            .request_views(requests)
            .await?
            .pop()
            .ok_or_else(|| ApiError::internal(format!("application of {user_id} to {group_id} vanished")))?;
        Ok(group_request(view.0, view.1, group_info(view.2)))
    }

    /// Stores `user`'s application to `group` and tells the owner and admins (1503; the applicant's other
    /// devices get it too).
    pub(super) async fn apply_to_join(
        &self,
        group: &Group,
        caller: &Caller,
        user: &User,
        join: &super::manage::JoinGroup<'_>,
        operation_id: &str,
    ) -> ApiResult<()> {
        let request = GroupRequest {
            group_id: group.group_id.clone(),
            user_id: user.user_id.clone(),
            req_msg: join.req_msg.to_string(),
            req_time: super::now_ms(),
            ex: join.ex.to_string(),
            join_source: join.source,
            ..GroupRequest::default()
        };
        self.store.put_group_requests(std::slice::from_ref(&request)).await?;
        let mut recipients = self.manager_ids(&group.group_id).await?;
        recipients.push(user.user_id.clone());
        self.notify_application(&caller.user_id, group, user, &recipients, operation_id).await;
        Ok(())
    }

    /// An ordinary member's invitations in a group where everyone needs approval: each invited user who is not
    /// a member yet gets an application on the inviter's behalf, for the owner and admins to answer (1503 to
    /// them and to the inviter).
    pub(super) async fn invitations_as_requests(
        &self,
        group: &Group,
        inviter: &Caller,
        users: &[User],
        reason: &str,
        operation_id: &str,
    ) -> ApiResult<()> {
        let ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
        let present = self.store.group_members_by_id(&group.group_id, &ids).await?;
        let now = super::now_ms();
        let invited: Vec<&User> = users.iter().filter(|u| !present.iter().any(|m| m.user_id == u.user_id)).collect();
        let requests: Vec<GroupRequest> = invited
            .iter()
            .map(|u| GroupRequest {
                group_id: group.group_id.clone(),
                user_id: u.user_id.clone(),
                req_msg: reason.to_string(),
                req_time: now,
                join_source: join_source::BY_INVITATION,
                inviter_user_id: inviter.user_id.clone(),
                ..GroupRequest::default()
            })
            .collect();
        self.store.put_group_requests(&requests).await?;
        let mut recipients = self.manager_ids(&group.group_id).await?;
        recipients.push(inviter.user_id.clone());
        for user in invited {
            self.notify_application(&inviter.user_id, group, user, &recipients, operation_id).await;
        }
        Ok(())
    }

    /// 1503 for `user`'s application to `group`, one copy per recipient, one uuid for all.
    async fn notify_application(
        &self,
        op: &str,
        group: &Group,
        user: &User,
        recipients: &[String],
        operation_id: &str,
    ) {
        let request = match self.request_tips(&group.group_id, &user.user_id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, group = group.group_id, "application not notified");
                return;
            }
        };
        let tips = sdkws::JoinGroupApplicationTips {
            group: request.group_info.clone(),
            applicant: Some(sdkws::PublicUserInfo {
                user_id: user.user_id.clone(),
                nickname: user.nickname.clone(),
                face_url: user.face_url.clone(),
                ex: user.ex.clone(),
            }),
            req_msg: request.req_msg.clone(),
            uuid: super::super::random_hex(16),
            request: Some(request),
        };
        let mut recipients = recipients.to_vec();
        recipients.sort();
        recipients.dedup();
        for recv in &recipients {
            self.notify_user(op, recv, content_type::JOIN_GROUP_APPLICATION, &tips, operation_id).await;
        }
    }

    /// `/group/group_application_response`: the owner or an admin accepts (1) or refuses (-1) `applicant`'s
    /// pending application. Accepted, the applicant becomes a member. 1505 or 1506 to the owner, the admins and
    /// the applicant; then, for a new member, 1510 (its own application) or 1509 (a member's invitation).
    pub async fn answer_application(
        &self,
        group_id: &str,
        caller: &Caller,
        applicant: &str,
        handle_msg: &str,
        handle_result: i32,
        operation_id: &str,
    ) -> ApiResult<()> {
        if handle_result != group_response::AGREE && handle_result != group_response::REFUSE {
            return Err(ApiError::args(format!("handleResult must be 1 or -1, not {handle_result}")));
        }
        super::check_len("handledMsg", handle_msg, MAX_REQ_MSG)?;
        let op_member = self.store.group_member(group_id, &caller.user_id).await?;
        if !caller.is_admin && op_member.as_ref().is_none_or(|m| m.role_level < role_level::ADMIN) {
            return Err(ApiError::no_permission(format!(
                "only the owner or an admin of group {group_id} may answer its applications"
            )));
        }
        let group = self.live_group(group_id).await?;
        let request =
            self.store.group_requests_of(group_id, &[applicant.to_string()]).await?.pop().ok_or_else(|| {
                ApiError::new(ErrCode::RecordNotFound, format!("{applicant} has not applied to group {group_id}"))
            })?;
        if request.handle_result != group_response::PENDING {
            return Err(ApiError::new(ErrCode::GroupRequestHandled, "this application was already answered"));
        }
        let user = self
            .store
            .users(&[applicant.to_string()])
            .await?
            .pop()
            .ok_or_else(|| ApiError::new(ErrCode::UserIdNotFound, format!("user {applicant} is not registered")))?;
        let in_group = self.store.group_member(group_id, applicant).await?.is_some();
        let member = (handle_result == group_response::AGREE && !in_group).then(|| {
            new_member(
                group_id,
                &user,
                role_level::ORDINARY,
                request.join_source,
                &request.inviter_user_id,
                &caller.user_id,
            )
        });
        let answer = GroupAnswer {
            group_id: group_id.to_string(),
            user_id: applicant.to_string(),
            handle_result,
            handle_msg: handle_msg.to_string(),
            handle_user_id: caller.user_id.clone(),
            handle_time: super::now_ms(),
            member,
        };
        let _order = self.group_lock(group_id).lock().await;
        let head = self.store.answer_group_request(&answer).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::new(ErrCode::GroupRequestHandled, "this application was already answered")
            }
            e => e.into(),
        })?;
        if head.is_some() {
            self.bus.group_changed(group_id);
        }
        let op = self.op_user_info(group_id, caller).await;
        self.notify_answer(&group, &op, applicant, handle_msg, handle_result, operation_id).await;
        if let Some(head) = head {
            if request.inviter_user_id.is_empty() {
                self.notify_member_entered(&caller.user_id, group_id, applicant, &head, operation_id).await;
            } else {
                let inviter = self.user_as_member(group_id, &request.inviter_user_id).await;
                let inserted = [applicant.to_string()];
                self.notify_members_invited(group_id, &op, &inviter, &inserted, &head, operation_id).await;
            }
        }
        Ok(())
    }

    /// 1505 / 1506 to each owner and admin (`receiverAs` 1) and to the applicant (0).
    async fn notify_answer(
        &self,
        group: &Group,
        op: &sdkws::GroupMemberFullInfo,
        applicant: &str,
        handle_msg: &str,
        handle_result: i32,
        operation_id: &str,
    ) {
        let group_id = group.group_id.as_str();
        let (request, managers) = match (self.request_tips(group_id, applicant).await, self.manager_ids(group_id).await)
        {
            (Ok(r), Ok(m)) => (r, m),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, group = group_id, "application answer not notified");
                return;
            }
        };
        let group_info = request.group_info.clone();
        let uuid = super::super::random_hex(16);
        let mut recipients: Vec<(String, i32)> =
            managers.into_iter().filter(|m| m != applicant).map(|m| (m, RECEIVER_ADMIN)).collect();
        recipients.push((applicant.to_string(), RECEIVER_APPLICANT));
        for (recv, receiver_as) in recipients {
            if handle_result == group_response::AGREE {
                let tips = sdkws::GroupApplicationAcceptedTips {
                    group: group_info.clone(),
                    op_user: Some(op.clone()),
                    handle_msg: handle_msg.to_string(),
                    receiver_as,
                    uuid: uuid.clone(),
                    request: Some(request.clone()),
                };
                let ct = content_type::GROUP_APPLICATION_ACCEPTED;
                self.notify_user(&op.user_id, &recv, ct, &tips, operation_id).await;
            } else {
                let tips = sdkws::GroupApplicationRejectedTips {
                    group: group_info.clone(),
                    op_user: Some(op.clone()),
                    handle_msg: handle_msg.to_string(),
                    receiver_as,
                    uuid: uuid.clone(),
                    request: Some(request.clone()),
                };
                let ct = content_type::GROUP_APPLICATION_REJECTED;
                self.notify_user(&op.user_id, &recv, ct, &tips, operation_id).await;
            }
        }
    }

    /// `/group/get_recv_group_applicationList`: applications to the groups `owner` manages (or to `group_ids`,
    /// each of which the caller must manage), newest first.
    pub async fn received_applications(
        &self,
        caller: &Caller,
        owner: &str,
        group_ids: &[String],
        handle_results: &[i32],
        page: Page,
    ) -> ApiResult<(Vec<GroupRequestView>, i64)> {
        caller.check_access(owner)?;
        check_handle_results(handle_results)?;
        if group_ids.len() > MAX_GROUP_IDS {
            return Err(ApiError::args(format!("at most {MAX_GROUP_IDS} groupIDs")));
        }
        let group_ids = if group_ids.is_empty() {
            self.store.managed_group_ids(owner).await?
        } else {
            let mut ids = group_ids.to_vec();
            ids.sort();
            ids.dedup();
            if !caller.is_admin {
                let managed = self.store.managed_group_ids(&caller.user_id).await?;
                if let Some(other) = ids.iter().find(|id| !managed.contains(id)) {
                    return Err(ApiError::no_permission(format!("you do not manage group {other}")));
                }
            }
            ids
        };
        if group_ids.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let query = RequestQuery { group_ids, handle_results: handle_results.to_vec(), page };
        let (requests, total) = self.store.group_requests_to(&query).await?;
        Ok((self.request_views(requests).await?, total))
    }

    /// `/group/get_user_req_group_applicationList`: the applications `user_id` made, newest first.
    pub async fn sent_applications(
        &self,
        caller: &Caller,
        user_id: &str,
        group_ids: &[String],
        handle_results: &[i32],
        page: Page,
    ) -> ApiResult<(Vec<GroupRequestView>, i64)> {
        caller.check_access(user_id)?;
        check_handle_results(handle_results)?;
        if group_ids.len() > MAX_GROUP_IDS {
            return Err(ApiError::args(format!("at most {MAX_GROUP_IDS} groupIDs")));
        }
        let query = RequestQuery { group_ids: group_ids.to_vec(), handle_results: handle_results.to_vec(), page };
        let (requests, total) = self.store.group_requests_by(user_id, &query).await?;
        Ok((self.request_views(requests).await?, total))
    }

    /// `/group/get_group_application_unhandled_count`: pending applications to the groups `user_id` manages,
    /// made after `after` (ms; 0: ever).
    pub async fn unhandled_applications(&self, caller: &Caller, user_id: &str, after: i64) -> ApiResult<i64> {
        caller.check_access(user_id)?;
        let groups = self.store.managed_group_ids(user_id).await?;
        Ok(self.store.unhandled_group_requests(&groups, after.max(0)).await?)
    }

    /// `/group/get_specified_user_group_request_info`: `user_id`'s application to the group, for that user or
    /// the group's owner and admins.
    pub async fn user_application(
        &self,
        caller: &Caller,
        group_id: &str,
        user_id: &str,
    ) -> ApiResult<Vec<GroupRequestView>> {
        self.existing_group(group_id).await?;
        if caller.user_id != user_id && !caller.is_admin {
            let op = self.store.group_member(group_id, &caller.user_id).await?;
            match op {
                Some(m) if m.role_level >= role_level::ADMIN => {}
                Some(_) => {
                    return Err(ApiError::no_permission(format!(
                        "only the owner or an admin of group {group_id} may see others' applications"
                    )));
                }
                None => return Err(not_in_group(&caller.user_id, group_id)),
            }
        }
        let requests = self.store.group_requests_of(group_id, &[user_id.to_string()]).await?;
        self.request_views(requests).await
    }
}
