// Scenario 4: a group of three is created; group text reaches the two others; every member's conversation list
// has it.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';

const env = new Env('03-group');

env.test('4. a group of three: creation, group text to the two others, the group conversation everywhere', async () => {
  const users = await env.users(['alice', 'bob', 'carol']);
  const [a, b, c] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([a, b, c].map(x => x.loginOk()));
  const http = [a, b, c].map(x => x.http.length);
  const marks = await Promise.all([b, c].map(x => x.mark()));

  const group = await a.invoke('createGroup', {
    memberUserIDs: ['bob', 'carol'],
    groupInfo: { groupName: 'three', groupType: 2 },
    adminUserIDs: [],
    ownerUserID: 'alice',
  });
  assert.ok(group.groupID, 'createGroup returned a groupID');
  assert.equal(group.groupName, 'three');
  assert.equal(group.ownerUserID, 'alice');
  assert.equal(group.memberCount, 3);
  const gid = group.groupID;

  const sent = await a.sendText({ groupID: gid }, 'hello group');
  assert.equal(sent.sessionType, 3);
  for (const [x, since] of [[b, marks[0]], [c, marks[1]]]) {
    // The chat shows the creation first: a tip the server stores in the group's conversation (OpenIM's isSendMsg).
    const [tip] = await x.waitReceived(1, { since, pred: m => m.sessionType === 3 && m.contentType === 1501 });
    assert.equal(tip.groupID, gid);
    const [m] = await x.waitReceived(1, { since, pred: m => m.sessionType === 3 && m.contentType === 101 });
    assert.equal(m.groupID, gid);
    assert.equal(m.sendID, 'alice');
    assert.equal(m.textElem?.content, 'hello group');
    assert.equal(m.clientMsgID, sent.clientMsgID);
  }

  for (const x of [a, b, c]) {
    const deadline = Date.now() + 10000;
    let conv;
    while (!(conv = (await x.invoke('getAllConversationList')).find(v => v.groupID === gid)) && Date.now() < deadline) {
      await new Promise(r => setTimeout(r, 200));
    }
    assert.ok(conv, `${x.label}: no conversation for group ${gid}`);
    assert.equal(conv.conversationType, 3);
    assert.equal(conv.showName, 'three');
    assert.equal(JSON.parse(conv.latestMsg).textElem?.content, 'hello group');
    const joined = await x.invoke('getJoinedGroupList');
    assert.ok(joined.some(g => g.groupID === gid), `${x.label}: group missing from getJoinedGroupList`);
  }
  await Promise.all([a, b, c].map((x, i) => x.assertHttpOk(http[i], 'group create/send/receive')));
});

// The same delivery checks on a group created by the admin over REST: no SDK-side group sync is needed to send,
// and a member that does not know the group looks it up with /group/get_groups_info (protocol §7.4). Senders and
// receivers also ask /group/get_group_members_info for nicknames; its 404 does not stop delivery.
env.test('4 (delivery only). group text in a group created over REST reaches every member',
  async () => {
  const users = await env.users(['dan', 'erin', 'frank']);
  const [d, e, f] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([d, e, f].map(x => x.loginOk()));
  const http = [d, e, f].map(x => x.http.length);
  const marks = await Promise.all([d, e, f].map(x => x.mark()));
  const { groupInfo } = await env.server.admin('/group/create_group', {
    memberUserIDs: ['erin', 'frank'], adminUserIDs: [], ownerUserID: 'dan',
    groupInfo: { groupID: '', groupName: 'rest-made', groupType: 2 },
  });
  const gid = groupInfo.groupID;
  const sent = [];
  for (const [x, t] of [[d, 'from dan'], [e, 'from erin'], [f, 'from frank'], [d, 'dan again']]) {
    sent.push(await x.sendText({ groupID: gid }, t));
  }
  for (const [i, x] of [d, e, f].entries()) {
    const others = sent.filter(m => m.sendID !== x.user.userID);
    const got = await x.waitReceived(others.length, { since: marks[i], pred: m => m.groupID === gid && m.contentType === 101 });
    assert.deepEqual(got.map(m => m.textElem?.content), others.map(m => m.textElem.content), `${x.label}: content and order`);
    assert.ok(got.every(m => m.sessionType === 3));
  }
  // Every member saw every seq 1..4 exactly once: the others' messages by push, its own via its send's push.
  const seqs = (await Promise.all([d, e, f].map(x => x.waitReceived(0, { since: 0 })))).map(l => l.filter(m => m.groupID === gid).map(m => m.seq));
  for (const s of seqs) assert.deepEqual(s, [...s].sort((p, q) => p - q), 'seqs arrive in order');
  await Promise.all([d, e, f].map((x, i) => x.assertHttpOk(http[i], 'group send/receive')));
});
