// What every SDK client in the suite shares: a local copy of its event log, waits on it, and SDK calls that
// either return `{ok, data}` / `{ok:false, errCode, errMsg}` (`call`) or throw (`invoke`).
import { sleep, until } from './util.js';

export const LOGIN_OUTCOMES = ['OnSyncServerFinish', 'OnSyncServerFailed', 'OnConnectFailed', 'OnUserTokenExpired',
  'OnUserTokenInvalid', 'OnKickedOffline'];

export class Client {
  constructor(label, user) {
    this.label = label;
    this.user = user;
    this.events = []; // {t, event, errCode, errMsg, data}
    this.http = []; // {t, method, route, status, reqBody, errCode, respBody}
  }

  /** Fetches events recorded since the last pull into `this.events` (implemented per client kind). */
  async pull() {}

  /** Index of the next event: pass it as `since` to wait only for what happens after this point. */
  async mark() { await this.pull(); return this.events.length; }

  /** Waits for an event `name` (string or array) whose record satisfies `pred`, at or after index `since`. */
  async waitForEvent(name, pred = () => true, { timeout = 15000, since = 0 } = {}) {
    const names = Array.isArray(name) ? name : [name];
    return until(async () => {
      await this.pull();
      for (let i = since; i < this.events.length; i++) {
        const e = this.events[i];
        if (names.includes(e.event) && pred(e)) return e;
      }
      return null;
    }, { timeoutMs: timeout, intervalMs: 100, describe: () => `${this.label}: event ${names.join('|')}; last events: ${this.tail()}` });
  }

  /** Events named `name` at or after `since`. */
  find(name, since = 0) { return this.events.slice(since).filter(e => e.event === name); }

  tail(n = 12) {
    return this.events.slice(-n).map(e => e.event + (e.errCode ? `(${e.errCode} ${e.errMsg})` : '')).join(', ') || '(none)';
  }

  /** Calls an SDK method and throws on error; returns its data. */
  async invoke(method, ...args) {
    const r = await this.call(method, ...args);
    if (!r.ok) {
      const msg = String(r.errMsg ?? '');
      const err = new Error(`${this.label}: ${method} failed: ${r.errCode} ${msg.length > 600 ? `${msg.slice(0, 600)}…` : msg}`);
      err.errCode = r.errCode;
      throw err;
    }
    return r.data;
  }

  /**
   * Logs in and waits for the outcome: resolves `{outcome, result}` where outcome is the first of
   * OnSyncServerFinish / OnSyncServerFailed / OnConnectFailed / token / kick events after the call.
   */
  async login({ token = this.user.token, timeout = 30000 } = {}) {
    const since = await this.mark();
    const result = await this.call('login', this.loginParams(token));
    if (!result.ok) return { outcome: null, result };
    const outcome = await this.waitForEvent(LOGIN_OUTCOMES, () => true, { since, timeout });
    return { outcome, result, since };
  }

  /** Logs in and asserts the sync finished without OnSyncServerFailed. */
  async loginOk(opts) {
    const r = await this.login(opts);
    if (!r.result.ok) throw new Error(`${this.label}: login failed: ${r.result.errCode} ${r.result.errMsg}`);
    if (r.outcome.event !== 'OnSyncServerFinish') {
      throw new Error(`${this.label}: login ended with ${r.outcome.event} ${r.outcome.errCode} ${r.outcome.errMsg}; ` +
        `failed HTTP calls: ${this.failedRoutes(r.since).join(', ') || 'none'}; events: ${this.tail()}`);
    }
    return r;
  }

  /**
   * Throws unless every HTTP call to Palaver recorded since index `from` answered 200 with errCode 0.
   * Waits a moment first: response records arrive asynchronously.
   */
  async assertHttpOk(from = 0, what = 'HTTP calls') {
    await sleep(300);
    const bad = this.failedRoutes(from);
    if (bad.length) throw new Error(`${this.label}: ${what} failed: ${bad.join(', ')}`);
  }

  /** Distinct routes that answered non-200 or a non-zero errCode (since http index `from`). */
  failedRoutes(from = 0) {
    const bad = this.http.slice(from).filter(h => h.status !== 200 || h.errCode);
    return [...new Set(bad.map(h => `${h.route} -> ${h.status === 200 ? `errCode ${h.errCode}` : h.status || 'network error'}`))];
  }

  /** Creates and sends a text message; resolves to the sent message item. */
  async sendText({ recvID = '', groupID = '' }, text) {
    const message = await this.invoke('createTextMessage', text);
    return this.invoke('sendMessage', { recvID, groupID, message });
  }

  /**
   * The device's local history of a conversation via getAdvancedHistoryMessageList, paged from the newest back to
   * the start, returned oldest first. (On a fresh device the SDK fetches missing seqs from the server: WS 1005.)
   */
  async history(conversationID, pageSize = 50) {
    const out = [];
    let start = '';
    for (let page = 0; page < 1000; page++) {
      const r = await this.invoke('getAdvancedHistoryMessageList',
        { conversationID, startClientMsgID: start, count: pageSize, viewType: 0 });
      const list = r.messageList || [];
      out.unshift(...list);
      if (r.isEnd || list.length === 0) break;
      start = list[0].clientMsgID;
    }
    return out;
  }

  /** Every message item delivered through OnRecvNewMessages (at or after event index `since`). */
  received(since = 0) {
    return this.find('OnRecvNewMessages', since).flatMap(e => e.data || []);
  }

  /** Waits until `count` messages arrived via OnRecvNewMessages (optionally matching `pred`); returns them. */
  async waitReceived(count, { since = 0, pred = () => true, timeout = 15000 } = {}) {
    return until(async () => {
      await this.pull();
      const got = this.received(since).filter(pred);
      return got.length >= count ? got : null;
    }, { timeoutMs: timeout, describe: () => `${this.label}: ${count} messages (have ${this.received(since).filter(pred).length}); last events: ${this.tail()}` });
  }
}
