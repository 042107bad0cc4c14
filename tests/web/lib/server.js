// The real `palaver` binary on free loopback ports, restartable on the same ports and data folder, with an admin
// REST client.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { REPO_ROOT, sleep } from './util.js';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export class Palaver {
  /** Starts a server whose data and `server.log` live in `dir`. `opts.args`: extra flags; `opts.env`: environment. */
  static async start(dir, opts = {}) {
    const server = new Palaver(dir, opts, await freePort(), await freePort());
    await server.spawn();
    return server;
  }

  constructor(dir, opts, wsPort, apiPort) {
    Object.assign(this, { dir, opts, wsPort, apiPort });
    this.url = `http://127.0.0.1:${apiPort}`;
    this.secret = `web-${randomUUID()}`;
    this.logFile = path.join(dir, 'server.log');
    this.adminToken = null;
  }

  async spawn() {
    const bin = process.env.PALAVER_BIN || path.join(REPO_ROOT, 'target/debug/palaver');
    if (!fs.existsSync(bin)) throw new Error(`palaver binary not found at ${bin}; run cargo build -p palaver`);
    const log = fs.openSync(this.logFile, 'a');
    this.proc = spawn(bin, ['serve', '--data-dir', path.join(this.dir, 'palaver-data'),
      '--ws-addr', `127.0.0.1:${this.wsPort}`, '--api-addr', `127.0.0.1:${this.apiPort}`, '--admin-secret', this.secret,
      ...(this.opts.args || [])], {
      stdio: ['ignore', log, log],
      env: { ...process.env, PALAVER_LOG: process.env.PALAVER_LOG || 'info,palaver_server=debug', NO_COLOR: '1', ...this.opts.env },
    });
    fs.closeSync(log);
    this.exited = null;
    this.proc.on('exit', (code, signal) => { this.exited = { code, signal }; });
    await this.waitHealthy();
  }

  async waitHealthy(timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`palaver exited during start (${JSON.stringify(this.exited)}); see ${this.logFile}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`palaver not healthy after ${timeoutMs} ms; see ${this.logFile}`);
      await sleep(50);
    }
  }

  /** Stops with SIGTERM (graceful: connections are closed), waiting for the exit. */
  async stop() {
    if (!this.proc || this.exited) return;
    const done = new Promise(resolve => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await done;
    clearTimeout(timer);
  }

  /** Stops and starts again on the same ports and data folder. */
  async restart() {
    await this.stop();
    await this.spawn();
  }

  /** POSTs a route; returns the whole envelope (HTTP errors throw). */
  async post(route, body, token) {
    const headers = { 'content-type': 'application/json', operationID: randomUUID() };
    if (token) headers.token = token;
    const res = await fetch(this.url + route, { method: 'POST', headers, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`${route}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  /** POSTs as the admin; throws on a non-zero errCode; returns `data`. */
  async admin(route, body = {}) {
    for (let attempt = 0; ; attempt++) {
      if (!this.adminToken) {
        const r = await this.post('/auth/get_admin_token', { secret: this.secret, userID: 'imAdmin' });
        if (r.errCode) throw new Error(`get_admin_token: ${JSON.stringify(r)}`);
        this.adminToken = r.data.token;
      }
      const r = await this.post(route, body, this.adminToken);
      if (r.errCode >= 1501 && r.errCode <= 1507 && attempt === 0) { this.adminToken = null; continue; }
      if (r.errCode) throw new Error(`${route} ${JSON.stringify(body)} -> ${JSON.stringify(r)}`);
      return r.data ?? {};
    }
  }

  /** Creates accounts with passwords (as the admin). */
  async accounts(users) {
    for (const u of users) {
      await this.admin('/account/register', { user: { userID: u.userID, nickname: u.nickname, password: u.password }, autoLogin: false });
    }
  }

  /** The server's record of a conversation as seen by `userID`: its messages in seq order (admin REST), user
   * messages only (server notifications stored in the conversation, such as "you are now friends", left out). */
  async history(userID, conversationID) {
    const { maxSeqs = {} } = await this.admin('/msg/newest_seq', { userID });
    const max = maxSeqs[conversationID] || 0;
    const out = [];
    for (let begin = 1; begin <= max; begin += 100) {
      const end = Math.min(max, begin + 99);
      const r = await this.admin('/msg/pull_msg_by_seq', { userID, seqRanges: [{ conversationID, begin, end, num: end - begin + 1 }], order: 0 });
      out.push(...(r.msgs?.[conversationID]?.Msgs || []));
    }
    return out.filter(m => m.contentType < 1000).map(m => ({ seq: m.seq, sendID: m.sendID, sendTime: Number(m.sendTime), clientMsgID: m.clientMsgID, contentType: m.contentType, content: JSON.parse(Buffer.from(m.content, 'base64').toString()) }));
  }
}
