// Scenario 8, expired tokens: a server whose tokens live 6 s (long enough for a login's sync,
// which uses the token on every HTTP call). Logging in with an expired token must give
// OnUserTokenExpired (the handshake's 1501), not a reconnect loop.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { sleep } from '../lib/util.js';

const env = new Env('05-token-expiry', { server: { env: { PALAVER_TOKEN_TTL_SECS: '6' } } });

env.test('8d. an expired token gives OnUserTokenExpired and no reconnect loop', async () => {
  const [alice] = await env.users(['alice']);
  const a = await env.wasm(alice);
  await sleep(Math.max(0, alice.issuedAt + 6500 - Date.now()));
  const r = await a.login({ timeout: 15000 });
  assert.ok(r.result.ok, `login call: ${r.result.errCode} ${r.result.errMsg}`);
  assert.equal(r.outcome.event, 'OnUserTokenExpired', `outcome: ${a.tail()}`);
  assert.deepEqual(a.find('OnConnectSuccess'), []);
  await sleep(5000);
  assert.ok(a.wsOpens.length <= 1, `reconnect loop: ${a.wsOpens.length} WebSocket connections`);

  const fresh = await env.server.userToken('alice', 5); // a valid token still works on the same page
  const since = await a.mark();
  await a.loginOk({ token: fresh });
  assert.ok(a.find('OnConnectSuccess', since).length >= 1);
});
