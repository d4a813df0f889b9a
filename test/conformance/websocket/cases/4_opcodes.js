// Category 4, opcodes: a frame with a reserved opcode (3-7 non-control,
// 11-15 control) fails the connection (RFC 6455 §5.2). The small text
// message before it is a ping op, as in category 3.
'use strict';
const { OP, M, failing } = require('../harness');

const RFC = '§5.2: on an unknown opcode the receiving endpoint MUST _Fail the WebSocket Connection_';
const op = (id) => `{"op":"ping","id":"${id}"}`;
const cases = [];

for (const [sub, kind, base] of [['4.1', 'non-control', 3], ['4.2', 'control', 11]]) {
  const c = (n) => `${sub}.${n}`;
  cases.push(
    failing({
      id: c(1),
      desc: `Send frame with reserved ${kind} Opcode = ${base}.`,
      expect: 'The connection is failed immediately.',
      rfc: RFC,
      send: (t) => t.send({ opcode: base }),
    }),
    failing({
      id: c(2),
      desc: `Send frame with reserved ${kind} Opcode = ${base + 1} and non-empty payload.`,
      expect: 'The connection is failed immediately.',
      rfc: RFC,
      send: (t) => t.send({ opcode: base + 1, payload: 'reserved opcode payload' }),
    }),
  );
  for (const [n, withPayload, opts] of [[3, false, {}], [4, true, {}], [5, true, { chop: 1 }]]) {
    const id = c(n);
    const opcode = base + n - 1;
    cases.push(
      failing({
        id,
        desc: `Send small text message, then send frame with reserved ${kind} Opcode = ${opcode}${withPayload ? ' and non-empty payload' : ''}, then send Ping.${opts.chop ? ' (octet-wise chops)' : ''}`,
        expect: 'Echo for first message is received, but then connection is failed immediately, since reserved opcode frame is used. A Pong is not received.',
        herald: 'the message is a ping op: its pong op is the echo',
        rfc: RFC,
        answers: [M.pongOp(id)],
        nonStrict: [],
        async send(t) {
          await t.text(op(id), opts);
          await t.send({ opcode, payload: withPayload ? op(id) : '' }, opts);
          await t.send({ opcode: OP.PING }, opts);
        },
      }),
    );
  }
}

module.exports = { category: '4', title: 'Opcodes', cases };
