// Category 1, framing: text and binary messages at the payload lengths
// where the length encoding changes (7 bits, 16 bits, 64 bits), whole and
// written in 997-byte chops. 1.3 (unmasked client frames) is Herald's
// addition: Autobahn's fuzzer always masks.
'use strict';
const { OP, CLOSE, answered, failing, textMessage, BINARY_ANSWER } = require('../harness');

const SIZES = [0, 125, 126, 127, 128, 65535, 65536];
const cases = [];

SIZES.forEach((size, i) => {
  const id = `1.1.${i + 1}`;
  const msg = textMessage(id, size);
  cases.push(
    answered({
      id,
      desc: `Send text message with payload of length ${size}.`,
      expect: "Receive echo'ed text message (with payload as sent). Clean close with normal code.",
      herald: msg.how,
      answers: [msg.answer],
      send: (t) => t.text(msg.payload),
    }),
  );
});
{
  const msg = textMessage('1.1.8', 65536);
  cases.push(
    answered({
      id: '1.1.8',
      desc: 'Send text message with payload of length 65536. Sent out data in chops of 997 octets.',
      expect: "Receive echo'ed text message (with payload as sent). Clean close with normal code.",
      herald: msg.how,
      answers: [msg.answer],
      send: (t) => t.text(msg.payload, { chop: 997 }),
    }),
  );
}

[...SIZES, 65536].forEach((size, i) => {
  const id = `1.2.${i + 1}`;
  const chop = i === 7 ? 997 : 0;
  cases.push(
    answered({
      id,
      desc: `Send binary message with payload of length ${size}.${chop ? ' Sent out data in chops of 997 octets.' : ''}`,
      expect: "Receive echo'ed binary message (with payload as sent). Clean close with normal code.",
      herald: `${size} bytes of 0xfe in a binary frame: answered with one unsupported_frame error op`,
      answers: [BINARY_ANSWER],
      send: (t) => t.send({ opcode: OP.BINARY, payload: Buffer.alloc(size, 0xfe) }, { chop }),
    }),
  );
});

// Herald's addition. RFC 6455 §5.1: "The server MUST close the connection
// upon receiving a frame that is not masked ... status code 1002".
const UNMASKED = [
  ['1.3.1', 'Send an unmasked text frame (a valid ping op).', (t) =>
    t.send({ opcode: OP.TEXT, payload: '{"op":"ping","id":"1.3.1"}', mask: false })],
  ['1.3.2', 'Send an unmasked binary frame.', (t) =>
    t.send({ opcode: OP.BINARY, payload: Buffer.alloc(16, 0xfe), mask: false })],
  ['1.3.3', 'Send an unmasked ping with payload.', (t) =>
    t.send({ opcode: OP.PING, payload: 'unmasked ping', mask: false })],
  ['1.3.4', 'Send a masked text fragment, then an unmasked continuation frame ending the message.', async (t) => {
    await t.send({ opcode: OP.TEXT, fin: false, payload: '{"op":"ping",' });
    await t.send({ opcode: OP.CONT, payload: '"id":"1.3.4"}', mask: false });
  }],
];
for (const [id, desc, send] of UNMASKED) {
  cases.push(
    failing({
      id,
      desc: `${desc} (Herald's case, not in Autobahn)`,
      expect: 'The connection is failed immediately (1002/protocol error): a server MUST close on an unmasked client frame (RFC 6455 §5.1).',
      herald: 'as RFC 6455: no answer, close 1002',
      rfc: '§5.1: the server MUST close the connection upon receiving an unmasked frame (1002)',
      codes: [CLOSE.PROTOCOL_ERROR],
      send,
    }),
  );
}

module.exports = { category: '1', title: 'Framing', cases };
