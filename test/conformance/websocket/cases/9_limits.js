// Category 9, limits: large messages, whole, in fragments and in small
// writes, and 1,000 messages one after the other. Text messages are ping
// ops padded to each size with Autobahn's payload pattern; heraldd runs
// with client.max_message_bytes at its cap (16 MiB), so every Autobahn
// size, 9.1.6's 16 MiB included, is within it. 9.11 is Herald's addition:
// one byte past the limit, the connection is closed with 1009
// (docs/protocol.md, Close codes), which is the correct answer.
'use strict';
const { OP, CLOSE, BOUND_MS, answered, failing, textMessage, BINARY_ANSWER } = require('../harness');

const KiB = 1024;
const MiB = 1024 * 1024;
const MAX = 16 * MiB; // run.js starts heraldd with this client.max_message_bytes
const human = (n) => (n >= MiB ? `${n / MiB}M` : `${n / KiB}k`);
const binaryPayload = (size, pattern) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += pattern.length) pattern.copy(b, i, 0, Math.min(pattern.length, size - i));
  return b;
};
const BIN_PATTERN = Buffer.from('00fe23faf0', 'hex');

async function sendFragmented(t, opcode, payload, size) {
  for (let i = 0; i < payload.length; i += size) {
    await t.send({ opcode: i ? OP.CONT : opcode, fin: i + size >= payload.length, payload: payload.subarray(i, i + size) });
  }
}

const cases = [];
const SIZES = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB];
SIZES.forEach((size, i) => {
  const id = `9.1.${i + 1}`;
  const msg = textMessage(id, size, 'BAsd7&jh23');
  cases.push(
    answered({
      id,
      desc: `Send text message with payload of length ${human(size)}.`,
      expect: "Receive echo'ed text message (with payload as sent).",
      herald: msg.how,
      answers: [msg.answer],
      send: (t) => t.text(msg.payload),
    }),
  );
});
SIZES.forEach((size, i) => {
  const payload = binaryPayload(size, BIN_PATTERN);
  cases.push(
    answered({
      id: `9.2.${i + 1}`,
      desc: `Send binary message with payload of length ${human(size)}.`,
      expect: "Receive echo'ed binary message (with payload as sent).",
      herald: 'one unsupported_frame error op',
      answers: [BINARY_ANSWER],
      send: (t) => t.send({ opcode: OP.BINARY, payload }),
    }),
  );
});

const FRAGS = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB];
FRAGS.forEach((frag, i) => {
  const id = `9.3.${i + 1}`;
  const msg = textMessage(id, 4 * MiB);
  cases.push(
    answered({
      id,
      desc: `Send fragmented text message with message payload of length 4M. Sent out in fragments of ${frag >= KiB ? human(frag) : frag}.`,
      expect: "Receive echo'ed text message (with payload as sent).",
      herald: `${msg.how}, in fragments`,
      answers: [msg.answer],
      send: (t) => sendFragmented(t, OP.TEXT, msg.payload, frag),
    }),
  );
});
FRAGS.forEach((frag, i) => {
  const payload = Buffer.alloc(4 * MiB, 0xfe);
  cases.push(
    answered({
      id: `9.4.${i + 1}`,
      desc: `Send fragmented binary message with message payload of length 4M. Sent out in fragments of ${frag >= KiB ? human(frag) : frag}.`,
      expect: "Receive echo'ed binary message (with payload as sent).",
      herald: 'one unsupported_frame error op for the whole message',
      answers: [BINARY_ANSWER],
      send: (t) => sendFragmented(t, OP.BINARY, payload, frag),
    }),
  );
});

const CHOPS = [64, 128, 256, 512, 1024, 2048];
CHOPS.forEach((chop, i) => {
  const id = `9.5.${i + 1}`;
  const msg = textMessage(id, MiB, 'BAsd7&jh23');
  cases.push(
    answered({
      id,
      desc: `Send text message with payload of length 1M. Sent out data in chops of ${chop} octets.`,
      expect: "Receive echo'ed text message (with payload as sent).",
      herald: msg.how,
      answers: [msg.answer],
      send: (t) => t.text(msg.payload, { chop }),
    }),
  );
});
CHOPS.forEach((chop, i) => {
  const payload = binaryPayload(MiB, BIN_PATTERN);
  cases.push(
    answered({
      id: `9.6.${i + 1}`,
      desc: `Send binary message with payload of length 1M. Sent out data in chops of ${chop} octets.`,
      expect: "Receive echo'ed binary message (with payload as sent).",
      herald: 'one unsupported_frame error op',
      answers: [BINARY_ANSWER],
      send: (t) => t.send({ opcode: OP.BINARY, payload }, { chop }),
    }),
  );
});

// 9.7, 9.8: 1,000 messages, each sent once the answer to the one before
// came (Autobahn measures the round trip; only the answers count here).
const COUNT = 1000;
[false, true].forEach((binary) => {
  [0, 16, 64, 256, 1024, 4096].forEach((len, i) => {
    const id = `9.${binary ? 8 : 7}.${i + 1}`;
    const msgs = Array.from({ length: COUNT }, (_, k) =>
      binary ? { payload: Buffer.alloc(len, 0xfe), answer: BINARY_ANSWER } : textMessage(`${k}`, len));
    cases.push(
      answered({
        id,
        desc: `Send ${COUNT} ${binary ? 'binary' : 'text'} messages of payload size ${len} to measure implementation/network RTT (round trip time) / latency.`,
        expect: `Receive echo'ed ${binary ? 'binary' : 'text'} messages (with payload as sent).`,
        herald: binary ? 'an unsupported_frame error op each' : `each: ${msgs[0].how}`,
        answers: msgs.map((m) => m.answer),
        async send(t) {
          for (let k = 0; k < COUNT; k++) {
            await t.send({ opcode: binary ? OP.BINARY : OP.TEXT, payload: msgs[k].payload });
            const got = await t.c.waitFor(() => t.c.events.length > k || t.c.serverClosed(), BOUND_MS);
            if (!got || t.c.serverClosed() || !msgs[k].answer.test(t.c.events[k])) return;
          }
        },
      }),
    );
  });
});

// 9.11, Herald's: past client.max_message_bytes.
const LIMIT = {
  expect: 'The connection is closed with 1009 (message too big): the message passes client.max_message_bytes (16 MiB here).',
  herald: 'close 1009 "message larger than 16777216 bytes", no answer (docs/protocol.md, Close codes)',
  rfc: '§7.4.1: 1009 indicates that an endpoint is terminating the connection because it has received a message that is too big for it to process',
  codes: [CLOSE.TOO_BIG],
};
cases.push(
  failing({
    ...LIMIT,
    id: '9.11.1',
    desc: `Send a text message of ${MAX + 1} bytes (client.max_message_bytes + 1) in one frame. (Herald's case, not in Autobahn)`,
    send: (t) => t.text(textMessage('9.11.1', MAX + 1).payload),
  }),
  failing({
    ...LIMIT,
    id: '9.11.2',
    desc: `Send a text message of ${MAX + 1} bytes in fragments of 1M (the last one a single byte). (Herald's case, not in Autobahn)`,
    send: (t) => sendFragmented(t, OP.TEXT, textMessage('9.11.2', MAX + 1).payload, MiB),
  }),
);

module.exports = { category: '9', title: 'Limits/Performance', cases };
