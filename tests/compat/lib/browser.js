// Headless Debian Chromium (driven by playwright-core) running @openim/wasm-client-sdk: one context and page per
// user device, every HTTP request to Palaver and every console line recorded to the artifacts directory.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Client } from './client.js';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchBrowser() {
  // playwright gives every launch a fresh temporary user-data-dir, and each context is isolated storage.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000 });
}

const MAX_LOGGED_BODY = 64 * 1024;

export class WasmClient extends Client {
  /**
   * Opens a new browser context (a fresh device: empty IndexedDB) with the test page loaded and the SDK ready.
   * @param {object} env the Env (browser, static server, server, artifacts dir)
   * @param {object} user {userID, nickname, token}
   * @param {object} [opts] `label`, `platformID` (5), `logLevel` (Go core log level, 5 = debug),
   *   `debug` (the JS wrapper's own console logging)
   */
  static async open(env, user, opts = {}) {
    const label = opts.label || user.userID;
    const context = await (await env.browser()).newContext();
    const client = new WasmClient(label, user, env, context, opts);
    await client.attach();
    return client;
  }

  constructor(label, user, env, context, opts) {
    super(label, user);
    this.env = env;
    this.context = context;
    this.platformID = opts.platformID ?? 5;
    this.logLevel = opts.logLevel ?? Number(process.env.COMPAT_SDK_LOG_LEVEL || 5);
    this.debug = opts.debug ?? process.env.COMPAT_SDK_DEBUG === '1';
    this.pulled = 0;
    this.wsOpens = []; // time of every WebSocket the page opened (reconnect loops show here)
    this.console = fs.createWriteStream(path.join(env.dir, `console-${label}.log`), { flags: 'a' });
    this.httpLog = fs.createWriteStream(path.join(env.dir, `http-${label}.jsonl`), { flags: 'a' });
  }

  async attach() {
    const api = this.env.server.apiUrl;
    const t0 = Date.now();
    const stamp = () => `${((Date.now() - t0) / 1000).toFixed(3).padStart(8)}`;
    this.context.on('requestfinished', async req => {
      if (!req.url().startsWith(api)) return;
      const res = await req.response().catch(() => null);
      let respBody = null;
      try { respBody = res ? await res.text() : null; } catch { /* body gone */ }
      this.recordHttp(req, res?.status() ?? 0, respBody);
    });
    this.context.on('requestfailed', req => {
      if (req.url().startsWith(api)) this.recordHttp(req, 0, req.failure()?.errorText ?? 'failed');
    });
    this.page = await this.context.newPage();
    this.page.on('console', m => this.console.write(`${stamp()} [${m.type()}] ${m.text()}\n`));
    this.page.on('pageerror', e => this.console.write(`${stamp()} [pageerror] ${e.stack || e}\n`));
    this.page.on('crash', () => this.console.write(`${stamp()} [crash] page crashed\n`));
    this.page.on('websocket', ws => {
      const url = ws.url().replace(/token=[^&]*/, 'token=…');
      let sent = 0, recv = 0;
      this.wsOpens.push(Date.now());
      this.console.write(`${stamp()} [ws] open ${url}\n`);
      ws.on('framesent', () => sent++);
      ws.on('framereceived', () => recv++);
      ws.on('socketerror', e => this.console.write(`${stamp()} [ws] error ${e}\n`));
      ws.on('close', () => this.console.write(`${stamp()} [ws] close ${url} (frames sent ${sent}, received ${recv})\n`));
    });
    await this.load();
  }

  async load() {
    await this.page.goto(`${this.env.static.url}/index.html${this.debug ? '?debug=1' : ''}`);
    await this.page.waitForFunction(() => window.__ready === true, null, { timeout: 20000 });
    this.pulled = 0;
  }

  recordHttp(req, status, respBody) {
    const u = new URL(req.url());
    let reqBody = req.postData();
    try { reqBody = JSON.parse(reqBody); } catch { /* keep text */ }
    let parsed = null;
    try { parsed = JSON.parse(respBody); } catch { /* not JSON */ }
    const rec = {
      t: Date.now(), sdk: 'wasm', who: this.label, method: req.method(), route: u.pathname, status,
      errCode: parsed?.errCode ?? null, reqBody, respBody: parsed ?? respBody,
    };
    this.http.push(rec);
    this.env.recordRoute(rec);
    const line = JSON.stringify(rec);
    this.httpLog.write((line.length > MAX_LOGGED_BODY ? JSON.stringify({ ...rec, respBody: '(truncated)' }) : line) + '\n');
  }

  loginParams(token) {
    return { userID: this.user.userID, token, platformID: this.platformID, apiAddr: this.env.server.apiUrl,
      wsAddr: this.env.server.wsUrl, logLevel: this.logLevel, isLogStandardOutput: true };
  }

  async pull() {
    if (this.page.isClosed() || this.page.url().startsWith('about:')) return;
    const fresh = await this.page.evaluate(from => window.__events(from), this.pulled);
    this.pulled += fresh.length;
    this.events.push(...fresh);
  }

  call(method, ...args) {
    return this.page.evaluate(([m, a]) => window.__call(m, a), [method, args]);
  }

  /** Calls the wasm core's function `name` directly with `args` (after the operationID); `{ok, data|errCode}`. */
  callCore(name, ...args) {
    return this.page.evaluate(([n, a]) => window.__callCore(n, a), [name, args]);
  }

  /** Quits the app (the page goes blank, the local database in IndexedDB stays). */
  async quit() {
    await this.pull();
    this.pulled = 0;
    await this.page.goto('about:blank');
  }

  /** Starts the app again on the same device (same context: same IndexedDB). */
  async restart() {
    if (!this.page.url().startsWith('about:')) await this.quit();
    await this.load();
  }

  async close() {
    try { await this.pull(); } catch { /* page gone */ }
    fs.writeFileSync(path.join(this.env.dir, `events-${this.label}.json`), JSON.stringify(this.events, null, 1));
    await this.context.close().catch(() => {});
    await new Promise(r => this.console.end(r));
    await new Promise(r => this.httpLog.end(r));
  }
}
