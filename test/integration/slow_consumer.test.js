// A client that stops reading is cut off; the others keep receiving.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald, Client, publish, until } = require('./lib/herald');

let h;
before(async () => {
  h = await startHerald({ client: { send_queue_bytes: 262144, max_message_bytes: 4096 } });
});
after(async () => {
  assert.equal((await h.stop()).code, 0);
});

test('a client that stops reading is closed with 4008 while the others get everything', async () => {
  const fast = await Client.open(h.wsUrl);
  const slow = await Client.open(h.wsUrl);
  await fast.subscribe('firehose');
  await slow.subscribe('firehose');
  slow.ws._socket.pause(); // stop reading: the kernel buffers fill, then Herald's queue
  const pad = 'p'.repeat(2000);
  let sent = 0;
  // Loopback socket buffers hold several MB: keep publishing until Herald
  // gives up on the slow client (bounded: at most 40,000 events ~ 80 MB).
  while (sent < 40000 && !h.logs.some((l) => l.includes('event=slow_consumer'))) {
    const batch = [];
    for (let i = 0; i < 50; i++) batch.push(publish(h, 'firehose', { n: sent++, pad }));
    for (const r of await Promise.all(batch)) assert.equal(r.status, 202);
    // pace the publisher by the fast client, so that only the slow one lags
    await fast.waitFor((m) => m.op === 'event' && m.seq === sent, { timeoutMs: 10000 });
  }
  assert.ok(h.logs.some((l) => l.includes('event=slow_consumer')), 'the slow client was cut off');
  // read again at once: the close frame waits behind what the socket buffers hold
  slow.ws._socket.resume();
  await fast.waitFor((m) => m.op === 'event' && m.seq === sent, { timeoutMs: 30000 });
  assert.equal(fast.events().length, sent);
  const closed = await slow.closed;
  assert.equal(closed.code, 4008);
  assert.equal(closed.reason, 'slow consumer');
  // The slow client got a prefix of the stream, in order, and then nothing.
  const got = slow.events().map((e) => e.seq);
  assert.ok(got.length < sent);
  assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i + 1));
  // The server still serves new clients.
  const late = await Client.open(h.wsUrl);
  assert.equal((await late.request({ op: 'ping', id: 'x' })).op, 'pong');
  await Promise.all([fast.close(), late.close()]);
});
