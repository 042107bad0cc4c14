// Scenarios 2 and 3: 1:1 text both ways; the conversation list, unread counts and mark-as-read across devices.
// This server runs multi-login policy 0, so one user can have two Web (platformID 5) devices at once: the wasm
// build needs platform 5 for the server's keep-alive pings (protocol §2.12).
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';

const env = new Env('02-direct', { server: { args: ['--multi-login-policy', '0'] } });

const text = m => JSON.parse(m.content ?? '{}').content ?? m.textElem?.content;

env.test('2. 1:1 text both ways with contiguous seqs', async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const [a, b] = [await env.wasm(alice), await env.wasm(bob)];
  await Promise.all([a.loginOk(), b.loginOk()]);
  const [ha, hb] = [a.http.length, b.http.length];
  const [ea, eb] = [await a.mark(), await b.mark()];

  const sent1 = await a.sendText({ recvID: 'bob' }, 'hello bob');
  assert.equal(sent1.status, 2, 'alice: message status after sendMessage is 2 (succeeded)');
  const [m1] = await b.waitReceived(1, { since: eb });
  assert.equal(m1.sendID, 'alice');
  assert.equal(m1.recvID, 'bob');
  assert.equal(m1.sessionType, 1);
  assert.equal(m1.contentType, 101);
  assert.equal(m1.clientMsgID, sent1.clientMsgID);
  assert.equal(m1.textElem?.content, 'hello bob');

  const sent2 = await b.sendText({ recvID: 'alice' }, 'hi alice');
  const [m2] = await a.waitReceived(1, { since: ea });
  assert.equal(m2.textElem?.content, 'hi alice');
  assert.equal(m2.clientMsgID, sent2.clientMsgID);
  assert.equal(m2.seq, m1.seq + 1, 'one conversation, contiguous seqs');
  assert.equal(m1.seq, 1);

  for (let i = 0; i < 5; i++) await a.sendText({ recvID: 'bob' }, `burst ${i}`);
  const got = (await b.waitReceived(6, { since: eb })).slice(1);
  assert.deepEqual(got.map(m => m.textElem?.content), [0, 1, 2, 3, 4].map(i => `burst ${i}`));
  assert.deepEqual(got.map(m => m.seq), [3, 4, 5, 6, 7]);
  await a.assertHttpOk(ha, 'send/receive');
  await b.assertHttpOk(hb, 'send/receive');
});

/** Polls a client's conversation `id` until `pred` holds; returns it. */
async function waitConversation(c, id, pred, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    const list = await c.invoke('getAllConversationList');
    last = list.find(x => x.conversationID === id);
    if (last && pred(last)) return last;
    if (Date.now() > deadline) {
      throw new Error(`${c.label}: conversation ${id} never got ${what}; last: ${JSON.stringify(last && {
        showName: last.showName, unreadCount: last.unreadCount, latestMsg: last.latestMsg?.slice(0, 200) })}`);
    }
    await new Promise(r => setTimeout(r, 200));
  }
}

// The SDK stores a new conversation only after its group sync (/group/get_incremental_join_groups) succeeds
// (conversation_msg.go batchAddFaceURLAndName), so the conversation list needs the login-sync routes.
env.test('3. conversation list, unread count, and mark-as-read on this and the other device', async () => {
  const [carol, dave] = await env.users(['carol', 'dave']);
  const c = await env.wasm(carol);
  const d1 = await env.wasm(dave, { label: 'dave-1' });
  const d2 = await env.wasm(dave, { label: 'dave-2' });
  await Promise.all([c.loginOk(), d1.loginOk(), d2.loginOk()]);
  const [h1, h2] = [d1.http.length, d2.http.length];
  const [e1, e2] = [await d1.mark(), await d2.mark()];
  for (const t of ['one', 'two', 'three']) await c.sendText({ recvID: 'dave' }, t);
  await Promise.all([d1.waitReceived(3, { since: e1 }), d2.waitReceived(3, { since: e2 })]);

  const id = 'si_carol_dave';
  for (const d of [d1, d2]) {
    const conv = await waitConversation(d, id, x => x.unreadCount === 3, 'unread 3');
    assert.equal(conv.conversationType, 1);
    assert.equal(conv.userID, 'carol');
    assert.equal(conv.showName, 'Carol');
    const latest = JSON.parse(conv.latestMsg);
    assert.equal(latest.textElem?.content, 'three');
    assert.equal(latest.seq, 3);
    assert.equal(await d.invoke('getTotalUnreadMsgCount'), 3);
  }
  const sender = await waitConversation(c, id, x => x.unreadCount === 0 && x.latestMsg, 'its latest message');
  assert.equal(sender.showName, 'Dave');

  const since = await d1.mark();
  await d1.invoke('markConversationMessageAsRead', id);
  await waitConversation(d1, id, x => x.unreadCount === 0, 'unread 0 after markConversationMessageAsRead');
  await d1.waitForEvent('OnTotalUnreadMessageCountChanged', e => e.data === 0, { since });
  assert.equal(await d1.invoke('getTotalUnreadMsgCount'), 0);
  await d1.assertHttpOk(h1, 'receive and mark read');
  assert.ok(d1.http.some(h => h.route === '/msg/mark_conversation_as_read' && h.reqBody.hasReadSeq === 3),
    'dave-1 called /msg/mark_conversation_as_read with hasReadSeq 3');

  await waitConversation(d2, id, x => x.unreadCount === 0, 'unread 0 from the other device\'s mark-as-read');
  assert.equal(await d2.invoke('getTotalUnreadMsgCount'), 0);
  await d2.assertHttpOk(h2, 'receive and the other device\'s read');
});
