// Group scenarios, members and information: every change made through one wasm SDK reaches the other members'
// SDKs as a notification that fires their listeners (OnJoinedGroupAdded, OnGroupMemberAdded/Deleted/InfoChanged,
// OnGroupInfoChanged, OnJoinedGroupDeleted, OnGroupDismissed), and what they read afterwards matches. Where the
// member list changed by one version, the receiving SDK applies the notification as it is, without a resync.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { assertNoResync, createGroup, trySend, waitJoined } from '../lib/groups.js';

const env = new Env('20-group-members');

env.test('20a. invite, info, nickname, role, kick and quit reach every member\'s SDK', async () => {
  const users = await env.users(['alice', 'bob', 'carol']);
  const [a, b, c] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([a, b, c].map(x => x.loginOk()));
  const http = [a, b, c].map(x => x.http.length);

  let marks = await Promise.all([a, b, c].map(x => x.mark()));
  const group = await createGroup(a, { members: ['bob'], name: 'team' });
  const gid = group.groupID;
  await waitJoined(b, gid, marks[1]);

  // Carol is invited: her SDK fires OnJoinedGroupAdded, the others' OnGroupMemberAdded.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  let bobHttp = b.http.length;
  await a.invoke('inviteUserToGroup', { groupID: gid, reason: 'welcome', userIDList: ['carol'] });
  const joined = await c.waitForEvent('OnJoinedGroupAdded', e => e.data?.groupID === gid, { since: marks[2] });
  assert.equal(joined.data.groupName, 'team');
  const added = await b.waitForEvent('OnGroupMemberAdded', e => e.data?.userID === 'carol', { since: marks[1] });
  assert.equal(added.data.groupID, gid);
  await a.waitForEvent('OnGroupMemberAdded', e => e.data?.userID === 'carol', { since: marks[0] });
  await assertNoResync(b, bobHttp);
  assert.ok((await c.invoke('getJoinedGroupList')).some(g => g.groupID === gid), 'carol lists the group');
  const members = await b.invoke('getGroupMemberList', { groupID: gid, filter: 0, offset: 0, count: 10 });
  assert.deepEqual(members.map(m => m.userID).sort(), ['alice', 'bob', 'carol']);

  // Alice renames the group: OnGroupInfoChanged everywhere, and the new name is what they read.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  bobHttp = b.http.length;
  await a.invoke('setGroupInfo', { groupID: gid, groupName: 'renamed', introduction: 'about us' });
  for (const [x, since] of [[b, marks[1]], [c, marks[2]]]) {
    const changed = await x.waitForEvent('OnGroupInfoChanged', e => e.data?.groupName === 'renamed', { since });
    assert.equal(changed.data.introduction, 'about us');
    const [info] = await x.invoke('getSpecifiedGroupsInfo', [gid]);
    assert.equal(info.groupName, 'renamed', `${x.label} reads the new name`);
  }
  await assertNoResync(b, bobHttp);

  // Carol's nickname, then Bob made an admin: OnGroupMemberInfoChanged on the others' SDKs.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  bobHttp = b.http.length;
  await a.invoke('setGroupMemberInfo', { groupID: gid, userID: 'carol', nickname: 'Caz' });
  const nick = await b.waitForEvent('OnGroupMemberInfoChanged', e => e.data?.userID === 'carol' && e.data?.nickname === 'Caz',
    { since: marks[1] });
  assert.equal(nick.data.groupID, gid);
  await assertNoResync(b, bobHttp);
  const [carolSeen] = await b.invoke('getSpecifiedGroupMembersInfo', { groupID: gid, userIDList: ['carol'] });
  assert.equal(carolSeen.nickname, 'Caz');
  await a.invoke('setGroupMemberInfo', { groupID: gid, userID: 'bob', roleLevel: 60 });
  await c.waitForEvent('OnGroupMemberInfoChanged', e => e.data?.userID === 'bob' && e.data?.roleLevel === 60, { since: marks[2] });
  const [bobSeen] = await c.invoke('getSpecifiedGroupMembersInfo', { groupID: gid, userIDList: ['bob'] });
  assert.equal(bobSeen.roleLevel, 60, 'carol reads bob as an admin');

  // Bob (admin now) kicks Carol: her SDK drops the group, the others drop her.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  const aliceHttp = a.http.length;
  await b.invoke('kickGroupMember', { groupID: gid, reason: 'bye', userIDList: ['carol'] });
  await a.waitForEvent('OnGroupMemberDeleted', e => e.data?.userID === 'carol', { since: marks[0] });
  await assertNoResync(a, aliceHttp);
  const gone = await c.waitForEvent('OnJoinedGroupDeleted', e => e.data?.groupID === gid, { since: marks[2] });
  assert.equal(gone.data.groupName, 'renamed');
  assert.ok(!(await c.invoke('getJoinedGroupList')).some(g => g.groupID === gid), 'carol no longer lists the group');
  const kickedSend = await trySend(c, gid, 'still here?');
  assert.equal(kickedSend.ok, false, 'a kicked member cannot send');
  const left = await a.invoke('getGroupMemberList', { groupID: gid, filter: 0, offset: 0, count: 10 });
  assert.deepEqual(left.map(m => m.userID).sort(), ['alice', 'bob']);

  // Bob quits: Alice's SDK fires OnGroupMemberDeleted, Bob's OnJoinedGroupDeleted.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  await b.invoke('quitGroup', gid);
  await a.waitForEvent('OnGroupMemberDeleted', e => e.data?.userID === 'bob', { since: marks[0] });
  await b.waitForEvent('OnJoinedGroupDeleted', e => e.data?.groupID === gid, { since: marks[1] });
  const [info] = await a.invoke('getSpecifiedGroupsInfo', [gid]);
  assert.equal(info.memberCount, 1);

  // Carol's device made no failing call through all this; Alice's and Bob's neither.
  await Promise.all([a, b].map((x, i) => x.assertHttpOk(http[i], 'group member changes')));
});

env.test('20b. ownership moves and dismissal reach every member\'s SDK', async () => {
  const users = await env.users(['dan', 'erin', 'fay']);
  const [d, e, f] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([d, e, f].map(x => x.loginOk()));
  const http = [d, e, f].map(x => x.http.length);
  let marks = await Promise.all([d, e, f].map(x => x.mark()));
  const group = await createGroup(d, { members: ['erin', 'fay'], name: 'short-lived' });
  const gid = group.groupID;
  await Promise.all([waitJoined(e, gid, marks[1]), waitJoined(f, gid, marks[2])]);

  // Dan hands the group to Erin: Fay's SDK sees both members change and the group's owner change.
  marks = await Promise.all([d, e, f].map(x => x.mark()));
  await d.invoke('transferGroupOwner', { groupID: gid, newOwnerUserID: 'erin' });
  await f.waitForEvent('OnGroupMemberInfoChanged', x => x.data?.userID === 'erin' && x.data?.roleLevel === 100, { since: marks[2] });
  await f.waitForEvent('OnGroupInfoChanged', x => x.data?.ownerUserID === 'erin', { since: marks[2] });
  const [info] = await f.invoke('getSpecifiedGroupsInfo', [gid]);
  assert.equal(info.ownerUserID, 'erin');

  // Erin dismisses it: OnGroupDismissed on Dan's and Fay's SDKs, who no longer list it and cannot send to it.
  assert.equal((await trySend(f, gid, 'before the end')).ok, true);
  marks = await Promise.all([d, e, f].map(x => x.mark()));
  await e.invoke('dismissGroup', gid);
  for (const [x, since] of [[d, marks[0]], [f, marks[2]]]) {
    const dismissed = await x.waitForEvent('OnGroupDismissed', ev => ev.data?.groupID === gid, { since });
    assert.equal(dismissed.data.groupName, 'short-lived');
    await x.waitForEvent('OnJoinedGroupDeleted', ev => ev.data?.groupID === gid, { since });
    assert.ok(!(await x.invoke('getJoinedGroupList')).some(g => g.groupID === gid), `${x.label} still lists it`);
  }
  const after = await trySend(f, gid, 'after the end');
  assert.equal(after.ok, false, 'a dismissed group refuses messages');
  assert.equal(after.errCode, 1204, `errCode ${after.errCode} ${after.errMsg}`);
  await Promise.all([d, e].map((x, i) => x.assertHttpOk(http[i], 'transfer and dismissal')));
});
