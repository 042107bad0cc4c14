// Scenario 9: the pure-JS SDK (@openim/client-sdk, JSON envelope, sdkType=js) on Node: login, sync, and 1:1 text
// with a wasm-SDK user (JSON envelope meets gob envelope).
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';

const env = new Env('06-js-sdk');

env.test('9. the pure-JS SDK logs in, syncs, and exchanges 1:1 text with a wasm-SDK user', async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const a = await env.wasm(alice);
  const j = await env.js(bob);
  await a.loginOk();
  const r = await j.loginOk();
  assert.deepEqual(j.find('OnSyncServerFailed', r.since), []);
  await j.assertHttpOk(0, 'JS SDK login sync');
  const [ha, hj] = [a.http.length, j.http.length];
  const [ea, ej] = [await a.mark(), await j.mark()];

  const sent = await j.sendText({ recvID: 'alice' }, 'hello from node');
  assert.equal(sent.status, 2);
  const [m1] = await a.waitReceived(1, { since: ea });
  assert.equal(m1.sendID, 'bob');
  assert.equal(m1.textElem?.content, 'hello from node');
  assert.equal(m1.clientMsgID, sent.clientMsgID);
  assert.equal(m1.senderPlatformID, 5);

  await a.sendText({ recvID: 'bob' }, 'hello from the browser');
  // The JS SDK also reports its own message, pushed back to the sending connection, through OnRecvNewMessages.
  const [m2] = await j.waitReceived(1, { since: ej, pred: m => m.sendID === 'alice' });
  assert.equal(m2.sendID, 'alice');
  assert.equal(m2.textElem?.content, 'hello from the browser');
  assert.equal(m2.seq, m1.seq + 1);
  await a.assertHttpOk(ha, 'wasm send/receive');
  await j.assertHttpOk(hj, 'JS SDK send/receive');
});
