// Two people sign up, become friends and chat both ways (text, emoji, a picture, a file, a voice note), unread
// badges clear when read, and a group with a third person.
import assert from 'node:assert/strict';
import {
  acceptFriend, chatWithFriend, online, openConversation, requestFriend, send, signUp, tab, texts, waitFriend, waitMine,
  waitText, waitUnread,
} from '../lib/chat.js';
import { gradientPng } from '../lib/png.js';
import { World } from '../lib/world.js';

const world = new World('chat');
const ALICE = { userID: 'alice', nickname: 'Alice Martin' };
const BOB = { userID: 'bob', nickname: 'Bob Chen' };
const CAROL = { userID: 'carol', nickname: 'Carol Diaz' };
const AB = 'si_alice_bob';
let a, b;

world.test('two people sign up, become friends, chat both ways, and unread badges clear on read', async () => {
  a = await world.page('alice');
  await a.waitForSelector('#signin-form');
  await world.shot(a, 'sign-in', { readme: true });
  await signUp(a, ALICE);
  b = await world.page('bob');
  await signUp(b, BOB);

  await requestFriend(a, 'bob', 'Hi Bob, Alice from the hiking club');
  await tab(b, 'chats');
  await tab(b, 'contacts');
  await b.locator('#requests li[data-from="alice"]').waitFor();
  await b.locator('#requests-badge:text-is("1")').waitFor();
  await world.shot(b, 'contacts', { readme: true });
  await acceptFriend(b, 'alice');
  await waitFriend(a, 'bob');

  // Alice writes, with an emoji from the picker; Bob is elsewhere (on Contacts), so the messages are unread.
  await chatWithFriend(a, 'bob');
  await a.fill('#composer-input', 'Hello Bob ');
  await a.click('#emoji-button');
  await a.click('.emoji-picker .emoji[title="👋"]');
  await a.press('#composer-input', 'Enter');
  await waitMine(a, 'Hello Bob 👋');
  await send(a, 'Are you coming on Saturday?');
  await tab(b, 'chats');
  await waitUnread(b, AB, '2');
  assert.equal(await b.title(), '(2) Palaver');
  assert.equal(await b.textContent(`.conv[data-conv="${AB}"] .conv-preview`), 'Are you coming on Saturday?');
  await world.shot(b, 'conversations', { readme: true });

  // Bob reads: the badge clears, on his page and (the read state is the server's) after a reload too.
  await openConversation(b, AB);
  await waitText(b, 'Are you coming on Saturday?');
  await waitUnread(b, AB, '');
  assert.deepEqual(await texts(b), ['Hello Bob 👋', 'Are you coming on Saturday?']);
  // Alice sees that Bob read them.
  await a.locator('.msg.mine .status.read').nth(1).waitFor();

  await send(b, 'Yes! I will bring the maps 🗺️');
  await waitText(a, 'I will bring the maps');
  await send(a, 'Great, see you at 9 at the station');
  await waitText(b, 'see you at 9');
  await waitUnread(a, AB, '');
  await waitUnread(b, AB, '');
  await b.reload();
  await online(b);
  await waitUnread(b, AB, '');
  assert.equal(await b.title(), 'Palaver');
  assert.deepEqual(await texts(a), ['Hello Bob 👋', 'Are you coming on Saturday?', 'Yes! I will bring the maps 🗺️', 'Great, see you at 9 at the station']);

  // The server holds each message once, in this order.
  const history = await world.server.history('alice', AB);
  assert.deepEqual(history.map(m => m.content.content), await texts(a));
  assert.deepEqual(await a.$$eval('#messages .msg', els => els.map(e => Number(e.dataset.seq))), history.map(m => m.seq));
  // Accepting the request left a notice in the conversation, as OpenIM's apps show it.
  await a.locator('#messages .system:text-is("You are now friends. Say hello!")').waitFor();
});

world.test('pictures, files and voice notes go through the object API', async () => {
  await openConversation(b, AB);
  await a.setInputFiles('#picture-input', { name: 'sunset.png', mimeType: 'image/png', buffer: gradientPng(320, 200) });
  await b.waitForFunction(() => {
    const img = [...document.querySelectorAll('.msg.theirs img.picture')].pop();
    return img && img.complete && img.naturalWidth === 320 && img.naturalHeight === 200;
  }, null, { timeout: 20000 });

  const itinerary = 'Day 1: station at 9, ridge path, lunch at the hut.\nDay 2: lake loop.\n';
  await a.setInputFiles('#file-input', { name: 'itinerary.txt', mimeType: 'text/plain', buffer: Buffer.from(itinerary) });
  const card = b.locator('.msg.theirs .file-card').last();
  await card.waitFor({ timeout: 20000 });
  assert.equal(await card.locator('.file-name').textContent(), 'itinerary.txt');
  const href = await card.getAttribute('href');
  assert.equal(await b.evaluate(async url => (await fetch(url)).text(), href), itinerary);

  // A voice note from the (fake) microphone.
  await b.click('#voice-button');
  await b.locator('#upload-status:has-text("Recording")').waitFor();
  await b.waitForTimeout(1200);
  await b.click('#voice-button');
  const voice = a.locator('.msg.theirs .voice audio').last();
  await voice.waitFor({ timeout: 20000 });
  const audio = await a.evaluate(async url => {
    const res = await fetch(url);
    return { status: res.status, type: res.headers.get('content-type'), size: (await res.arrayBuffer()).byteLength };
  }, await voice.getAttribute('src'));
  assert.equal(audio.status, 200);
  assert.ok(audio.size > 100 && /audio|webm|ogg/.test(audio.type), JSON.stringify(audio));

  await send(a, 'The view from last time 🌅');
  await waitText(b, 'The view from last time');
  await world.shot(a, 'chat', { readme: true });
});

world.test('a group with a third person', async () => {
  const c = await world.page('carol');
  await signUp(c, CAROL);
  await requestFriend(a, 'carol');
  await acceptFriend(c, 'alice');
  await waitFriend(a, 'carol');

  await tab(a, 'contacts');
  await a.click('#new-group-button');
  await a.fill('#new-group-form [name=groupName]', 'Saturday hike');
  await a.check('#new-group-form input[value="bob"]');
  await a.check('#new-group-form input[value="carol"]');
  await a.click('#new-group-form button[type=submit]');
  await a.waitForSelector('#chat-title:text-is("Saturday hike")');
  await a.locator('#chat-sub:text-is("3 members")').waitFor();
  const group = await a.$eval('.conv.active', el => el.dataset.conv);
  assert.match(group, /^sg_/);
  await send(a, 'Who is in for Saturday?');

  // The group reaches Bob and Carol with its creation (a line in the chat, as OpenIM's apps show it) and its
  // first message, both unread.
  for (const p of [b, c]) {
    await tab(p, 'chats');
    await waitUnread(p, group, '2');
    assert.equal(await p.textContent(`.conv[data-conv="${group}"] .conv-title`), 'Saturday hike');
  }
  await openConversation(c, group);
  await waitText(c, 'Who is in for Saturday?');
  await c.locator('#messages .system', { hasText: 'created the group' }).waitFor();
  await send(c, 'Me! 🙋');
  await openConversation(b, group);
  await send(b, 'Count me in too');
  const expected = ['Who is in for Saturday?', 'Me! 🙋', 'Count me in too'];
  for (const p of [a, b, c]) {
    await waitText(p, 'Count me in too');
    assert.deepEqual(await texts(p), expected, p.label);
    await waitUnread(p, group, '');
  }
  // Group messages show their sender.
  assert.equal(await a.textContent('.msg.theirs .sender >> nth=0'), 'Carol Diaz');

  await a.click('#members-button');
  await a.locator('#member-list li').nth(2).waitFor();
  assert.deepEqual(await a.$$eval('#member-list li', els => els.map(e => e.dataset.user).sort()), ['alice', 'bob', 'carol']);
  await world.shot(a, 'group-members');
  await a.keyboard.press('Escape');
  await world.shot(a, 'group', { readme: true });

  // The owner renames the group and removes Carol, who can then no longer write there.
  await a.click('#members-button');
  await a.fill('dialog .rename [name=groupName]', 'Saturday hike 🥾');
  await a.click('dialog .rename button');
  await a.locator('#chat-title:text-is("Saturday hike 🥾")').waitFor();
  await a.click('#member-list li[data-user="carol"] button');
  // The dialog reopens with the members as they are now.
  await a.waitForFunction(() => {
    const ids = [...document.querySelectorAll('#member-list li')].map(li => li.dataset.user).sort();
    return ids.join() === 'alice,bob';
  });
  await a.keyboard.press('Escape');
  await a.locator('#chat-sub:text-is("2 members")').waitFor();
  for (const line of ['renamed the group to Saturday hike 🥾', 'removed Carol']) {
    await b.locator('#messages .system', { hasText: line }).waitFor();
  }
  await c.fill('#composer-input', 'Still here?');
  await c.press('#composer-input', 'Enter');
  await c.locator('.msg.mine.failed').waitFor();
  await send(b, 'Just the two of us then');
  await waitText(a, 'Just the two of us then');
});
