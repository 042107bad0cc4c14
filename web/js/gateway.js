// The gateway connection: OpenIM's WebSocket protocol with the JSON envelope (`sdkType=js`), as the pure-JS SDK
// speaks it. Requests are matched to replies by `msgIncr`; pushes (2001), status (2005) and kicks (2002) are
// events. The connection keeps itself up: a text ping every 10 s (the server answers with a pong), a socket
// that stays silent for 25 s is dropped, and a dropped connection is reopened with backoff until `stop()`, a
// kick, or a token error.

import { randomId } from './api.js';
import { fromBase64, toBase64 } from './pb.js';

export const REQ = {
  GET_NEWEST_SEQ: 1001, PULL_BY_RANGE: 1002, SEND_MSG: 1003, PULL_BY_SEQS: 1005, GET_CONV_MAX_READ_SEQ: 1006,
  PUSH_MSG: 2001, KICK: 2002, LOGOUT: 2003, SUB_USER_ONLINE_STATUS: 2005,
};

const PING_EVERY = 10_000;
const SILENCE_LIMIT = 25_000;
const REQUEST_TIMEOUT = 15_000;
const MAX_BACKOFF = 5_000;

/** A request the server answered with a non-zero errCode, or that could not be answered. */
export class GatewayError extends Error {
  constructor(code, msg) {
    super(msg);
    this.code = code;
  }
}

const utf8in = new TextEncoder();
const utf8out = new TextDecoder();

export class Gateway extends EventTarget {
  /**
   * @param {object} opts `url` (ws:// or wss:// address of the gateway, without query), `userID`, `token`,
   *   `platformID`.
   */
  constructor({ url, userID, token, platformID }) {
    super();
    Object.assign(this, { url, userID, token, platformID });
    this.state = 'idle'; // idle | connecting | online | waiting | closed
    this.pending = new Map(); // msgIncr -> {resolve, reject, timer}
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.wake = () => { if (this.state === 'waiting') this.open(); };
  }

  setState(state, detail = {}) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...detail } }));
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.wake);
    document.addEventListener('visibilitychange', this.wake);
    this.open();
  }

  /** Closes for good (logout, kicked, token error). */
  stop(reason = 'stopped') {
    this.stopped = true;
    window.removeEventListener('online', this.wake);
    document.removeEventListener('visibilitychange', this.wake);
    clearTimeout(this.retryTimer);
    this.teardown(reason);
    this.setState('closed', { reason });
  }

  open() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.setState('connecting');
    const query = new URLSearchParams({
      sendID: this.userID, token: this.token, platformID: String(this.platformID), operationID: randomId(8),
      isBackground: 'false', isMsgResp: 'true', sdkType: 'js',
    });
    let ws;
    try {
      ws = new WebSocket(`${this.url}?${query}`);
    } catch (e) {
      this.scheduleRetry(String(e));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.handshaken = false;
    ws.onmessage = ev => this.onFrame(ws, ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.teardown('connection closed');
      this.scheduleRetry('connection closed');
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  teardown(reason) {
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onerror = null;
      try { ws.close(); } catch { /* already closed */ }
    }
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new GatewayError(-2, `disconnected (${reason})`));
    }
    this.pending.clear();
  }

  scheduleRetry(reason) {
    if (this.stopped) return;
    const delay = Math.min(MAX_BACKOFF, 300 * 2 ** this.attempt) + Math.random() * 300;
    this.attempt++;
    this.setState('waiting', { reason, retryIn: delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  onFrame(ws, data) {
    this.lastFrame = Date.now();
    if (typeof data === 'string') {
      if (!this.handshaken) return this.onHandshake(ws, data);
      return; // pongs: lastFrame is all they are for
    }
    let resp;
    try {
      resp = JSON.parse(utf8out.decode(new Uint8Array(data)));
    } catch {
      return;
    }
    const payload = fromBase64(resp.data);
    const waiting = resp.msgIncr && this.pending.get(resp.msgIncr);
    if (waiting) {
      this.pending.delete(resp.msgIncr);
      clearTimeout(waiting.timer);
      if (resp.errCode) waiting.reject(new GatewayError(resp.errCode, resp.errMsg || `error ${resp.errCode}`));
      else waiting.resolve(payload);
      return;
    }
    if (resp.reqIdentifier === REQ.KICK) {
      this.stop('kicked');
      this.dispatchEvent(new CustomEvent('kicked'));
      return;
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: { reqIdentifier: resp.reqIdentifier, data: payload } }));
  }

  onHandshake(ws, text) {
    let status;
    try { status = JSON.parse(text); } catch { status = { errCode: -1, errMsg: 'bad handshake' }; }
    if (status.errCode) {
      const tokenError = (status.errCode >= 1501 && status.errCode <= 1507) || status.errCode === 20012;
      if (tokenError) {
        this.stop('auth');
        this.dispatchEvent(new CustomEvent('auth-failed', { detail: status }));
      } else {
        this.teardown(status.errMsg);
        this.scheduleRetry(status.errMsg);
      }
      return;
    }
    this.handshaken = true;
    this.attempt = 0;
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastFrame > SILENCE_LIMIT) {
        this.teardown('silent');
        this.scheduleRetry('no answer from the server');
        return;
      }
      try { ws.send(JSON.stringify({ type: 'ping', body: randomId(4) })); } catch { /* onclose follows */ }
    }, PING_EVERY);
    this.setState('online');
  }

  /** Sends a request; resolves to the reply's protobuf payload, rejects with a GatewayError. */
  request(reqIdentifier, data = new Uint8Array(0), { timeout = REQUEST_TIMEOUT } = {}) {
    if (this.state !== 'online' || !this.ws) {
      return Promise.reject(new GatewayError(-2, 'not connected'));
    }
    const msgIncr = `${this.userID}_${randomId(8)}`;
    const envelope = {
      reqIdentifier, token: '', sendID: this.userID, operationID: randomId(12), msgIncr, data: toBase64(data),
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgIncr);
        reject(new GatewayError(-3, 'the server did not answer in time'));
      }, timeout);
      this.pending.set(msgIncr, { resolve, reject, timer });
      try {
        this.ws.send(utf8in.encode(JSON.stringify(envelope)));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(msgIncr);
        reject(new GatewayError(-2, String(e)));
      }
    });
  }
}
