// Category 5, fragmentation. Autobahn's fragmented text messages become a
// ping op cut into the same fragments, Autobahn's fragment texts forming
// its id: fragments ["fragment1", "fragment2"] are sent as
// '{"op":"ping","id":"fragment1' and 'fragment2"}', and the pong op with id
// "fragment1fragment2" is the echo. Where Autobahn sends a small text
// message that must not be answered ("Hello, world!"), it is a ping op, so
// that a server which wrongly accepted it is seen answering.
'use strict';
const { OP, M, V, BOUND_MS, answered, failing, wrapInPingOp } = require('../harness');

const RFC_CONTROL = '§5.4: control frames MUST NOT be fragmented; §5.5: control frames MUST have FIN set';
const RFC_CONT = '§5.4: a fragmented message is one frame with FIN clear and a non-zero opcode, then continuation frames (opcode 0); a continuation with nothing to continue, or a new data frame inside a message, is a protocol error';
const FAIL = 'The connection is failed immediately, since there is no message to continue.';

// The pieces of a ping op whose id is the fragments' texts joined; each
// fragment text stays in its own piece.
function opPieces(texts) {
  const w = wrapInPingOp(texts.join(''));
  const pieces = texts.map((s) => Buffer.from(s));
  pieces[0] = Buffer.concat([w.prefix, pieces[0]]);
  pieces[pieces.length - 1] = Buffer.concat([pieces[pieces.length - 1], w.suffix]);
  return { pieces, answer: w.answer };
}
const hello = (id) => `{"op":"ping","id":"${id} hello"}`;

const cases = [];
for (const [id, opcode, name] of [['5.1', OP.PING, 'Ping'], ['5.2', OP.PONG, 'Pong']]) {
  cases.push(
    failing({
      id,
      desc: `Send ${name} fragmented into 2 fragments.`,
      expect: 'Connection is failed immediately, since control message MUST NOT be fragmented.',
      rfc: RFC_CONTROL,
      async send(t) {
        await t.send({ opcode, fin: false, payload: 'fragment1' });
        await t.send({ opcode: OP.CONT, payload: 'fragment2' });
      },
    }),
  );
}

const HOW = ['', ', octets are sent in frame-wise chops', ', octets are sent in octet-wise chops'];
const OPTS = [{}, { sync: true }, { chop: 1 }];
for (let k = 0; k < 3; k++) {
  const { pieces, answer } = opPieces(['fragment1', 'fragment2']);
  cases.push(
    answered({
      id: `5.${3 + k}`,
      desc: `Send text Message fragmented into 2 fragments${HOW[k]}.`,
      expect: "Message is processed and echo'ed back to us.",
      herald: 'a ping op in 2 fragments: its pong op (id "fragment1fragment2")',
      answers: [answer],
      async send(t) {
        await t.send({ opcode: OP.TEXT, fin: false, payload: pieces[0] }, OPTS[k]);
        await t.send({ opcode: OP.CONT, payload: pieces[1] }, OPTS[k]);
      },
    }),
  );
}
for (let k = 0; k < 3; k++) {
  const { pieces, answer } = opPieces(['fragment1', 'fragment2']);
  cases.push(
    answered({
      id: `5.${6 + k}`,
      desc: `Send text Message fragmented into 2 fragments, one ping with payload in-between${HOW[k] ? '. O' + HOW[k].slice(3) : ''}.`,
      expect: "A pong is received, then the message is echo'ed back to us.",
      herald: 'a ping op in 2 fragments with a ping frame between: the pong, then the pong op',
      answers: [M.wsPong('ping payload'), answer],
      async send(t) {
        await t.send({ opcode: OP.TEXT, fin: false, payload: pieces[0] }, OPTS[k]);
        await t.send({ opcode: OP.PING, payload: 'ping payload' }, OPTS[k]);
        await t.send({ opcode: OP.CONT, payload: pieces[1] }, OPTS[k]);
      },
    }),
  );
}

// 5.9-5.14: a continuation frame with nothing to continue, then a message.
[true, false].forEach((fin, f) => {
  for (let k = 0; k < 3; k++) {
    const id = `5.${9 + f * 3 + k}`;
    const how = ['sent in one chop', 'sent in per-frame chops', 'sent in octet-wise chops'][k];
    cases.push(
      failing({
        id,
        desc: `Send unfragmented Text Message after Continuation Frame with FIN = ${fin}, where there is nothing to continue, ${how}.`,
        expect: FAIL,
        herald: 'the text message is a ping op: its pong op must not come',
        rfc: RFC_CONT,
        open: !fin, // a lenient server may take the continuation for a first fragment
        async send(t) {
          await t.send({ opcode: OP.CONT, fin, payload: 'non-continuation payload' }, OPTS[k]);
          await t.text(hello(id), OPTS[k]);
        },
      }),
    );
  }
});

{
  const { pieces, answer } = opPieces(['fragment1', 'fragment2']);
  cases.push(
    failing({
      id: '5.15',
      desc: 'Send text Message fragmented into 2 fragments, then Continuation Frame with FIN = false where there is nothing to continue, then unfragmented Text Message, all sent in one chop.',
      expect: FAIL,
      herald: 'the first message is a ping op in 2 fragments: its pong op is the echo (NON-STRICT without it)',
      rfc: RFC_CONT,
      open: true, // the stray continuation with FIN clear may be taken for a first fragment
      answers: [answer],
      nonStrict: [],
      async send(t) {
        await t.send({ opcode: OP.TEXT, fin: false, payload: pieces[0] });
        await t.send({ opcode: OP.CONT, payload: pieces[1] });
        await t.send({ opcode: OP.CONT, fin: false, payload: 'fragment3' });
        await t.send({ opcode: OP.TEXT, payload: 'fragment4' });
      },
    }),
  );
}

for (const [id, fin] of [['5.16', false], ['5.17', true]]) {
  cases.push(
    failing({
      id,
      desc: `Repeated 2x: Continuation Frame with FIN = ${fin} (where there is nothing to continue), then text Message fragmented into 2 fragments.`,
      expect: FAIL,
      herald: 'the fragmented message is a ping op (id "fragment2fragment3"): its pong op must not come',
      rfc: RFC_CONT,
      async send(t) {
        const { pieces } = opPieces(['fragment2', 'fragment3']);
        for (let i = 0; i < 2; i++) {
          await t.send({ opcode: OP.CONT, fin, payload: 'fragment1' });
          await t.send({ opcode: OP.TEXT, fin: false, payload: pieces[0] });
          await t.send({ opcode: OP.CONT, payload: pieces[1] });
        }
      },
    }),
  );
}

cases.push(
  failing({
    id: '5.18',
    desc: 'Send text Message fragmented into 2 fragments, with both frame opcodes set to text, sent in one chop.',
    expect: 'The connection is failed immediately, since all data frames after the initial data frame must have opcode 0.',
    herald: 'the two frames are the pieces of a ping op: its pong op must not come',
    rfc: RFC_CONT,
    async send(t) {
      const { pieces } = opPieces(['fragment1', 'fragment2']);
      await t.send({ opcode: OP.TEXT, fin: false, payload: pieces[0] });
      await t.send({ opcode: OP.TEXT, payload: pieces[1] });
    },
  }),
);

// 5.19, 5.20: pings inside a fragmented message. Autobahn waits 1 s after
// the first ping; here the second part goes out once the first pong is in,
// which is what "answers the first Ping before it has received the last
// text message fragment" asks (bounded wait: no pong, and the case fails).
for (const [id, sync] of [['5.19', false], ['5.20', true]]) {
  const frags = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
  const { pieces, answer } = opPieces(frags);
  cases.push(
    answered({
      id,
      desc: `A fragmented text message is sent in multiple frames. After sending the first 2 frames of the text message, a Ping is sent. Then we wait (here: for its pong), then we send 2 more text fragments, another Ping and then the final text fragment. Everything is legal.${sync ? ' All frames are sent with SYNC = True (each its own write).' : ''}`,
      expect: "The peer immediately answers the first Ping before it has received the last text message fragment. The peer pong's back the Ping's payload exactly, and echo's the payload of the fragmented message back to us.",
      herald: 'a ping op in 5 fragments: pong, pong, then its pong op',
      answers: [M.wsPong('pongme 1!'), M.wsPong('pongme 2!'), answer],
      async send(t) {
        const o = { sync };
        await t.send({ opcode: OP.TEXT, fin: false, payload: pieces[0] }, o);
        await t.send({ opcode: OP.CONT, fin: false, payload: pieces[1] }, o);
        await t.send({ opcode: OP.PING, payload: 'pongme 1!' }, o);
        const early = await t.c.waitFor(() => t.c.events.some((e) => e.type === 'pong') || t.c.serverClosed(), BOUND_MS);
        if (!early || t.c.serverClosed()) {
          t.post = (g) => {
            g.behavior = V.FAILED;
            g.reasons.push('the first ping was not answered before the rest of the message was sent');
          };
        }
        await t.send({ opcode: OP.CONT, fin: false, payload: pieces[2] }, o);
        await t.send({ opcode: OP.CONT, fin: false, payload: pieces[3] }, o);
        await t.send({ opcode: OP.PING, payload: 'pongme 2!' }, o);
        await t.send({ opcode: OP.CONT, payload: pieces[4] }, o);
      },
    }),
  );
}

module.exports = { category: '5', title: 'Fragmentation', cases };
