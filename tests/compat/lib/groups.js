// Helpers shared by the group scenarios (test/2x-*.test.js).
import assert from 'node:assert/strict';
import { sleep } from './util.js';

/** Creates a working group (groupType 2, the only kind the SDK sends to) through `owner`'s SDK; returns its info. */
export async function createGroup(owner, { members = [], admins = [], name = 'team', verification } = {}) {
  const groupInfo = { groupName: name, groupType: 2 };
  if (verification !== undefined) groupInfo.needVerification = verification;
  const group = await owner.invoke('createGroup', {
    memberUserIDs: members, adminUserIDs: admins, ownerUserID: owner.user.userID, groupInfo,
  });
  assert.ok(group.groupID, 'createGroup returned a groupID');
  return group;
}

/**
 * Waits until `client` knows it is in `groupID` and has synced its members (after the creation or invitation
 * notification): OnJoinedGroupAdded fires before the SDK syncs the members, and reading the member list waits
 * for that sync (the SDK holds its group lock through it). The pause lets the sync's HTTP records arrive.
 */
export async function waitJoined(client, groupID, since = 0) {
  await client.waitForEvent('OnJoinedGroupAdded', e => e.data?.groupID === groupID, { since });
  await client.invoke('getGroupMemberList', { groupID, filter: 0, offset: 0, count: 1 });
  await sleep(300);
}

/**
 * Asserts that `client` made none of `routes` since http index `from`: the change reached it in a notification
 * it applied as it was (its version one ahead), not through a resync.
 */
export async function assertNoResync(client, from, routes = ['/group/get_incremental_group_members_batch',
  '/group/get_group_member_list', '/group/get_full_group_member_user_ids']) {
  await sleep(300);
  const called = client.http.slice(from).filter(h => routes.includes(h.route)).map(h => h.route);
  assert.deepEqual(called, [], `${client.label} resynced instead of applying the notification`);
}

/** Sends a group text and returns `{ok, errCode}` instead of throwing. */
export async function trySend(client, groupID, text) {
  const message = await client.invoke('createTextMessage', text);
  return client.call('sendMessage', { recvID: '', groupID, message });
}

/** The server's max seq of the group conversation for `userID` (admin REST). */
export async function serverMaxSeq(env, userID, groupID) {
  const { maxSeqs = {} } = await env.server.admin('/msg/newest_seq', { userID });
  return maxSeqs[`sg_${groupID}`] ?? 0;
}
