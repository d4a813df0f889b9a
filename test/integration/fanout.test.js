// Fan-out: many subscribers each get every event, once, in seq order.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald, Client, publish } = require('./lib/herald');

let h;
before(async () => {
  h = await startHerald();
});
after(async () => {
  assert.equal((await h.stop()).code, 0);
});

test('100 concurrent clients each receive all of 1,000 events in order', async () => {
  const N = 100, EVENTS = 1000, PARALLEL = 8;
  const clients = await Promise.all(Array.from({ length: N }, () => Client.open(h.wsUrl)));
  // half subscribe with a wildcard, half exactly: both paths must deliver all
  await Promise.all(clients.map((c, i) => c.subscribe(i % 2 ? 'fan.*' : 'fan.out')));
  let next = 0;
  const publisher = async () => {
    while (next < EVENTS) {
      const n = next++;
      const r = await publish(h, 'fan.out', { n, pad: 'x'.repeat(64) });
      assert.equal(r.status, 202);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, publisher));
  await Promise.all(clients.map((c) => c.waitFor((m) => m.op === 'event' && m.seq === EVENTS, { timeoutMs: 30000 })));
  const expected = Array.from({ length: EVENTS }, (_, i) => i + 1);
  for (const c of clients) {
    const evs = c.events();
    assert.equal(evs.length, EVENTS);
    assert.deepEqual(evs.map((e) => e.seq), expected);
    // every published n arrived exactly once
    assert.equal(new Set(evs.map((e) => e.data.n)).size, EVENTS);
  }
  // all clients saw the same event under each seq (one event, one frame)
  const first = clients[0].events();
  for (const c of clients.slice(1)) {
    const evs = c.events();
    for (let i = 0; i < EVENTS; i += 97) assert.equal(evs[i].id, first[i].id);
  }
  await Promise.all(clients.map((c) => c.close()));
});

test('per-topic order holds when topics interleave and several publishers race', async () => {
  const c = await Client.open(h.wsUrl);
  await c.subscribe('mix.>');
  const topics = ['mix.a', 'mix.b', 'mix.c'];
  await Promise.all(topics.map(async (t) => {
    for (let i = 0; i < 200; i++) assert.equal((await publish(h, t, { i })).status, 202);
  }));
  await Promise.all(topics.map((t) => c.waitFor((m) => m.op === 'event' && m.topic === t && m.seq === 200)));
  for (const t of topics) {
    const evs = c.events().filter((e) => e.topic === t);
    assert.deepEqual(evs.map((e) => e.seq), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.deepEqual(evs.map((e) => e.data.i), Array.from({ length: 200 }, (_, i) => i));
  }
  await c.close();
});
