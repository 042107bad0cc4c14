// The admin console: sign in with the admin secret, then the server's overview, users and groups.

import { Api, ApiError } from './api.js';
import { $, avatar, bytes, confirmDialog, dialog, h, icon, shortTime, toast } from './ui.js';

const TOKEN_KEY = 'palaver.admin';
const PLATFORMS = { 1: 'iOS', 2: 'Android', 3: 'Windows', 4: 'macOS', 5: 'Web', 6: 'Mini web', 7: 'Linux', 8: 'Android pad', 9: 'iPad', 10: 'Admin', 11: 'HarmonyOS' };
const PAGE = 20;
const app = $('#app');
const api = new Api({ onTokenError: () => signOut('Your admin session has ended. Please sign in again.') });
const view = { tab: 'overview', userQuery: '', userPage: 1, groupQuery: '', groupPage: 1 };
let refreshTimer = null;

function boot() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) { api.token = token; showConsole(); } else showSignIn();
}

function signOut(notice = '') {
  clearInterval(refreshTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  api.token = '';
  showSignIn(notice);
}

function showSignIn(notice = '') {
  document.title = 'Palaver admin';
  const error = h('p', { class: 'form-error', role: 'alert' });
  app.replaceChildren(h('div', { class: 'auth' }, h('form', { class: 'auth-card', id: 'admin-signin', onsubmit: async e => {
    e.preventDefault();
    const f = e.target;
    error.textContent = '';
    try {
      const data = await api.post('/auth/get_admin_token', { secret: f.secret.value, userID: f.adminID.value.trim() || 'imAdmin' }, { token: '' });
      sessionStorage.setItem(TOKEN_KEY, data.token);
      api.token = data.token;
      showConsole();
    } catch (err) {
      error.textContent = err.code === 1002 ? 'Wrong secret.' : err instanceof ApiError ? err.friendly : String(err);
    }
  } },
  h('div', { class: 'brand' }, h('img', { src: $('link[rel=icon]').href, alt: '', class: 'logo' }), h('h1', { text: 'Palaver admin' })),
  notice ? h('p', { class: 'notice', text: notice }) : null,
  h('label', { class: 'field' }, h('span', { text: 'Admin secret' }), h('input', { name: 'secret', type: 'password', required: true, autocomplete: 'current-password' })),
  h('details', {}, h('summary', { class: 'muted', text: 'Admin user' }), h('label', { class: 'field' }, h('span', { text: 'Admin user ID' }), h('input', { name: 'adminID', value: 'imAdmin' }))),
  h('p', { class: 'hint', text: 'The secret is in the server\'s data folder (admin-secret) unless it was configured.' }),
  h('button', { type: 'submit', class: 'primary wide' }, 'Sign in'),
  error)));
  $('#admin-signin input[name=secret]').focus();
}

function showConsole() {
  document.title = 'Palaver admin';
  app.replaceChildren(h('div', { class: 'console' },
    h('header', { class: 'topbar' },
      h('div', { class: 'brand' }, h('img', { src: $('link[rel=icon]').href, alt: '', class: 'logo' }), h('span', { class: 'title', text: 'Palaver admin' })),
      h('nav', { class: 'tabs', role: 'tablist' }, ['overview', 'users', 'groups'].map(t => h('button', { type: 'button', role: 'tab', id: `tab-${t}`, onclick: () => setTab(t) }, t[0].toUpperCase() + t.slice(1)))),
      h('span', { class: 'server', id: 'server-info' }),
      h('button', { type: 'button', class: 'secondary small', id: 'admin-sign-out', onclick: () => signOut() }, 'Sign out')),
    h('main', { class: 'content', id: 'content' })));
  setTab(view.tab);
}

function setTab(tab) {
  view.tab = tab;
  clearInterval(refreshTimer);
  document.querySelectorAll('.topbar .tabs button').forEach(b => b.setAttribute('aria-selected', String(b.id === `tab-${tab}`)));
  if (tab === 'overview') {
    renderOverview();
    refreshTimer = setInterval(renderOverview, 5000);
  } else if (tab === 'users') renderUsers();
  else renderGroups();
}

function failed(err) {
  if (!(err instanceof ApiError && err.isTokenError)) toast(err.friendly || err.message || String(err), 'error');
}

// -----------------------------------------------------------------------------------------------------------------
// Overview

function uptime(seconds) {
  const d = Math.floor(seconds / 86400), hh = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
  return d ? `${d} d ${hh} h` : hh ? `${hh} h ${m} min` : `${m} min ${seconds % 60} s`;
}

/** A bar chart of per-minute counts (oldest left), as SVG. */
function sparkline(values) {
  const NS = 'http://www.w3.org/2000/svg';
  const w = 240, hgt = 48, max = Math.max(1, ...values), bw = w / values.length;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  values.forEach((v, i) => {
    if (!v) return;
    const r = document.createElementNS(NS, 'rect');
    const bh = Math.max(1.5, (v / max) * (hgt - 2));
    r.setAttribute('x', String(i * bw + 0.5));
    r.setAttribute('y', String(hgt - bh));
    r.setAttribute('width', String(Math.max(1, bw - 1)));
    r.setAttribute('height', String(bh));
    svg.append(r);
  });
  return svg;
}

function card(title, ...body) {
  return h('section', { class: 'card' }, h('h2', { text: title }), ...body);
}

function stat(label, value, id) {
  return h('div', { class: 'stat' }, h('div', { class: 'value', id, text: String(value) }), h('div', { class: 'label', text: label }));
}

async function renderOverview() {
  let o;
  try { o = await api.post('/palaver/admin/overview', {}); } catch (err) { failed(err); return; }
  if (view.tab !== 'overview') return;
  $('#server-info').replaceChildren(
    h('span', { class: `pill ${o.health === 'ok' ? 'ok' : 'bad'}`, id: 'health', text: o.health === 'ok' ? 'Healthy' : o.health }),
    h('span', { class: 'muted', text: ` v${o.version}` }));
  const rate = (name, label) => {
    const r = o.rates[name];
    const last = r.perMinute[r.perMinute.length - 1] || 0;
    const hour = r.perMinute.reduce((a, b) => a + b, 0);
    return h('div', { class: 'rate', dataset: { rate: name } },
      h('div', { class: 'rate-head' }, h('span', { class: 'rate-label', text: label }), h('span', { class: 'muted', text: `${last} this minute · ${hour} last hour · ${o.rates[name].total} since start` })),
      sparkline(r.perMinute));
  };
  const platforms = Object.entries(o.connections);
  $('#content').replaceChildren(h('div', { class: 'grid' },
    card('Server',
      h('div', { class: 'stats' }, stat('Health', o.health === 'ok' ? 'OK' : o.health, 'stat-health'), stat('Version', o.version, 'stat-version'), stat('Up for', uptime(o.uptimeSeconds), 'stat-uptime')),
      h('p', { class: 'muted small', text: `Started ${new Date(o.startedAt).toLocaleString()}` })),
    card('Online',
      h('div', { class: 'stats' }, stat('Connections', o.connectionCount, 'stat-connections'), stat('People online', o.onlineUsers, 'stat-online')),
      platforms.length
        ? h('table', { class: 'small-table', id: 'platforms' }, h('tbody', {}, platforms.map(([p, n]) => h('tr', {}, h('td', { text: PLATFORMS[{ IOS: 1, Android: 2, Windows: 3, OSX: 4, Web: 5, MiniWeb: 6, Linux: 7, APad: 8, IPad: 9, Admin: 10, HarmonyOS: 11 }[p]] || p }), h('td', { class: 'num', text: String(n) })))))
        : h('p', { class: 'muted', text: 'No one is connected.' })),
    card('Data',
      h('div', { class: 'stats' }, stat('Users', o.users, 'stat-users'), stat('Accounts', o.accounts, 'stat-accounts'), stat('Groups', o.groups, 'stat-groups'), stat('Messages', o.messages, 'stat-messages'))),
    card('Storage',
      h('div', { class: 'stats' }, stat('Database', bytes(o.storage.databaseBytes + o.storage.walBytes), 'stat-db'), stat('Files', `${bytes(o.storage.objectsBytes)}${o.storage.objectsPartial ? '+' : ''}`, 'stat-files')),
      h('p', { class: 'muted small', text: `${o.storage.objectsFiles} stored files; write-ahead log ${bytes(o.storage.walBytes)}` })),
    h('section', { class: 'card span2' }, h('h2', { text: 'Activity per minute (last hour)' }),
      rate('messages', 'Messages'), rate('connections', 'Connections'), rate('logins', 'Password logins'), rate('loginFailures', 'Failed logins')),
    h('section', { class: 'card span2' }, h('h2', { text: 'Recent warnings and errors' }),
      o.recentErrors.length
        ? h('table', { class: 'table errors', id: 'recent-errors' },
          h('thead', {}, h('tr', {}, ['Time', 'Level', 'Where', 'What'].map(t => h('th', { text: t })))),
          h('tbody', {}, o.recentErrors.slice(0, 50).map(e => h('tr', { class: e.level.toLowerCase() },
            h('td', { class: 'nowrap', text: new Date(e.time).toLocaleString() }), h('td', { text: e.level }), h('td', { class: 'mono', text: e.target }), h('td', { class: 'mono wrap', text: e.text })))))
        : h('p', { class: 'muted', text: 'None since the server started.' }))));
}

// -----------------------------------------------------------------------------------------------------------------
// Users

function pager(page, total, go) {
  const pages = Math.max(1, Math.ceil(total / PAGE));
  return h('div', { class: 'pager' },
    h('span', { class: 'muted', text: `${total} found` }),
    h('button', { type: 'button', class: 'secondary small', disabled: page <= 1, onclick: () => go(page - 1) }, '‹ Previous'),
    h('span', { text: `Page ${page} of ${pages}` }),
    h('button', { type: 'button', class: 'secondary small', disabled: page >= pages, onclick: () => go(page + 1) }, 'Next ›'));
}

async function renderUsers() {
  let data;
  try {
    data = await api.post('/palaver/admin/search_users', { keyword: view.userQuery, pagination: { pageNumber: view.userPage, showNumber: PAGE } });
  } catch (err) { failed(err); return; }
  if (view.tab !== 'users') return;
  const search = h('form', { class: 'toolbar', onsubmit: e => { e.preventDefault(); view.userQuery = e.target.q.value.trim(); view.userPage = 1; renderUsers(); } },
    h('input', { type: 'search', name: 'q', id: 'user-search', value: view.userQuery, placeholder: 'Search users by ID or name', 'aria-label': 'Search users' }),
    h('button', { type: 'submit', class: 'primary' }, 'Search'),
    h('span', { class: 'spacer' }),
    h('button', { type: 'button', class: 'secondary', id: 'register-user', onclick: registerUser }, icon('plus', { size: 16 }), ' Register user'));
  const rows = data.users.map(u => h('tr', { dataset: { user: u.userID } },
    h('td', {}, h('div', { class: 'cell-user' }, avatar({ id: u.userID, name: u.nickname, url: u.faceURL, size: 32, online: u.onlinePlatformIDs.length > 0 }),
      h('div', {}, h('div', { class: 'strong', text: u.nickname || u.userID }), h('div', { class: 'muted mono', text: u.userID })))),
    h('td', { text: u.createTime ? new Date(u.createTime).toLocaleDateString() : '' }),
    h('td', { class: 'online', text: u.onlinePlatformIDs.map(p => PLATFORMS[p] || p).join(', ') || '—' }),
    h('td', {}, h('span', { class: `pill ${u.blocked ? 'bad' : 'ok'}`, text: u.blocked ? 'Blocked' : 'Active' })),
    h('td', {}, h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'secondary small force-logout', onclick: async () => {
        if (!(await confirmDialog('Force logout?', `${u.userID} is signed out everywhere and must sign in again.`, 'Sign out'))) return;
        try { await api.post('/palaver/admin/force_logout', { userID: u.userID }); toast(`${u.userID} was signed out.`); renderUsers(); } catch (err) { failed(err); }
      } }, 'Force logout'),
      h('button', { type: 'button', class: `${u.blocked ? 'secondary' : 'danger'} small block`, onclick: async () => {
        if (!u.blocked && !(await confirmDialog('Block this user?', `${u.userID} is signed out and cannot sign in until unblocked.`, 'Block'))) return;
        try { await api.post('/palaver/admin/block_user', { userID: u.userID, blocked: !u.blocked }); renderUsers(); } catch (err) { failed(err); }
      } }, u.blocked ? 'Unblock' : 'Block')))));
  $('#content').replaceChildren(h('section', { class: 'card' },
    search,
    data.users.length
      ? h('table', { class: 'table', id: 'users-table' },
        h('thead', {}, h('tr', {}, ['User', 'Joined', 'Online on', 'Status', ''].map(t => h('th', { text: t })))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted', text: 'No users match.' }),
    pager(view.userPage, data.total, p => { view.userPage = p; renderUsers(); })));
}

function registerUser() {
  dialog('Register a user', close => h('form', { class: 'body', id: 'register-form', onsubmit: async e => {
    e.preventDefault();
    const f = e.target;
    try {
      await api.post('/account/register', { user: { userID: f.userID.value.trim(), nickname: f.nickname.value.trim(), password: f.password.value }, autoLogin: false });
      close(true);
      toast(`${f.userID.value.trim()} can now sign in.`);
      view.userQuery = f.userID.value.trim();
      renderUsers();
    } catch (err) { failed(err); }
  } },
  h('label', { class: 'field' }, h('span', { text: 'User ID' }), h('input', { name: 'userID', required: true, autocapitalize: 'none' })),
  h('label', { class: 'field' }, h('span', { text: 'Display name' }), h('input', { name: 'nickname', maxlength: 64 })),
  h('label', { class: 'field' }, h('span', { text: 'Password' }), h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' })),
  h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Register'))));
}

// -----------------------------------------------------------------------------------------------------------------
// Groups

async function renderGroups() {
  let data;
  try {
    data = await api.post('/palaver/admin/search_groups', { keyword: view.groupQuery, pagination: { pageNumber: view.groupPage, showNumber: PAGE } });
  } catch (err) { failed(err); return; }
  if (view.tab !== 'groups') return;
  const search = h('form', { class: 'toolbar', onsubmit: e => { e.preventDefault(); view.groupQuery = e.target.q.value.trim(); view.groupPage = 1; renderGroups(); } },
    h('input', { type: 'search', name: 'q', id: 'group-search', value: view.groupQuery, placeholder: 'Search groups by ID or name', 'aria-label': 'Search groups' }),
    h('button', { type: 'submit', class: 'primary' }, 'Search'));
  const rows = data.groups.map(g => h('tr', { dataset: { group: g.groupID } },
    h('td', {}, h('div', { class: 'cell-user' }, avatar({ id: g.groupID, name: g.groupName, url: g.faceURL, size: 32, group: true }),
      h('div', {}, h('div', { class: 'strong', text: g.groupName || '(no name)' }), h('div', { class: 'muted mono', text: g.groupID })))),
    h('td', { class: 'mono', text: g.ownerUserID }),
    h('td', { class: 'num', text: String(g.memberCount) }),
    h('td', { text: g.createTime ? shortTime(g.createTime) : '' }),
    h('td', {}, h('span', { class: `pill ${g.status === 2 ? 'bad' : 'ok'}`, text: g.status === 2 ? 'Dismissed' : g.status === 3 ? 'Muted' : 'Active' })),
    h('td', {}, h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'secondary small members', onclick: () => showMembers(g) }, 'Members'),
      g.status === 2 ? null : h('button', { type: 'button', class: 'danger small dismiss', onclick: async () => {
        if (!(await confirmDialog('Dismiss the group?', `“${g.groupName}” is closed for all ${g.memberCount} members.`, 'Dismiss'))) return;
        try { await api.post('/group/dismiss_group', { groupID: g.groupID, deleteMember: false }); toast('Dismissed.'); renderGroups(); } catch (err) { failed(err); }
      } }, 'Dismiss')))));
  $('#content').replaceChildren(h('section', { class: 'card' },
    search,
    data.groups.length
      ? h('table', { class: 'table', id: 'groups-table' },
        h('thead', {}, h('tr', {}, ['Group', 'Owner', 'Members', 'Created', 'Status', ''].map(t => h('th', { text: t })))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted', text: 'No groups match.' }),
    pager(view.groupPage, data.total, p => { view.groupPage = p; renderGroups(); })));
}

async function showMembers(g) {
  let data;
  try { data = await api.post('/group/get_group_member_list', { groupID: g.groupID, pagination: { pageNumber: 1, showNumber: 500 }, filter: 0, keyword: '' }); } catch (err) { failed(err); return; }
  const role = r => (r === 100 ? 'Owner' : r === 60 ? 'Admin' : 'Member');
  dialog(`${g.groupName || g.groupID}: members`, () => h('div', { class: 'body' },
    h('table', { class: 'table', id: 'members-table' },
      h('thead', {}, h('tr', {}, ['Member', 'Role', 'Joined'].map(t => h('th', { text: t })))),
      h('tbody', {}, (data.members || []).map(m => h('tr', {},
        h('td', {}, h('div', { class: 'cell-user' }, avatar({ id: m.userID, name: m.nickname, url: m.faceURL, size: 28 }), h('span', { text: `${m.nickname || m.userID} (${m.userID})` }))),
        h('td', { text: role(m.roleLevel) }),
        h('td', { text: m.joinTime ? new Date(m.joinTime).toLocaleDateString() : '' }))))),
    data.total > 500 ? h('p', { class: 'muted', text: `Showing 500 of ${data.total}.` }) : null), { wide: true });
}

boot();
