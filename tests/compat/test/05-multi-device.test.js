// Scenario 8: one user on several devices: Web and other platforms see each other's messages; a second login on the
// same platform kicks the first; a revoked token ends the session without a reconnect loop. (Expired tokens:
// 05-token-expiry.test.js, which needs a server with a short token lifetime.)
//
// Platforms: the wasm SDK as Web (5) is the primary device. The wasm build has no keep-alive of its own and relies on
// the server's control pings, which go to Web connections only (protocol §2.12), so a wasm page on another platform
// is dropped after 30 s of silence: the "desktop" (wasm as Windows, 3) is used only within this short test. The
// pure-JS SDK as Android (2) sends its own text pings and stands for a long-lived second platform.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { sleep } from '../lib/util.js';

const env = new Env('05-multi-device');

env.test('8a. Web, desktop and mobile of one user see the messages sent from each other', async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const a = await env.wasm(alice);
  const web = await env.wasm(bob, { label: 'bob-web' });
  const desk = await env.wasm({ ...bob, token: await env.server.userToken('bob', 3) }, { label: 'bob-desktop', platformID: 3 });
  const mob = await env.js({ ...bob, token: await env.server.userToken('bob', 2) }, { label: 'bob-mobile-js', platformID: 2 });
  await Promise.all([a.loginOk(), web.loginOk(), desk.loginOk(), mob.loginOk()]);
  const http = [web, desk, mob].map(x => x.http.length);
  const marks = await Promise.all([a, web, desk, mob].map(x => x.mark()));

  const fromWeb = await web.sendText({ recvID: 'alice' }, 'sent on the web');
  const fromMob = await mob.sendText({ recvID: 'alice' }, 'sent on the phone');
  const [ma] = await Promise.all([
    a.waitReceived(2, { since: marks[0] }),
  ]);
  assert.deepEqual(ma.map(m => m.senderPlatformID), [5, 2]);
  for (const [x, since, own] of [[web, marks[1], fromWeb], [desk, marks[2], null], [mob, marks[3], fromMob]]) {
    const mine = m => m.sendID === 'bob' && (!own || m.clientMsgID !== own.clientMsgID);
    const expected = [fromWeb, fromMob].filter(m => m !== own);
    const got = await x.waitReceived(expected.length, { since, pred: mine });
    assert.deepEqual(got.map(m => m.clientMsgID), expected.map(m => m.clientMsgID), `${x.label}: the other devices' messages`);
  }
  const history = await desk.history('si_alice_bob');
  assert.deepEqual(history.map(m => m.textElem?.content), ['sent on the web', 'sent on the phone']);
  await Promise.all([web, desk, mob].map((x, i) => x.assertHttpOk(http[i], 'multi-device send/receive')));
});

env.test('8b. a second login on the same platform kicks the first session (OnKickedOffline), which stays off', async () => {
  const [carol, dave] = await env.users(['carol', 'dave']);
  const c = await env.wasm(carol);
  const d1 = await env.wasm(dave, { label: 'dave-1' });
  await Promise.all([c.loginOk(), d1.loginOk()]);
  const since1 = await d1.mark();
  const d2 = await env.wasm({ ...dave, token: await env.server.userToken('dave', 5) }, { label: 'dave-2' });
  await d2.loginOk();
  const kicked = await d1.waitForEvent('OnKickedOffline', () => true, { since: since1 });
  assert.ok(kicked);
  const opens = d1.wsOpens.length;
  const e2 = await d2.mark();
  await c.sendText({ recvID: 'dave' }, 'to the new session');
  const [m] = await d2.waitReceived(1, { since: e2 });
  assert.equal(m.textElem?.content, 'to the new session');
  await sleep(3000);
  assert.equal(d1.wsOpens.length, opens, 'dave-1 reconnected after being kicked');
  assert.deepEqual(d1.received(since1), [], 'dave-1 still received messages after being kicked');
  const status = await d1.call('getLoginStatus');
  assert.notEqual(status.data, 3, 'dave-1 still logged in after being kicked');
});

env.test('8c. a revoked token (force_logout) ends the session; logging in with it again is a token error, not a reconnect loop', async () => {
  const [erin] = await env.users(['erin']);
  const e = await env.wasm(erin);
  await e.loginOk();
  const since = await e.mark();
  await env.server.admin('/auth/force_logout', { userID: 'erin', platformID: 5 });
  await e.waitForEvent(['OnKickedOffline', 'OnUserTokenInvalid', 'OnUserTokenExpired'], () => true, { since });
  await sleep(3000);
  assert.equal(e.wsOpens.length, 1, 'erin reconnected after force_logout');

  // A revoked token is 1506 (TokenKickedError) at the handshake, which the SDK reports as OnKickedOffline (1501 would
  // be OnUserTokenExpired, the other token errors OnUserTokenInvalid); any other error would make it retry.
  const again = await env.wasm(erin, { label: 'erin-again' }); // a fresh device, the revoked token
  const r = await again.login({ timeout: 15000 });
  assert.ok(r.result.ok, `login call: ${r.result.errCode} ${r.result.errMsg}`);
  assert.equal(r.outcome.event, 'OnKickedOffline', `outcome of a login with a revoked token: ${again.tail()}`);
  assert.deepEqual(again.find('OnConnectSuccess'), []);
  await sleep(5000);
  assert.ok(again.wsOpens.length <= 1, `reconnect loop: ${again.wsOpens.length} WebSocket connections`);
});
