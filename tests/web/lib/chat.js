// What a person does in the web client, as page operations (selectors are the client's own ids and data
// attributes).
import assert from 'node:assert/strict';

export const PASSWORD = 'correct horse battery';

/** Waits until the page's gateway connection is up. */
export async function online(page) {
  await page.waitForFunction(() => document.querySelector('#conn')?.dataset.state === 'online', null, { timeout: 20000 });
}

export async function signUp(page, { userID, nickname, password = PASSWORD }) {
  await page.click('.auth-tabs [data-mode=signup]');
  const form = page.locator('#signup-form');
  await form.locator('[name=userID]').fill(userID);
  await form.locator('[name=nickname]').fill(nickname);
  await form.locator('[name=password]').fill(password);
  await form.locator('[name=confirm]').fill(password);
  await form.locator('button[type=submit]').click();
  await page.waitForSelector(`#me-name:text-is("${nickname}")`);
  await online(page);
}

export async function signIn(page, { userID, password = PASSWORD }) {
  const form = page.locator('#signin-form');
  await form.locator('[name=userID]').fill(userID);
  await form.locator('[name=password]').fill(password);
  await form.locator('button[type=submit]').click();
  await page.waitForSelector('#me-name');
  await online(page);
}

export async function tab(page, name) {
  await page.click(`#tab-${name}`);
}

/** Sends a friend request from the Contacts tab. */
export async function requestFriend(page, userID, message = '') {
  await tab(page, 'contacts');
  await page.fill('#find-input', userID);
  await page.press('#find-input', 'Enter');
  const card = page.locator('.user-card');
  await card.waitFor();
  if (message) await card.locator('[name=reqMsg]').fill(message);
  await card.locator('#add-friend-button').click();
  await card.locator('text=Request sent.').waitFor();
}

/** Accepts the pending request from `fromUserID` (the Contacts tab loads requests when opened). */
export async function acceptFriend(page, fromUserID) {
  await tab(page, 'chats');
  await tab(page, 'contacts');
  const row = page.locator(`#requests li[data-from="${fromUserID}"]`);
  await row.waitFor();
  await row.locator('.accept').click();
  await page.locator(`#friends li[data-user="${fromUserID}"]`).waitFor();
}

/** Waits until `userID` is in the page's friend list (re-opening the Contacts tab, which reloads requests). */
export async function waitFriend(page, userID) {
  const deadline = Date.now() + 20000;
  for (;;) {
    await tab(page, 'chats');
    await tab(page, 'contacts');
    try {
      await page.locator(`#friends li[data-user="${userID}"]`).waitFor({ timeout: 1000 });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
  }
}

/** Opens the 1:1 chat with a friend from the Contacts tab. */
export async function chatWithFriend(page, userID) {
  await tab(page, 'contacts');
  await page.click(`#friends li[data-user="${userID}"]`);
  await page.waitForSelector('#composer-input');
}

/** Opens a conversation from the list. */
export async function openConversation(page, conversationID) {
  await tab(page, 'chats');
  await page.click(`.conv[data-conv="${conversationID}"]`);
  await page.waitForSelector('#composer-input');
}

/** Types and sends a text; waits until the server has stored it (it has a seq). */
export async function send(page, text) {
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
  await waitMine(page, text);
}

/** Waits until my message `text` is stored (has a seq). */
export async function waitMine(page, text) {
  await page.locator('.msg.mine[data-seq]:not([data-seq=""])', { has: page.locator(`.text:text-is("${text}")`) }).waitFor({ timeout: 20000 });
}

/** Waits until a message with `text` is shown. */
export async function waitText(page, text) {
  await page.locator('.msg .text', { hasText: text }).first().waitFor({ timeout: 20000 });
}

/** The texts of the open conversation, in order. */
export async function texts(page) {
  return page.$$eval('#messages .msg .text', els => els.map(e => e.textContent));
}

/** The unread badge of a conversation in the list ('' when none). */
export async function unread(page, conversationID) {
  return page.$eval(`.conv[data-conv="${conversationID}"]`, el => el.querySelector('.unread-badge')?.textContent || '').catch(() => null);
}

export async function waitUnread(page, conversationID, expected) {
  await page.waitForFunction(([id, n]) => {
    const el = document.querySelector(`.conv[data-conv="${id}"]`);
    return el && (el.querySelector('.unread-badge')?.textContent || '') === n;
  }, [conversationID, expected], { timeout: 20000 });
}

export function assertUnique(list, what) {
  assert.equal(new Set(list).size, list.length, `${what} has duplicates: ${JSON.stringify(list)}`);
}
