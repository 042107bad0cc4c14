// Infinite scroll back through a long history, pinned conversations first, and online status.
import assert from 'node:assert/strict';
import { PASSWORD, assertUnique, online, openConversation, signIn, texts, waitText } from '../lib/chat.js';
import { World } from '../lib/world.js';

const world = new World('history');
const N = 130;

world.test('scrolling up loads the whole history, page by page, each message once and in order', async () => {
  const server = world.server;
  const people = [['dora', 'Dora Jensen'], ['eli', 'Eli Brooks'], ['finn', 'Finn Walsh']];
  await server.accounts(people.map(([userID, nickname]) => ({ userID, nickname, password: PASSWORD })));
  await server.admin('/friend/import_friend', { ownerUserID: 'dora', friendUserIDs: ['eli', 'finn'] });
  // A long conversation, written by both sides (admin REST, as an app back-end would), ten at a time.
  for (let i = 1; i <= N; i += 10) {
    await Promise.all(Array.from({ length: Math.min(10, N - i + 1) }, (_, k) => {
      const n = i + k;
      const [from, to] = n % 3 ? ['eli', 'dora'] : ['dora', 'eli'];
      return server.admin('/msg/send_msg', {
        sendID: from, recvID: to, senderPlatformID: 5, contentType: 101, sessionType: 1, content: { content: `message ${n} from ${from}` },
      });
    }));
  }
  const history = await server.history('dora', 'si_dora_eli');
  const sent = history.map(m => m.content.content);
  assert.equal(sent.length, N);
  // Finn writes last. Its sendTime is set after the long conversation's last one: the server keeps a
  // conversation's sendTimes strictly increasing, so ten messages sent in the same millisecond end up stamped a
  // few milliseconds ahead of the clock, and a message sent right after them elsewhere could sort before them.
  const lastTime = Math.max(...history.map(m => m.sendTime));
  await server.admin('/msg/send_msg', { sendID: 'finn', recvID: 'dora', senderPlatformID: 5, contentType: 101, sessionType: 1, content: { content: 'Lunch?' }, sendTime: lastTime + 1000 });

  const d = await world.page('dora');
  await signIn(d, { userID: 'dora' });
  // Newest activity first: Finn, then Eli; pinning Eli puts Eli on top.
  const order = () => d.$$eval('#conv-list .conv', els => els.map(e => e.dataset.conv));
  assert.deepEqual(await order(), ['si_dora_finn', 'si_dora_eli']);
  await openConversation(d, 'si_dora_eli');
  await d.click('#pin-button');
  await d.waitForFunction(() => document.querySelector('#conv-list .conv')?.dataset.conv === 'si_dora_eli');
  assert.equal(await d.locator('.conv[data-conv="si_dora_eli"] .pin').count(), 1);

  // The newest page first; scrolling to the top loads older pages until the beginning.
  await waitText(d, sent[N - 1]);
  const firstPage = (await texts(d)).length;
  assert.ok(firstPage < N, `only a page is loaded at first (${firstPage})`);
  for (let i = 0; i < 20 && !(await d.isVisible('#history-edge:text-is("This is the beginning of the conversation.")')); i++) {
    await d.$eval('#messages', el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
    await d.waitForTimeout(100);
  }
  await d.locator('#history-edge:text-is("This is the beginning of the conversation.")').waitFor();
  const shown = await texts(d);
  assertUnique(shown, 'the history');
  assert.deepEqual(shown, sent);
  const seqs = await d.$$eval('#messages .msg', els => els.map(e => Number(e.dataset.seq)));
  assert.deepEqual(seqs, history.map(m => m.seq));

  // Online status: Eli is offline, then online when he signs in.
  assert.equal(await d.textContent('#chat-sub'), 'Offline');
  const e = await world.page('eli');
  await signIn(e, { userID: 'eli' });
  await online(e);
  // Live when the server pushes status changes (2005); opening the conversation asks afresh in any case.
  await openConversation(d, 'si_dora_eli');
  await d.locator('#chat-sub:text-is("Online")').waitFor();
  await world.shot(d, 'history');
});
