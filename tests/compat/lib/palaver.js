// Starts the real `palaver` binary on free loopback ports and provisions users over its REST API.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { REPO_ROOT, sleep } from './util.js';

export const ADMIN_USER = 'imAdmin';

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

/** A running Palaver server: `apiUrl`, `wsUrl`, an admin REST client, and `stop()`. */
export class Palaver {
  /**
   * @param {string} dir artifacts directory; the data dir and `server.log` go here
   * @param {object} [opts] `env`: extra environment (e.g. PALAVER_TOKEN_TTL_SECS), `args`: extra flags
   */
  static async start(dir, opts = {}) {
    const bin = process.env.PALAVER_BIN || path.join(REPO_ROOT, 'target/debug/palaver');
    if (!fs.existsSync(bin)) throw new Error(`palaver binary not found at ${bin}; run cargo build -p palaver`);
    const [wsPort, apiPort] = [await freePort(), await freePort()];
    const secret = opts.secret || `compat-${randomUUID()}`;
    const suffix = opts.node === undefined ? '' : `-node${opts.node}`;
    const dataDir = path.join(dir, `palaver-data${suffix}`);
    const logFile = path.join(dir, `server${suffix}.log`);
    const log = fs.openSync(logFile, 'a');
    const proc = spawn(
      bin,
      ['serve', '--data-dir', dataDir, '--ws-addr', `127.0.0.1:${wsPort}`, '--api-addr', `127.0.0.1:${apiPort}`,
        '--admin-secret', secret, ...(opts.args || [])],
      { stdio: ['ignore', log, log], env: { ...process.env, PALAVER_LOG: process.env.PALAVER_LOG || 'info,palaver=debug,palaver_server=debug', NO_COLOR: '1', ...opts.env } },
    );
    fs.closeSync(log);
    const server = new Palaver(proc, `http://127.0.0.1:${apiPort}`, `ws://127.0.0.1:${wsPort}`, secret, logFile);
    await server.waitHealthy();
    return server;
  }

  constructor(proc, apiUrl, wsUrl, secret, logFile) {
    Object.assign(this, { proc, apiUrl, wsUrl, secret, logFile });
    this.exited = null;
    proc.on('exit', (code, signal) => { this.exited = { code, signal }; });
    this.adminToken = null;
  }

  async waitHealthy(timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`palaver exited during start (${JSON.stringify(this.exited)}); see ${this.logFile}`);
      try {
        const res = await fetch(`${this.apiUrl}/healthz`);
        if (res.ok) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`palaver not healthy after ${timeoutMs} ms; see ${this.logFile}`);
      await sleep(50);
    }
  }

  /** POST a REST route; returns the whole `{errCode, errMsg, errDlt, data}` envelope (HTTP errors throw). */
  async post(route, body, token) {
    const headers = { 'content-type': 'application/json', operationID: randomUUID() };
    if (token) headers.token = token;
    const res = await fetch(this.apiUrl + route, { method: 'POST', headers, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`${route}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  /** POST as the admin; throws on a non-zero errCode, returns `data`. Fetches a fresh admin token when needed. */
  async admin(route, body) {
    for (let attempt = 0; ; attempt++) {
      if (!this.adminToken) {
        const r = await this.post('/auth/get_admin_token', { secret: this.secret, userID: ADMIN_USER });
        if (r.errCode) throw new Error(`get_admin_token: ${JSON.stringify(r)}`);
        this.adminToken = r.data.token;
      }
      const r = await this.post(route, body, this.adminToken);
      if (r.errCode >= 1501 && r.errCode <= 1507 && attempt === 0) { this.adminToken = null; continue; }
      if (r.errCode) throw new Error(`${route} ${JSON.stringify(body)} -> ${JSON.stringify(r)}`);
      return r.data;
    }
  }

  async register(users) {
    await this.admin('/user/user_register', { users: users.map(u => ({ userID: u.userID, nickname: u.nickname, faceURL: '' })) });
  }

  /** Which of `routes` this server does not have (an unknown route answers HTTP 404; a known one answers 200). */
  async userToken(userID, platformID = 5) {
    return (await this.admin('/auth/get_user_token', { platformID, userID })).token;
  }

  /** The server's own record of `userID`'s messages: {conversationID: [MsgData…] in seq order} (admin REST). */
  async history(userID) {
    const { maxSeqs = {}, minSeqs = {} } = await this.admin('/msg/newest_seq', { userID });
    const out = {};
    for (const [conversationID, max] of Object.entries(maxSeqs)) {
      const msgs = [];
      for (let begin = Math.max(1, minSeqs[conversationID] || 1); begin <= max; begin += 100) {
        const end = Math.min(max, begin + 99);
        const r = await this.admin('/msg/pull_msg_by_seq',
          { userID, seqRanges: [{ conversationID, begin, end, num: end - begin + 1 }], order: 0 });
        const pulled = { ...r.msgs, ...r.notificationMsgs }[conversationID];
        msgs.push(...(pulled?.Msgs || []));
      }
      out[conversationID] = msgs;
    }
    return out;
  }

  async stop() {
    if (this.exited) return;
    const done = new Promise(resolve => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
  }
}

/**
 * `n` Palaver nodes forming one cluster: one PostgreSQL schema of their own (created by the nodes on start,
 * dropped by `stop`) and one NATS cluster name of their own, on the services `tests/compat/run.sh` makes sure
 * of (COMPAT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; COMPAT_NATS_URL, default
 * nats://127.0.0.1:4222), and one files folder they share (`objects.local_dir`, which a cluster on the local
 * file backend must set). `nodes` are Palaver instances; logs go to server-node<i>.log.
 */
export class PalaverCluster {
  static async start(dir, n, opts = {}) {
    const tag = `compat_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    const base = process.env.COMPAT_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
    const databaseUrl = `${base}${base.includes('?') ? '&' : '?'}options[search_path]=${tag}`;
    const natsUrl = process.env.COMPAT_NATS_URL || 'nats://127.0.0.1:4222';
    const secret = `compat-${randomUUID()}`;
    const cluster = new PalaverCluster(base, tag);
    const args = ['--database-url', databaseUrl, '--nats-url', natsUrl, '--cluster-name', tag, ...(opts.args || [])];
    const env = { PALAVER_OBJECTS__LOCAL_DIR: path.join(dir, 'palaver-objects-shared'), ...(opts.env || {}) };
    // One after the other: the first creates and migrates the schema.
    for (let i = 0; i < n; i++) cluster.nodes.push(await Palaver.start(dir, { ...opts, env, args, secret, node: i }));
    return cluster;
  }

  constructor(base, schema) {
    Object.assign(this, { base, schema, nodes: [] });
  }

  async stop() {
    for (const node of this.nodes) await node.stop();
    // psql comes with PostgreSQL; without it the (small) schema is simply left behind.
    spawnSync('psql', [this.base, '-qc', `DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`], { stdio: 'ignore' });
  }
}
