// Category 7, close handling: the fuzzer starts the closing handshake with
// close frames of every shape; the server answers with its own close frame
// (the same or the normal code), or, for a malformed one, 1002 or a
// dropped TCP connection (RFC 6455 §5.5.1, §7.4). Autobahn's messages are
// ping ops here, as in category 3.
'use strict';
const { OP, M, V, CLOSE, answered, textMessage } = require('../harness');

const RFC_CLOSE = '§5.5.1: a close frame body is empty or a 2-byte code then a UTF-8 reason; §7.4.1/§7.4.2: codes 1000-1003, 1007-1011, 3000-4999 are valid; 0-999, 1004-1006, 1012-2999 (unassigned) are not, and a malformed close is a protocol error (1002)';
const op = (id) => `{"op":"ping","id":"${id}"}`;

// A case that sends its own close frame(s): what comes back before the
// server's close is the case's "received", then the handshake must end.
function closing({ id, desc, expect, herald, rfc = RFC_CLOSE, codes, requireClean = true, answers = [], send, informational }) {
  return {
    id,
    desc,
    expect,
    herald,
    rfc,
    async run(t) {
      t.expect(V.OK, answers);
      t.expectClose({ closedByMe: true, codes, requireClean });
      await send(t);
      if (informational) t.post = informational;
    },
  };
}

const cases = [
  answered({
    id: '7.1.1',
    desc: 'Send a message followed by a close frame',
    expect: 'Echoed message followed by clean close with normal code.',
    herald: 'the message is a ping op: its pong op, then our close',
    answers: [M.pongOp('7.1.1')],
    send: (t) => t.text(op('7.1.1')),
  }),
  closing({
    id: '7.1.2',
    desc: 'Send two close frames',
    expect: 'Clean close with normal code. Second close frame ignored.',
    codes: [CLOSE.NORMAL],
    async send(t) {
      await t.c.sendClose(CLOSE.NORMAL);
      await t.send({ opcode: OP.CLOSE });
    },
  }),
  closing({
    id: '7.1.3',
    desc: 'Send a ping after close message',
    expect: 'Clean close with normal code, no pong.',
    codes: [CLOSE.NORMAL],
    async send(t) {
      await t.c.sendClose(CLOSE.NORMAL);
      await t.send({ opcode: OP.PING });
    },
  }),
  closing({
    id: '7.1.4',
    desc: 'Send text message after sending a close frame.',
    expect: 'Clean close with normal code. Text message ignored.',
    herald: 'the text is a ping op: no pong op',
    codes: [CLOSE.NORMAL],
    async send(t) {
      await t.c.sendClose(CLOSE.NORMAL);
      await t.text(op('7.1.4'));
    },
  }),
  closing({
    id: '7.1.5',
    desc: 'Send message fragment1 followed by close then fragment',
    expect: 'Clean close with normal code.',
    herald: 'the fragments are the pieces of a ping op: no pong op',
    codes: [CLOSE.NORMAL],
    async send(t) {
      await t.send({ opcode: OP.TEXT, fin: false, payload: '{"op":"ping","id":"fragment1' });
      await t.c.sendClose(CLOSE.NORMAL);
      await t.send({ opcode: OP.CONT, payload: 'fragment2"}' });
    },
  }),
];
{
  const big = textMessage('7.1.6-256k', 256 * 1024, 'BAsd7&jh23');
  cases.push(
    closing({
      id: '7.1.6',
      desc: 'Send 256K message followed by close then a ping',
      expect: 'Case outcome depends on implementation defined close behavior. Message and close frame are sent back to back. If the close frame is processed before the text message write is complete (as can happen in asynchronous processing models) the close frame is processed first and the text message may not be received or may only be partially received.',
      herald: 'a 256 KiB ping op and a small one: their pong ops may come before the close answer, or not',
      codes: [CLOSE.NORMAL],
      answers: [big.answer, M.pongOp('7.1.6')],
      async send(t) {
        await t.text(big.payload);
        await t.text(op('7.1.6'));
        await t.c.sendClose(CLOSE.NORMAL);
        await t.send({ opcode: OP.PING });
      },
      informational(g) {
        g.reasons.push(g.behavior === V.OK ? 'both messages were answered before the close' : 'the close was processed before the messages were all answered');
        g.behavior = V.INFORMATIONAL;
        g.behaviorClose = V.INFORMATIONAL;
      },
    }),
  );
}

const REASON_BAD = Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex');
cases.push(
  closing({
    id: '7.3.1',
    desc: 'Send a close frame with payload length 0 (no close code, no close reason)',
    expect: 'Clean close with normal code.',
    codes: [CLOSE.NORMAL],
    send: (t) => t.c.sendClosePayload(Buffer.alloc(0)),
  }),
  closing({
    id: '7.3.2',
    desc: 'Send a close frame with payload length 1',
    expect: 'Clean close with protocol error or drop TCP.',
    rfc: '§5.5.1: a close body, if any, starts with a 2-byte code: a 1-byte body is a protocol error, answered with close 1002 (or a dropped connection)',
    codes: [CLOSE.PROTOCOL_ERROR],
    requireClean: false,
    send: (t) => t.c.sendClosePayload(Buffer.from('a')),
  }),
  closing({
    id: '7.3.3',
    desc: 'Send a close frame with payload length 2 (regular close with a code)',
    expect: 'Clean close with normal code.',
    codes: [CLOSE.NORMAL],
    send: (t) => t.c.sendClose(CLOSE.NORMAL),
  }),
  closing({
    id: '7.3.4',
    desc: 'Send a close frame with close code and close reason',
    expect: 'Clean close with normal code.',
    codes: [CLOSE.NORMAL],
    send: (t) => t.c.sendClose(CLOSE.NORMAL, 'Hello World!'),
  }),
  closing({
    id: '7.3.5',
    desc: 'Send a close frame with close code and close reason of maximum length (123)',
    expect: 'Clean close with normal code.',
    codes: [CLOSE.NORMAL],
    send: (t) => t.c.sendClose(CLOSE.NORMAL, '*'.repeat(123)),
  }),
  closing({
    id: '7.3.6',
    desc: 'Send a close frame with close code and close reason which is too long (124) - total frame payload 126 octets',
    expect: 'Clean close with protocol error code or dropped TCP connection.',
    codes: [CLOSE.PROTOCOL_ERROR],
    requireClean: false,
    send: (t) => t.c.sendClose(CLOSE.NORMAL, '*'.repeat(124)),
  }),
  closing({
    id: '7.5.1',
    desc: `Send a close frame with invalid UTF8 payload (reason 0x${REASON_BAD.toString('hex')})`,
    expect: 'Clean close with protocol error or invalid utf8 code or dropped TCP.',
    rfc: '§5.5.1, §8.1: the close reason is UTF-8; an invalid one fails the connection: close 1007 (or 1002, or a dropped connection), not a normal close',
    codes: [CLOSE.PROTOCOL_ERROR, CLOSE.INVALID_PAYLOAD],
    requireClean: false,
    send: (t) => t.c.sendClose(CLOSE.NORMAL, REASON_BAD),
  }),
);

[1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].forEach((code, i) =>
  cases.push(
    closing({
      id: `7.7.${i + 1}`,
      desc: `Send close with valid close code ${code}`,
      expect: 'Clean close with normal or echoed code',
      codes: [CLOSE.NORMAL, code],
      send: (t) => t.c.sendClose(code),
    }),
  ),
);
[0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999].forEach((code, i) =>
  cases.push(
    closing({
      id: `7.9.${i + 1}`,
      desc: `Send close with invalid close code ${code}`,
      expect: 'Clean close with protocol error code or drop TCP',
      codes: [CLOSE.PROTOCOL_ERROR],
      requireClean: false,
      send: (t) => t.c.sendClose(code),
    }),
  ),
);
[5000, 65535].forEach((code, i) =>
  cases.push(
    closing({
      id: `7.13.${i + 1}`,
      desc: `Send close with close code ${code}`,
      expect: 'Actual events are undefined by the spec.',
      codes: [CLOSE.NORMAL, code, CLOSE.PROTOCOL_ERROR],
      requireClean: false,
      send: (t) => t.c.sendClose(code),
      informational(g) {
        g.reasons.push('undefined by the spec (RFC 6455 §7.4.2 leaves 5000 and up unassigned)');
        g.behavior = V.INFORMATIONAL;
        g.behaviorClose = V.INFORMATIONAL;
      },
    }),
  ),
);

module.exports = { category: '7', title: 'Close Handling', cases };
