// The chat client's state and its sync with the server, without any DOM: conversations, messages, friends,
// groups and presence, kept up to date from pushes, and brought back in line after every reconnect.
//
// Delivery: push first, pull always. Messages are keyed by seq per conversation, so a message that arrives by
// push and again by pull is shown once. After every (re)connect the client asks for each conversation's max
// seq (1006) and pulls what it lacks (1002), so nothing sent while it was away is missed. Outgoing messages
// wait in an outbox with their clientMsgID until the server acknowledges them; a resend after a reconnect
// reuses the clientMsgID, which the server recognises, so nothing is stored twice.

import { Api, ApiError, randomId } from './api.js';
import { Gateway, GatewayError, REQ } from './gateway.js';
import * as pb from './pb.js';

export const PLATFORM_WEB = 5;
export const SESSION = { SINGLE: 1, GROUP: 3 };
export const CONTENT = { TEXT: 101, PICTURE: 102, VOICE: 103, FILE: 105, AT_TEXT: 106, READ_RECEIPT: 2200 };
const PAGE = 30;
const utf8in = new TextEncoder();
const utf8out = new TextDecoder();

/** `si_<a>_<b>` with the ids sorted, as OpenIM names a 1:1 conversation. */
export function singleConversationID(a, b) {
  return a < b ? `si_${a}_${b}` : `si_${b}_${a}`;
}

function parseContent(bytes) {
  try {
    const text = typeof bytes === 'string' ? bytes : utf8out.decode(bytes);
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/** A MsgData (from protobuf, or from REST JSON where `content` is base64) as the client keeps it. */
export function toMessage(m) {
  const content = typeof m.content === 'string' ? parseContent(pb.fromBase64(m.content)) : parseContent(m.content);
  return {
    clientMsgID: m.clientMsgID, serverMsgID: m.serverMsgID, seq: m.seq || 0, sendID: m.sendID, recvID: m.recvID,
    groupID: m.groupID, sessionType: m.sessionType, contentType: m.contentType, content,
    sendTime: m.sendTime || m.createTime || Date.now(), senderNickname: m.senderNickname,
    senderFaceURL: m.senderFaceURL, status: 'sent',
  };
}

/** The line shown in the chat for a server notification stored in the conversation (OpenIM's `isSendMsg`
 * copies), or null for notifications that are not shown. */
export function systemText(msg) {
  const type = msg?.contentType;
  if (type === 1201 || type === 1204) return 'You are now friends. Say hello!';
  if (type < 1500 || type > 1599) return null;
  let t = {};
  try { t = JSON.parse(msg.content?.detail || '{}'); } catch { return null; }
  const who = m => m?.nickname || m?.userID || 'Someone';
  const names = list => (list || []).map(who).join(', ');
  switch (type) {
    case 1501: return `${who(t.opUser)} created the group`;
    case 1504: return `${who(t.quitUser)} left the group`;
    case 1507: return `${who(t.newGroupOwner)} is now the group owner`;
    case 1508: return `${who(t.opUser)} removed ${names(t.kickedUserList)}`;
    case 1509: return `${who(t.opUser)} added ${names(t.invitedUserList)}`;
    case 1510: return `${who(t.entrantUser)} joined the group`;
    case 1512: return `${who(t.opUser)} muted ${who(t.mutedUser)}`;
    case 1513: return `${who(t.opUser)} unmuted ${who(t.mutedUser)}`;
    case 1514: return `${who(t.opUser)} muted the group`;
    case 1515: return `${who(t.opUser)} unmuted the group`;
    case 1519: return `${who(t.opUser)} posted an announcement: ${t.group?.notification || ''}`;
    case 1520: return `${who(t.opUser)} renamed the group to ${t.group?.groupName || ''}`;
    default: return null;
  }
}

/** A short text for the conversation list. */
export function preview(msg) {
  if (!msg) return '';
  if (msg.contentType >= 1000) return systemText(msg) || '';
  const c = msg.content || {};
  switch (msg.contentType) {
    case CONTENT.TEXT: case CONTENT.AT_TEXT: return c.content ?? c.text ?? '';
    case CONTENT.PICTURE: return '[Picture]';
    case CONTENT.VOICE: return `[Voice ${Math.max(1, Math.round(c.duration || 0))}″]`;
    case CONTENT.FILE: return `[File] ${c.fileName || ''}`;
    case 104: return '[Video]';
    default: return msg.contentType >= 1000 ? '' : '[Message]';
  }
}

export class ChatClient extends EventTarget {
  /**
   * @param {object} session `{userID, token}` from the login
   * @param {object} [opts] `wsUrl`: the gateway address (default: this origin's `/msg_gateway`)
   */
  constructor(session, { wsUrl } = {}) {
    super();
    this.me = { userID: session.userID, nickname: session.userID, faceURL: '' };
    this.api = new Api({ onTokenError: err => this.ended('token', err) });
    this.api.token = session.token;
    const origin = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
    this.gateway = new Gateway({
      url: wsUrl || `${origin}/msg_gateway`, userID: session.userID, token: session.token, platformID: PLATFORM_WEB,
    });
    this.convs = new Map(); // conversationID -> conversation (see newConv)
    this.users = new Map(); // userID -> {userID, nickname, faceURL}
    this.groups = new Map(); // groupID -> GroupInfo
    this.friends = new Map(); // userID -> FriendInfo
    this.incoming = []; // friend requests to me
    this.outgoing = []; // friend requests from me
    this.presence = new Map(); // userID -> [platformIDs]
    this.outbox = []; // messages waiting to be sent, in order
    this.sending = false;
    this.openConv = null; // the conversation on screen
    this.visible = document.visibilityState === 'visible';
    this.gateway.addEventListener('state', e => this.onState(e.detail));
    this.gateway.addEventListener('frame', e => this.onFrame(e.detail));
    this.gateway.addEventListener('kicked', () => this.ended('kicked'));
    this.gateway.addEventListener('auth-failed', e => this.ended('token', e.detail));
  }

  emit(name, detail = {}) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  get connection() { return this.gateway.state; }

  // -------------------------------------------------------------------------------------------------------------
  // Start and stop

  /** Loads profiles and lists, then connects. If the server cannot be reached yet, connects anyway: the lists are
   * loaded once the connection is up (see `resync`). */
  async start() {
    try {
      await this.loadLists();
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== -2) throw e;
      this.listsPending = true;
    }
    this.gateway.start();
    this.refreshTimer = setInterval(() => {
      if (this.connection !== 'online') return;
      this.loadRequests().catch(() => {});
      this.refreshPresence().catch(() => {});
    }, 15_000);
  }

  stop() {
    clearInterval(this.refreshTimer);
    this.gateway.stop('logout');
  }

  /** Logs out: tells the server (2003) when connected, then stops. */
  async logout() {
    try {
      await this.gateway.request(REQ.LOGOUT, pb.encode(pb.DelUserPushTokenReq, { userID: this.me.userID, platformID: PLATFORM_WEB }), { timeout: 2000 });
    } catch { /* closing anyway */ }
    this.stop();
  }

  /** The session is over (kicked, token revoked or expired): stop and tell the UI. */
  ended(reason, detail) {
    if (this.isEnded) return;
    this.isEnded = true;
    clearInterval(this.refreshTimer);
    this.gateway.stop(reason);
    this.emit('ended', { reason, detail });
  }

  onState({ state }) {
    this.emit('connection', { state });
    if (state === 'online') this.resync().catch(e => this.emit('error', { error: e }));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Profiles and lists

  async loadLists() {
    await this.loadMe();
    await Promise.all([this.loadConversations(), this.loadFriends(), this.loadRequests()]);
    this.listsPending = false;
  }

  async loadMe() {
    const [me] = await this.fetchUsers([this.me.userID], { force: true });
    if (me) Object.assign(this.me, me);
    this.emit('me');
  }

  async updateMe(patch) {
    await this.api.post('/user/update_user_info_ex', {
      userInfo: { userID: this.me.userID, nickname: patch.nickname ?? null, faceURL: patch.faceURL ?? null, ex: null, globalRecvMsgOpt: null },
    });
    await this.loadMe();
  }

  /** Profiles of `ids` (cached unless `force`); unknown ids are left out. */
  async fetchUsers(ids, { force = false } = {}) {
    const want = [...new Set(ids)].filter(id => id && (force || !this.users.has(id)));
    for (let i = 0; i < want.length; i += 100) {
      const { usersInfo = [] } = await this.api.post('/user/get_users_info', { userIDs: want.slice(i, i + 100) });
      for (const u of usersInfo) this.users.set(u.userID, { userID: u.userID, nickname: u.nickname, faceURL: u.faceURL });
    }
    return ids.map(id => this.users.get(id)).filter(Boolean);
  }

  async fetchGroups(ids) {
    const want = [...new Set(ids)].filter(Boolean);
    if (!want.length) return [];
    const { groupInfos = [] } = await this.api.post('/group/get_groups_info', { groupIDs: want });
    for (const g of groupInfos) this.groups.set(g.groupID, g);
    return groupInfos;
  }

  newConv(id) {
    const conv = {
      id, type: id.startsWith('sg_') ? SESSION.GROUP : SESSION.SINGLE, peerID: '', groupID: '', pinned: false,
      maxSeq: 0, readSeq: 0, minSeq: 0, lastMsg: null, lastTime: 0,
      messages: new Map(), // seq -> message
      pending: new Map(), // clientMsgID -> message not yet stored (no seq)
      loadedFrom: null, // lowest seq of the contiguous run loaded (null: none loaded)
      peerReadSeq: 0,
    };
    if (conv.type === SESSION.GROUP) conv.groupID = id.slice(3);
    else {
      const pair = id.slice(3);
      const me = this.me.userID;
      conv.peerID = pair.startsWith(`${me}_`) ? pair.slice(me.length + 1) : pair.endsWith(`_${me}`) ? pair.slice(0, -me.length - 1) : '';
    }
    this.convs.set(id, conv);
    return conv;
  }

  conv(id) { return this.convs.get(id) || this.newConv(id); }

  /** Applies one `jssdk.ConversationMsg` (JSON). */
  applyConversation(c) {
    const row = c.conversation || {};
    if (!row.conversationID || row.conversationID.startsWith('n_')) return null;
    const conv = this.conv(row.conversationID);
    conv.type = row.conversationType === SESSION.GROUP ? SESSION.GROUP : SESSION.SINGLE;
    conv.peerID = row.userID || conv.peerID;
    conv.groupID = row.groupID || conv.groupID;
    conv.pinned = !!row.isPinned;
    conv.minSeq = row.minSeq || 0;
    conv.maxSeq = Math.max(conv.maxSeq, c.maxSeq || 0);
    conv.readSeq = Math.max(conv.readSeq, c.readSeq || 0);
    if (c.user) this.users.set(c.user.userID, { userID: c.user.userID, nickname: c.user.nickname, faceURL: c.user.faceURL });
    if (c.group) this.groups.set(c.group.groupID, c.group);
    if (c.lastMsg) this.setLast(conv, toMessage(c.lastMsg));
    return conv;
  }

  setLast(conv, msg) {
    if (msg.contentType >= 1000 && !systemText(msg)) return; // a notification not meant to be seen
    if (!conv.lastMsg || (msg.seq && msg.seq >= (conv.lastMsg.seq || 0)) || (!msg.seq && msg.sendTime >= conv.lastTime)) {
      conv.lastMsg = msg;
      conv.lastTime = msg.sendTime;
    }
  }

  async loadConversations() {
    const { conversations = [] } = await this.api.post('/jssdk/get_active_conversations', { ownerUserID: this.me.userID, count: 500 });
    for (const c of conversations) this.applyConversation(c);
    this.emit('conversations');
  }

  /** Details of conversations the client has just learned of. */
  async loadConversationsById(ids) {
    const want = ids.filter(id => !id.startsWith('n_'));
    if (!want.length) return;
    const { conversations = [] } = await this.api.post('/jssdk/get_conversations', { ownerUserID: this.me.userID, conversationIDs: want });
    for (const c of conversations) this.applyConversation(c);
    const missing = [...this.convs.values()].filter(c => want.includes(c.id));
    await this.fetchUsers(missing.map(c => c.peerID).filter(Boolean));
    await this.fetchGroups(missing.filter(c => c.groupID && !this.groups.has(c.groupID)).map(c => c.groupID));
    this.emit('conversations');
  }

  /** Conversations for the list: pinned first, then by last activity. Empty conversations are shown only when
   * open or pinned. */
  conversationList() {
    return [...this.convs.values()]
      .filter(c => c.lastMsg || c.pinned || c.id === this.openConv || c.pending.size)
      .sort((a, b) => (b.pinned - a.pinned) || (b.lastTime - a.lastTime) || a.id.localeCompare(b.id));
  }

  unread(conv) { return Math.max(0, conv.maxSeq - conv.readSeq); }

  totalUnread() { return [...this.convs.values()].reduce((n, c) => n + this.unread(c), 0); }

  title(conv) {
    if (conv.type === SESSION.GROUP) return this.groups.get(conv.groupID)?.groupName || `Group ${conv.groupID}`;
    const f = this.friends.get(conv.peerID);
    return f?.remark || this.users.get(conv.peerID)?.nickname || conv.peerID;
  }

  faceURL(conv) {
    return conv.type === SESSION.GROUP ? this.groups.get(conv.groupID)?.faceURL || '' : this.users.get(conv.peerID)?.faceURL || '';
  }

  async setPinned(convID, pinned) {
    const conv = this.conv(convID);
    await this.api.post('/conversation/set_conversations', {
      userIDs: [this.me.userID],
      conversation: { conversationID: convID, conversationType: conv.type, userID: conv.peerID, groupID: conv.groupID, isPinned: pinned },
    });
    conv.pinned = pinned;
    this.emit('conversations');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Sync

  /** After every (re)connect: counters of every conversation, then what is missing, then the outbox. */
  async resync() {
    if (this.listsPending) await this.loadLists();
    const resp = pb.decode(pb.GetConversationsHasReadAndMaxSeqResp, await this.gateway.request(
      REQ.GET_CONV_MAX_READ_SEQ, pb.encode(pb.GetConversationsHasReadAndMaxSeqReq, { userID: this.me.userID, returnPinned: true })));
    const unknown = [];
    for (const [id, s] of Object.entries(resp.seqs)) {
      if (id.startsWith('n_')) continue;
      if (!this.convs.has(id) && s.maxSeq > 0) unknown.push(id);
      const conv = this.conv(id);
      conv.maxSeq = Math.max(conv.maxSeq, s.maxSeq);
      conv.readSeq = Math.max(conv.readSeq, s.hasReadSeq);
      if (s.maxSeqTime) conv.lastTime = Math.max(conv.lastTime, s.maxSeqTime);
    }
    if (unknown.length) await this.loadConversationsById(unknown);
    // Loaded conversations get everything they lack; the others only their newest message (for the list).
    const ranges = [];
    for (const conv of this.convs.values()) {
      if (conv.id === this.openConv && conv.loadedFrom === null) continue; // `open` below loads its page
      const have = this.highestSeq(conv);
      if (conv.loadedFrom !== null) {
        if (conv.maxSeq > have) ranges.push([conv.id, have + 1, conv.maxSeq]);
      } else if (conv.maxSeq > 0 && (conv.lastMsg?.seq || 0) < conv.maxSeq) {
        ranges.push([conv.id, conv.maxSeq, conv.maxSeq]);
      }
    }
    for (const [id, begin, end] of ranges) await this.pull(id, begin, end);
    this.emit('conversations');
    this.flushOutbox();
    this.refreshPresence().catch(() => {});
    this.loadRequests().catch(() => {});
    if (this.openConv) await this.open(this.openConv);
  }

  /** The highest seq of the contiguous run loaded (or of anything held, when nothing is loaded). */
  highestSeq(conv) {
    if (conv.loadedFrom === null) return conv.lastMsg?.seq || 0;
    let s = conv.loadedFrom - 1;
    while (conv.messages.has(s + 1)) s++;
    return Math.max(s, conv.loadedFrom - 1);
  }

  /** Pulls seqs `begin..end` of a conversation (in pages), storing what arrives. */
  async pull(convID, begin, end) {
    for (let hi = end; hi >= begin; hi -= 100) {
      const lo = Math.max(begin, hi - 99);
      const req = { userID: this.me.userID, seqRanges: [{ conversationID: convID, begin: lo, end: hi, num: hi - lo + 1 }], order: 0 };
      const resp = pb.decode(pb.PullMessageBySeqsResp, await this.gateway.request(REQ.PULL_BY_RANGE, pb.encode(pb.PullMessageBySeqsReq, req)));
      for (const m of resp.msgs[convID]?.Msgs || []) this.ingest(convID, m, { pulled: true });
    }
    this.emit('messages', { convID });
  }

  /** Stores one message (from a push or a pull). Returns whether it was new. */
  ingest(convID, raw, { pulled = false } = {}) {
    const msg = toMessage(raw);
    const conv = this.conv(convID);
    if (!msg.seq) return false;
    const pendingCopy = conv.pending.get(msg.clientMsgID);
    if (pendingCopy) {
      conv.pending.delete(msg.clientMsgID);
      this.outbox = this.outbox.filter(m => m !== pendingCopy);
    }
    if (conv.messages.has(msg.seq)) return false;
    const gapFrom = this.highestSeq(conv) + 1;
    conv.messages.set(msg.seq, msg);
    conv.maxSeq = Math.max(conv.maxSeq, msg.seq);
    if (msg.sendID === this.me.userID) conv.readSeq = Math.max(conv.readSeq, msg.seq);
    this.setLast(conv, msg);
    if (!pulled && conv.loadedFrom !== null && msg.seq > gapFrom && this.connection === 'online') {
      // A push skipped ahead: pull what lies between.
      this.pull(convID, gapFrom, msg.seq - 1).catch(() => {});
    }
    return true;
  }

  onFrame({ reqIdentifier, data }) {
    if (reqIdentifier === REQ.PUSH_MSG) {
      const push = pb.decode(pb.PushMessages, data);
      const touched = new Set(), unknown = [];
      for (const [convID, pulled] of Object.entries(push.msgs)) {
        if (!this.convs.has(convID)) unknown.push(convID);
        for (const m of pulled.Msgs) if (this.ingest(convID, m)) touched.add(convID);
      }
      for (const [, pulled] of Object.entries(push.notificationMsgs)) {
        for (const m of pulled.Msgs) this.onNotification(m);
      }
      for (const convID of touched) {
        this.emit('messages', { convID, incoming: true });
        if (convID === this.openConv) this.markRead(convID);
      }
      if (touched.size) this.emit('conversations');
      if (unknown.length) this.loadConversationsById(unknown).catch(() => {});
    } else if (reqIdentifier === REQ.SUB_USER_ONLINE_STATUS) {
      this.applyPresence(pb.decode(pb.SubUserOnlineStatusTips, data));
    }
  }

  onNotification(raw) {
    const type = raw.contentType;
    let tips = {};
    try { tips = JSON.parse(parseContent(raw.content).detail || '{}'); } catch { /* not JSON */ }
    if (type === CONTENT.READ_RECEIPT) {
      const conv = this.convs.get(tips.conversationID);
      if (!conv) return;
      if (tips.markAsReadUserID === this.me.userID) conv.readSeq = Math.max(conv.readSeq, tips.hasReadSeq || 0);
      else conv.peerReadSeq = Math.max(conv.peerReadSeq, tips.hasReadSeq || 0, ...(tips.seqs || [0]));
      this.emit('conversations');
      this.emit('messages', { convID: conv.id });
    } else if (type >= 1200 && type < 1300) {
      this.loadFriends().catch(() => {});
      this.loadRequests().catch(() => {});
    } else if (type >= 1500 && type < 1600) {
      const groupID = raw.groupID;
      if (groupID) this.fetchGroups([groupID]).then(() => this.emit('conversations')).catch(() => {});
      this.emit('group-changed', { groupID });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // History and read state

  /** Opens a conversation: loads its newest page if nothing is loaded, and marks it read. */
  async open(convID) {
    this.openConv = convID;
    const conv = this.conv(convID);
    if (conv.type === SESSION.SINGLE && conv.peerID) {
      this.fetchUsers([conv.peerID]).catch(() => {});
      this.refreshPresence([conv.peerID]).catch(() => {});
    }
    if (conv.type === SESSION.GROUP && !this.groups.has(conv.groupID)) await this.fetchGroups([conv.groupID]).catch(() => {});
    this.emit('conversations');
    if (conv.loadedFrom === null && this.connection === 'online') {
      const end = conv.maxSeq;
      const begin = Math.max(1, conv.minSeq || 1, end - PAGE + 1);
      if (end > 0) await this.pull(convID, begin, end);
      conv.loadedFrom = end > 0 ? begin : 1;
      this.emit('messages', { convID });
    }
    this.markRead(convID);
  }

  /** Whether older messages can be loaded. */
  hasOlder(conv) {
    return conv.loadedFrom !== null && conv.loadedFrom > Math.max(1, conv.minSeq || 1);
  }

  /** Loads the page of history before what is loaded (infinite scroll). Returns how many arrived. */
  async loadOlder(convID) {
    const conv = this.conv(convID);
    if (!this.hasOlder(conv) || this.loadingOlder) return 0;
    this.loadingOlder = true;
    try {
      const end = conv.loadedFrom - 1;
      const begin = Math.max(1, conv.minSeq || 1, end - PAGE + 1);
      const before = conv.messages.size;
      await this.pull(convID, begin, end);
      conv.loadedFrom = begin;
      this.emit('messages', { convID, older: true });
      return conv.messages.size - before;
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Messages to show, oldest first: the loaded run, then what is still being sent. */
  messages(convID) {
    const conv = this.conv(convID);
    const stored = [...conv.messages.values()]
      .filter(m => conv.loadedFrom !== null && m.seq >= conv.loadedFrom && (m.contentType < 1000 || systemText(m)))
      .sort((a, b) => a.seq - b.seq);
    const pending = [...conv.pending.values()].sort((a, b) => a.sendTime - b.sendTime);
    return stored.concat(pending);
  }

  /** Marks the open conversation read up to its max seq (when the page is visible). */
  markRead(convID) {
    const conv = this.convs.get(convID);
    if (!conv || !this.visible || this.unread(conv) === 0) return;
    clearTimeout(conv.markTimer);
    conv.markTimer = setTimeout(async () => {
      const seq = conv.maxSeq;
      try {
        await this.api.post('/msg/mark_conversation_as_read', { conversationID: convID, userID: this.me.userID, hasReadSeq: seq, seqs: [] });
        conv.readSeq = Math.max(conv.readSeq, seq);
        this.emit('conversations');
      } catch { /* retried on the next message or reconnect */ }
    }, 150);
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible && this.openConv) this.markRead(this.openConv);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Sending

  /** Queues a message of `contentType` with `content` (an object, sent as JSON) to a conversation. */
  send(convID, contentType, content) {
    const conv = this.conv(convID);
    const msg = {
      clientMsgID: randomId(16), seq: 0, sendID: this.me.userID,
      recvID: conv.type === SESSION.SINGLE ? conv.peerID : '', groupID: conv.type === SESSION.GROUP ? conv.groupID : '',
      sessionType: conv.type, contentType, content, sendTime: Date.now(), senderNickname: this.me.nickname,
      senderFaceURL: this.me.faceURL, status: 'sending', convID,
    };
    conv.pending.set(msg.clientMsgID, msg);
    this.setLast(conv, msg);
    this.outbox.push(msg);
    this.emit('messages', { convID, outgoing: true });
    this.emit('conversations');
    this.flushOutbox();
    return msg;
  }

  sendText(convID, text) { return this.send(convID, CONTENT.TEXT, { content: text }); }

  /** Sends what waits in the outbox, in order, while connected. */
  async flushOutbox() {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.outbox.length && this.connection === 'online') {
        const msg = this.outbox[0];
        const data = pb.encode(pb.MsgData, {
          sendID: msg.sendID, recvID: msg.recvID, groupID: msg.groupID, clientMsgID: msg.clientMsgID,
          senderPlatformID: PLATFORM_WEB, senderNickname: msg.senderNickname, senderFaceURL: msg.senderFaceURL,
          sessionType: msg.sessionType, msgFrom: 100, contentType: msg.contentType,
          content: utf8in.encode(JSON.stringify(msg.content)), createTime: msg.sendTime, status: 1, options: {},
        });
        try {
          const ack = pb.decode(pb.SendMsgResp, await this.gateway.request(REQ.SEND_MSG, data));
          msg.serverMsgID = ack.serverMsgID;
          msg.sendTime = ack.sendTime || msg.sendTime;
          msg.status = 'sent';
          // Not `shift()`: the push of this very message (which comes before the ack) may have removed it already.
          this.outbox = this.outbox.filter(m => m !== msg);
          // The seq arrives with the push; if this was a resend of a message stored before a disconnect, there
          // is no push, so look for it shortly.
          setTimeout(() => { if (this.conv(msg.convID).pending.has(msg.clientMsgID)) this.catchUp(msg.convID); }, 1500);
        } catch (e) {
          if (e instanceof GatewayError && e.code > 0) {
            // Refused by the server (not friends, blocked, muted, …): it will not go through on retry.
            msg.status = 'failed';
            msg.error = e.message;
            this.outbox = this.outbox.filter(m => m !== msg);
          } else {
            break; // disconnected: resent after the reconnect
          }
        }
        this.emit('messages', { convID: msg.convID });
      }
    } finally {
      this.sending = false;
    }
  }

  /** Pulls what a conversation lacks up to the server's max seq. */
  async catchUp(convID) {
    if (this.connection !== 'online') return;
    const resp = pb.decode(pb.GetConversationsHasReadAndMaxSeqResp, await this.gateway.request(
      REQ.GET_CONV_MAX_READ_SEQ, pb.encode(pb.GetConversationsHasReadAndMaxSeqReq, { userID: this.me.userID, conversationIDs: [convID] })));
    const s = resp.seqs[convID];
    const conv = this.conv(convID);
    if (!s) return;
    conv.maxSeq = Math.max(conv.maxSeq, s.maxSeq);
    const from = conv.loadedFrom === null ? s.maxSeq : this.highestSeq(conv) + 1;
    if (s.maxSeq >= from) await this.pull(convID, from, s.maxSeq);
    this.emit('conversations');
  }

  /** Drops a failed message from the screen. */
  discard(convID, clientMsgID) {
    this.conv(convID).pending.delete(clientMsgID);
    this.emit('messages', { convID });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Friends

  async loadFriends() {
    const { friendsInfo = [] } = await this.api.post('/friend/get_friend_list', { userID: this.me.userID, pagination: { pageNumber: 1, showNumber: 1000 } });
    const before = JSON.stringify([...this.friends.values()]);
    this.friends.clear();
    for (const f of friendsInfo) {
      const u = f.friendUser || {};
      this.friends.set(u.userID, f);
      this.users.set(u.userID, { userID: u.userID, nickname: u.nickname, faceURL: u.faceURL });
    }
    if (JSON.stringify([...this.friends.values()]) === before) return; // nothing new: no re-render
    this.emit('friends');
    this.refreshPresence().catch(() => {});
  }

  async loadRequests() {
    const page = { pageNumber: 1, showNumber: 100 };
    const [to, from] = await Promise.all([
      this.api.post('/friend/get_friend_apply_list', { userID: this.me.userID, pagination: page }),
      this.api.post('/friend/get_self_friend_apply_list', { userID: this.me.userID, pagination: page }),
    ]);
    const incoming = to.FriendRequests || to.friendRequests || [];
    const outgoing = from.friendRequests || from.FriendRequests || [];
    const changed = JSON.stringify([incoming, outgoing]) !== JSON.stringify([this.incoming, this.outgoing]);
    const accepted = outgoing.some(r => r.handleResult === 1 && !this.friends.has(r.toUserID));
    this.incoming = incoming;
    this.outgoing = outgoing;
    if (accepted) await this.loadFriends();
    if (changed) this.emit('friends');
  }

  pendingRequests() { return this.incoming.filter(r => r.handleResult === 0); }

  /** Looks a person up by exact user id. */
  async findUser(userID) {
    const [u] = await this.fetchUsers([userID.trim()], { force: true });
    return u || null;
  }

  async addFriend(userID, reqMsg = '') {
    await this.api.post('/friend/add_friend', { fromUserID: this.me.userID, toUserID: userID, reqMsg, ex: '' });
    await this.loadRequests();
  }

  async answerRequest(fromUserID, accept) {
    await this.api.post('/friend/add_friend_response', { fromUserID, toUserID: this.me.userID, handleResult: accept ? 1 : -1, handleMsg: '' });
    await Promise.all([this.loadRequests(), accept ? this.loadFriends() : null]);
  }

  async deleteFriend(userID) {
    await this.api.post('/friend/delete_friend', { ownerUserID: this.me.userID, friendUserID: userID });
    await this.loadFriends();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Groups

  async createGroup(name, memberIDs) {
    const { groupInfo } = await this.api.post('/group/create_group', {
      memberUserIDs: memberIDs, adminUserIDs: [], ownerUserID: this.me.userID,
      groupInfo: { groupID: '', groupName: name, groupType: 2 },
    });
    this.groups.set(groupInfo.groupID, groupInfo);
    const conv = this.conv(`sg_${groupInfo.groupID}`);
    conv.lastTime = Date.now();
    this.emit('conversations');
    return conv.id;
  }

  async groupMembers(groupID) {
    const out = [];
    for (let page = 1; ; page++) {
      const { members = [], total = 0 } = await this.api.post('/group/get_group_member_list', { groupID, pagination: { pageNumber: page, showNumber: 500 }, filter: 0, keyword: '' });
      out.push(...members);
      if (members.length < 500 || out.length >= total) break;
    }
    await this.fetchUsers(out.map(m => m.userID));
    return out;
  }

  async inviteToGroup(groupID, userIDs) {
    await this.api.post('/group/invite_user_to_group', { groupID, invitedUserIDs: userIDs, reason: '' });
    await this.fetchGroups([groupID]);
    this.emit('conversations');
  }

  async kickFromGroup(groupID, userIDs) {
    await this.api.post('/group/kick_group', { groupID, kickedUserIDs: userIDs, reason: '' });
    await this.fetchGroups([groupID]);
    this.emit('conversations');
  }

  async quitGroup(groupID) {
    await this.api.post('/group/quit_group', { groupID, userID: this.me.userID });
    this.convs.delete(`sg_${groupID}`);
    this.emit('conversations');
  }

  async dismissGroup(groupID) {
    await this.api.post('/group/dismiss_group', { groupID, deleteMember: false });
    await this.fetchGroups([groupID]);
    this.emit('conversations');
  }

  async renameGroup(groupID, groupName) {
    await this.api.post('/group/set_group_info_ex', { groupID, groupName });
    await this.fetchGroups([groupID]);
    this.emit('conversations');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Presence

  /** Online state of friends and 1:1 peers (or of `only`), by subscribing to it (2005): the server answers with the
   * current state (and, where it pushes changes, keeps the page up to date); refreshed on a timer, on reconnect
   * and when a chat opens. */
  async refreshPresence(only = null) {
    if (this.connection !== 'online') return;
    const ids = new Set(only || this.friends.keys());
    if (!only) for (const c of this.convs.values()) if (c.peerID) ids.add(c.peerID);
    ids.delete(this.me.userID);
    if (!ids.size) return;
    const data = await this.gateway.request(REQ.SUB_USER_ONLINE_STATUS, pb.encode(pb.SubUserOnlineStatus, { subscribeUserID: [...ids] }));
    this.applyPresence(pb.decode(pb.SubUserOnlineStatusTips, data));
  }

  applyPresence(tips) {
    for (const s of tips.subscribers) this.presence.set(s.userID, s.onlinePlatformIDs);
    this.emit('presence');
  }

  isOnline(userID) {
    if (userID === this.me.userID) return this.connection === 'online';
    return (this.presence.get(userID) || []).length > 0;
  }
}

export { ApiError };
