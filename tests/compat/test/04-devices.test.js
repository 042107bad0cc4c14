// Scenarios 5, 6 and 7: offline delivery, a new device, and a returning device's incremental sync.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';

const env = new Env('04-devices');
const texts = list => list.map(m => m.textElem?.content);

/** Logs a device out and closes the app, keeping its local database: `restart()` + `loginOk()` brings it back. */
async function logoutAndQuit(c) {
  await c.invoke('logout');
  await c.quit();
}

env.test('5. offline delivery: messages to a logged-out user arrive in order at its next login', async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const [a, b] = [await env.wasm(alice), await env.wasm(bob)];
  await Promise.all([a.loginOk(), b.loginOk()]);
  await a.sendText({ recvID: 'bob' }, 'while online');
  await b.waitReceived(1);
  await logoutAndQuit(b);

  const offline = ['offline 1', 'offline 2', 'offline 3', 'offline 4', 'offline 5'];
  for (const t of offline) await a.sendText({ recvID: 'bob' }, t);

  await b.restart();
  const since = await b.mark();
  const http = b.http.length;
  await b.loginOk();
  // At login the SDK pulls only the newest message of each conversation (WS 1001, then 1002 with num 1) and
  // reports it as new; the rest it fetches when the history is read.
  const [newest] = await b.waitReceived(1, { since, pred: m => m.sendID === 'alice' });
  assert.equal(newest.textElem?.content, 'offline 5');
  assert.equal(newest.seq, 6);
  const conv = (await b.invoke('getAllConversationList')).find(x => x.conversationID === 'si_alice_bob');
  assert.equal(conv?.unreadCount, 6, 'unread: 1 from before and the 5 sent while away');
  const history = await b.history('si_alice_bob');
  assert.deepEqual(texts(history), ['while online', ...offline]);
  assert.deepEqual(history.map(m => m.seq), [1, 2, 3, 4, 5, 6]);
  await b.assertHttpOk(http, 'returning login');
});

env.test('6. new device: the same user in a new browser context gets its conversations and history', async () => {
  const [carol, dave] = await env.users(['carol', 'dave']);
  const [c, d1] = [await env.wasm(carol), await env.wasm(dave, { label: 'dave-1' })];
  await Promise.all([c.loginOk(), d1.loginOk()]);
  const sent = [];
  for (let i = 0; i < 12; i++) {
    const [from, to] = i % 3 === 2 ? [d1, 'carol'] : [c, 'dave'];
    sent.push((await from.sendText({ recvID: to }, `m${i}`)).textElem.content);
  }
  await d1.waitReceived(8);
  await logoutAndQuit(d1);
  await env.closeClient(d1);

  const d2 = await env.wasm(dave, { label: 'dave-2' });
  await d2.loginOk();
  const conv = (await d2.invoke('getAllConversationList')).find(x => x.conversationID === 'si_carol_dave');
  assert.ok(conv, 'dave-2: si_carol_dave in the conversation list');
  assert.equal(conv.showName, 'Carol');
  assert.equal(JSON.parse(conv.latestMsg).textElem?.content, 'm11');
  const history = await d2.history('si_carol_dave', 5); // several pages: fetched from the server (WS 1005)
  assert.deepEqual(texts(history), sent);
  assert.deepEqual(history.map(m => m.seq), sent.map((_, i) => i + 1));
  await d2.assertHttpOk(0, 'new-device login and history');
});

// While bob is logged out, erin befriends him (admin /friend/import_friend: a friend request would need his
// answer), adds him to a group and messages him. His next login's incremental syncs must answer full=false with
// exactly those changes.
env.test('7. returning device: incremental syncs answer full=false with exactly the changes made while away',
  async () => {
    const [erin, frank] = await env.users(['erin', 'frank']);
    const [e, f] = [await env.wasm(erin), await env.wasm(frank)];
    await Promise.all([e.loginOk(), f.loginOk()]);
    await logoutAndQuit(f);

    await env.server.admin('/friend/import_friend', { ownerUserID: 'erin', friendUserIDs: ['frank'] });
    const group = await e.invoke('createGroup', {
      memberUserIDs: ['frank'], groupInfo: { groupName: 'while-away', groupType: 2 }, adminUserIDs: [], ownerUserID: 'erin',
    });
    await e.sendText({ recvID: 'frank' }, 'you were away');
    await e.sendText({ groupID: group.groupID }, 'group hello');

    await f.restart();
    const http = f.http.length;
    const since = await f.mark();
    await f.loginOk();
    await f.waitReceived(2, { since });
    await f.assertHttpOk(http, 'returning login');

    const last = route => f.http.slice(http).filter(h => h.route === route).at(-1)?.respBody?.data;
    const friends = last('/friend/get_incremental_friends');
    assert.equal(friends?.full, false, 'friends: full=false');
    assert.deepEqual((friends.insert || []).map(x => x.friendUser?.userID ?? x.friendUserID), ['erin']);
    assert.deepEqual([...(friends.update || []), ...(friends.delete || [])], []);
    const groups = last('/group/get_incremental_join_groups');
    assert.equal(groups?.full, false, 'joined groups: full=false');
    assert.deepEqual((groups.insert || []).map(g => g.groupID), [group.groupID]);
    assert.deepEqual([...(groups.update || []), ...(groups.delete || [])], []);
    const convs = last('/conversation/get_incremental_conversations');
    assert.equal(convs?.full, false, 'conversations: full=false');
    assert.deepEqual([...(convs.insert || []), ...(convs.update || [])].map(x => x.conversationID).sort(),
      [`sg_${group.groupID}`, 'si_erin_frank'].sort());
    assert.deepEqual(convs.delete || [], []);
    for (const full of ['/friend/get_friend_list', '/group/get_joined_group_list', '/conversation/get_all_conversations',
      '/conversation/get_owner_conversation']) {
      assert.ok(!f.http.slice(http).some(h => h.route === full), `no full re-sync: ${full} was called`);
    }

    assert.deepEqual((await f.invoke('getFriendList')).map(x => x.userID ?? x.friendInfo?.userID), ['erin']);
    assert.ok((await f.invoke('getJoinedGroupList')).some(g => g.groupID === group.groupID));
    const ids = (await f.invoke('getAllConversationList')).map(x => x.conversationID);
    assert.ok(ids.includes('si_erin_frank') && ids.includes(`sg_${group.groupID}`), `conversations: ${ids}`);
  });
