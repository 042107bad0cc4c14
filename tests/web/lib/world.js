// One test file's world: an artifacts folder, a Palaver server, a headless Chromium, and the pages (one browser
// context each: a person on their own device). Screenshots go to the artifacts folder, and those meant for the
// README also to $WEB_SCREENSHOTS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { Palaver } from './server.js';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The flags known to work on these machines (no sandbox as root, no background networking on a closed network),
// plus a fake microphone for voice notes.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required'];
const ROOT = process.env.WEB_ARTIFACTS || path.join(os.tmpdir(), 'palaver-web');

export class World {
  constructor(name, opts = {}) {
    this.name = name;
    this.opts = opts;
    this.dir = path.join(ROOT, name);
    this.pages = [];
    this.pageErrors = [];
    before(() => this.start());
    after(() => this.stop());
  }

  async start() {
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.dir, { recursive: true });
    this.server = await Palaver.start(this.dir, this.opts.server);
  }

  browser() {
    this.browserPromise ||= chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30000 });
    return this.browserPromise;
  }

  /**
   * A new device: a fresh browser context (its own storage) with one page on `path` of the server.
   * `beforeLoad(page)` runs before the first navigation (to route its WebSockets, say).
   */
  async page(label, { path: at = '/', viewport = { width: 1120, height: 720 }, beforeLoad = null } = {}) {
    const context = await (await this.browser()).newContext({ viewport, deviceScaleFactor: 1, permissions: ['microphone'] });
    const page = await context.newPage();
    page.label = label;
    const log = fs.createWriteStream(path.join(this.dir, `console-${label}.log`), { flags: 'a' });
    const t0 = Date.now();
    const stamp = () => ((Date.now() - t0) / 1000).toFixed(3).padStart(8);
    page.on('console', m => log.write(`${stamp()} [${m.type()}] ${m.text()}\n`));
    page.on('pageerror', e => { this.pageErrors.push(`${label}: ${e.stack || e}`); log.write(`${stamp()} [pageerror] ${e.stack || e}\n`); });
    page.on('websocket', ws => {
      log.write(`${stamp()} [ws] open ${ws.url().replace(/token=[^&]*/, 'token=…')}\n`);
      ws.on('close', () => log.write(`${stamp()} [ws] close\n`));
    });
    page.on('requestfailed', r => log.write(`${stamp()} [requestfailed] ${r.method()} ${r.url()} ${r.failure()?.errorText}\n`));
    page.on('response', r => { if (r.status() >= 400) log.write(`${stamp()} [http ${r.status()}] ${r.request().method()} ${r.url()}\n`); });
    page.closeLog = () => new Promise(r => log.end(r));
    if (beforeLoad) await beforeLoad(page);
    await page.goto(this.server.url + at);
    this.pages.push(page);
    return page;
  }

  /** Saves a screenshot as `<name>.png` in the artifacts (and in $WEB_SCREENSHOTS when `readme` is set). */
  async shot(page, name, { readme = false } = {}) {
    const file = path.join(this.dir, `${name}.png`);
    // Transient notices would only clutter the picture.
    if (readme) await page.evaluate(() => document.getElementById('toasts')?.remove());
    await page.screenshot({ path: file });
    if (readme && process.env.WEB_SCREENSHOTS) fs.copyFileSync(file, path.join(process.env.WEB_SCREENSHOTS, `${name}.png`));
  }

  async stop() {
    for (const p of this.pages.splice(0)) {
      await p.context().close().catch(() => {});
      await p.closeLog();
    }
    if (this.browserPromise) await (await this.browserPromise).close().catch(() => {});
    await this.server?.stop();
  }

  /** `test()` whose failure names the artifacts folder and that fails on uncaught page errors. */
  test(name, fn, opts = {}) {
    return test(name, { timeout: 180000, ...opts }, async t => {
      try {
        await fn(t);
        if (this.pageErrors.length) throw new Error(`uncaught errors in the page:\n${this.pageErrors.join('\n')}`);
      } catch (e) {
        const where = `artifacts (screenshots, console-*.log, server.log): ${this.dir}`;
        if (e && typeof e === 'object' && typeof e.message === 'string') e.message += `\n    ${where}`;
        for (const p of this.pages) await p.screenshot({ path: path.join(this.dir, `failure-${p.label}.png`) }).catch(() => {});
        throw e;
      }
    });
  }
}
