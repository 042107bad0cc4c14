import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_TESTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(WEB_TESTS_DIR, '../..');
export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/** Polls `fn` until it returns a truthy value; throws `describe()` after `timeoutMs`. */
export async function until(fn, { timeoutMs = 15000, intervalMs = 100, describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe ? await describe() : 'condition'}`);
    await sleep(intervalMs);
  }
}
