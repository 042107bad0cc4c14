// Files: the wasm SDK uploads a picture through OpenIM's object API (part_limit, initiate_multipart_upload, a
// presigned PUT per part to Palaver's own upload URLs from the page's origin, complete_multipart_upload) and
// sends it as a picture message; the receiving SDK gets the message and downloads the same bytes from its URL.
// A second send of the same picture is answered at initiate: nothing is uploaded again.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Env } from '../lib/env.js';
import { sleep, until } from '../lib/util.js';

const env = new Env('40-files');

/** A PNG signature and header followed by pseudo-random bytes: `size` bytes, two upload parts when over 5 MiB. */
function picture(size, seed) {
  const head = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
  const body = crypto.createHash('sha256').update(String(seed)).digest();
  const out = Buffer.alloc(size);
  head.copy(out, 0);
  for (let i = head.length; i < size; i += body.length) body.copy(out, i);
  for (let i = head.length; i < size; i += 4099) out[i] ^= (i * 31) & 0xff;
  return out;
}

/** Creates a picture message from `bytes` in `client`'s page (createImageMessageByFile) and sends it to `recvID`. */
async function sendPicture(client, recvID, bytes, name) {
  const key = crypto.randomUUID();
  const stored = await client.page.evaluate(([k, n, b]) => window.__putFile(k, n, 'image/png', b),
    [key, name, bytes.toString('base64')]);
  assert.equal(stored, bytes.length);
  const info = { uuid: crypto.randomUUID(), type: 'image/png', size: bytes.length, width: 1, height: 1, url: '' };
  const message = await client.invoke('createImageMessageByFile', {
    sourcePicture: info, bigPicture: { ...info }, snapshotPicture: { ...info }, sourcePath: name, file: { __file: key },
  });
  return client.invoke('sendMessage', { recvID, groupID: '', message });
}

env.test('40. a picture goes up through the object API and comes down byte-identical', { timeout: 180000 }, async () => {
  const [alice, bob] = await env.users(['alice', 'bob']);
  const [a, b] = [await env.wasm(alice), await env.wasm(bob)];
  await Promise.all([a.loginOk(), b.loginOk()]);
  const [ha, hb, eb] = [a.http.length, b.http.length, await b.mark()];

  const bytes = picture(5 * 1024 * 1024 + 4321, 1);
  const sent = await sendPicture(a, 'bob', bytes, 'holiday.png');
  assert.equal(sent.status, 2, 'sendMessage succeeded');
  assert.equal(sent.contentType, 102);
  const url = sent.pictureElem?.sourcePicture?.url;
  assert.match(url ?? '', new RegExp(`^${env.server.apiUrl}/object/alice/`), `the picture's URL is Palaver's: ${url}`);

  // The page's HTTP records arrive asynchronously (after each response body): wait for the two part PUTs.
  const puts = await until(() => {
    const p = a.http.slice(ha).filter(h => h.method === 'PUT');
    return p.length >= 2 && p;
  }, { describe: () => `two part PUTs recorded for alice; have ${a.http.slice(ha).map(h => `${h.method} ${h.route}`).join(', ')}` });
  assert.equal(puts.length, 2, 'two parts were PUT');
  assert.ok(puts.every(h => h.status === 200 && h.route.startsWith('/object-upload/')), JSON.stringify(puts.map(h => [h.route, h.status])));
  // The completion's record, like the parts', may come in after sendMessage has answered.
  for (const route of ['/object/part_limit', '/object/initiate_multipart_upload', '/object/complete_multipart_upload']) {
    await until(() => a.http.slice(ha).some(h => h.route === route), { describe: () => `alice called ${route}` });
  }
  await a.assertHttpOk(ha, 'upload and send');

  const [m] = await b.waitReceived(1, { since: eb });
  assert.equal(m.contentType, 102);
  assert.equal(m.clientMsgID, sent.clientMsgID);
  assert.equal(m.pictureElem?.sourcePicture?.url, url, 'bob got the picture URL');
  assert.equal(m.pictureElem?.sourcePicture?.size, bytes.length);

  // Bob's page downloads it cross-origin, as an app shows it; the thumbnail URL the SDK made serves it too.
  for (const u of [url, m.pictureElem?.snapshotPicture?.url]) {
    const got = await b.page.evaluate(x => window.__fetch(x), u);
    assert.equal(got.status, 200, u);
    assert.equal(got.type, 'image/png');
    assert.equal(Number(got.length), bytes.length);
    assert.ok(Buffer.from(got.base64, 'base64').equals(bytes), `the bytes downloaded from ${u} are the bytes sent`);
  }
  await b.assertHttpOk(hb, 'receive and download');

  // The conversation list shows a picture as the latest message.
  const conv = (await b.invoke('getAllConversationList')).find(c => c.conversationID === 'si_alice_bob');
  assert.equal(JSON.parse(conv.latestMsg).contentType, 102);

  // The same picture again: answered at initiate, no PUT, and a new URL that serves the same bytes.
  await sleep(300); // let the first send's last HTTP records arrive before marking
  const h2 = a.http.length;
  const again = await sendPicture(a, 'bob', bytes, 'holiday-again.png');
  assert.equal(again.status, 2);
  const init = await until(() => a.http.slice(h2).find(h => h.route === '/object/initiate_multipart_upload'),
    { describe: () => 'the second initiate_multipart_upload recorded' });
  await sleep(300);
  assert.equal(a.http.slice(h2).filter(h => h.method === 'PUT').length, 0, 'nothing uploaded the second time');
  assert.ok(init && init.respBody?.data?.url && init.respBody.data.upload === null, JSON.stringify(init?.respBody));
  const againUrl = again.pictureElem?.sourcePicture?.url;
  assert.notEqual(againUrl, url);
  const res = await fetch(againUrl);
  assert.equal(res.status, 200);
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(bytes));
  await a.assertHttpOk(h2, 'second send');
});
