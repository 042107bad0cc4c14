// A small static server on 127.0.0.1 for the test page and the wasm SDK's `assets/` and `lib/` directories.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { COMPAT_DIR } from './util.js';

const SDK_DIR = path.join(COMPAT_DIR, 'node_modules/@openim/wasm-client-sdk');
const MOUNTS = [
  ['/sdk/assets/', path.join(SDK_DIR, 'assets')],
  ['/sdk/lib/', path.join(SDK_DIR, 'lib')],
  ['/', path.join(COMPAT_DIR, 'page')],
];
const TYPES = {
  '.wasm': 'application/wasm', // instantiateStreaming refuses anything else, and the SDK has no fallback
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
};

function resolve(urlPath) {
  for (const [prefix, dir] of MOUNTS) {
    if (!urlPath.startsWith(prefix)) continue;
    let rel = decodeURIComponent(urlPath.slice(prefix.length)) || 'index.html';
    const file = path.resolve(dir, rel);
    if (!file.startsWith(dir + path.sep)) return null; // no escaping the mount
    return file;
  }
  return null;
}

export async function startStatic() {
  const server = http.createServer((req, res) => {
    const file = resolve(new URL(req.url, 'http://x').pathname);
    let stat;
    try { stat = file && fs.statSync(file); } catch { stat = null; }
    if (!stat || !stat.isFile() || !['GET', 'HEAD'].includes(req.method)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const etag = `"${stat.size}-${Math.floor(stat.mtimeMs)}"`;
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
      'content-length': stat.size,
      etag,
      'last-modified': stat.mtime.toUTCString(),
      'cache-control': 'no-cache',
    });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  server.url = `http://127.0.0.1:${server.address().port}`;
  server.stop = () => new Promise(r => { server.closeAllConnections?.(); server.close(() => r()); });
  return server;
}
