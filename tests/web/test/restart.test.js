// The page survives a server restart mid-conversation: it shows that it is reconnecting, keeps what was typed
// meanwhile, sends it once the server is back, and pulls what it missed, with no message lost or shown twice.
import assert from 'node:assert/strict';
import { PASSWORD, assertUnique, chatWithFriend, online, openConversation, send, signIn, texts, waitMine, waitText } from '../lib/chat.js';
import { World } from '../lib/world.js';

const world = new World('restart');
const AB = 'si_alice_bob';

world.test('the page survives a server restart without losing or duplicating a message', async () => {
  const server = world.server;
  await server.accounts([{ userID: 'alice', nickname: 'Alice Martin', password: PASSWORD }, { userID: 'bob', nickname: 'Bob Chen', password: PASSWORD }]);
  await server.admin('/friend/import_friend', { ownerUserID: 'alice', friendUserIDs: ['bob'] });

  // Alice's gateway connections pass through a switch, so that she can be kept away from the restarted server
  // while Bob writes to her (she must then pull what was pushed while she was away).
  let holdAlice = false;
  const a = await world.page('alice', {
    beforeLoad: page => page.routeWebSocket(/\/msg_gateway/, ws => { if (holdAlice) ws.close(); else ws.connectToServer(); }),
  });
  const b = await world.page('bob');
  await signIn(a, { userID: 'alice' });
  await signIn(b, { userID: 'bob' });
  await chatWithFriend(a, 'bob');
  await chatWithFriend(b, 'alice');
  const before = ['Morning! Did you get the tickets?', 'Got them, two for Friday', 'Which row?', 'Row 7, seats 12 and 13'];
  for (const [i, text] of before.entries()) {
    await send(i % 2 ? b : a, text);
    await waitText(i % 2 ? a : b, text);
  }

  await server.stop();
  for (const p of [a, b]) {
    await p.waitForFunction(() => document.querySelector('#conn')?.dataset.state !== 'online' && !document.querySelector('#conn').hidden);
    assert.match(await p.textContent('#conn'), /Reconnecting|Connecting/);
  }
  // Typed while the server is down: shown as sending, kept until the server is back.
  const queued = ['Perfect, I will meet you at the door', 'Bring the printout just in case'];
  for (const text of queued) {
    await a.fill('#composer-input', text);
    await a.press('#composer-input', 'Enter');
  }
  await a.locator('.msg.mine.sending').nth(1).waitFor();
  await world.shot(a, 'reconnecting', { readme: true });

  holdAlice = true;
  await server.spawn();
  await online(b);
  const missed = ['Will do', 'Also: the doors open at 19:30'];
  for (const text of missed) await send(b, text);
  assert.equal(await a.$eval('#conn', el => el.dataset.state === 'online'), false, 'Alice is still away');

  holdAlice = false;
  await online(a);
  for (const text of queued) await waitMine(a, text);
  for (const text of missed) await waitText(a, text);
  for (const text of queued) await waitText(b, text);
  assert.equal(await a.locator('.msg.sending, .msg.failed').count(), 0);

  // Both pages show exactly what the server stored, in its order, each message once.
  const history = await server.history('alice', AB);
  const stored = history.map(m => m.content.content);
  assert.deepEqual(stored.slice().sort(), [...before, ...queued, ...missed].sort());
  assertUnique(stored, 'the server history');
  assert.deepEqual(await texts(a), stored);
  await b.waitForFunction(n => document.querySelectorAll('#messages .msg .text').length >= n, stored.length);
  assert.deepEqual(await texts(b), stored);
  const seqs = await a.$$eval('#messages .msg', els => els.map(e => Number(e.dataset.seq)));
  assert.deepEqual(seqs, history.map(m => m.seq));

  // A reload shows the same.
  await a.reload();
  await online(a);
  await openConversation(a, AB);
  await waitText(a, missed[1]);
  assert.deepEqual(await texts(a), stored);
});
