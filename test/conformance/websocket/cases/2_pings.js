// Category 2, pings and pongs: RFC 6455 control frames, answered by the
// WebSocket layer itself, so the cases are Autobahn's unchanged.
'use strict';
const { OP, M, V, CLOSE, answered, failing } = require('../harness');

const ping = (payload, opts) => (t) => t.send({ opcode: OP.PING, payload }, opts);
const FE125 = Buffer.alloc(125, 0xfe);
const cases = [
  answered({
    id: '2.1',
    desc: 'Send ping without payload.',
    expect: 'Pong (with empty payload) is sent in reply to Ping. Clean close with normal code.',
    answers: [M.wsPong('')],
    send: ping(''),
  }),
  answered({
    id: '2.2',
    desc: 'Send ping with small text payload.',
    expect: "Pong with payload echo'ed is sent in reply to Ping. Clean close with normal code.",
    answers: [M.wsPong('Hello, world!')],
    send: ping('Hello, world!'),
  }),
  answered({
    id: '2.3',
    desc: 'Send ping with small binary (non UTF-8) payload.',
    expect: "Pong with payload echo'ed is sent in reply to Ping. Clean close with normal code.",
    answers: [M.wsPong(Buffer.from('00fffefdfcfb00ff', 'hex'))],
    send: ping(Buffer.from('00fffefdfcfb00ff', 'hex')),
  }),
  answered({
    id: '2.4',
    desc: 'Send ping with binary payload of 125 octets.',
    expect: "Pong with payload echo'ed is sent in reply to Ping. Clean close with normal code.",
    answers: [M.wsPong(FE125)],
    send: ping(FE125),
  }),
  failing({
    id: '2.5',
    desc: 'Send ping with binary payload of 126 octets.',
    expect: 'Connection is failed immediately (1002/Protocol Error), since control frames are only allowed to have payload up to and including 125 octets..',
    rfc: '§5.5: all control frames MUST have a payload length of 125 bytes or less',
    send: ping(Buffer.alloc(126, 0xfe)),
  }),
  answered({
    id: '2.6',
    desc: 'Send ping with binary payload of 125 octets, send in octet-wise chops.',
    expect: "Pong with payload echo'ed is sent in reply to Ping. Implementations must be TCP clean. Clean close with normal code.",
    answers: [M.wsPong(FE125)],
    send: ping(FE125, { chop: 1 }),
  }),
];

// 2.7, 2.8: an unsolicited pong, then our close: nothing but the close answer.
for (const [id, payload] of [['2.7', ''], ['2.8', 'unsolicited pong payload']]) {
  cases.push({
    id,
    desc: `Send unsolicited pong ${payload ? 'with' : 'without'} payload. Verify nothing is received. Clean close with normal code.`,
    expect: 'Nothing.',
    async run(t) {
      t.expect(V.OK, []);
      t.expectClose({ closedByMe: true, codes: [CLOSE.NORMAL], requireClean: true });
      await t.send({ opcode: OP.PONG, payload });
      await t.c.sendClose(CLOSE.NORMAL);
    },
  });
}

cases.push(
  answered({
    id: '2.9',
    desc: 'Send unsolicited pong with payload. Send ping with payload. Verify pong for ping is received.',
    expect: "Nothing in reply to own Pong, but Pong with payload echo'ed in reply to Ping. Clean close with normal code.",
    answers: [M.wsPong('ping payload')],
    async send(t) {
      await t.send({ opcode: OP.PONG, payload: 'unsolicited pong payload' });
      await t.send({ opcode: OP.PING, payload: 'ping payload' });
    },
  }),
);

// 2.10, 2.11: ten pings. RFC 6455 §5.5.3 lets an endpoint that has not yet
// answered earlier pings answer only the most recent one; Autobahn checks
// for every pong "although not required by the Spec". Fewer pongs, in
// order (each missing one superseded by a later ping, the last ones by the
// suite's own ping after the case, which was answered), are NON-STRICT.
for (const [id, chop] of [['2.10', 0], ['2.11', 1]]) {
  const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
  const def = answered({
    id,
    desc: `Send 10 Pings with payload.${chop ? ' Send out octets in octet-wise chops.' : ''}`,
    expect: 'Pongs for our Pings with all the payloads. Note: This is not required by the Spec .. but we check for this behaviour anyway. Clean close with normal code.',
    answers: payloads.map((p) => M.wsPong(p)),
    async send(t) {
      t.post = (g, ctx) => {
        const got = ctx.c.events.map((e) => (e.type === 'pong' ? e.data.toString('latin1') : null));
        let k = -1;
        const inOrder = got.every((p) => p !== null && (k = payloads.indexOf(p, k + 1)) >= 0);
        if (g.behavior === V.FAILED && inOrder && !ctx.c.protocolErrors.length && ctx.c.barrierReplies.has(`got:ws:barrier-${id}-pings`)) {
          g.behavior = V.NON_STRICT;
          g.nonStrictWhy = `${got.length} of 10 pongs (${got.join(', ')}), in order: RFC 6455 §5.5.3 allows answering only the most recent of several pings`;
        }
      };
      for (const p of payloads) await t.send({ opcode: OP.PING, payload: p }, { chop });
    },
  });
  cases.push(def);
}

module.exports = { category: '2', title: 'Pings/Pongs', cases };
