// Category 10, auto-fragmentation: the fuzzer sends a 64 KiB text message
// cut into frames of 1,300 bytes (its own frame count is checked, as in
// Autobahn); the message is a ping op padded to 65,536 bytes.
'use strict';
const { OP, answered, textMessage } = require('../harness');

const SIZE = 65536;
const FRAG = 1300;
const msg = textMessage('10.1.1', SIZE);

const cases = [
  answered({
    id: '10.1.1',
    desc: `Send text message with payload of length ${SIZE} auto-fragmented with autoFragmentSize = ${FRAG}.`,
    expect: "Receive echo'ed text message (with payload as sent and transmitted frame counts as expected). Clean close with normal code.",
    herald: `${msg.how}, in ${Math.ceil(SIZE / FRAG)} frames`,
    answers: [msg.answer],
    async send(t) {
      let frames = 0;
      for (let i = 0; i < SIZE; i += FRAG) {
        await t.send({ opcode: i ? OP.CONT : OP.TEXT, fin: i + FRAG >= SIZE, payload: msg.payload.subarray(i, i + FRAG) });
        frames++;
      }
      const want = Math.floor(SIZE / FRAG) + (SIZE % FRAG ? 1 : 0);
      if (frames !== want) throw new Error(`sent ${frames} frames, not ${want}`);
    },
  }),
];

module.exports = { category: '10', title: 'Misc (auto-fragmentation)', cases };
