// @openim/client-sdk (pure JS, `sdkType=js` JSON envelope) running in this Node process: needs a global WebSocket
// (Node 20: --experimental-websocket). HTTP calls are recorded by wrapping the global fetch.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Client } from './client.js';

const require = createRequire(import.meta.url);
const byToken = new Map(); // token -> JsClient, to attribute recorded HTTP calls
let fetchWrapped = false;
let logStream = null;

function wrapFetch() {
  if (fetchWrapped) return;
  fetchWrapped = true;
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input.url;
    const headers = new Headers(init.headers || {});
    const client = byToken.get(headers.get('token'));
    const res = await realFetch(input, init).catch(e => { client?.recordHttp(url, init, 0, String(e)); throw e; });
    if (client) {
      const text = await res.clone().text().catch(() => null);
      client.recordHttp(url, init, res.status, text, headers.get('content-type'));
    }
    return res;
  };
}

/** Routes the SDK's loglevel output (one logger shared by every instance) to a file instead of the test's stdout. */
function redirectSdkLog(dir) {
  const log = require('loglevel');
  logStream?.end();
  logStream = fs.createWriteStream(path.join(dir, 'console-js-sdk.log'), { flags: 'a' });
  log.methodFactory = name => (...args) => {
    logStream.write(`${new Date().toISOString()} [${name}] ${args.map(a => typeof a === 'string' ? a : JSON.stringify(a)).join(' ')}\n`);
  };
  log.setLevel(log.getLevel());
}

export class JsClient extends Client {
  static async open(env, user, opts = {}) {
    if (typeof WebSocket === 'undefined') throw new Error('no global WebSocket: run node with --experimental-websocket');
    wrapFetch();
    if (!logStream || logStream.path !== path.join(env.dir, 'console-js-sdk.log')) redirectSdkLog(env.dir);
    return new JsClient(opts.label || `${user.userID}-js`, user, env, opts);
  }

  constructor(label, user, env, opts) {
    super(label, user);
    this.env = env;
    this.node = opts.node ?? env.pickNode();
    this.platformID = opts.platformID ?? 5;
    const { getSDK } = require('@openim/client-sdk');
    // A new instance per call (not a singleton). Its constructor prints a banner and starts cache-cleaning
    // intervals that nothing ever clears: unref them, or this process would never exit.
    const [info, setInterval] = [console.info, globalThis.setInterval];
    console.info = () => {};
    globalThis.setInterval = (...args) => setInterval(...args).unref();
    try { this.sdk = getSDK(); } finally { [console.info, globalThis.setInterval] = [info, setInterval]; }
    this.sdk.emit = (event, payload) => { // the proxy has no set trap: this lands on the instance its triggers call
      this.events.push({ t: Date.now(), event, errCode: payload?.errCode ?? 0, errMsg: payload?.errMsg ?? '', data: payload?.data });
      const handlers = this.sdk.events?.[event] || [];
      handlers.forEach(fn => fn(payload));
    };
    this.httpLog = fs.createWriteStream(path.join(env.dir, `http-${label}.jsonl`), { flags: 'a' });
  }

  recordHttp(url, init, status, text, contentType) {
    const u = new URL(url);
    let reqBody = init.body;
    if (typeof reqBody === 'string') { try { reqBody = JSON.parse(reqBody); } catch { /* text */ } }
    else if (reqBody) reqBody = `(${contentType || 'binary'} ${reqBody.byteLength ?? reqBody.length ?? '?'} bytes)`;
    let parsed = null;
    try { parsed = JSON.parse(text); } catch { /* protobuf or error text */ }
    const rec = { t: Date.now(), sdk: 'js', who: this.label, method: init.method || 'GET', route: u.pathname, status,
      errCode: parsed?.errCode ?? null, reqBody, respBody: parsed ?? (text && text.length > 200 ? `(${text.length} chars)` : text) };
    this.http.push(rec);
    this.env.recordRoute(rec);
    this.httpLog.write(JSON.stringify(rec) + '\n');
  }

  loginParams(token) {
    byToken.set(token, this);
    return { userID: this.user.userID, token, platformID: this.platformID, apiAddr: this.node.apiUrl,
      wsAddr: this.node.wsUrl, logLevel: 1 };
  }

  async call(method, ...args) {
    if (typeof this.sdk[method] !== 'function') return { ok: false, errCode: -1, errMsg: `no SDK method ${method}` };
    try {
      const r = await this.sdk[method](...args);
      return { ok: true, data: r && typeof r === 'object' && 'data' in r ? r.data : r };
    } catch (e) {
      return { ok: false, errCode: e?.errCode ?? -1, errMsg: e?.errMsg ?? e?.message ?? String(e) };
    }
  }

  async close() {
    const ws = this.sdk.wsManager;
    await this.call('logout');
    ws?.stopHeartbeat(); // logout closes the socket but leaves the heartbeat interval running, so Node never exits
    fs.writeFileSync(path.join(this.env.dir, `events-${this.label}.json`), JSON.stringify(this.events, null, 1));
    await new Promise(r => this.httpLog.end(r));
  }
}
