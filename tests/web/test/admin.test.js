// The admin console: sign in with the admin secret, the overview, find a user, force a logout (the user's page
// shows it), block and unblock, groups and their members.
import assert from 'node:assert/strict';
import { PASSWORD, chatWithFriend, online, send, signIn, signUp } from '../lib/chat.js';
import { World } from '../lib/world.js';

const world = new World('admin');

world.test('the admin signs in, finds a user, forces a logout, and the user\'s page shows it', async () => {
  const server = world.server;
  const people = [['alice', 'Alice Martin'], ['bob', 'Bob Chen'], ['dave', 'Dave Okafor'], ['erin', 'Erin Novak']];
  await server.accounts(people.map(([userID, nickname]) => ({ userID, nickname, password: PASSWORD })));
  await server.admin('/group/create_group', { ownerUserID: 'alice', memberUserIDs: ['bob', 'dave'], adminUserIDs: [], groupInfo: { groupName: 'Book club', groupType: 2 } });

  // Carol signs up in the web client and chats a little.
  const c = await world.page('carol');
  await signUp(c, { userID: 'carol', nickname: 'Carol Diaz' });
  await server.admin('/friend/import_friend', { ownerUserID: 'carol', friendUserIDs: ['alice'] });
  await c.reload();
  await online(c);
  await chatWithFriend(c, 'alice');
  await send(c, 'Hi Alice, are you around?');
  // A failed login, for the console's counters.
  assert.equal((await server.post('/account/login', { userID: 'carol', password: 'wrong password', platform: 5 })).errCode, 20001);

  const admin = await world.page('admin', { path: '/admin', viewport: { width: 1200, height: 800 } });
  await admin.fill('#admin-signin [name=secret]', 'not the secret');
  await admin.click('#admin-signin button[type=submit]');
  await admin.locator('.form-error:text-is("Wrong secret.")').waitFor();
  await admin.fill('#admin-signin [name=secret]', server.secret);
  await admin.click('#admin-signin button[type=submit]');

  // The overview: health, version, who is online on which platform, counts, rates, storage.
  await admin.locator('#health:text-is("Healthy")').waitFor();
  assert.equal(await admin.textContent('#stat-users'), '5');
  assert.equal(await admin.textContent('#stat-groups'), '1');
  assert.equal(await admin.textContent('#stat-connections'), '1');
  assert.match(await admin.textContent('#platforms'), /Web\s*1/);
  // Carol's message, and the line the book club's creation left in its chat.
  assert.match(await admin.textContent('[data-rate=messages]'), /2 since start/);
  assert.match(await admin.textContent('[data-rate=loginFailures]'), /1 since start/);
  assert.notEqual(await admin.textContent('#stat-db'), '0 B');
  await world.shot(admin, 'admin-overview', { readme: true });

  // Users: search finds Carol, online on the Web.
  await admin.click('#tab-users');
  await admin.locator('#users-table').waitFor();
  await admin.fill('#user-search', 'car');
  await admin.press('#user-search', 'Enter');
  const row = admin.locator('#users-table tr[data-user="carol"]');
  const rows = n => admin.waitForFunction(k => document.querySelectorAll('#users-table tbody tr').length === k, n);
  await rows(1);
  assert.equal(await row.count(), 1);
  assert.equal(await row.locator('.online').textContent(), 'Web');
  await admin.fill('#user-search', '');
  await admin.press('#user-search', 'Enter');
  await rows(5);
  await world.shot(admin, 'admin-users', { readme: true });
  await admin.fill('#user-search', 'carol');
  await admin.press('#user-search', 'Enter');
  await rows(1);

  // Force logout: Carol's page is signed out and says why.
  await row.locator('.force-logout').click();
  await admin.click('dialog.modal button.danger');
  await c.locator('#auth-notice').waitFor();
  assert.match(await c.textContent('#auth-notice'), /signed out/);
  await world.shot(c, 'signed-out', { readme: true });
  await row.locator('.online:text-is("—")').waitFor();

  // Block: Carol cannot sign in until unblocked.
  await row.locator('.block').click();
  await admin.click('dialog.modal button.danger');
  await row.locator('.pill:text-is("Blocked")').waitFor();
  const form = c.locator('#signin-form');
  await form.locator('[name=userID]').fill('carol');
  await form.locator('[name=password]').fill(PASSWORD);
  await form.locator('button[type=submit]').click();
  await c.locator('.form-error:has-text("blocked")').waitFor();
  await row.locator('.block').click();
  await row.locator('.pill:text-is("Active")').waitFor();
  await signIn(c, { userID: 'carol' });

  // Carol changes her password, signs out, and signs in with the new one.
  await c.click('#me-menu-button');
  await c.click('#me-menu button:text-is("Change password")');
  await c.fill('#password-form [name=currentPassword]', PASSWORD);
  await c.fill('#password-form [name=newPassword]', 'a brand new passphrase');
  await c.fill('#password-form [name=confirm]', 'a brand new passphrase');
  await c.click('#password-form button[type=submit]');
  await c.locator('#password-form').waitFor({ state: 'detached' });
  await c.click('#me-menu-button');
  await c.click('#sign-out');
  await signIn(c, { userID: 'carol', password: 'a brand new passphrase' });

  // Register a user from the console; they can sign in.
  await admin.click('#register-user');
  await admin.fill('#register-form [name=userID]', 'frank');
  await admin.fill('#register-form [name=nickname]', 'Frank Li');
  await admin.fill('#register-form [name=password]', PASSWORD);
  await admin.click('#register-form button[type=submit]');
  await admin.locator('#users-table tr[data-user="frank"]').waitFor();
  assert.equal((await server.post('/account/login', { userID: 'frank', password: PASSWORD, platform: 5 })).errCode, 0);

  // Groups and their members.
  await admin.click('#tab-groups');
  const group = admin.locator('#groups-table tbody tr').first();
  await group.waitFor();
  assert.match(await group.textContent(), /Book club/);
  await group.locator('.members').click();
  await admin.locator('#members-table tbody tr').nth(2).waitFor();
  assert.match(await admin.textContent('#members-table'), /Alice Martin \(alice\)[\s\S]*Owner/);
  await world.shot(admin, 'admin-group-members');
  await admin.keyboard.press('Escape');
  await group.locator('.dismiss').click();
  await admin.click('dialog.modal button.danger');
  await group.locator('.pill:text-is("Dismissed")').waitFor();
});
