//! Store rows → wire types: how users, friends, groups, members, requests and conversations look in OpenIM's
//! protobuf messages. Shared by the services (notification payloads carry these) and the route handlers.

use palaver_protocol::pb::{conversation as pbconv, relation, sdkws};
use palaver_store::{Black, Friend, FriendRequest, Group, GroupMember, GroupRequest, User, UserConversation};

pub(crate) fn user_info(u: User) -> sdkws::UserInfo {
    sdkws::UserInfo {
        user_id: u.user_id,
        nickname: u.nickname,
        face_url: u.face_url,
        ex: u.ex,
        create_time: u.create_time,
        app_manger_level: u.app_manger_level,
        global_recv_msg_opt: u.global_recv_msg_opt,
    }
}

pub(crate) fn public_user_info(u: User) -> sdkws::PublicUserInfo {
    sdkws::PublicUserInfo { user_id: u.user_id, nickname: u.nickname, face_url: u.face_url, ex: u.ex }
}

pub(crate) fn group_info((g, member_count): (Group, u32)) -> sdkws::GroupInfo {
    sdkws::GroupInfo {
        group_id: g.group_id,
        group_name: g.group_name,
        notification: g.notification,
        introduction: g.introduction,
        face_url: g.face_url,
        owner_user_id: g.owner_user_id,
        create_time: g.create_time,
        member_count,
        ex: g.ex,
        status: g.status,
        creator_user_id: g.creator_user_id,
        group_type: g.group_type,
        need_verification: g.need_verification,
        look_member_info: g.look_member_info,
        apply_member_friend: g.apply_member_friend,
        notification_update_time: g.notification_update_time,
        notification_user_id: g.notification_user_id,
    }
}

/// An application as the wire shows it: with the applicant's public profile (just its id if the user is
/// gone) and the group.
pub(crate) fn group_request(r: GroupRequest, user: Option<User>, group: sdkws::GroupInfo) -> sdkws::GroupRequest {
    let user = user.unwrap_or_else(|| User { user_id: r.user_id.clone(), ..User::default() });
    sdkws::GroupRequest {
        user_info: Some(public_user_info(user)),
        group_info: Some(group),
        handle_result: r.handle_result,
        req_msg: r.req_msg,
        handle_msg: r.handle_msg,
        req_time: r.req_time,
        handle_user_id: r.handle_user_id,
        handle_time: r.handle_time,
        ex: r.ex,
        join_source: r.join_source,
        inviter_user_id: r.inviter_user_id,
    }
}

pub(crate) fn member_info(m: GroupMember) -> sdkws::GroupMemberFullInfo {
    sdkws::GroupMemberFullInfo {
        group_id: m.group_id,
        user_id: m.user_id,
        role_level: m.role_level,
        join_time: m.join_time,
        nickname: m.nickname,
        face_url: m.face_url,
        app_manger_level: 0,
        join_source: m.join_source,
        operator_user_id: m.operator_user_id,
        ex: m.ex,
        mute_end_time: m.mute_end_time,
        inviter_user_id: m.inviter_user_id,
    }
}

pub(crate) fn conversation(c: UserConversation) -> pbconv::Conversation {
    pbconv::Conversation {
        owner_user_id: c.owner_user_id,
        conversation_id: c.conversation_id,
        recv_msg_opt: c.recv_msg_opt,
        conversation_type: c.conversation_type,
        user_id: c.user_id,
        group_id: c.group_id,
        is_pinned: c.is_pinned,
        attached_info: c.attached_info,
        is_private_chat: c.is_private_chat,
        group_at_type: c.group_at_type,
        ex: c.ex,
        burn_duration: c.burn_duration,
        min_seq: c.min_seq,
        // Upstream's per-user max seq: a cap for users who left a group; 0 means "no cap" on the wire.
        max_seq: c.max_seq_cap.unwrap_or(0),
        ..Default::default()
    }
}

pub(crate) fn friend_info((f, user): (Friend, Option<User>)) -> sdkws::FriendInfo {
    let friend_user = user.unwrap_or_else(|| User { user_id: f.friend_user_id.clone(), ..User::default() });
    sdkws::FriendInfo {
        owner_user_id: f.owner_user_id,
        remark: f.remark,
        create_time: f.create_time,
        friend_user: Some(user_info(friend_user)),
        add_source: f.add_source,
        operator_user_id: f.operator_user_id,
        ex: f.ex,
        is_pinned: f.is_pinned,
    }
}

pub(crate) fn friend_info_only(f: Friend) -> relation::FriendInfoOnly {
    relation::FriendInfoOnly {
        owner_user_id: f.owner_user_id,
        friend_user_id: f.friend_user_id,
        remark: f.remark,
        create_time: f.create_time,
        add_source: f.add_source,
        operator_user_id: f.operator_user_id,
        ex: f.ex,
        is_pinned: f.is_pinned,
    }
}

pub(crate) fn black_info((b, user): (Black, Option<User>)) -> sdkws::BlackInfo {
    let blocked = user.unwrap_or_else(|| User { user_id: b.block_user_id.clone(), ..User::default() });
    sdkws::BlackInfo {
        owner_user_id: b.owner_user_id,
        create_time: b.create_time,
        black_user_info: Some(public_user_info(blocked)),
        add_source: b.add_source,
        operator_user_id: b.operator_user_id,
        ex: b.ex,
    }
}

pub(crate) fn friend_request(r: FriendRequest, from: Option<&User>, to: Option<&User>) -> sdkws::FriendRequest {
    sdkws::FriendRequest {
        from_nickname: from.map(|u| u.nickname.clone()).unwrap_or_default(),
        from_face_url: from.map(|u| u.face_url.clone()).unwrap_or_default(),
        to_nickname: to.map(|u| u.nickname.clone()).unwrap_or_default(),
        to_face_url: to.map(|u| u.face_url.clone()).unwrap_or_default(),
        from_user_id: r.from_user_id,
        to_user_id: r.to_user_id,
        handle_result: r.handle_result,
        req_msg: r.req_msg,
        create_time: r.create_time,
        handler_user_id: r.handler_user_id,
        handle_msg: r.handle_msg,
        handle_time: r.handle_time,
        ex: r.ex,
    }
}
