// Category 3, reserved bits: no extension is negotiated, so a frame with
// any RSV bit set fails the connection (RFC 6455 §5.2). Where Autobahn
// sends a small text message first and expects its echo, the message is
// a ping op (its pong op is the echo); NON-STRICT when the server failed
// the connection before answering it.
'use strict';
const { OP, M, failing } = require('../harness');

const RFC = '§5.2: with a nonzero RSV bit and no extension negotiated, the receiving endpoint MUST _Fail the WebSocket Connection_';
const EXPECT_FAIL_AFTER_ECHO =
  'Echo for first message is received, but then connection is failed immediately, since RSV must be 0, when no extension defining RSV meaning has been negotiated. The Pong is not received.';
const op = (id) => `{"op":"ping","id":"${id}"}`;

const cases = [
  failing({
    id: '3.1',
    desc: 'Send small text message with RSV = 1.',
    expect: 'The connection is failed immediately (1002/protocol error), since RSV must be 0, when no extension defining RSV meaning has been negotiated.',
    herald: 'the text is a ping op: its pong op must not come',
    rfc: RFC,
    send: (t) => t.send({ opcode: OP.TEXT, payload: op('3.1'), rsv: 1 }),
  }),
];

// 3.2-3.4: a message, the same with RSV set, a ping: whole, frame-wise
// (each frame its own write), octet-wise.
for (const [id, rsv, opts, how] of [
  ['3.2', 2, {}, ''],
  ['3.3', 3, { sync: true }, ' Octets are sent in frame-wise chops.'],
  ['3.4', 4, { chop: 1 }, ' Octets are sent in octet-wise chops.'],
]) {
  cases.push(
    failing({
      id,
      desc: `Send small text message, then send again with RSV = ${rsv}, then send Ping.${how}`,
      expect: EXPECT_FAIL_AFTER_ECHO,
      herald: 'the message is a ping op: its pong op is the echo; the RSV frame carries another ping op whose pong must not come',
      rfc: RFC,
      answers: [M.pongOp(id)],
      nonStrict: [],
      async send(t) {
        await t.text(op(id), opts);
        await t.send({ opcode: OP.TEXT, payload: op(`${id} rsv`), rsv }, opts);
        await t.send({ opcode: OP.PING }, opts);
      },
    }),
  );
}

cases.push(
  failing({
    id: '3.5',
    desc: 'Send small binary message with RSV = 5.',
    expect: 'The connection is failed immediately, since RSV must be 0.',
    herald: 'no unsupported_frame error op must come',
    rfc: RFC,
    send: (t) => t.send({ opcode: OP.BINARY, payload: Buffer.from('00fffefdfcfb00ff', 'hex'), rsv: 5 }),
  }),
  failing({
    id: '3.6',
    desc: 'Send Ping with RSV = 6. (Autobahn\'s case sends opcode 2, a binary frame, with "Hello, world!"; so does this port.)',
    expect: 'The connection is failed immediately, since RSV must be 0.',
    rfc: RFC,
    send: (t) => t.send({ opcode: OP.BINARY, payload: 'Hello, world!', rsv: 6 }),
  }),
  failing({
    id: '3.7',
    desc: 'Send Close with RSV = 7.',
    expect: 'The connection is failed immediately, since RSV must be 0.',
    rfc: RFC,
    send: (t) => t.send({ opcode: OP.CLOSE, rsv: 7 }),
  }),
);

module.exports = { category: '3', title: 'Reserved Bits', cases };
