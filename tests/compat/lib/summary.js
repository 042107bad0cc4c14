// Prints every distinct REST route the SDKs called across a run (from each test file's routes.json), with how it
// answered: `node lib/summary.js <artifacts dir>`.
import fs from 'node:fs';
import path from 'node:path';

const root = process.argv[2];
const all = new Map();
for (const dir of fs.readdirSync(root).sort()) {
  const file = path.join(root, dir, 'routes.json');
  if (!fs.existsSync(file)) continue;
  for (const r of JSON.parse(fs.readFileSync(file, 'utf8'))) {
    let a = all.get(r.route);
    if (!a) all.set(r.route, a = { count: 0, statuses: new Set(), errCodes: new Set(), sdk: new Set(), files: new Set(), sample: r.sample });
    a.count += r.count;
    r.statuses.forEach(s => a.statuses.add(s));
    r.errCodes.forEach(s => a.errCodes.add(s));
    r.sdk.forEach(s => a.sdk.add(s));
    a.files.add(dir);
  }
}
const rows = [...all].sort(([x], [y]) => x.localeCompare(y));
const bad = rows.filter(([, a]) => [...a.statuses].some(s => s !== 200) || a.errCodes.size);
console.log(`Routes the SDKs called: ${rows.length} distinct, ${bad.length} with a non-200 answer or an error code.`);
for (const [route, a] of rows) {
  const flag = [...a.statuses].some(s => s !== 200) || a.errCodes.size ? '!!' : 'ok';
  const codes = a.errCodes.size ? ` errCodes ${[...a.errCodes].join(',')}` : '';
  console.log(`${flag} ${route.padEnd(58)} ${String(a.count).padStart(5)}x  HTTP ${[...a.statuses].join(',')}${codes}  [${[...a.sdk].join(',')}]`);
}
for (const [route, a] of bad) {
  console.log(`\n${route} (${[...a.files].join(', ')}): sample request body ${JSON.stringify(a.sample).slice(0, 400)}`);
}

// The gateway side, from the wasm SDK's own log in the browser consoles (Go core log level 4 or more): the request
// identifiers it sent, and every response that carried an error.
const sent = new Map();
const errors = new Map();
for (const dir of fs.readdirSync(root).sort()) {
  const d = path.join(root, dir);
  if (!fs.statSync(d).isDirectory()) continue;
  for (const f of fs.readdirSync(d).filter(f => f.startsWith('console-') && f.endsWith('.log'))) {
    for (const line of fs.readFileSync(path.join(d, f), 'utf8').split('\n')) {
      let m = line.match(/writePump recv message.*"reqIdentifier": (\d+)/);
      if (m) sent.set(m[1], (sent.get(m[1]) || 0) + 1);
      m = line.match(/recv msg.*"errCode": (\d+), "errMsg": "([^"]*)", "reqIdentifier": (\d+)/);
      if (m && m[1] !== '0') errors.set(`${m[3]} -> ${m[1]} ${m[2]}`, (errors.get(`${m[3]} -> ${m[1]} ${m[2]}`) || 0) + 1);
    }
  }
}
if (sent.size) {
  console.log(`\nGateway requests the wasm SDK sent: ${[...sent].sort().map(([id, n]) => `${id} x${n}`).join(', ')}`);
  console.log(errors.size ? `Gateway error responses: ${[...errors].map(([k, n]) => `${k} (x${n})`).join(', ')}` : 'Gateway error responses: none');
}
