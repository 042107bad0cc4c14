// The test page: one wasm SDK instance (getSDK is a per-page singleton), every callback recorded in an event log
// that the Node side polls, and `__call` to run any SDK method and return its result or its error.
import { getSDK } from '/sdk/lib/index.es.js';

const debug = new URLSearchParams(location.search).get('debug') === '1';
const sdk = getSDK({ coreWasmPath: '/sdk/assets/openIM.wasm', sqlWasmPath: '/sdk/assets/sql-wasm.wasm', debug });

// Every event the SDK emits goes through `emit` (the Go core's callbacks arrive via commonEventFunc -> emit).
const events = [];
const emit = sdk.emit.bind(sdk);
sdk.emit = (event, payload) => {
  events.push({ t: Date.now(), event, errCode: payload?.errCode ?? 0, errMsg: payload?.errMsg ?? '', data: payload?.data });
  return emit(event, payload);
};

window.__events = from => events.slice(from);

// Files for the SDK's *ByFile methods: the Node side cannot pass a File through `evaluate`, so it stores the
// bytes here (`__putFile`) and names them in `__call`'s arguments as `{__file: key}`.
const files = {};
window.__putFile = (key, name, type, base64) => {
  const bytes = Uint8Array.from(atob(base64), c => c.charCodeAt(0));
  files[key] = new File([bytes], name, { type });
  return bytes.length;
};
const withFiles = v => {
  if (Array.isArray(v)) return v.map(withFiles);
  if (v && typeof v === 'object') {
    if (typeof v.__file === 'string') return files[v.__file];
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withFiles(x)]));
  }
  return v;
};

// Downloads `url` from the page (a cross-origin fetch, as an app would) and returns status, headers and base64 body.
window.__fetch = async (url, headers = {}) => {
  const res = await fetch(url, { headers });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { status: res.status, type: res.headers.get('content-type'), length: res.headers.get('content-length'),
    base64: btoa(binary) };
};

window.__call = async (method, args) => {
  if (typeof sdk[method] !== 'function') return { ok: false, errCode: -1, errMsg: `no SDK method ${method}` };
  try {
    const r = await sdk[method](...withFiles(args));
    return { ok: true, data: r && typeof r === 'object' && 'data' in r ? r.data : r };
  } catch (e) {
    if (e && typeof e === 'object') return { ok: false, errCode: e.errCode ?? -1, errMsg: e.errMsg ?? e.message ?? String(e) };
    return { ok: false, errCode: -1, errMsg: String(e) };
  }
};

// Calls a function of the wasm core directly (`window[name]`, with a fresh operationID first), through the
// wrapper's own invoker, for the few wrapper methods whose arguments do not match the core they ship with.
window.__callCore = async (name, args) => {
  if (typeof window[name] !== 'function') return { ok: false, errCode: -1, errMsg: `no core function ${name}` };
  try {
    const r = await sdk._invoker(name, window[name], [crypto.randomUUID(), ...args]);
    return { ok: true, data: r && typeof r === 'object' && 'data' in r ? r.data : r };
  } catch (e) {
    if (e && typeof e === 'object') return { ok: false, errCode: e.errCode ?? -1, errMsg: e.errMsg ?? e.message ?? String(e) };
    return { ok: false, errCode: -1, errMsg: String(e) };
  }
};

window.__ready = true;
