// A minimal protobuf (proto3) encoder and decoder for the few gateway messages the web client exchanges.
//
// The gateway's JSON envelope (`sdkType=js`) carries its payload as `data`: the base64 of a protobuf message, as
// OpenIM's pure-JS SDK sends it. A schema is `{fieldName: [number, type, 'repeated'?]}` where `type` is a scalar
// name ('string', 'bytes', 'bool', 'int32', 'int64'), another schema (a nested message), or `map(key, value)`.
// int64 values are JavaScript numbers: Palaver keeps seqs, times and versions below 2^53.
//
// Decoding fills every field with its proto3 default (strings '', numbers 0, lists [], maps {}, messages null),
// skips unknown fields, and accepts repeated numbers packed or not, as protobuf requires.

const utf8in = new TextEncoder();
const utf8out = new TextDecoder();

/** A map field type: `map('string', 'int64')`, `map('string', PullMsgs)`. */
export function map(key, value) {
  return { map: true, key, value };
}

const SCALAR_WIRE = { string: 2, bytes: 2, bool: 0, int32: 0, int64: 0 };

function wireOf(type) {
  if (typeof type === 'string') return SCALAR_WIRE[type];
  return 2; // messages and map entries
}

class Writer {
  constructor() { this.bytes = []; }

  varint(n) {
    if (n < 0 || n > Number.MAX_SAFE_INTEGER) {
      // Negative numbers are ten bytes of two's complement, as protobuf encodes int32 and int64.
      let big = BigInt.asUintN(64, BigInt(Math.trunc(n)));
      while (big >= 0x80n) { this.bytes.push(Number(big & 0x7fn) | 0x80); big >>= 7n; }
      this.bytes.push(Number(big));
      return;
    }
    n = Math.trunc(n);
    while (n >= 0x80) { this.bytes.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80); }
    this.bytes.push(n);
  }

  tag(number, wire) { this.varint(number * 8 + wire); }

  lengthDelimited(bytes) {
    this.varint(bytes.length);
    for (const b of bytes) this.bytes.push(b);
  }

  finish() { return Uint8Array.from(this.bytes); }
}

function isDefault(type, value) {
  if (value === undefined || value === null) return true;
  switch (type) {
    case 'string': return value === '';
    case 'bytes': return value.length === 0;
    case 'bool': return value === false;
    case 'int32': case 'int64': return value === 0;
    default: return false;
  }
}

function writeValue(w, number, type, value) {
  if (typeof type === 'string') {
    w.tag(number, SCALAR_WIRE[type]);
    switch (type) {
      case 'string': w.lengthDelimited(utf8in.encode(value)); break;
      case 'bytes': w.lengthDelimited(value); break;
      case 'bool': w.varint(value ? 1 : 0); break;
      default: w.varint(Number(value)); break;
    }
  } else {
    w.tag(number, 2);
    w.lengthDelimited(encode(type, value));
  }
}

/** Encodes `obj` as the message described by `schema`. Fields at their default are left out (proto3). */
export function encode(schema, obj) {
  const w = new Writer();
  for (const [name, [number, type, repeated]] of Object.entries(schema)) {
    const value = obj?.[name];
    if (value === undefined || value === null) continue;
    if (type.map) {
      for (const [k, v] of Object.entries(value)) {
        const entry = new Writer();
        writeValue(entry, 1, type.key, type.key === 'string' ? k : Number(k));
        if (!isDefault(type.value, v)) writeValue(entry, 2, type.value, v);
        w.tag(number, 2);
        w.lengthDelimited(entry.finish());
      }
    } else if (repeated) {
      if (typeof type === 'string' && SCALAR_WIRE[type] === 0) {
        if (value.length === 0) continue;
        const packed = new Writer();
        for (const v of value) packed.varint(type === 'bool' ? (v ? 1 : 0) : Number(v));
        w.tag(number, 2);
        w.lengthDelimited(packed.finish());
      } else {
        for (const v of value) writeValue(w, number, type, v);
      }
    } else if (!isDefault(type, value)) {
      writeValue(w, number, type, value);
    }
  }
  return w.finish();
}

class Reader {
  constructor(bytes) { this.buf = bytes; this.pos = 0; }

  done() { return this.pos >= this.buf.length; }

  byte() {
    if (this.pos >= this.buf.length) throw new Error('protobuf: truncated');
    return this.buf[this.pos++];
  }

  /** A varint as [low 32 bits (unsigned), high 32 bits (unsigned)]. */
  varint64() {
    let lo = 0, hi = 0, shift = 0, b;
    do {
      b = this.byte();
      if (shift < 28) lo += (b & 0x7f) * 2 ** shift;
      else if (shift === 28) { lo += (b & 0x0f) * 2 ** 28; hi += (b & 0x7f) >> 4; }
      else hi += (b & 0x7f) * 2 ** (shift - 32);
      shift += 7;
      if (shift > 70) throw new Error('protobuf: varint too long');
    } while (b & 0x80);
    return [lo >>> 0, hi >>> 0];
  }

  varint() {
    const [lo, hi] = this.varint64();
    return hi * 2 ** 32 + lo;
  }

  bytes() {
    const n = this.varint();
    if (this.pos + n > this.buf.length) throw new Error('protobuf: truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wire) {
    switch (wire) {
      case 0: this.varint64(); break;
      case 1: this.pos += 8; break;
      case 2: this.bytes(); break;
      case 5: this.pos += 4; break;
      default: throw new Error(`protobuf: unsupported wire type ${wire}`);
    }
    if (this.pos > this.buf.length) throw new Error('protobuf: truncated');
  }
}

function readScalar(r, type) {
  switch (type) {
    case 'string': return utf8out.decode(r.bytes());
    case 'bytes': return r.bytes().slice();
    case 'bool': return r.varint() !== 0;
    case 'int32': return r.varint64()[0] | 0;
    case 'int64': {
      const [lo, hi] = r.varint64();
      return hi >= 0x80000000 ? -((~hi >>> 0) * 2 ** 32 + (~lo >>> 0) + 1) : hi * 2 ** 32 + lo;
    }
    default: throw new Error(`protobuf: unknown type ${type}`);
  }
}

function defaults(schema) {
  const obj = {};
  for (const [name, [, type, repeated]] of Object.entries(schema)) {
    if (type.map) obj[name] = {};
    else if (repeated) obj[name] = [];
    else if (typeof type !== 'string') obj[name] = null;
    else obj[name] = type === 'string' ? '' : type === 'bytes' ? new Uint8Array(0) : type === 'bool' ? false : 0;
  }
  return obj;
}

function byNumber(schema) {
  if (!schema.__byNumber) {
    const index = new Map();
    for (const [name, [number, type, repeated]] of Object.entries(schema)) index.set(number, { name, type, repeated });
    Object.defineProperty(schema, '__byNumber', { value: index, enumerable: false });
  }
  return schema.__byNumber;
}

/** Decodes `bytes` as the message described by `schema`. */
export function decode(schema, bytes) {
  const r = bytes instanceof Reader ? bytes : new Reader(bytes);
  const obj = defaults(schema);
  const fields = byNumber(schema);
  while (!r.done()) {
    const key = r.varint();
    const number = Math.floor(key / 8), wire = key % 8;
    const field = fields.get(number);
    if (!field) { r.skip(wire); continue; }
    const { name, type, repeated } = field;
    if (type.map) {
      if (wire !== 2) { r.skip(wire); continue; }
      const entry = new Reader(r.bytes());
      let k = type.key === 'string' ? '' : 0;
      let v = typeof type.value === 'string' ? defaults({ v: [2, type.value] }).v : decode(type.value, new Uint8Array(0));
      while (!entry.done()) {
        const ek = entry.varint();
        const en = Math.floor(ek / 8), ew = ek % 8;
        if (en === 1 && ew === wireOf(type.key)) k = readScalar(entry, type.key);
        else if (en === 2 && ew === wireOf(type.value)) {
          v = typeof type.value === 'string' ? readScalar(entry, type.value) : decode(type.value, entry.bytes());
        } else entry.skip(ew);
      }
      obj[name][k] = v;
    } else if (typeof type !== 'string') {
      if (wire !== 2) { r.skip(wire); continue; }
      const value = decode(type, r.bytes());
      if (repeated) obj[name].push(value); else obj[name] = value;
    } else if (repeated && wire === 2 && SCALAR_WIRE[type] === 0) {
      const packed = new Reader(r.bytes());
      while (!packed.done()) obj[name].push(readScalar(packed, type));
    } else if (wire === SCALAR_WIRE[type]) {
      const value = readScalar(r, type);
      if (repeated) obj[name].push(value); else obj[name] = value;
    } else {
      r.skip(wire);
    }
  }
  return obj;
}

// ---------------------------------------------------------------------------------------------------------------
// The messages (field names and numbers of OpenIM's protocol, §2.10 and §8.1 of the protocol notes).

export const OfflinePushInfo = {
  title: [1, 'string'], desc: [2, 'string'], ex: [3, 'string'], iOSPushSound: [4, 'string'],
  iOSBadgeCount: [5, 'bool'], signalInfo: [6, 'string'],
};

export const MsgData = {
  sendID: [1, 'string'], recvID: [2, 'string'], groupID: [3, 'string'], clientMsgID: [4, 'string'],
  serverMsgID: [5, 'string'], senderPlatformID: [6, 'int32'], senderNickname: [7, 'string'],
  senderFaceURL: [8, 'string'], sessionType: [9, 'int32'], msgFrom: [10, 'int32'], contentType: [11, 'int32'],
  content: [12, 'bytes'], seq: [14, 'int64'], sendTime: [15, 'int64'], createTime: [16, 'int64'],
  status: [17, 'int32'], isRead: [18, 'bool'], options: [19, map('string', 'bool')],
  offlinePushInfo: [20, OfflinePushInfo], atUserIDList: [21, 'string', 'repeated'], attachedInfo: [22, 'string'],
  ex: [23, 'string'],
};

export const PullMsgs = { Msgs: [1, MsgData, 'repeated'], isEnd: [2, 'bool'], endSeq: [3, 'int64'] };

export const PushMessages = { msgs: [1, map('string', PullMsgs)], notificationMsgs: [2, map('string', PullMsgs)] };

export const GetMaxSeqReq = { userID: [1, 'string'] };
export const GetMaxSeqResp = { maxSeqs: [1, map('string', 'int64')], minSeqs: [2, map('string', 'int64')] };

export const SeqRange = { conversationID: [1, 'string'], begin: [2, 'int64'], end: [3, 'int64'], num: [4, 'int64'] };
export const PullMessageBySeqsReq = { userID: [1, 'string'], seqRanges: [2, SeqRange, 'repeated'], order: [3, 'int32'] };
export const PullMessageBySeqsResp = PushMessages;

export const SendMsgResp = {
  serverMsgID: [1, 'string'], clientMsgID: [2, 'string'], sendTime: [3, 'int64'], modify: [4, MsgData],
};

export const GetConversationsHasReadAndMaxSeqReq = {
  userID: [1, 'string'], conversationIDs: [2, 'string', 'repeated'], returnPinned: [3, 'bool'],
};
export const Seqs = { maxSeq: [1, 'int64'], hasReadSeq: [2, 'int64'], maxSeqTime: [3, 'int64'] };
export const GetConversationsHasReadAndMaxSeqResp = {
  seqs: [1, map('string', Seqs)], pinnedConversationIDs: [2, 'string', 'repeated'],
};

export const SubUserOnlineStatus = {
  subscribeUserID: [1, 'string', 'repeated'], unsubscribeUserID: [2, 'string', 'repeated'],
};
export const SubUserOnlineStatusElem = { userID: [1, 'string'], onlinePlatformIDs: [2, 'int32', 'repeated'] };
export const SubUserOnlineStatusTips = { subscribers: [1, SubUserOnlineStatusElem, 'repeated'] };

export const DelUserPushTokenReq = { userID: [1, 'string'], platformID: [2, 'int32'] };

// ---------------------------------------------------------------------------------------------------------------
// base64, as Go's encoding/json writes a []byte (standard alphabet, padded).

export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text) {
  if (!text) return new Uint8Array(0);
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
