// The web client's own codecs, in Node: the protobuf subset it speaks to the gateway, and MD5 for uploads.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { md5Hex } from '../../../web/js/md5.js';
import * as pb from '../../../web/js/pb.js';

const hex = bytes => Buffer.from(bytes).toString('hex');

test('MsgData encodes field by field as protobuf does, and decodes back', () => {
  const msg = {
    sendID: 'alice', recvID: 'bob', clientMsgID: 'c1', sessionType: 1, msgFrom: 100, contentType: 101,
    content: new TextEncoder().encode('{"content":"hé"}'), seq: 300, sendTime: 1700000000123, options: { history: false },
    atUserIDList: ['x', 'y'],
  };
  const bytes = pb.encode(pb.MsgData, msg);
  // sendID (1) "alice", recvID (2) "bob", clientMsgID (4) "c1", sessionType (9) 1, msgFrom (10) 100, …
  assert.ok(hex(bytes).startsWith(`0a05${hex(Buffer.from('alice'))}1203${hex(Buffer.from('bob'))}2202${hex(Buffer.from('c1'))}48015064`));
  // seq (14) 300 as a varint: ac 02.
  assert.ok(hex(bytes).includes('70ac02'));
  const back = pb.decode(pb.MsgData, bytes);
  assert.equal(back.sendID, 'alice');
  assert.equal(back.seq, 300);
  assert.equal(back.sendTime, 1700000000123);
  assert.deepEqual(back.options, { history: false });
  assert.deepEqual(back.atUserIDList, ['x', 'y']);
  assert.equal(new TextDecoder().decode(back.content), '{"content":"hé"}');
  // Absent fields decode to their defaults.
  assert.equal(back.groupID, '');
  assert.equal(back.offlinePushInfo, null);
});

test('negative numbers, packed and unpacked repeated fields, maps of messages, unknown fields', () => {
  const neg = pb.encode({ n: [1, 'int32'], m: [2, 'int64'] }, { n: -1, m: -5 });
  assert.equal(hex(neg), `08${'ff'.repeat(9)}01` + `10${'fb'}${'ff'.repeat(8)}01`);
  assert.deepEqual(pb.decode({ n: [1, 'int32'], m: [2, 'int64'] }, neg), { n: -1, m: -5 });
  // Packed (as encoded here) and unpacked (as some encoders send) repeated int64.
  const schema = { seqs: [3, 'int64', 'repeated'] };
  assert.equal(hex(pb.encode(schema, { seqs: [1, 2, 300] })), '1a040102ac02');
  assert.deepEqual(pb.decode(schema, Uint8Array.from([0x18, 1, 0x18, 2])).seqs, [1, 2]);
  // A push: map<string, PullMsgs>, with an unknown field (99, varint) to skip.
  const push = pb.encode(pb.PushMessages, { msgs: { si_a_b: { Msgs: [{ seq: 7, sendID: 'a' }], isEnd: true } } });
  const withUnknown = Uint8Array.from([...push, 0x98, 0x06, 0x01]);
  const decoded = pb.decode(pb.PushMessages, withUnknown);
  assert.equal(decoded.msgs.si_a_b.Msgs[0].seq, 7);
  assert.equal(decoded.msgs.si_a_b.isEnd, true);
  assert.deepEqual(decoded.notificationMsgs, {});
  // int64 values up to 2^53 survive.
  const big = 2 ** 53 - 1;
  assert.equal(pb.decode(pb.Seqs, pb.encode(pb.Seqs, { maxSeq: big })).maxSeq, big);
  assert.throws(() => pb.decode(pb.MsgData, Uint8Array.from([0x0a, 0x05, 0x61])), /truncated/);
});

test('base64 as Go writes []byte', () => {
  const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
  assert.equal(pb.toBase64(bytes), Buffer.from(bytes).toString('base64'));
  assert.deepEqual(pb.fromBase64(pb.toBase64(bytes)), bytes);
  assert.deepEqual(pb.fromBase64(null), new Uint8Array(0));
});

test('MD5 matches Node on edge lengths and a few MB', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1000, 3_000_001]) {
    const data = crypto.randomBytes(n);
    assert.equal(md5Hex(data), crypto.createHash('md5').update(data).digest('hex'), `length ${n}`);
  }
  assert.equal(md5Hex(new TextEncoder().encode('abc')), '900150983cd24fb0d6963f7d28e17f72');
});
