// Category 6, UTF-8: a text message that is not valid UTF-8 fails the
// connection with 1007 (RFC 6455 §8.1), fragmented or not, and as soon as
// the first bad byte arrives (6.4, fail fast). A valid one is read: the
// valid vectors of 6.5-6.23 are sent as Autobahn's exact bytes, which are
// valid UTF-8 but no JSON, so Herald answers each with an invalid_json
// error op and stays open; 6.1-6.2 wrap their text in a ping op whose
// pong op carries it back.
'use strict';
const { OP, M, V, CLOSE, FAIL_FAST_WAIT_MS, answered, failing, answerToText, wrapInPingOp } = require('../harness');
const { encodeFrame } = require('../frame');
const { groups } = require('./utf8_vectors');

const RFC = '§8.1: when an endpoint finds that a text message is not valid UTF-8 it MUST _Fail the WebSocket Connection_ (§7.4.1: 1007); §5.6 / Autobahn 6.4: fail fast on the first invalid byte';
const INVALID = {
  expect: 'The connection is failed immediately, since the payload is not valid UTF-8.',
  herald: 'close 1007 and no error op (docs/protocol.md: invalid UTF-8 fails the connection with 1007)',
  rfc: RFC,
  codes: [CLOSE.INVALID_PAYLOAD],
  fatal: true,
};

// Sends payload as a text message in fragments of `size` bytes.
async function sendFragmented(t, payload, size) {
  for (let i = 0; i === 0 || i < payload.length; i += size) {
    const piece = payload.subarray(i, i + size);
    await t.send({ opcode: i ? OP.CONT : OP.TEXT, fin: i + size >= payload.length, payload: piece });
  }
}

const cases = [
  answered({
    id: '6.1.1',
    desc: 'Send text message of length 0.',
    expect: "A message is echo'ed back to us (with empty payload).",
    herald: 'an empty text is no JSON: an invalid_json error op',
    answers: [M.errorOp('invalid_json')],
    send: (t) => t.text(''),
  }),
  answered({
    id: '6.1.2',
    desc: 'Send fragmented text message, 3 fragments each of length 0.',
    expect: "A message is echo'ed back to us (with empty payload).",
    herald: 'an empty text is no JSON: an invalid_json error op',
    answers: [M.errorOp('invalid_json')],
    async send(t) {
      await t.send({ opcode: OP.TEXT, fin: false });
      await t.send({ opcode: OP.CONT, fin: false });
      await t.send({ opcode: OP.CONT });
    },
  }),
];
{
  const w = wrapInPingOp('middle frame payload');
  cases.push(
    answered({
      id: '6.1.3',
      desc: 'Send fragmented text message, 3 fragments, first and last of length 0, middle non-empty.',
      expect: "A message is echo'ed back to us (with payload = payload of middle fragment).",
      herald: 'the middle fragment is a ping op with id "middle frame payload": its pong op',
      answers: [w.answer],
      async send(t) {
        await t.send({ opcode: OP.TEXT, fin: false });
        await t.send({ opcode: OP.CONT, fin: false, payload: w.payload });
        await t.send({ opcode: OP.CONT });
      },
    }),
  );
}

const HELLO = 'Hello-µ@ßöäüàá-UTF-8!!';
const KOSME = Buffer.from('cebae1bdb9cf83cebcceb5', 'hex');
{
  const w = wrapInPingOp(HELLO);
  cases.push(
    answered({
      id: '6.2.1',
      desc: `Send a valid UTF-8 text message in one fragment. MESSAGE: ${HELLO}`,
      expect: "The message is echo'ed back to us.",
      herald: 'a ping op with the message as its id: its pong op',
      answers: [w.answer],
      send: (t) => t.text(w.payload),
    }),
  );
  const p1 = Buffer.from('Hello-µ@ßöä');
  const p2 = Buffer.from('üàá-UTF-8!!');
  cases.push(
    answered({
      id: '6.2.2',
      desc: 'Send a valid UTF-8 text message in two fragments, fragmented on UTF-8 code point boundary.',
      expect: "The message is echo'ed back to us.",
      herald: 'a ping op with the message as its id, cut between "ä" and "ü": its pong op',
      answers: [w.answer],
      async send(t) {
        await t.send({ opcode: OP.TEXT, fin: false, payload: Buffer.concat([w.prefix, p1]) });
        await t.send({ opcode: OP.CONT, payload: Buffer.concat([p2, w.suffix]) });
      },
    }),
  );
}
for (const [id, text] of [['6.2.3', Buffer.from(HELLO)], ['6.2.4', KOSME]]) {
  const w = wrapInPingOp(text.toString('utf8'));
  cases.push(
    answered({
      id,
      desc: `Send a valid UTF-8 text message in fragments of 1 octet, resulting in frames ending on positions which are not code point ends. MESSAGE: ${text.toString('hex')}`,
      expect: "The message is echo'ed back to us.",
      herald: 'a ping op with the message as its id, in 1-byte fragments: its pong op',
      answers: [w.answer],
      send: (t) => sendFragmented(t, w.payload, 1),
    }),
  );
}

const BAD_631 = Buffer.concat([KOSME, Buffer.from('eda080', 'hex'), Buffer.from('edited')]);
cases.push(
  failing({
    ...INVALID,
    id: '6.3.1',
    desc: `Send invalid UTF-8 text message unfragmented. MESSAGE: ${BAD_631.toString('hex')}`,
    send: (t) => t.text(BAD_631),
  }),
  failing({
    ...INVALID,
    id: '6.3.2',
    desc: `Send invalid UTF-8 text message in fragments of 1 octet. MESSAGE: ${BAD_631.toString('hex')}`,
    send: (t) => sendFragmented(t, BAD_631, 1),
  }),
);

// 6.4: fail fast. The valid first part must be taken (A), the part with the
// first bad byte must close the connection (OK) before the rest is sent;
// closing only once the whole message is in is NON-STRICT. As in Autobahn,
// a bounded wait after each part tells: a ping frame cannot, since
// libwebsockets may answer it before a close already decided, and inside
// one frame (6.4.3, 6.4.4) nothing else can be sent.
const P = Buffer.concat([KOSME, Buffer.from('f4908080', 'hex'), Buffer.from('edited')]);
const SPLITS = { '6.4.1': [11, 15], '6.4.2': [12, 13], '6.4.3': [11, 15], '6.4.4': [12, 13] };
for (const id of Object.keys(SPLITS)) {
  const [s1, s2] = SPLITS[id];
  const parts = [P.subarray(0, s1), P.subarray(s1, s2), P.subarray(s2)];
  const inFrames = id === '6.4.1' || id === '6.4.2';
  cases.push({
    id,
    desc: `Send invalid UTF-8 text message in 3 ${inFrames ? 'fragments (frames)' : 'chops of the same message frame'}: PART1 = ${parts[0].toString('hex')} (valid), PART2 = ${parts[1].toString('hex')} (makes it invalid: 0x90 after 0xf4 is past U+10FFFF), PART3 = ${parts[2].toString('hex')}.`,
    expect: 'The first frame is accepted, we expect to timeout on the first wait. The 2nd frame should be rejected immediately (fail fast on UTF-8). If we timeout, we expect the connection is failed at least then, since the complete message payload is not valid UTF-8.',
    herald: 'as RFC 6455: close 1007 after PART2, no error op',
    rfc: RFC,
    async run(t) {
      t.expect(V.OK, []);
      t.expectClose({ closedByMe: false, codes: [CLOSE.INVALID_PAYLOAD], requireClean: false, wrongEndpointFatal: true });
      // each part as a frame of its own, or as a slice of one frame's bytes
      const frame = encodeFrame({ opcode: OP.TEXT, payload: P });
      const head = frame.length - P.length;
      const sendPart = (k) =>
        inFrames
          ? t.send({ opcode: k ? OP.CONT : OP.TEXT, fin: k === 2, payload: parts[k] })
          : t.c.write(frame.subarray(k ? head + [0, s1, s2][k] : 0, k === 2 ? frame.length : head + [s1, s2][k]));
      let stage = null; // the part after which the server closed
      if (!inFrames) t.c.setMidFrame(true);
      for (let k = 0; k < 3 && !stage; k++) {
        await sendPart(k);
        if (k === 2) t.c.setMidFrame(false);
        if (k < 2 ? await t.waitClose(FAIL_FAST_WAIT_MS) : await t.awaitFail()) stage = 'ABC'[k];
      }
      if (!inFrames && stage !== 'C') {
        // closed inside the frame: its last bytes go out before our close
        // frame, or the server would read that as payload
        await t.c.write(frame.subarray(head + (stage === 'A' ? s1 : s2)));
        t.c.setMidFrame(false);
      }
      t.post = (g) => {
        if (stage === 'A') {
          g.behavior = V.FAILED;
          g.reasons.push('the connection was closed after the valid first part');
        } else if (stage === 'C' && g.behavior === V.OK) {
          g.behavior = V.NON_STRICT;
          g.nonStrictWhy = `not failed fast: no close within ${FAIL_FAST_WAIT_MS} ms of PART2; the close came after PART3`;
        } else if (stage === 'B') t.note('failed fast: closed on PART2, the part with the first invalid byte');
      };
    },
  });
}

// 6.5-6.23: one case per vector, whole in one frame.
let sub = 5;
for (const [title, list] of groups()) {
  list.forEach(([valid, payload], j) => {
    const id = `6.${sub}.${j + 1}`;
    const desc = `${title}: send a text message with payload which is ${valid ? '' : 'not '}valid UTF-8 in one fragment. Payload: 0x${payload.toString('hex')}`;
    if (valid) {
      cases.push(
        answered({
          id,
          desc,
          expect: "The message is echo'ed back to us.",
          herald: `Autobahn's bytes, valid UTF-8 but no JSON: ${answerToText(payload).desc}`,
          answers: [answerToText(payload)],
          send: (t) => t.text(payload),
        }),
      );
    } else {
      cases.push(failing({ ...INVALID, id, desc, send: (t) => t.text(payload) }));
    }
  });
  sub++;
}

module.exports = { category: '6', title: 'UTF-8 Handling', cases };
