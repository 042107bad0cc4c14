// The REST client: OpenIM's conventions (POST + JSON, `operationID` and `token` headers, always HTTP 200 with
// `{errCode, errMsg, errDlt, data}`), as a promise that resolves to `data` or rejects with an ApiError.

/** A refused call: `code` is OpenIM's errCode (or -1 for HTTP failures, -2 when the server is unreachable). */
export class ApiError extends Error {
  constructor(code, msg, detail = '') {
    super(detail ? `${msg}: ${detail}` : msg);
    this.code = code;
    this.errMsg = msg;
    this.detail = detail;
  }

  /** Token errors (1501–1507): the session is over. */
  get isTokenError() { return this.code >= 1501 && this.code <= 1507; }

  /** The text to show a person. */
  get friendly() { return this.detail || this.errMsg || `error ${this.code}`; }
}

/** A random id: 16 random bytes as hex (works in insecure contexts, unlike crypto.randomUUID). */
export function randomId(bytes = 16) {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
}

export class Api {
  /**
   * @param {object} [opts] `base`: URL prefix of the API (default: this origin); `onTokenError(err)`: called when a
   *   call fails with a token error (the session has ended: kicked, logged out, expired).
   */
  constructor({ base = '', onTokenError = () => {} } = {}) {
    this.base = base;
    this.token = '';
    this.onTokenError = onTokenError;
  }

  /** POSTs `body` to `route`; resolves to the envelope's `data` (or `{}`), rejects with an ApiError. */
  async post(route, body = {}, { token = this.token } = {}) {
    const headers = { 'content-type': 'application/json', operationID: randomId(12) };
    if (token) headers.token = token;
    let res;
    try {
      res = await fetch(this.base + route, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(-2, 'The server cannot be reached', String(e?.message || e));
    }
    if (res.status !== 200) throw new ApiError(-1, `HTTP ${res.status}`, route);
    let envelope;
    try {
      envelope = await res.json();
    } catch {
      throw new ApiError(-1, 'Not a JSON answer', route);
    }
    if (envelope.errCode) {
      const err = new ApiError(envelope.errCode, envelope.errMsg || '', envelope.errDlt || '');
      if (err.isTokenError && token) this.onTokenError(err);
      throw err;
    }
    return envelope.data ?? {};
  }

  /** GETs a Palaver JSON route (same envelope). */
  async get(route) {
    const res = await fetch(this.base + route);
    const envelope = await res.json();
    if (envelope.errCode) throw new ApiError(envelope.errCode, envelope.errMsg, envelope.errDlt);
    return envelope.data ?? {};
  }
}
