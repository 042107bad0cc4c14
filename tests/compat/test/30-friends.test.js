// Friends and blacklists with the wasm SDK on both sides: each step's server notification must make the other
// side's SDK fire its listener (OnFriendApplicationAdded/Accepted/Rejected, OnFriendAdded/Deleted,
// OnBlackAdded/Deleted, OnFriendInfoChanged) without waiting for a resync, and the state it then reads must
// match. This server runs multi-login policy 0, so one user can have two Web devices at once.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';

const env = new Env('30-friends', { server: { args: ['--multi-login-policy', '0'] } });

const userIDs = list => list.map(f => f.userID ?? f.friendInfo?.userID ?? f.blackUserID).sort();

env.test('30a. friend application added, accepted and rejected reach the other side', async () => {
  const [alice, bob, carol] = await env.users(['alice', 'bob', 'carol']);
  const [a, b, c] = [await env.wasm(alice), await env.wasm(bob), await env.wasm(carol)];
  await Promise.all([a.loginOk(), b.loginOk(), c.loginOk()]);
  const http = [a, b, c].map(x => x.http.length);

  // Bob asks Alice: her SDK fires OnFriendApplicationAdded with the request.
  let [ea, eb] = [await a.mark(), await b.mark()];
  await b.invoke('addFriend', { toUserID: 'alice', reqMsg: 'hello alice' });
  const added = await a.waitForEvent('OnFriendApplicationAdded', e => e.data?.fromUserID === 'bob', { since: ea });
  assert.equal(added.data.toUserID, 'alice');
  assert.equal(added.data.reqMsg, 'hello alice');
  assert.equal(added.data.fromNickname, 'Bob');
  assert.equal(added.data.handleResult, 0);
  const inbox = await a.invoke('getFriendApplicationListAsRecipient', { handleResults: [], offset: 0, count: 20 });
  assert.deepEqual(inbox.map(r => [r.fromUserID, r.handleResult]), [['bob', 0]]);

  // Alice accepts: Bob's SDK fires OnFriendApplicationAccepted, and both fire OnFriendAdded.
  [ea, eb] = [await a.mark(), await b.mark()];
  await a.invoke('acceptFriendApplication', { toUserID: 'bob', handleMsg: 'welcome' });
  const accepted = await b.waitForEvent('OnFriendApplicationAccepted', e => e.data?.toUserID === 'alice', { since: eb });
  assert.equal(accepted.data.handleResult, 1);
  assert.equal(accepted.data.handleMsg, 'welcome');
  const bobSees = await b.waitForEvent('OnFriendAdded', e => e.data?.userID === 'alice', { since: eb });
  assert.equal(bobSees.data.nickname, 'Alice');
  await a.waitForEvent('OnFriendAdded', e => e.data?.userID === 'bob', { since: ea });
  assert.deepEqual(userIDs(await b.invoke('getFriendList', false)), ['alice']);
  assert.deepEqual(userIDs(await a.invoke('getFriendList', false)), ['bob']);

  // Carol asks, Alice refuses: Carol's SDK fires OnFriendApplicationRejected; no friendship.
  const ec = await c.mark();
  await c.invoke('addFriend', { toUserID: 'alice', reqMsg: 'me too' });
  await a.waitForEvent('OnFriendApplicationAdded', e => e.data?.fromUserID === 'carol');
  await a.invoke('refuseFriendApplication', { toUserID: 'carol', handleMsg: 'no thanks' });
  const rejected = await c.waitForEvent('OnFriendApplicationRejected', e => e.data?.toUserID === 'alice', { since: ec });
  assert.equal(rejected.data.handleResult, -1);
  assert.equal(rejected.data.handleMsg, 'no thanks');
  assert.deepEqual(await c.invoke('getFriendList', false), []);
  const sent = await c.invoke('getFriendApplicationListAsApplicant', { offset: 0, count: 20 });
  assert.deepEqual(sent.map(r => [r.toUserID, r.handleResult]), [['alice', -1]]);
  await Promise.all([a, b, c].map((x, i) => x.assertHttpOk(http[i], 'friend applications')));
});

env.test('30b. friend deleted, remark and pin changed, black added and deleted on the user\'s other device', async () => {
  const [dave, erin] = await env.users(['dave', 'erin']);
  await env.server.admin('/friend/import_friend', { ownerUserID: 'dave', friendUserIDs: ['erin'] });
  const d1 = await env.wasm(dave, { label: 'dave-1' });
  // A second device is a second login, with its own token.
  const d2 = await env.wasm({ ...dave, token: await env.server.userToken('dave', 5) }, { label: 'dave-2' });
  const e = await env.wasm(erin);
  await Promise.all([d1.loginOk(), d2.loginOk(), e.loginOk()]);
  assert.deepEqual(userIDs(await d2.invoke('getFriendList', false)), ['erin']);
  const http = [d1, d2, e].map(x => x.http.length);

  // Remark and pin on one device: the other fires OnFriendInfoChanged and reads both.
  let m2 = await d2.mark();
  await d1.invoke('updateFriends', { friendUserIDs: ['erin'], remark: 'E.', isPinned: true });
  const changed = await d2.waitForEvent('OnFriendInfoChanged', ev => ev.data?.userID === 'erin' && ev.data?.remark === 'E.',
    { since: m2 });
  assert.equal(changed.data.isPinned, true);
  const [row] = await d2.invoke('getSpecifiedFriendsInfo', { friendUserIDList: ['erin'], filterBlack: false });
  assert.equal(row.remark, 'E.');

  // Erin renames herself: Dave's devices fire OnFriendInfoChanged with the new name.
  m2 = await d2.mark();
  await e.invoke('setSelfInfo', { nickname: 'Erin the Second' });
  await d2.waitForEvent('OnFriendInfoChanged', ev => ev.data?.userID === 'erin' && ev.data?.nickname === 'Erin the Second',
    { since: m2 });

  // Block: the other device fires OnBlackAdded and has her on its blacklist; her messages are refused (1302).
  m2 = await d2.mark();
  await d1.invoke('addBlack', { toUserID: 'erin', ex: '' });
  const black = await d2.waitForEvent('OnBlackAdded', ev => ev.data?.userID === 'erin', { since: m2 });
  assert.equal(black.data.ownerUserID, 'dave');
  assert.deepEqual((await d2.invoke('getBlackList')).map(x => x.userID), ['erin']);
  const message = await e.invoke('createTextMessage', 'let me in');
  const refused = await e.call('sendMessage', { recvID: 'dave', groupID: '', message });
  assert.equal(refused.ok, false);
  assert.equal(refused.errCode, 1302, `a blocked sender gets 1302: ${JSON.stringify(refused)}`);

  // Unblock: OnBlackDeleted on the other device, and the list is empty again.
  m2 = await d2.mark();
  await d1.invoke('removeBlack', 'erin');
  await d2.waitForEvent('OnBlackDeleted', ev => ev.data?.userID === 'erin', { since: m2 });
  assert.deepEqual(await d2.invoke('getBlackList'), []);

  // Delete (one way): the other device fires OnFriendDeleted and its list is empty; Erin still has Dave.
  m2 = await d2.mark();
  await d1.invoke('deleteFriend', 'erin');
  await d2.waitForEvent('OnFriendDeleted', ev => ev.data?.userID === 'erin', { since: m2 });
  assert.deepEqual(await d2.invoke('getFriendList', false), []);
  assert.deepEqual(userIDs(await e.invoke('getFriendList', false)), ['dave']);
  await Promise.all([d1, d2].map((x, i) => x.assertHttpOk(http[i], 'friend and black changes')));
  // Erin's refused send is the one expected error.
  assert.deepEqual(e.failedRoutes(http[2]), []);
});
