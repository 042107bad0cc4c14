// Revoke, delete, clear and conversation settings with the wasm SDK on both sides: what the other side's SDK
// fires and what it then reads. This server runs multi-login policy 0, so one user can have two Web devices.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { until } from '../lib/util.js';

const env = new Env('31-messages', { server: { args: ['--multi-login-policy', '0'] } });

const texts = list => list.filter(m => m.contentType === 101).map(m => m.textElem?.content);

/** Polls `c`'s conversation `id` until `pred` holds; returns it. */
async function waitConversation(c, id, pred, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = (await c.invoke('getAllConversationList')).find(x => x.conversationID === id);
    if (last && pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`${c.label}: conversation ${id} never got ${what}: ${JSON.stringify(last)}`);
    await new Promise(r => setTimeout(r, 200));
  }
}

env.test('31a. a revoke reaches the other side (OnNewRecvMessageRevoked) and both read it revoked', async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const [a, b] = [await env.wasm(alice), await env.wasm(bob)];
  await Promise.all([a.loginOk(), b.loginOk()]);
  const http = [a, b].map(x => x.http.length);
  const eb = await b.mark();
  const first = await a.sendText({ recvID: 'bob' }, 'keep me');
  const oops = await a.sendText({ recvID: 'bob' }, 'oops, wrong chat');
  await b.waitReceived(2, { since: eb });
  const id = 'si_alice_bob';

  // Wait until Alice's own copy has its seq (the SDK revokes by seq; the sender learns it from the push).
  await until(async () => (await a.history(id)).find(m => m.clientMsgID === oops.clientMsgID)?.seq === 2,
    { describe: () => 'seq 2 on the sender' });
  const since = await b.mark();
  await a.invoke('revokeMessage', { conversationID: id, clientMsgID: oops.clientMsgID });
  const revoked = await b.waitForEvent('OnNewRecvMessageRevoked', e => e.data?.clientMsgID === oops.clientMsgID, { since });
  assert.equal(revoked.data.revokerID, 'alice');
  assert.equal(revoked.data.sourceMessageSendID, 'alice');
  assert.equal(revoked.data.sessionType, 1);
  for (const c of [a, b]) {
    const history = await c.history(id);
    const msg = history.find(m => m.clientMsgID === oops.clientMsgID);
    assert.equal(msg?.contentType, 2101, `${c.label}: the message reads as revoked`);
    assert.deepEqual(texts(history), ['keep me']);
  }
  // A fresh device of Bob's pulls the history from the server and sees the revoke too.
  const b2 = await env.wasm({ ...bob, token: await env.server.userToken('bob', 5) }, { label: 'bob-2' });
  await b2.loginOk();
  const fresh = await b2.history(id);
  assert.equal(fresh.find(m => m.clientMsgID === oops.clientMsgID)?.contentType, 2101);
  assert.equal(fresh.find(m => m.clientMsgID === first.clientMsgID)?.textElem?.content, 'keep me');
  await Promise.all([a, b].map((x, i) => x.assertHttpOk(http[i], 'revoke')));
});

env.test('31b. delete and clear are per user: the other side keeps its history', async () => {
  const [carol, dave] = await env.users(['carol', 'dave']);
  const [c, d] = [await env.wasm(carol), await env.wasm(dave)];
  await Promise.all([c.loginOk(), d.loginOk()]);
  const http = [c, d].map(x => x.http.length);
  const ed = await d.mark();
  for (const t of ['one', 'two', 'three']) await c.sendText({ recvID: 'dave' }, t);
  const got = await d.waitReceived(3, { since: ed });
  const id = 'si_carol_dave';
  await waitConversation(d, id, x => x.unreadCount === 3, 'unread 3');

  // Dave deletes "two": his SDK fires OnMsgDeleted; Carol still has all three.
  const since = await d.mark();
  await d.invoke('deleteMessage', { conversationID: id, clientMsgID: got[1].clientMsgID });
  await d.waitForEvent('OnMsgDeleted', e => e.data?.clientMsgID === got[1].clientMsgID, { since });
  assert.deepEqual(texts(await d.history(id)), ['one', 'three']);
  assert.deepEqual(texts(await c.history(id)), ['one', 'two', 'three']);
  // A fresh device of Dave's pulls from the server: the deletion is his there too.
  const d2 = await env.wasm({ ...dave, token: await env.server.userToken('dave', 5) }, { label: 'dave-2' });
  await d2.loginOk();
  assert.deepEqual(texts(await d2.history(id)), ['one', 'three']);

  // Dave clears the conversation: his history is empty, nothing unread; Carol keeps hers. (His other device
  // only re-syncs its conversation list, through the server's 1300: as upstream, a clear reaches the user's
  // other devices as a 1703 only when the client asks for it, which the SDK does not.)
  await d.invoke('clearConversationAndDeleteAllMsg', id);
  await waitConversation(d, id, x => x.unreadCount === 0, 'unread 0 after the clear');
  assert.deepEqual(texts(await d.history(id)), []);
  assert.deepEqual(texts(await c.history(id)), ['one', 'two', 'three']);
  // A message after the clear is what a new device of Dave's reads: pulls start at the new minSeq.
  const e2 = await d.mark();
  await c.sendText({ recvID: 'dave' }, 'four');
  await d.waitReceived(1, { since: e2 });
  const d3 = await env.wasm({ ...dave, token: await env.server.userToken('dave', 5) }, { label: 'dave-3' });
  await d3.loginOk();
  assert.deepEqual(texts(await d3.history(id)), ['four']);
  const server = await env.server.history('dave');
  assert.deepEqual(server[id].map(m => m.seq), [4], 'the server lists dave\'s history from the new minSeq');
  await Promise.all([c, d].map((x, i) => x.assertHttpOk(http[i], 'delete and clear')));
});

env.test('31c. pinning and the receive option reach the user\'s other device', async () => {
  const [erin, frank] = await env.users(['erin', 'frank']);
  const e1 = await env.wasm(erin, { label: 'erin-1' });
  const e2 = await env.wasm(erin, { label: 'erin-2' });
  const f = await env.wasm(frank);
  await Promise.all([e1.loginOk(), e2.loginOk(), f.loginOk()]);
  const http = [e1, e2].map(x => x.http.length);
  const [m1, m2] = [await e1.mark(), await e2.mark()];
  await f.sendText({ recvID: 'erin' }, 'hi erin');
  await Promise.all([e1.waitReceived(1, { since: m1 }), e2.waitReceived(1, { since: m2 })]);
  const id = 'si_erin_frank';
  await waitConversation(e2, id, x => x.latestMsg, 'its first message');

  let since = await e2.mark();
  await e1.invoke('pinConversation', { conversationID: id, isPinned: true });
  await e2.waitForEvent('OnConversationChanged', e => (e.data ?? []).some(c => c.conversationID === id && c.isPinned), { since });
  assert.equal((await waitConversation(e2, id, x => x.isPinned, 'isPinned')).isPinned, true);

  since = await e2.mark();
  await e1.invoke('setConversationRecvMessageOpt', { conversationID: id, opt: 2 });
  await e2.waitForEvent('OnConversationChanged', e => (e.data ?? []).some(c => c.conversationID === id && c.recvMsgOpt === 2),
    { since });
  const conv = await waitConversation(e2, id, x => x.recvMsgOpt === 2, 'recvMsgOpt 2');
  assert.equal(conv.isPinned, true);
  // Frank's side of the conversation is his own.
  const franks = await waitConversation(f, id, x => x.latestMsg, 'its message');
  assert.equal(franks.isPinned, false);
  assert.equal(franks.recvMsgOpt, 0);
  await Promise.all([e1, e2].map((x, i) => x.assertHttpOk(http[i], 'conversation settings')));
});
