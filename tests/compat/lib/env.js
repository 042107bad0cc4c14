// One test file's world: an artifacts directory, a Palaver server, the static page server, a Chromium (started on
// first use), and the SDK clients opened in it. `env.test` wraps node:test's `test` so that a failure names the
// artifacts directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, WasmClient } from './browser.js';
import { JsClient } from './jsclient.js';
import { Palaver, PalaverCluster } from './palaver.js';
import { startStatic } from './static.js';

export const ARTIFACTS_ROOT = process.env.COMPAT_ARTIFACTS || path.join(os.tmpdir(), 'palaver-compat');

export class Env {
  /**
   * Creates the environment of a test file and registers its before/after hooks.
   * @param {string} name artifacts subdirectory (use the file's name)
   * @param {object} [opts] `server`: options for Palaver.start (`env`, `args`); `cluster`: a number of nodes to
   *   run on PostgreSQL + NATS instead of one node on SQLite (default: the COMPAT_CLUSTER environment variable;
   *   devices then take the nodes in turn, see `pickNode`, so two users are on different nodes)
   */
  constructor(name, opts = {}) {
    this.cluster = Number(opts.cluster ?? process.env.COMPAT_CLUSTER ?? 0);
    this.name = this.cluster > 1 ? `${name}-cluster` : name;
    this.opts = opts;
    this.dir = path.join(ARTIFACTS_ROOT, this.name);
    this.nextNode = 0;
    this.clients = [];
    this.routes = new Map(); // "METHOD /route" -> {count, statuses:Set, errCodes:Set, who:Set, sample}
    before(() => this.start());
    after(() => this.stop());
  }

  async start() {
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true });
    if (this.cluster > 1) {
      this.palaverCluster = await PalaverCluster.start(this.dir, this.cluster, this.opts.server);
      this.servers = this.palaverCluster.nodes;
    } else {
      this.servers = [await Palaver.start(this.dir, this.opts.server)];
    }
    // Admin REST calls go to the first node; with a cluster any node would do (they share the store).
    this.server = this.servers[0];
    this.static = await startStatic();
  }

  /** The node the next device connects to: the nodes in turn (always the one node without a cluster). */
  pickNode() {
    return this.servers[this.nextNode++ % this.servers.length];
  }

  /** The shared Chromium, launched on first use. */
  browser() {
    this.browserPromise ||= launchBrowser();
    return this.browserPromise;
  }

  /** Registers users (nickname = capitalised id) and issues a token for each on `platformID`. */
  async users(ids, platformID = 5) {
    const users = ids.map(userID => ({ userID, nickname: userID[0].toUpperCase() + userID.slice(1) }));
    await this.server.register(users);
    for (const u of users) Object.assign(u, { token: await this.server.userToken(u.userID, platformID), issuedAt: Date.now() });
    return users;
  }

  /** A wasm SDK client on a fresh device (new browser context). */
  async wasm(user, opts) {
    const c = await WasmClient.open(this, user, opts);
    this.clients.push(c);
    return c;
  }

  /** A pure-JS SDK client in this Node process. */
  async js(user, opts) {
    const c = await JsClient.open(this, user, opts);
    this.clients.push(c);
    return c;
  }

  /** Closes a client early (its logs are written; `stop` skips it). */
  async closeClient(c) {
    this.clients = this.clients.filter(x => x !== c);
    await c.close();
  }

  recordRoute(rec) {
    const key = `${rec.method} ${rec.route}`;
    let r = this.routes.get(key);
    if (!r) this.routes.set(key, r = { count: 0, statuses: new Set(), errCodes: new Set(), who: new Set(), sample: rec.reqBody });
    r.count++;
    r.statuses.add(rec.status);
    if (rec.errCode) r.errCodes.add(rec.errCode);
    r.who.add(rec.sdk);
  }

  /** Writes routes.json: every distinct route the SDKs called, with statuses, error codes and a sample body. */
  writeRoutes() {
    const out = [...this.routes].map(([key, r]) => ({
      route: key, count: r.count, statuses: [...r.statuses], errCodes: [...r.errCodes], sdk: [...r.who], sample: r.sample,
    })).sort((a, b) => a.route.localeCompare(b.route));
    fs.writeFileSync(path.join(this.dir, 'routes.json'), JSON.stringify(out, null, 1));
  }

  async stop() {
    for (const c of this.clients.splice(0)) await c.close().catch(e => console.error(`closing ${c.label}: ${e}`));
    this.writeRoutes();
    if (this.browserPromise) await (await this.browserPromise).close().catch(() => {});
    await this.static?.stop();
    if (this.palaverCluster) await this.palaverCluster.stop();
    else await this.server?.stop();
  }

  /** `test()` whose failure message names the artifacts directory. `opts` as node:test (default timeout 120 s). */
  test(name, opts, fn) {
    if (typeof opts === 'function') [opts, fn] = [{}, opts];
    return test(name, { timeout: 120000, ...opts }, async t => {
      try {
        await fn(t);
      } catch (e) {
        const where = `artifacts (server.log, console-*.log, http-*.jsonl, events-*.json): ${this.dir}`;
        if (e && typeof e === 'object' && typeof e.message === 'string') e.message += `\n    ${where}`;
        t.diagnostic(where);
        throw e;
      }
    });
  }
}
