// The web client: sign up and sign in, then conversations, chat, contacts and groups, over ChatClient.

import { Api, ApiError } from './api.js';
import { CONTENT, ChatClient, PLATFORM_WEB, SESSION, preview, singleConversationID, systemText } from './client.js';
import { emojiPicker, insertAtCursor } from './emoji.js';
import * as media from './media.js';
import { $, avatar, bytes, clock, confirmDialog, dayLabel, dialog, duration, h, icon, safeUrl, shortTime, toast } from './ui.js';

const SESSION_KEY = 'palaver.session';
const app = $('#app');
const api = new Api();
let config = { selfRegistration: true, minPasswordLength: 8 };
let client = null;
const ui = { tab: 'chats', convID: null, filter: '', rows: new Map(), stickToBottom: true, recording: null };

// -----------------------------------------------------------------------------------------------------------------
// Start

async function boot() {
  try {
    config = { ...config, ...(await api.get('/palaver/client_config')) };
  } catch { /* defaults */ }
  let session = null;
  try { session = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null'); } catch { /* none */ }
  if (session?.userID && session?.token) start(session);
  else showAuth();
}

function saveSession(session) {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

// -----------------------------------------------------------------------------------------------------------------
// Sign in / sign up

function showAuth(notice = '', mode = 'signin') {
  document.title = 'Palaver';
  const error = h('p', { class: 'form-error', role: 'alert' });
  const field = (label, input) => h('label', { class: 'field' }, h('span', { text: label }), input);
  const busy = (form, on) => form.querySelectorAll('button, input').forEach(el => { el.disabled = on; });

  const signin = h('form', { id: 'signin-form', class: 'auth-form', onsubmit: async e => {
    e.preventDefault();
    const f = e.target;
    error.textContent = '';
    busy(f, true);
    try {
      const data = await api.post('/account/login', { userID: f.userID.value.trim(), password: f.password.value, platform: PLATFORM_WEB });
      saveSession({ userID: data.userID, token: data.imToken });
      start({ userID: data.userID, token: data.imToken });
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.friendly : String(err);
      busy(f, false);
    }
  } },
  field('User ID', h('input', { name: 'userID', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' })),
  field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
  h('button', { type: 'submit', class: 'primary wide' }, 'Sign in'));

  const signup = h('form', { id: 'signup-form', class: 'auth-form', onsubmit: async e => {
    e.preventDefault();
    const f = e.target;
    error.textContent = '';
    if (f.password.value !== f.confirm.value) { error.textContent = 'The two passwords differ.'; return; }
    busy(f, true);
    try {
      const data = await api.post('/account/register', {
        user: { userID: f.userID.value.trim(), nickname: f.nickname.value.trim(), password: f.password.value },
        platform: PLATFORM_WEB, autoLogin: true,
      });
      saveSession({ userID: data.userID, token: data.imToken });
      start({ userID: data.userID, token: data.imToken });
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.friendly : String(err);
      busy(f, false);
    }
  } },
  field('User ID', h('input', { name: 'userID', autocomplete: 'username', required: true, pattern: '[a-z0-9][a-z0-9.\\-]{1,31}', title: '2 to 32 of a-z, 0-9, . and -', autocapitalize: 'none', spellcheck: 'false', oninput: e => { e.target.value = e.target.value.toLowerCase(); } })),
  field('Display name', h('input', { name: 'nickname', autocomplete: 'nickname', maxlength: 64 })),
  field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: config.minPasswordLength })),
  field('Repeat password', h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true })),
  h('button', { type: 'submit', class: 'primary wide' }, 'Create account'));

  const tabs = h('div', { class: 'auth-tabs', role: 'tablist' });
  const setMode = m => {
    mode = m;
    signin.hidden = m !== 'signin';
    signup.hidden = m !== 'signup';
    error.textContent = '';
    tabs.querySelectorAll('button').forEach(b => b.setAttribute('aria-selected', String(b.dataset.mode === m)));
  };
  tabs.append(h('button', { type: 'button', role: 'tab', dataset: { mode: 'signin' }, onclick: () => setMode('signin') }, 'Sign in'));
  if (config.selfRegistration) tabs.append(h('button', { type: 'button', role: 'tab', dataset: { mode: 'signup' }, onclick: () => setMode('signup') }, 'Create account'));

  app.replaceChildren(h('div', { class: 'auth' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'brand' }, h('img', { src: $('link[rel=icon]').href, alt: '', class: 'logo' }), h('h1', { text: 'Palaver' })),
      notice ? h('p', { id: 'auth-notice', class: 'notice', role: 'alert', text: notice }) : null,
      tabs, signin, signup, error,
      config.selfRegistration ? null : h('p', { class: 'hint', text: 'Accounts are created by the administrator.' }))));
  setMode(config.selfRegistration ? mode : 'signin');
  (mode === 'signup' ? signup : signin).querySelector('input').focus();
}

// -----------------------------------------------------------------------------------------------------------------
// The main screen

function start(session) {
  client?.stop();
  client = new ChatClient(session);
  ui.convID = null;
  ui.rows = new Map();
  ui.find = null;
  renderShell();
  client.addEventListener('me', renderMe);
  client.addEventListener('conversations', () => { renderConversations(); renderChatHead(); updateTitle(); });
  client.addEventListener('messages', e => { if (e.detail.convID === ui.convID) renderMessages(e.detail); });
  client.addEventListener('friends', () => { renderContacts(); renderConversations(); });
  client.addEventListener('presence', () => { renderContacts(); renderConversations(); renderChatHead(); });
  client.addEventListener('connection', renderConnection);
  client.addEventListener('ended', e => {
    saveSession(null);
    client = null;
    const notice = e.detail.reason === 'kicked'
      ? 'You have been signed out: your account signed in somewhere else, or an administrator ended this session.'
      : 'Your session has ended. Please sign in again.';
    showAuth(notice);
  });
  client.addEventListener('group-changed', e => { if (ui.convID === `sg_${e.detail.groupID}`) renderChatHead(); });
  client.start().catch(err => {
    if (err instanceof ApiError && err.isTokenError) return; // 'ended' handles it
    toast(`Could not load: ${err.friendly || err}`, 'error');
  });
}

function renderShell() {
  app.replaceChildren(h('div', { class: 'shell', id: 'shell' },
    h('aside', { class: 'sidebar' },
      h('header', { class: 'me', id: 'me' }),
      h('div', { id: 'conn', class: 'conn', role: 'status', 'aria-live': 'polite' }),
      h('nav', { class: 'tabs', role: 'tablist' },
        h('button', { type: 'button', role: 'tab', id: 'tab-chats', onclick: () => setTab('chats') }, 'Chats', h('span', { class: 'badge', id: 'chats-badge', hidden: true })),
        h('button', { type: 'button', role: 'tab', id: 'tab-contacts', onclick: () => setTab('contacts') }, 'Contacts', h('span', { class: 'badge', id: 'requests-badge', hidden: true }))),
      h('div', { class: 'panel', id: 'panel-chats' },
        h('div', { class: 'search' }, h('input', { type: 'search', id: 'conv-filter', placeholder: 'Search conversations', 'aria-label': 'Search conversations', oninput: e => { ui.filter = e.target.value.toLowerCase(); renderConversations(); } })),
        h('ul', { class: 'conv-list', id: 'conv-list', role: 'list' })),
      h('div', { class: 'panel', id: 'panel-contacts', hidden: true })),
    h('main', { class: 'chat', id: 'chat' }, emptyChat())));
  setTab('chats');
  renderMe();
  renderConnection();
  renderContacts();
}

function onVisibility() {
  client?.setVisible(document.visibilityState === 'visible');
}

function emptyChat() {
  return h('div', { class: 'empty' },
    h('img', { class: 'empty-art', alt: '', src: $('link[rel=icon]').href }),
    h('h2', { text: 'Pick a conversation' }),
    h('p', { text: 'Or find a friend under Contacts and say hello.' }));
}

function setTab(tab) {
  ui.tab = tab;
  $('#panel-chats').hidden = tab !== 'chats';
  $('#panel-contacts').hidden = tab !== 'contacts';
  $('#tab-chats').setAttribute('aria-selected', String(tab === 'chats'));
  $('#tab-contacts').setAttribute('aria-selected', String(tab === 'contacts'));
  if (tab === 'contacts') client?.loadRequests().catch(() => {});
}

function renderMe() {
  const box = $('#me');
  if (!box || !client) return;
  const me = client.me;
  const menu = h('div', { class: 'menu', id: 'me-menu', hidden: true },
    h('button', { type: 'button', onclick: () => { menu.hidden = true; editProfile(); } }, 'Profile'),
    h('button', { type: 'button', onclick: () => { menu.hidden = true; changePassword(); } }, 'Change password'),
    h('button', { type: 'button', id: 'sign-out', onclick: async () => {
      menu.hidden = true;
      const c = client;
      client = null;
      saveSession(null);
      await c?.logout();
      showAuth();
    } }, 'Sign out'));
  box.replaceChildren(
    avatar({ id: me.userID, name: me.nickname, url: me.faceURL, size: 40 }),
    h('div', { class: 'who' }, h('div', { class: 'name', id: 'me-name', text: me.nickname || me.userID }), h('div', { class: 'sub', text: `@${me.userID}` })),
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Menu', id: 'me-menu-button', onclick: e => { e.stopPropagation(); menu.hidden = !menu.hidden; } }, icon('more')),
    menu);
  document.addEventListener('click', () => { menu.hidden = true; }, { once: true });
}

function renderConnection() {
  const el = $('#conn');
  if (!el || !client) return;
  const state = client.connection;
  el.dataset.state = state;
  const text = {
    online: 'Connected', connecting: 'Connecting…', waiting: 'Reconnecting…', idle: 'Connecting…', closed: 'Disconnected',
  }[state] || state;
  el.replaceChildren(h('span', { class: 'dot' }), h('span', { class: 'text', text }));
  el.hidden = state === 'online';
  $('#shell')?.classList.toggle('offline', state !== 'online');
}

function updateTitle() {
  if (!client) return;
  const n = client.totalUnread();
  document.title = n ? `(${n}) Palaver` : 'Palaver';
  const badge = $('#chats-badge');
  if (badge) { badge.hidden = !n; badge.textContent = n > 99 ? '99+' : String(n); }
}

// -----------------------------------------------------------------------------------------------------------------
// Conversation list

function renderConversations() {
  const list = $('#conv-list');
  if (!list || !client) return;
  const convs = client.conversationList().filter(c => !ui.filter || client.title(c).toLowerCase().includes(ui.filter));
  if (!convs.length) {
    list.replaceChildren(h('li', { class: 'list-empty', text: ui.filter ? 'No match.' : 'No conversations yet. Add a friend under Contacts to start one.' }));
    return;
  }
  list.replaceChildren(...convs.map(conv => {
    const unread = client.unread(conv);
    const title = client.title(conv);
    const last = conv.lastMsg;
    let text = preview(last);
    if (last && conv.type === SESSION.GROUP && last.sendID && last.contentType < 1000) {
      const who = last.sendID === client.me.userID ? 'You' : (client.users.get(last.sendID)?.nickname || last.senderNickname || last.sendID);
      text = `${who}: ${text}`;
    } else if (last && last.sendID === client.me.userID && last.contentType < 1000) {
      text = `You: ${text}`;
    }
    const online = conv.type === SESSION.SINGLE ? client.isOnline(conv.peerID) : null;
    return h('li', {
      class: `conv${conv.id === ui.convID ? ' active' : ''}${conv.pinned ? ' pinned' : ''}${unread ? ' unread' : ''}`,
      dataset: { conv: conv.id }, tabindex: 0, role: 'button', 'aria-label': `${title}${unread ? `, ${unread} unread` : ''}`,
      onclick: () => openConversation(conv.id), onkeydown: e => { if (e.key === 'Enter') openConversation(conv.id); },
    },
    avatar({ id: conv.groupID || conv.peerID, name: title, url: client.faceURL(conv), size: 48, online, group: conv.type === SESSION.GROUP }),
    h('div', { class: 'conv-body' },
      h('div', { class: 'conv-top' },
        h('span', { class: 'conv-title', text: title }),
        conv.pinned ? h('span', { class: 'pin', title: 'Pinned' }, icon('pin', { size: 14, filled: true, label: 'Pinned' })) : null,
        h('span', { class: 'conv-time', text: shortTime(conv.lastTime) })),
      h('div', { class: 'conv-bottom' },
        h('span', { class: 'conv-preview', text }),
        unread ? h('span', { class: 'badge unread-badge', text: unread > 99 ? '99+' : String(unread) }) : null)));
  }));
}

async function openConversation(convID) {
  if (!client) return;
  ui.convID = convID;
  ui.rows = new Map();
  ui.stickToBottom = true;
  $('#shell')?.classList.add('chat-open');
  renderChat();
  renderConversations();
  try {
    await client.open(convID);
  } catch (err) {
    toast(`Could not load the conversation: ${err.message}`, 'error');
  }
  if (ui.convID === convID) fillScreen(convID);
}

/** Loads older pages until the message list can scroll (or there is no more history). */
async function fillScreen(convID) {
  const box = $('#messages');
  while (box && ui.convID === convID && box.scrollHeight <= box.clientHeight + 10 && client?.hasOlder(client.conv(convID))) {
    if (!(await client.loadOlder(convID).catch(() => 0))) break;
  }
}

// -----------------------------------------------------------------------------------------------------------------
// Chat

function renderChat() {
  const chat = $('#chat');
  if (!chat || !client || !ui.convID) return;
  const input = h('textarea', {
    id: 'composer-input', rows: 1, placeholder: 'Message', 'aria-label': 'Message',
    onkeydown: e => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendTyped(); } },
    oninput: e => { e.target.style.height = 'auto'; e.target.style.height = `${Math.min(160, e.target.scrollHeight)}px`; },
    onpaste: e => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) { e.preventDefault(); files.forEach(f => sendFile(f)); }
    },
  });
  const picker = emojiPicker(emoji => insertAtCursor(input, emoji));
  picker.hidden = true;
  const pictureInput = h('input', { type: 'file', accept: 'image/*', id: 'picture-input', hidden: true, multiple: true, onchange: e => { [...e.target.files].forEach(f => sendFile(f, 'picture')); e.target.value = ''; } });
  const fileInput = h('input', { type: 'file', id: 'file-input', hidden: true, multiple: true, onchange: e => { [...e.target.files].forEach(f => sendFile(f, 'file')); e.target.value = ''; } });
  const messages = h('div', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite', onscroll: onMessagesScroll },
    h('div', { class: 'history-edge', id: 'history-edge' }));
  chat.replaceChildren(
    h('header', { class: 'chat-head', id: 'chat-head' }),
    messages,
    h('div', { class: 'upload-status', id: 'upload-status', hidden: true }),
    h('form', { class: 'composer', id: 'composer', onsubmit: e => { e.preventDefault(); sendTyped(); } },
      picker,
      h('div', { class: 'composer-tools' },
        h('button', { type: 'button', class: 'icon', id: 'emoji-button', title: 'Emoji', 'aria-label': 'Emoji', onclick: () => { picker.hidden = !picker.hidden; } }, icon('smile')),
        h('button', { type: 'button', class: 'icon', id: 'picture-button', title: 'Send a picture', 'aria-label': 'Send a picture', onclick: () => pictureInput.click() }, icon('image')),
        h('button', { type: 'button', class: 'icon', id: 'file-button', title: 'Send a file', 'aria-label': 'Send a file', onclick: () => fileInput.click() }, icon('clip')),
        h('button', { type: 'button', class: 'icon', id: 'voice-button', title: 'Record a voice note', 'aria-label': 'Record a voice note', onclick: toggleRecording }, icon('mic')),
        pictureInput, fileInput),
      input,
      h('button', { type: 'submit', class: 'primary send', id: 'send-button' }, 'Send')));
  chat.ondragover = e => { e.preventDefault(); chat.classList.add('drop'); };
  chat.ondragleave = () => chat.classList.remove('drop');
  chat.ondrop = e => { e.preventDefault(); chat.classList.remove('drop'); [...(e.dataTransfer?.files || [])].forEach(f => sendFile(f)); };
  renderChatHead();
  renderMessages({});
  input.focus();
}

function renderChatHead() {
  const head = $('#chat-head');
  if (!head || !client || !ui.convID) return;
  const conv = client.conv(ui.convID);
  const title = client.title(conv);
  let sub = '';
  if (conv.type === SESSION.GROUP) {
    const g = client.groups.get(conv.groupID);
    sub = g ? `${g.memberCount} member${g.memberCount === 1 ? '' : 's'}${g.status === 2 ? ' · dismissed' : ''}` : '';
  } else {
    sub = client.isOnline(conv.peerID) ? 'Online' : 'Offline';
  }
  head.replaceChildren(
    h('button', { type: 'button', class: 'icon back', 'aria-label': 'Back', onclick: () => { $('#shell').classList.remove('chat-open'); ui.convID = null; client.openConv = null; $('#chat').replaceChildren(emptyChat()); renderConversations(); } }, icon('back')),
    avatar({ id: conv.groupID || conv.peerID, name: title, url: client.faceURL(conv), size: 40, online: conv.type === SESSION.SINGLE ? client.isOnline(conv.peerID) : null, group: conv.type === SESSION.GROUP }),
    h('div', { class: 'who' }, h('div', { class: 'name', id: 'chat-title', text: title }), h('div', { class: 'sub', id: 'chat-sub', text: sub })),
    h('div', { class: 'head-actions' },
      h('button', { type: 'button', class: 'icon', id: 'pin-button', title: conv.pinned ? 'Unpin' : 'Pin to top', 'aria-pressed': String(conv.pinned), onclick: () => client.setPinned(conv.id, !conv.pinned).catch(err => toast(err.friendly || String(err), 'error')) }, icon('pin', { filled: conv.pinned })),
      conv.type === SESSION.GROUP ? h('button', { type: 'button', class: 'icon', id: 'members-button', title: 'Members', 'aria-label': 'Members', onclick: () => manageGroup(conv.groupID) }, icon('users')) : null));
}

function onMessagesScroll(e) {
  const box = e.target;
  ui.stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  if (box.scrollTop < 120 && client && ui.convID) {
    const conv = client.conv(ui.convID);
    if (client.hasOlder(conv) && !client.loadingOlder) client.loadOlder(ui.convID).catch(() => {});
  }
}

function renderMessages({ older = false, outgoing = false } = {}) {
  const box = $('#messages');
  if (!box || !client || !ui.convID) return;
  const conv = client.conv(ui.convID);
  const msgs = client.messages(ui.convID);
  const before = { height: box.scrollHeight, top: box.scrollTop };
  const edge = $('#history-edge');
  edge.textContent = conv.loadedFrom === null ? 'Loading…' : client.hasOlder(conv) ? 'Loading earlier messages…' : 'This is the beginning of the conversation.';
  const nodes = [edge];
  let lastDay = '', lastSender = '';
  const myLastRead = conv.type === SESSION.SINGLE ? conv.peerReadSeq : 0;
  for (const m of msgs) {
    const day = dayLabel(m.sendTime);
    if (day !== lastDay) {
      nodes.push(h('div', { class: 'day', text: day }));
      lastDay = day;
      lastSender = '';
    }
    const notice = m.contentType >= 1000 ? systemText(m) : null;
    if (notice) {
      nodes.push(h('div', { class: 'system', dataset: { seq: m.seq }, text: notice }));
      lastSender = '';
      continue;
    }
    const mine = m.sendID === client.me.userID;
    const read = mine && m.seq && m.seq <= myLastRead;
    const key = `${m.clientMsgID}`;
    const sig = `${m.seq}|${m.status}|${read}|${m.sendID === lastSender}|${m.error || ''}`;
    let row = ui.rows.get(key);
    if (!row || row.dataset.sig !== sig) {
      row = messageRow(conv, m, { mine, read, continued: m.sendID === lastSender });
      row.dataset.sig = sig;
      ui.rows.set(key, row);
    }
    nodes.push(row);
    lastSender = m.sendID;
  }
  box.replaceChildren(...nodes);
  if (older) box.scrollTop = before.top + (box.scrollHeight - before.height);
  else if (outgoing || ui.stickToBottom) box.scrollTop = box.scrollHeight;
}

function senderName(m) {
  return client.users.get(m.sendID)?.nickname || m.senderNickname || m.sendID;
}

function messageRow(conv, m, { mine, read, continued }) {
  const showSender = !mine && conv.type === SESSION.GROUP && !continued;
  const status = m.status === 'sending' ? 'Sending…' : m.status === 'failed' ? 'Not sent' : mine && conv.type === SESSION.SINGLE ? (read ? 'Read' : 'Sent') : '';
  return h('div', {
    class: `msg ${mine ? 'mine' : 'theirs'}${continued ? ' continued' : ''} ${m.status}`,
    dataset: { seq: m.seq || '', clientMsgId: m.clientMsgID, status: m.status, sender: m.sendID },
  },
  !mine && conv.type === SESSION.GROUP ? (continued ? h('span', { class: 'avatar-space' }) : avatar({ id: m.sendID, name: senderName(m), url: client.users.get(m.sendID)?.faceURL || m.senderFaceURL, size: 32 })) : null,
  h('div', { class: 'msg-body' },
    showSender ? h('div', { class: 'sender', text: senderName(m) }) : null,
    h('div', { class: `bubble type-${m.contentType}` }, messageContent(m)),
    h('div', { class: 'meta' },
      h('time', { datetime: new Date(m.sendTime).toISOString(), text: clock(m.sendTime) }),
      status ? h('span', { class: `status ${read ? 'read' : ''}`, text: status }) : null,
      m.status === 'failed' ? h('span', { class: 'failed-actions' },
        m.error ? h('span', { class: 'error', text: m.error }) : null,
        h('button', { type: 'button', class: 'link', onclick: () => client.discard(conv.id, m.clientMsgID) }, 'Remove')) : null)));
}

function messageContent(m) {
  const c = m.content || {};
  switch (m.contentType) {
    case CONTENT.TEXT: case CONTENT.AT_TEXT:
      return linkify(c.content ?? c.text ?? '');
    case CONTENT.PICTURE: {
      const pic = c.bigPicture?.url ? c.bigPicture : c.sourcePicture || c.snapshotPicture || {};
      const src = safeUrl(c.snapshotPicture?.url || pic.url);
      const full = safeUrl(pic.url);
      if (!src) return h('span', { class: 'muted', text: '[Picture]' });
      const img = h('img', { src, alt: 'Picture', loading: 'lazy', class: 'picture', referrerpolicy: 'no-referrer' });
      if (pic.width && pic.height) {
        const scale = Math.min(1, 280 / pic.width, 280 / pic.height);
        img.width = Math.round(pic.width * scale);
        img.height = Math.round(pic.height * scale);
      }
      return h('a', { href: full || src, target: '_blank', rel: 'noopener noreferrer', class: 'picture-link' }, img);
    }
    case CONTENT.FILE: {
      const url = safeUrl(c.sourceUrl);
      return h('a', { class: 'file-card', href: url || null, target: '_blank', rel: 'noopener noreferrer', download: c.fileName || true },
        h('span', { class: 'file-icon' }, icon('file', { size: 30 })),
        h('span', { class: 'file-info' }, h('span', { class: 'file-name', text: c.fileName || 'file' }), h('span', { class: 'file-size', text: bytes(c.fileSize) })));
    }
    case CONTENT.VOICE: {
      const url = safeUrl(c.sourceUrl);
      return h('div', { class: 'voice' },
        icon('mic', { size: 18 }),
        url ? h('audio', { controls: true, preload: 'none', src: url }) : null,
        h('span', { class: 'voice-duration', text: duration(c.duration || 0) }));
    }
    case 104: {
      const url = safeUrl(c.videoUrl);
      return url ? h('video', { controls: true, preload: 'metadata', src: url, class: 'video' }) : h('span', { class: 'muted', text: '[Video]' });
    }
    default:
      return h('span', { class: 'muted', text: `[Unsupported message type ${m.contentType}]` });
  }
}

/** Text with http(s) links made clickable; everything else stays text. */
function linkify(text) {
  const out = [];
  const re = /\bhttps?:\/\/[^\s<>"]+/g;
  let last = 0, m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const url = safeUrl(m[0]);
    out.push(url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: m[0] }) : m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return h('span', { class: 'text' }, out);
}

function sendTyped() {
  const input = $('#composer-input');
  if (!input || !client || !ui.convID) return;
  const text = input.value.trim();
  if (!text) return;
  client.sendText(ui.convID, text);
  input.value = '';
  input.style.height = 'auto';
  ui.stickToBottom = true;
  $('.emoji-picker') && ($('.emoji-picker').hidden = true);
}

/** Uploads a picture or file and sends it to the open conversation. */
async function sendFile(file, kind = file.type.startsWith('image/') ? 'picture' : 'file') {
  if (!client || !ui.convID) return;
  const convID = ui.convID;
  const status = $('#upload-status');
  const show = text => { if (status) { status.hidden = !text; status.textContent = text; } };
  try {
    show(`Uploading ${file.name}…`);
    const uploaded = await media.upload(client.api, client.me.userID, file, {
      fileName: file.name, cause: kind === 'picture' ? 'msg-picture' : 'msg-file',
      onProgress: p => show(`Uploading ${file.name}… ${Math.round(p * 100)}%`),
    });
    if (kind === 'picture') {
      const size = await media.imageSize(file);
      client.send(convID, CONTENT.PICTURE, media.pictureContent(uploaded, file, size));
    } else {
      client.send(convID, CONTENT.FILE, media.fileContent(uploaded, file));
    }
    show('');
  } catch (err) {
    show('');
    toast(`${file.name} was not sent: ${err.friendly || err.message || err}`, 'error');
  }
}

async function toggleRecording() {
  const button = $('#voice-button');
  if (ui.recording) {
    const rec = ui.recording;
    ui.recording = null;
    clearInterval(rec.timer);
    button?.classList.remove('recording');
    $('#upload-status').hidden = true;
    const result = await rec.stop();
    if (!result || !client || !ui.convID) return;
    const convID = ui.convID;
    try {
      const name = `voice-${Date.now()}.${result.blob.type.includes('ogg') ? 'ogg' : 'webm'}`;
      const uploaded = await media.upload(client.api, client.me.userID, result.blob, { fileName: name, cause: 'msg-voice' });
      client.send(convID, CONTENT.VOICE, media.voiceContent(uploaded, result.blob, result.seconds));
    } catch (err) {
      toast(`The voice note was not sent: ${err.friendly || err.message || err}`, 'error');
    }
    return;
  }
  try {
    const rec = await media.startRecording();
    ui.recording = rec;
    button?.classList.add('recording');
    const status = $('#upload-status');
    rec.timer = setInterval(() => {
      status.hidden = false;
      status.textContent = `Recording ${duration((performance.now() - rec.started) / 1000)}: press the microphone again to send`;
    }, 250);
  } catch (err) {
    toast(err.message || String(err), 'error');
  }
}

// -----------------------------------------------------------------------------------------------------------------
// Contacts

function renderContacts() {
  const panel = $('#panel-contacts');
  if (!panel || !client) return;
  const pending = client.pendingRequests();
  const badge = $('#requests-badge');
  if (badge) { badge.hidden = !pending.length; badge.textContent = String(pending.length); }
  // The search and its result live in `ui.find`, so that a re-render (a friend notification arriving) keeps them.
  const result = h('div', { class: 'find-result', id: 'find-result' });
  const showFound = () => {
    const f = ui.find || {};
    result.replaceChildren(...[
      f.looking ? h('p', { class: 'muted', text: 'Looking…' }) : null,
      f.user ? userCard(f.user) : null,
      f.missing ? h('p', { class: 'muted', text: `No one has the user ID “${f.missing}”.` }) : null,
      f.error ? h('p', { class: 'form-error', text: f.error }) : null,
    ].filter(Boolean));
  };
  const find = h('form', { class: 'find', id: 'find-form', onsubmit: async e => {
    e.preventDefault();
    const id = e.target.query.value.trim();
    if (!id) return;
    ui.find = { query: id, looking: true };
    showFound();
    try {
      const user = await client.findUser(id);
      ui.find = { query: id, ...(user ? { user } : { missing: id }) };
    } catch (err) {
      ui.find = { query: id, error: err.friendly || String(err) };
    }
    renderContacts();
  } },
  h('input', { type: 'search', name: 'query', id: 'find-input', value: ui.find?.query || '', placeholder: 'Find people by user ID', 'aria-label': 'User ID', autocapitalize: 'none', spellcheck: 'false' }),
  h('button', { type: 'submit', class: 'secondary' }, 'Find'));

  const requests = pending.map(r => h('li', { class: 'request', dataset: { from: r.fromUserID } },
    avatar({ id: r.fromUserID, name: r.fromNickname || r.fromUserID, url: r.fromFaceURL, size: 40 }),
    h('div', { class: 'who' }, h('div', { class: 'name', text: r.fromNickname || r.fromUserID }), h('div', { class: 'sub', text: r.reqMsg || `@${r.fromUserID} wants to be friends` })),
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'primary small accept', onclick: () => client.answerRequest(r.fromUserID, true).then(() => toast(`You and ${r.fromNickname || r.fromUserID} are now friends.`)).catch(err => toast(err.friendly || String(err), 'error')) }, 'Accept'),
      h('button', { type: 'button', class: 'secondary small decline', onclick: () => client.answerRequest(r.fromUserID, false).catch(err => toast(err.friendly || String(err), 'error')) }, 'Decline'))));
  const waiting = client.outgoing.filter(r => r.handleResult === 0).map(r => h('li', { class: 'request outgoing' },
    avatar({ id: r.toUserID, name: r.toNickname || r.toUserID, url: r.toFaceURL, size: 40 }),
    h('div', { class: 'who' }, h('div', { class: 'name', text: r.toNickname || r.toUserID }), h('div', { class: 'sub', text: 'Request sent' }))));
  const friends = [...client.friends.values()]
    .map(f => f.friendUser)
    .sort((a, b) => (a.nickname || a.userID).localeCompare(b.nickname || b.userID))
    .map(u => h('li', { class: 'friend', dataset: { user: u.userID }, tabindex: 0, role: 'button',
      onclick: () => { setTab('chats'); openConversation(singleConversationID(client.me.userID, u.userID)); },
      onkeydown: e => { if (e.key === 'Enter') e.target.click(); } },
    avatar({ id: u.userID, name: u.nickname, url: u.faceURL, size: 40, online: client.isOnline(u.userID) }),
    h('div', { class: 'who' }, h('div', { class: 'name', text: u.nickname || u.userID }), h('div', { class: 'sub', text: client.isOnline(u.userID) ? 'Online' : `@${u.userID}` }))));

  showFound();
  panel.replaceChildren(...[
    find, result,
    h('div', { class: 'section-actions' }, h('button', { type: 'button', class: 'secondary wide', id: 'new-group-button', onclick: newGroup }, icon('plus', { size: 16 }), ' New group')),
    requests.length ? h('h3', { text: 'Friend requests' }) : null,
    requests.length ? h('ul', { class: 'people', id: 'requests' }, requests) : null,
    waiting.length ? h('h3', { text: 'Waiting for an answer' }) : null,
    waiting.length ? h('ul', { class: 'people' }, waiting) : null,
    h('h3', { text: `Friends (${friends.length})` }),
    friends.length ? h('ul', { class: 'people', id: 'friends' }, friends) : h('p', { class: 'muted pad', text: 'No friends yet. Find someone by their user ID above.' }),
  ].filter(Boolean));
}

function userCard(user) {
  const isMe = user.userID === client.me.userID;
  const isFriend = client.friends.has(user.userID);
  const asked = client.outgoing.some(r => r.toUserID === user.userID && r.handleResult === 0);
  const msg = h('input', { type: 'text', name: 'reqMsg', placeholder: 'Say something (optional)', maxlength: 200, 'aria-label': 'Message with the request' });
  return h('div', { class: 'user-card' },
    avatar({ id: user.userID, name: user.nickname, url: user.faceURL, size: 48 }),
    h('div', { class: 'who' }, h('div', { class: 'name', text: user.nickname || user.userID }), h('div', { class: 'sub', text: `@${user.userID}` })),
    isMe ? h('p', { class: 'muted', text: 'That is you.' })
      : isFriend ? h('button', { type: 'button', class: 'primary small', onclick: () => { setTab('chats'); openConversation(singleConversationID(client.me.userID, user.userID)); } }, 'Message')
        : asked ? h('p', { class: 'muted', text: 'Request sent.' })
          : h('form', { class: 'add-friend', onsubmit: async e => {
            e.preventDefault();
            try {
              await client.addFriend(user.userID, msg.value.trim());
              toast(`Friend request sent to ${user.nickname || user.userID}.`);
              renderContacts();
            } catch (err) { toast(err.friendly || String(err), 'error'); }
          } }, msg, h('button', { type: 'submit', class: 'primary small', id: 'add-friend-button' }, 'Add friend')));
}

// -----------------------------------------------------------------------------------------------------------------
// Groups

function friendPicker(exclude = new Set()) {
  const friends = [...client.friends.values()].map(f => f.friendUser).filter(u => !exclude.has(u.userID));
  if (!friends.length) return h('p', { class: 'muted', text: 'No friends to add.' });
  return h('ul', { class: 'picker' }, friends.map(u => h('li', {},
    h('label', {}, h('input', { type: 'checkbox', name: 'member', value: u.userID }),
      avatar({ id: u.userID, name: u.nickname, url: u.faceURL, size: 32 }), h('span', { text: u.nickname || u.userID })))));
}

function newGroup() {
  dialog('New group', close => h('form', { class: 'body', id: 'new-group-form', onsubmit: async e => {
    e.preventDefault();
    const f = e.target;
    const members = [...f.querySelectorAll('input[name=member]:checked')].map(i => i.value);
    if (!members.length) { toast('Pick at least one friend.', 'error'); return; }
    try {
      const convID = await client.createGroup(f.groupName.value.trim() || 'New group', members);
      close(true);
      setTab('chats');
      openConversation(convID);
    } catch (err) { toast(err.friendly || String(err), 'error'); }
  } },
  h('label', { class: 'field' }, h('span', { text: 'Group name' }), h('input', { name: 'groupName', required: true, maxlength: 64 })),
  h('p', { class: 'label', text: 'Members' }),
  friendPicker(),
  h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Create'))));
}

async function manageGroup(groupID) {
  let members;
  try { members = await client.groupMembers(groupID); } catch (err) { toast(err.friendly || String(err), 'error'); return; }
  const group = client.groups.get(groupID) || {};
  const me = members.find(m => m.userID === client.me.userID);
  const myRole = me?.roleLevel || 0;
  const roleName = r => (r === 100 ? 'Owner' : r === 60 ? 'Admin' : '');
  const refresh = () => manageGroup(groupID);
  dialog(group.groupName || 'Group', close => {
    const list = h('ul', { class: 'people members', id: 'member-list' }, members
      .sort((a, b) => b.roleLevel - a.roleLevel)
      .map(m => {
        const u = client.users.get(m.userID) || {};
        const canKick = m.userID !== client.me.userID && myRole > m.roleLevel && myRole >= 60;
        return h('li', { dataset: { user: m.userID } },
          avatar({ id: m.userID, name: m.nickname || u.nickname, url: m.faceURL || u.faceURL, size: 36, online: client.isOnline(m.userID) }),
          h('div', { class: 'who' }, h('div', { class: 'name', text: m.nickname || u.nickname || m.userID }), h('div', { class: 'sub', text: [roleName(m.roleLevel), `@${m.userID}`].filter(Boolean).join(' · ') })),
          canKick ? h('button', { type: 'button', class: 'secondary small', onclick: async () => {
            try { await client.kickFromGroup(groupID, [m.userID]); close(); refresh(); } catch (err) { toast(err.friendly || String(err), 'error'); }
          } }, 'Remove') : null);
      }));
    const inGroup = new Set(members.map(m => m.userID));
    const add = h('form', { class: 'add-members', onsubmit: async e => {
      e.preventDefault();
      const ids = [...e.target.querySelectorAll('input[name=member]:checked')].map(i => i.value);
      if (!ids.length) return;
      try { await client.inviteToGroup(groupID, ids); close(); refresh(); } catch (err) { toast(err.friendly || String(err), 'error'); }
    } }, h('p', { class: 'label', text: 'Add friends' }), friendPicker(inGroup),
    [...client.friends.keys()].some(id => !inGroup.has(id)) ? h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary small', id: 'add-members-button' }, 'Add')) : null);
    const rename = myRole >= 60 ? h('form', { class: 'rename', onsubmit: async e => {
      e.preventDefault();
      try { await client.renameGroup(groupID, e.target.groupName.value.trim()); toast('Renamed.'); } catch (err) { toast(err.friendly || String(err), 'error'); }
    } }, h('input', { name: 'groupName', value: group.groupName || '', maxlength: 64, 'aria-label': 'Group name' }), h('button', { type: 'submit', class: 'secondary small' }, 'Rename')) : null;
    const leave = h('div', { class: 'actions danger-zone' },
      myRole === 100
        ? h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!(await confirmDialog('Dismiss the group?', 'Everyone is removed and no one can write here any more.', 'Dismiss'))) return;
          try { await client.dismissGroup(groupID); close(); } catch (err) { toast(err.friendly || String(err), 'error'); }
        } }, 'Dismiss group')
        : h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!(await confirmDialog('Leave the group?', 'You will no longer receive its messages.', 'Leave'))) return;
          try { await client.quitGroup(groupID); close(); $('#chat').replaceChildren(emptyChat()); ui.convID = null; } catch (err) { toast(err.friendly || String(err), 'error'); }
        } }, 'Leave group'));
    return h('div', { class: 'body' }, rename, h('p', { class: 'label', text: `${members.length} members` }), list, add, leave);
  }, { wide: true });
}

// -----------------------------------------------------------------------------------------------------------------
// Profile and password

function editProfile() {
  const me = client.me;
  let faceURL = me.faceURL || '';
  const preview = h('div', { class: 'profile-avatar' }, avatar({ id: me.userID, name: me.nickname, url: faceURL, size: 64 }));
  dialog('Profile', close => h('form', { class: 'body', onsubmit: async e => {
    e.preventDefault();
    try { await client.updateMe({ nickname: e.target.nickname.value.trim() || me.userID, faceURL }); close(true); toast('Saved.'); } catch (err) { toast(err.friendly || String(err), 'error'); }
  } },
  preview,
  h('label', { class: 'field' }, h('span', { text: 'Picture' }), h('input', { type: 'file', accept: 'image/*', onchange: async e => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const up = await media.upload(client.api, me.userID, file, { fileName: file.name, cause: 'user-avatar' });
      faceURL = up.url;
      preview.replaceChildren(avatar({ id: me.userID, name: me.nickname, url: faceURL, size: 64 }));
    } catch (err) { toast(err.friendly || err.message || String(err), 'error'); }
  } })),
  h('label', { class: 'field' }, h('span', { text: 'Display name' }), h('input', { name: 'nickname', value: me.nickname || '', maxlength: 64 })),
  h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Save'))));
}

function changePassword() {
  dialog('Change password', close => h('form', { class: 'body', id: 'password-form', onsubmit: async e => {
    e.preventDefault();
    const f = e.target;
    if (f.newPassword.value !== f.confirm.value) { toast('The two new passwords differ.', 'error'); return; }
    try {
      await client.api.post('/account/password/change', { userID: client.me.userID, currentPassword: f.currentPassword.value, newPassword: f.newPassword.value });
      close(true);
      toast('Password changed. Other sessions were signed out.');
    } catch (err) { toast(err.friendly || String(err), 'error'); }
  } },
  h('label', { class: 'field' }, h('span', { text: 'Current password' }), h('input', { name: 'currentPassword', type: 'password', autocomplete: 'current-password', required: true })),
  h('label', { class: 'field' }, h('span', { text: 'New password' }), h('input', { name: 'newPassword', type: 'password', autocomplete: 'new-password', required: true, minlength: config.minPasswordLength })),
  h('label', { class: 'field' }, h('span', { text: 'Repeat the new password' }), h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true })),
  h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Change'))));
}

document.addEventListener('visibilitychange', onVisibility);
boot();
