// RFC 6455 from the server's side, with frames real clients never send:
// invalid UTF-8 fails the connection with 1007 (§8.1), as soon as the bad
// byte arrives, fragments or not; close frames with a 1-byte payload, an
// invalid code or a reason that is not UTF-8 (§5.5.1, §7.4) and other
// protocol errors (§5.2, §5.4, §5.5) are answered with 1002 or 1007, and
// valid close codes are echoed.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald, Client } = require('./lib/herald');
const { RawWs, frame, closePayload } = require('./lib/rawws');

let h;
before(async () => {
  h = await startHerald();
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

const TEXT = 1;
const CONT = 0;
const CLOSE = 8;
const PING = 9;
const latin1 = (s) => Buffer.from(s, 'latin1');

// Opens a connection, sends the frames, and resolves with the server's
// close frame ({ code, reason, before }: code null when the socket closed
// without one).
async function answer(...frames) {
  const r = await RawWs.open(h.clientAddr);
  assert.equal(r.status, 101, r.head);
  r.send(...frames);
  const c = await r.closeFrame();
  r.destroy();
  return c;
}

test('a text frame that is not UTF-8 closes the connection with 1007, no error op', async () => {
  for (const bytes of [[0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
    const c = await answer(frame(TEXT, Buffer.from(bytes)));
    assert.equal(c.code, 1007, `bytes ${bytes}`);
    assert.deepEqual(c.before, [], 'nothing before the close frame');
    assert.equal(c.reason.toString(), 'text message is not valid UTF-8');
  }
});

test('a message cut inside a UTF-8 sequence closes with 1007', async () => {
  const c = await answer(frame(TEXT, latin1('{"op":"ping","id":"1"}\xe2\x82')));
  assert.equal(c.code, 1007);
  // cut at the end of the last fragment
  const d = await answer(frame(TEXT, latin1('{"op":"ping","id":"1"} '), { fin: false }), frame(CONT, latin1('\xf0\x9f')));
  assert.equal(d.code, 1007);
});

test('a bad byte in a fragment closes with 1007 before the message ends', async () => {
  // the final fragment never comes: the close must not wait for it
  const c = await answer(frame(TEXT, latin1('{"op":"ping",'), { fin: false }), frame(CONT, latin1('"id":"\xff'), { fin: false }));
  assert.equal(c.code, 1007);
  // a bad byte in a later frame of a long first fragment (it comes in pieces)
  const long = '{"op":"ping","id":"1","pad":"' + 'x'.repeat(3000) + '\xc3\x28';
  const d = await answer(frame(TEXT, latin1(long), { fin: false }));
  assert.equal(d.code, 1007);
});

test('a UTF-8 sequence split between fragments is accepted', async () => {
  const r = await RawWs.open(h.clientAddr);
  // "€" is E2 82 AC: one byte in the first fragment, one per fragment after
  r.send(frame(TEXT, latin1('{"op":"ping","id":"\xe2'), { fin: false }), frame(CONT, latin1('\x82'), { fin: false }),
    frame(CONT, latin1('\xac"}')));
  const f = await r.next();
  assert.equal(f.opcode, TEXT);
  assert.deepEqual(JSON.parse(f.payload.toString()), { op: 'pong', id: '€' });
  // and a 4-byte one split 2 + 2, in a message of several 512-byte pieces
  const pad = 'y'.repeat(1200);
  r.send(frame(TEXT, latin1(`{"op":"ping","id":"p","pad":"${pad}\xf0\x9f`), { fin: false }), frame(CONT, latin1('\x98\x80"}')));
  const g = await r.next();
  assert.deepEqual(JSON.parse(g.payload.toString()), { op: 'pong', id: 'p' });
  r.destroy();
});

test('valid UTF-8 that is not a message still gets an error op and the connection stays', async () => {
  const c = await Client.open(h.wsUrl);
  c.send('caf\u00e9 is not JSON');
  const m = await c.waitFor((x) => x.op === 'error');
  assert.equal(m.code, 'invalid_json');
  assert.deepEqual(await c.request({ op: 'ping', id: 'still' }), { op: 'pong', id: 'still' });
  await c.close();
});

test('a close frame with a 1-byte payload is answered with 1002', async () => {
  const c = await answer(frame(CLOSE, Buffer.from([0x03])));
  assert.equal(c.code, 1002);
});

test('a close reason that is not UTF-8 is answered with 1007, not echoed', async () => {
  for (const reason of [latin1('\xff'), latin1('ok\xc3'), latin1('\xed\xa0\x80')]) {
    const c = await answer(frame(CLOSE, closePayload(1000, reason)));
    assert.equal(c.code, 1007, `reason ${reason.toString('hex')}`);
    assert.ok(!c.reason.equals(reason), 'the reason is not echoed');
    assert.ok('close reason is not valid UTF-8'.startsWith(c.reason.toString().trimEnd()), c.reason.toString('latin1'));
  }
});

test('invalid close codes are answered with 1002', async () => {
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    const c = await answer(frame(CLOSE, closePayload(code)));
    assert.equal(c.code, 1002, `close code ${code}`);
  }
});

test('valid close codes are echoed, with their reason', async () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    const c = await answer(frame(CLOSE, closePayload(code, 'bye \u00e9')));
    assert.equal(c.code, code);
    assert.equal(c.reason.toString(), 'bye \u00e9');
  }
  const empty = await answer(frame(CLOSE));
  assert.equal(empty.code, undefined, 'an empty close is answered with an empty close');
});

test('fragmented control frames, reserved bits and reserved opcodes get 1002', async () => {
  assert.equal((await answer(frame(PING, 'a', { fin: false }))).code, 1002, 'fragmented ping');
  assert.equal((await answer(frame(CLOSE, closePayload(1000), { fin: false }))).code, 1002, 'fragmented close');
  for (const rsv of [1, 2, 4])
    assert.equal((await answer(frame(TEXT, '{}', { rsv }))).code, 1002, `rsv ${rsv}`);
  for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf])
    assert.equal((await answer(frame(op, ''))).code, 1002, `opcode ${op}`);
  assert.equal((await answer(frame(CONT, 'x'))).code, 1002, 'a continuation with nothing to continue');
  assert.equal((await answer(frame(TEXT, 'x', { fin: false }), frame(TEXT, 'y'))).code, 1002, 'a new message inside one');
});

test('a control frame longer than 125 bytes gets 1002, and no pong', async () => {
  // libwebsockets 4.1.6 alone would drop the socket without a close frame:
  // Herald's receive guard (gateway/ws_rx_guard.c) turns it into a 1002
  for (const [name, f] of [['126-byte ping', frame(PING, Buffer.alloc(126))],
    ['10-byte ping in the 16-bit length form', frame(PING, Buffer.alloc(10), { longLen: true })],
    ['126-byte close', frame(CLOSE, Buffer.concat([closePayload(1000), Buffer.alloc(124)]))]]) {
    const c = await answer(f);
    assert.equal(c.code, 1002, name);
    assert.deepEqual(c.before, [], `${name}: no pong`);
  }
});

test('an unmasked client frame fails the connection with 1002 and is never processed', async () => {
  // RFC 6455 section 5.1. libwebsockets 4.1.6 does not check the mask bit;
  // Herald's receive guard does, before libwebsockets reads the frame
  for (const [name, frames] of [
    ['unmasked ping op', [frame(TEXT, '{"op":"ping","id":"u"}', { masked: false })]],
    ['unmasked ping frame', [frame(PING, 'p', { masked: false })]],
    ['masked start, unmasked continuation', [frame(TEXT, '{"op":"ping",', { fin: false }),
      frame(CONT, '"id":"u"}', { masked: false })]],
    ['a masked message, then an unmasked one', [frame(TEXT, '{"op":"ping","id":"m"}'),
      frame(TEXT, '{"op":"ping","id":"u"}', { masked: false })]],
  ]) {
    const c = await answer(...frames);
    assert.equal(c.code, 1002, name);
    const texts = c.before.filter((f) => f.opcode === TEXT).map((f) => JSON.parse(f.payload.toString()));
    assert.ok(texts.every((m) => m.id !== 'u'), `${name}: the unmasked frame was processed: ${JSON.stringify(texts)}`);
    assert.ok(c.before.every((f) => f.opcode !== 10), `${name}: no pong`);
  }
  // split just after the first header byte: still caught
  const r = await RawWs.open(h.clientAddr);
  const f = frame(TEXT, '{"op":"ping","id":"u"}', { masked: false });
  r.send(f.subarray(0, 1));
  await new Promise((res) => setTimeout(res, 50)); // (not a timing check: it only makes the split likely)
  r.send(f.subarray(1));
  const c = await r.closeFrame();
  assert.equal(c.code, 1002, 'split after the first byte');
  r.destroy();
});

test('nothing follows the server close frame, not even a pong', async () => {
  const cases = [
    ['bad UTF-8, then a ping', [frame(TEXT, latin1('{"op":\xff')), frame(PING, 'p')]],
    ['a bad fragment, then a ping', [frame(TEXT, latin1('{"op":'), { fin: false }), frame(CONT, latin1('\xff'), { fin: false }), frame(PING, 'p')]],
    ['a message, a reserved opcode, a ping', [frame(TEXT, '{"op":"ping","id":"x"}'), frame(7, 'aa'), frame(PING, 'p')]],
    ['a 1-byte close, then a ping', [frame(CLOSE, Buffer.from([1])), frame(PING, 'p')]],
  ];
  for (const [name, frames] of cases) {
    const r = await RawWs.open(h.clientAddr);
    r.send(...frames);
    const c = await r.closeFrame();
    assert.notEqual(c.code, null, name);
    assert.ok(c.before.every((f) => f.opcode !== 10), `${name}: no pong before the close either (failed at once)`);
    r.send(frame(CLOSE, closePayload(1000)));
    await r.ended;
    assert.equal(r.buf.length, 0, `${name}: ${r.buf.length} bytes after the close frame`);
  }
});
