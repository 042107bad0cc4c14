// Group scenarios, joining: a group that needs approval turns a join into an application that the owner's and
// admins' SDKs see at once (OnGroupApplicationAdded), whose answer the applicant's SDK sees at once
// (OnGroupApplicationRejected / OnGroupApplicationAccepted, then OnJoinedGroupAdded); a group anyone may join lets
// the joiner in directly (OnJoinedGroupAdded, OnGroupMemberAdded on the members' SDKs).
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { assertNoResync, createGroup, trySend, waitJoined } from '../lib/groups.js';

const env = new Env('21-group-applications');

env.test('21a. an application is seen, refused, made again and accepted, on every SDK concerned', async () => {
  const users = await env.users(['alice', 'bob', 'erin']);
  const [a, b, e] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([a, b, e].map(x => x.loginOk()));
  const http = [a, b, e].map(x => x.http.length);
  let marks = await Promise.all([a, b, e].map(x => x.mark()));
  const group = await createGroup(a, { admins: ['bob'], name: 'club', verification: 0 });
  const gid = group.groupID;
  await waitJoined(b, gid, marks[1]);

  // Erin applies: the owner's and the admin's SDKs (and her own) fire OnGroupApplicationAdded.
  marks = await Promise.all([a, b, e].map(x => x.mark()));
  await e.invoke('joinGroup', { groupID: gid, reqMsg: 'let me in', joinSource: 3 });
  for (const [x, since] of [[a, marks[0]], [b, marks[1]], [e, marks[2]]]) {
    const ev = await x.waitForEvent('OnGroupApplicationAdded', ev => ev.data?.groupID === gid, { since });
    assert.equal(ev.data.userID, 'erin');
    assert.equal(ev.data.reqMsg, 'let me in');
    assert.equal(ev.data.handleResult, 0);
  }
  const received = await a.invoke('getGroupApplicationListAsRecipient', { groupIDs: [], handleResults: [], offset: 0, count: 20 });
  assert.deepEqual(received.map(r => [r.groupID, r.userID, r.handleResult]), [[gid, 'erin', 0]]);
  assert.equal(await b.invoke('getGroupApplicationUnhandledCount', { time: 0 }), 1);
  assert.ok(!(await e.invoke('getJoinedGroupList')).some(g => g.groupID === gid), 'not in before approval');

  // Bob refuses: Erin's SDK fires OnGroupApplicationRejected; she reads her application as refused.
  marks = await Promise.all([a, b, e].map(x => x.mark()));
  await b.invoke('refuseGroupApplication', { groupID: gid, fromUserID: 'erin', handleMsg: 'not yet' });
  const rejected = await e.waitForEvent('OnGroupApplicationRejected', ev => ev.data?.groupID === gid, { since: marks[2] });
  assert.equal(rejected.data.handleResult, -1);
  assert.equal(rejected.data.handledMsg, 'not yet');
  await a.waitForEvent('OnGroupApplicationRejected', ev => ev.data?.userID === 'erin', { since: marks[0] });
  const mine = await e.invoke('getGroupApplicationListAsApplicant', { groupIDs: [gid], handleResults: [], offset: 0, count: 20 });
  assert.deepEqual(mine.map(r => r.handleResult), [-1]);

  // She applies again; Alice accepts: OnGroupApplicationAccepted and OnJoinedGroupAdded on Erin's SDK,
  // OnGroupMemberAdded on Bob's, and she can speak at once.
  marks = await Promise.all([a, b, e].map(x => x.mark()));
  await e.invoke('joinGroup', { groupID: gid, reqMsg: 'please', joinSource: 3 });
  await a.waitForEvent('OnGroupApplicationAdded', ev => ev.data?.reqMsg === 'please', { since: marks[0] });
  const bobHttp = b.http.length;
  await a.invoke('acceptGroupApplication', { groupID: gid, fromUserID: 'erin', handleMsg: 'welcome' });
  const accepted = await e.waitForEvent('OnGroupApplicationAccepted', ev => ev.data?.groupID === gid, { since: marks[2] });
  assert.equal(accepted.data.handleResult, 1);
  await waitJoined(e, gid, marks[2]);
  await b.waitForEvent('OnGroupMemberAdded', ev => ev.data?.userID === 'erin', { since: marks[1] });
  await assertNoResync(b, bobHttp);
  assert.ok((await e.invoke('getJoinedGroupList')).some(g => g.groupID === gid), 'erin lists the group');
  assert.equal((await trySend(e, gid, 'hello club')).ok, true);
  assert.equal(await a.invoke('getGroupApplicationUnhandledCount', { time: 0 }), 0);
  await Promise.all([a, b, e].map((x, i) => x.assertHttpOk(http[i], 'applications')));
});

env.test('21b. a group anyone may join lets the joiner straight in', async () => {
  const users = await env.users(['gus', 'hal', 'ivy']);
  const [g, h, i] = await Promise.all(users.map(u => env.wasm(u)));
  await Promise.all([g, h, i].map(x => x.loginOk()));
  const http = [g, h, i].map(x => x.http.length);
  let marks = await Promise.all([g, h].map(x => x.mark()));
  const group = await createGroup(g, { members: ['hal'], name: 'open', verification: 2 });
  await waitJoined(h, group.groupID, marks[1]);

  marks = await Promise.all([g, h, i].map(x => x.mark()));
  const halHttp = h.http.length;
  await i.invoke('joinGroup', { groupID: group.groupID, reqMsg: '', joinSource: 4 });
  const joined = await i.waitForEvent('OnJoinedGroupAdded', ev => ev.data?.groupID === group.groupID, { since: marks[2] });
  assert.equal(joined.data.groupName, 'open');
  const added = await h.waitForEvent('OnGroupMemberAdded', ev => ev.data?.userID === 'ivy', { since: marks[1] });
  assert.equal(added.data.joinSource, 4);
  await assertNoResync(h, halHttp);
  assert.equal(i.find('OnGroupApplicationAdded', marks[2]).length, 0, 'no application in an open group');
  assert.equal((await trySend(i, group.groupID, 'hi all')).ok, true);
  await Promise.all([g, h, i].map((x, n) => x.assertHttpOk(http[n], 'direct join')));
});
