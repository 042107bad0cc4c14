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

window.__call = async (method, args) => {
  if (typeof sdk[method] !== 'function') return { ok: false, errCode: -1, errMsg: `no SDK method ${method}` };
  try {
    const r = await sdk[method](...args);
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
