// Scenario 10, a soak: 10 wasm-SDK users exchange 1,000 messages in 1:1 conversations and one group, all sending at
// once. At the end every user's local message list of every conversation equals the server's record: the same
// messages, by seq, with no gap, duplicate or reordering. COMPAT_SOAK_MESSAGES scales it.
import assert from 'node:assert/strict';
import { Env } from '../lib/env.js';
import { until } from '../lib/util.js';

const env = new Env('07-soak');
const USERS = 10;
const MESSAGES = Number(process.env.COMPAT_SOAK_MESSAGES || 1000);

const si = (x, y) => `si_${[x, y].sort().join('_')}`;

env.test(`10. soak: ${USERS} users, ${MESSAGES} messages, 1:1 and group; every local list equals the server's`,
  { timeout: 600000 }, async t => {
    const ids = Array.from({ length: USERS }, (_, i) => `soak${i}`);
    const users = await env.users(ids);
    // The Go core's debug log costs more than the messages: warnings only here.
    const clients = [];
    for (const u of users) clients.push(await env.wasm(u, { logLevel: 3 }));
    for (let i = 0; i < clients.length; i += 3) await Promise.all(clients.slice(i, i + 3).map(c => c.loginOk()));
    const http = clients.map(c => c.http.length);
    const c0 = clients[0];

    const group = await clients[0].invoke('createGroup', {
      memberUserIDs: ids.slice(1), groupInfo: { groupName: 'soak', groupType: 2 }, adminUserIDs: [], ownerUserID: ids[0],
    });
    const sg = `sg_${group.groupID}`;

    // The plan: message k is sent by user k % USERS; every 7th goes to the group, the others to a peer.
    const plan = Array.from({ length: MESSAGES }, (_, k) => {
      const from = k % USERS;
      if (k % 7 === 0) return { k, from, groupID: group.groupID, conv: sg };
      const to = (from + 1 + ((k * 7) % (USERS - 1))) % USERS;
      return { k, from, recvID: ids[to], conv: si(ids[from], ids[to]) };
    });
    const t0 = Date.now();
    await Promise.all(clients.map(async (c, i) => {
      for (const p of plan.filter(p => p.from === i)) {
        const sent = await c.sendText({ recvID: p.recvID, groupID: p.groupID }, `soak ${p.k}`);
        assert.equal(sent.status, 2, `message ${p.k} not sent`);
      }
    }));
    t.diagnostic(`sent ${MESSAGES} messages in ${Date.now() - t0} ms`);

    // Every message reaches every other participant's device by push (or a gap pull).
    const expectedBy = ids.map(id => plan.filter(p => ids[p.from] !== id && (p.groupID || p.recvID === id)).length);
    await Promise.all(clients.map((c, i) => until(async () => {
      await c.pull();
      return c.received().filter(m => m.sendID !== c.user.userID && m.contentType === 101).length >= expectedBy[i];
    }, { timeoutMs: 120000, intervalMs: 500, describe: () => `${c.label}: ${expectedBy[i]} messages, have ${c.received().length}` })));
    t.diagnostic(`delivered after ${Date.now() - t0} ms`);

    // The SDK lists a conversation's history by sendTime, and pages by the sendTime of the page's first message,
    // with no seq tiebreak: two messages the server stamped with the same millisecond may show in either order, and
    // at a page boundary one may show twice or not at all. So the lists are compared as one page each here, and
    // the stamps and a paged read are checked separately below.
    const key = m => `${m.seq}:${m.clientMsgID}`;
    const ties = [];
    const pagingFaults = [];
    for (const [i, c] of clients.entries()) {
      // The users' texts (the group's chat also shows its creation, a tip the server wrote).
      const got = c.received().filter(m => m.sendID !== c.user.userID && m.contentType === 101);
      const dup = got.length - new Set(got.map(m => m.clientMsgID)).size;
      assert.equal(dup, 0, `${c.label}: ${dup} messages delivered twice`);
      assert.equal(got.length, expectedBy[i], `${c.label}: delivered count`);

      const server = await env.server.history(c.user.userID);
      const convs = [...new Set(plan.filter(p => p.from === i || p.groupID || p.recvID === c.user.userID).map(p => p.conv))];
      for (const conv of convs) {
        const want = (server[conv] || []).filter(m => m.contentType === 101);
        const expectedCount = plan.filter(p => p.conv === conv).length;
        assert.equal(want.length, expectedCount, `server has ${want.length} of ${expectedCount} messages in ${conv}`);
        assert.deepEqual(want.map(m => m.seq), want.map((_, n) => want[0].seq + n), `server: ${conv} seqs have a gap`);
        const local = (await c.history(conv, expectedCount + 20)).filter(m => m.contentType === 101);
        const bySeq = [...local].sort((x, y) => x.seq - y.seq);
        assert.deepEqual(bySeq.map(key), want.map(key), `${c.label}: local list of ${conv} differs from the server's (gap, duplicate or other message)`);
        for (let n = 1; n < local.length; n++) {
          if (local[n].seq > local[n - 1].seq) continue;
          assert.equal(local[n].sendTime, local[n - 1].sendTime,
            `${c.label}: ${conv} lists seq ${local[n - 1].seq} before ${local[n].seq}, with different sendTimes`);
        }
        if (i === 0) {
          for (let n = 1; n < want.length; n++) {
            const [prev, cur] = [want[n - 1].sendTime, want[n].sendTime];
            if (cur <= prev) ties.push(`${conv} seq ${want[n].seq} ${cur === prev ? '=' : '<'} seq ${want[n - 1].seq}`);
          }
          const paged = (await c.history(conv, 10)).filter(m => m.contentType === 101).map(key);
          const seen = new Set(paged);
          if (paged.length !== want.length || seen.size !== paged.length || want.some(m => !seen.has(key(m)))) {
            pagingFaults.push(`${conv}: ${paged.length} listed, ${paged.length - seen.size} twice, ` +
              `${want.filter(m => !seen.has(key(m))).length} missing`);
          }
        }
      }
    }
    // The SDK sorts and pages history by sendTime: equal stamps would reorder, repeat or drop messages in its lists.
    await t.test('the server stamps each conversation with strictly increasing sendTimes', () => {
      const faults = [];
      if (ties.length) faults.push(`${ties.length} messages whose sendTime is not after the previous seq's: ${ties.slice(0, 10).join(', ')}`);
      if (pagingFaults.length) faults.push(`${c0.label} paging its history 10 at a time: ${pagingFaults.join('; ')}`);
      assert.ok(!faults.length, faults.join('\n'));
    });
    await Promise.all(clients.map((c, i) => c.assertHttpOk(http[i], 'soak')));
  });
