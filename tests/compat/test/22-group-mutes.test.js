// Group scenarios, mutes: a muted member's send fails with 1402 and a muted group's with 1403 (ordinary members
// only), nothing is stored; the other members' SDKs see the mute at once (OnGroupMemberInfoChanged with the mute's
// end, OnGroupInfoChanged with the group's status) and read it afterwards.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { assertNoResync, createGroup, serverMaxSeq, trySend, waitJoined } from '../lib/groups.js';

const env = new Env('22-group-mutes');

// The npm wrapper's changeGroupMute (3.8.5) passes a fourth argument (muteBypassUserIDs) that the core it ships
// (sdk-core v3.8.3-patch.10: ChangeGroupMute(groupID, isMute)) does not take, and the core panics on it before
// any request is made. So the core's function is called directly, with its own arguments.
async function muteGroup(client, groupID, isMute) {
  const r = await client.callCore('changeGroupMute', groupID, isMute);
  assert.ok(r.ok, `changeGroupMute: ${r.errCode} ${r.errMsg}`);
}

env.test('22. a muted member and a muted group cannot send; everyone\'s SDK sees the mutes come and go', async () => {
  const users = await env.users(['alice', 'bob', 'carol']);
  const [a, b, c] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([a, b, c].map(x => x.loginOk()));
  const http = [a, b, c].map(x => x.http.length);
  let marks = await Promise.all([a, b, c].map(x => x.mark()));
  const group = await createGroup(a, { members: ['bob'], admins: ['carol'], name: 'quiet' });
  const gid = group.groupID;
  await Promise.all([waitJoined(b, gid, marks[1]), waitJoined(c, gid, marks[2])]);
  assert.equal((await trySend(b, gid, 'before')).ok, true);

  // Carol (admin) mutes Bob for ten minutes.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  const aliceHttp = a.http.length;
  await c.invoke('changeGroupMemberMute', { groupID: gid, userID: 'bob', mutedSeconds: 600 });
  const muted = await a.waitForEvent('OnGroupMemberInfoChanged', e => e.data?.userID === 'bob' && e.data?.muteEndTime > Date.now(),
    { since: marks[0] });
  assert.ok(muted.data.muteEndTime <= Date.now() + 600_000 + 60_000, 'about ten minutes');
  await b.waitForEvent('OnGroupMemberInfoChanged', e => e.data?.userID === 'bob' && e.data?.muteEndTime > 0, { since: marks[1] });
  await assertNoResync(a, aliceHttp);
  const [bobSeen] = await a.invoke('getSpecifiedGroupMembersInfo', { groupID: gid, userIDList: ['bob'] });
  assert.ok(bobSeen.muteEndTime > Date.now(), 'alice reads the mute');
  const stored = await serverMaxSeq(env, 'alice', gid);
  const refused = await trySend(b, gid, 'muted');
  assert.equal(refused.ok, false);
  assert.equal(refused.errCode, 1402, `errCode ${refused.errCode} ${refused.errMsg}`);
  assert.equal(await serverMaxSeq(env, 'alice', gid), stored, 'nothing stored');
  assert.equal((await trySend(a, gid, 'others speak')).ok, true);

  // Unmuted: the end time goes back to 0 everywhere and Bob speaks again.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  await c.invoke('changeGroupMemberMute', { groupID: gid, userID: 'bob', mutedSeconds: 0 });
  await a.waitForEvent('OnGroupMemberInfoChanged', e => e.data?.userID === 'bob' && e.data?.muteEndTime === 0, { since: marks[0] });
  assert.equal((await trySend(b, gid, 'free again')).ok, true);

  // The whole group is muted: OnGroupInfoChanged with status 3; Bob gets 1403, the admin and the owner speak.
  marks = await Promise.all([a, b, c].map(x => x.mark()));
  const bobHttp = b.http.length;
  await muteGroup(a, gid, true);
  for (const [x, since] of [[b, marks[1]], [c, marks[2]]]) {
    await x.waitForEvent('OnGroupInfoChanged', e => e.data?.groupID === gid && e.data?.status === 3, { since });
    const [info] = await x.invoke('getSpecifiedGroupsInfo', [gid]);
    assert.equal(info.status, 3, `${x.label} reads the group as muted`);
  }
  await assertNoResync(b, bobHttp);
  const before = await serverMaxSeq(env, 'alice', gid);
  const silenced = await trySend(b, gid, 'group muted');
  assert.equal(silenced.ok, false);
  assert.equal(silenced.errCode, 1403, `errCode ${silenced.errCode} ${silenced.errMsg}`);
  assert.equal(await serverMaxSeq(env, 'alice', gid), before, 'nothing stored');
  assert.equal((await trySend(c, gid, 'admins still speak')).ok, true);
  assert.equal((await trySend(a, gid, 'so does the owner')).ok, true);

  marks = await Promise.all([a, b, c].map(x => x.mark()));
  await muteGroup(a, gid, false);
  await b.waitForEvent('OnGroupInfoChanged', e => e.data?.groupID === gid && e.data?.status === 0, { since: marks[1] });
  assert.equal((await trySend(b, gid, 'talking again')).ok, true);

  // A member who is not an admin may not mute.
  const denied = await b.call('changeGroupMemberMute', { groupID: gid, userID: 'carol', mutedSeconds: 60 });
  assert.equal(denied.ok, false);
  assert.equal(denied.errCode, 1002, `errCode ${denied.errCode} ${denied.errMsg}`);
  await Promise.all([a, c].map((x, i) => x.assertHttpOk(http[[0, 2][i]], 'mutes')));
});
