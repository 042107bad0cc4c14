// Scenario 1: two users on fresh devices log in; both reach OnSyncServerFinish with no OnSyncServerFailed.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';

const env = new Env('01-login');

// The wasm SDK logs a failed sync route (even a 404) as a warning and still fires OnSyncServerFinish, so the
// events alone prove little: every HTTP call of the login must also have answered 200 with errCode 0.
env.test('1. two users on fresh devices log in and finish the initial sync', async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const [a, b] = [await env.wasm(alice), await env.wasm(bob)];
  const results = await Promise.all([a.login(), b.login()]);
  for (const [c, r] of [[a, results[0]], [b, results[1]]]) {
    assert.ok(r.result.ok, `${c.label}: login call failed: ${r.result.errCode} ${r.result.errMsg}`);
    assert.equal(r.outcome.event, 'OnSyncServerFinish',
      `${c.label}: login ended with ${r.outcome.event} (${r.outcome.errCode} ${r.outcome.errMsg})`);
    assert.deepEqual(c.find('OnSyncServerFailed'), [], `${c.label}: OnSyncServerFailed`);
    assert.ok(c.find('OnConnectSuccess').length >= 1, `${c.label}: no OnConnectSuccess`);
    await c.assertHttpOk(0, 'login sync');
    const self = await c.invoke('getSelfUserInfo');
    assert.equal(self.userID, c.user.userID);
    assert.equal(self.nickname, c.user.nickname);
  }
});
