// Delivery: what a subscriber sees for what publishers send.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald, Client, publish, curl, sleep } = require('./lib/herald');

let h;
before(async () => {
  h = await startHerald();
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

test('the README example: curl publishes, a wildcard subscriber receives', async () => {
  const c = await Client.open(h.wsUrl);
  assert.equal(c.ws.protocol, 'herald.v1');
  const ack = await c.request({ op: 'subscribe', id: '1', topic: 'orders.*' });
  assert.deepEqual(ack, { op: 'ack', id: '1' });
  const r = await curl(['-d', '{"n":1}', '-H', 'Content-Type: application/json',
    `${h.apiUrl}/v1/topics/orders.created/events`, '-w', '\n%{http_code}']);
  assert.equal(r.code, 0, r.stderr);
  const [body, status] = r.stdout.trim().split('\n');
  assert.equal(status, '202');
  const accepted = JSON.parse(body);
  assert.equal(accepted.topic, 'orders.created');
  assert.equal(accepted.seq, 1);
  assert.match(accepted.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const ev = await c.waitFor((m) => m.op === 'event');
  assert.deepEqual(Object.keys(ev), ['op', 'topic', 'id', 'seq', 'offset', 'cursor', 'time', 'data']);
  assert.equal(ev.topic, 'orders.created');
  assert.equal(ev.id, accepted.id);
  assert.equal(ev.seq, 1);
  assert.equal(ev.offset, accepted.offset);
  assert.equal(ev.cursor, accepted.cursor);
  assert.deepEqual(ev.data, { n: 1 });
  assert.match(ev.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(ev.time) - Date.now()) < 60000);
  await c.close();
});

test('a client that asks for no subprotocol is served the same', async () => {
  const c = await Client.open(h.wsUrl, []);
  const pong = await c.request({ op: 'ping', id: 'p1' });
  assert.deepEqual(pong, { op: 'pong', id: 'p1' });
  await c.close();
});

test('exact, * and > patterns deliver exactly what they match', async () => {
  const exact = await Client.open(h.wsUrl);
  const star = await Client.open(h.wsUrl);
  const rest = await Client.open(h.wsUrl);
  await exact.subscribe('shop.eu.created');
  await star.subscribe('shop.*.created');
  await rest.subscribe('shop.>');
  const topics = ['shop.eu.created', 'shop.us.created', 'shop.eu.deleted', 'shop.eu.created.late', 'shop', 'other.eu.created'];
  for (const t of topics) assert.equal((await publish(h, t, { t })).status, 202);
  await publish(h, 'shop.end', { end: true });
  await rest.waitFor((m) => m.op === 'event' && m.topic === 'shop.end');
  await sleep(100); // the other two have no marker: give stray events time to show
  const got = (c) => c.events().map((e) => e.topic);
  assert.deepEqual(got(exact), ['shop.eu.created']);
  assert.deepEqual(got(star), ['shop.eu.created', 'shop.us.created']);
  assert.deepEqual(got(rest), ['shop.eu.created', 'shop.us.created', 'shop.eu.deleted', 'shop.eu.created.late', 'shop.end']);
  await Promise.all([exact.close(), star.close(), rest.close()]);
});

test('overlapping subscriptions deliver each event once', async () => {
  const c = await Client.open(h.wsUrl);
  await c.subscribe('ov.a.b');
  await c.subscribe('ov.*.b');
  await c.subscribe('ov.>');
  await c.subscribe('ov.a.*');
  // subscribing twice to the same pattern is acknowledged and changes nothing
  await c.subscribe('ov.>', 'again');
  await publish(h, 'ov.a.b', { k: 1 });
  await publish(h, 'ov.z', { k: 2 });
  await c.waitFor((m) => m.op === 'event' && m.topic === 'ov.z');
  await sleep(50);
  assert.deepEqual(c.events().map((e) => e.data.k), [1, 2]);
  await c.close();
});

test('unsubscribe stops delivery, other subscriptions keep delivering', async () => {
  const c = await Client.open(h.wsUrl);
  await c.subscribe('un.a');
  await c.subscribe('un.b');
  await publish(h, 'un.a', { n: 1 });
  await c.waitFor((m) => m.op === 'event' && m.data.n === 1);
  const ack = await c.request({ op: 'unsubscribe', id: 'u1', topic: 'un.a' });
  assert.deepEqual(ack, { op: 'ack', id: 'u1' });
  await publish(h, 'un.a', { n: 2 });
  await publish(h, 'un.b', { n: 3 });
  await c.waitFor((m) => m.op === 'event' && m.data.n === 3);
  await sleep(50);
  assert.deepEqual(c.events().map((e) => e.data.n), [1, 3]);
  // unsubscribing from something not subscribed is acknowledged too
  assert.equal((await c.request({ op: 'unsubscribe', id: 'u2', topic: 'never.*' })).op, 'ack');
  await c.close();
});

test('WebSocket publish is acknowledged with id and seq and delivered to subscribers', async () => {
  const pub = await Client.open(h.wsUrl);
  const sub = await Client.open(h.wsUrl);
  await sub.subscribe('chat.lobby');
  const ack = await pub.request({ op: 'publish', id: '3', topic: 'chat.lobby', data: { text: 'héllo ✓' } });
  assert.equal(ack.op, 'ack');
  assert.equal(ack.event.seq, 1);
  const ev = await sub.waitFor((m) => m.op === 'event');
  assert.equal(ev.id, ack.event.id);
  assert.deepEqual(ev.data, { text: 'héllo ✓' });
  const ack2 = await pub.request({ op: 'publish', id: '4', topic: 'chat.lobby', data: null });
  assert.equal(ack2.event.seq, 2);
  assert.ok(ack2.event.id > ack.event.id, 'ids sort by publish time');
  const ev2 = await sub.waitFor((m) => m.op === 'event' && m.seq === 2);
  assert.equal(ev2.data, null);
  await Promise.all([pub.close(), sub.close()]);
});

test('any JSON value is valid event data; seq counts per topic', async () => {
  const c = await Client.open(h.wsUrl);
  await c.subscribe('vals.>');
  const values = [[1, 2], 'text', 42, true, null, { nested: { deep: [1, { x: 'y' }] } }];
  for (const v of values) assert.equal((await publish(h, 'vals.one', v)).status, 202);
  const other = await publish(h, 'vals.two', 0);
  assert.equal(other.body.seq, 1);
  await c.waitFor((m) => m.op === 'event' && m.topic === 'vals.two');
  const evs = c.events().filter((e) => e.topic === 'vals.one');
  assert.deepEqual(evs.map((e) => e.data), values);
  assert.deepEqual(evs.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  await c.close();
});

test('events larger than one write (sent in slices) arrive intact and in order', async () => {
  const big = await startHerald({ api: { max_body_bytes: 1048576 }, client: { send_queue_bytes: 4194304 } });
  try {
    const c = await Client.open(big.wsUrl);
    await c.subscribe('big.events');
    const sizes = [70000, 300000, 10, 1000000 - 100];
    for (const [i, n] of sizes.entries()) {
      const r = await publish(big, 'big.events', { i, s: String(i % 10).repeat(n) });
      assert.equal(r.status, 202);
    }
    await c.waitFor((m) => m.op === 'event' && m.seq === sizes.length, { timeoutMs: 15000 });
    const evs = c.events();
    assert.deepEqual(evs.map((e) => e.data.i), [0, 1, 2, 3]);
    for (const [i, n] of sizes.entries()) assert.equal(evs[i].data.s, String(i % 10).repeat(n));
    await c.close();
  } finally {
    assert.equal((await big.stop()).code, 0);
  }
});
