// SIGTERM/SIGINT: stop accepting, finish REST requests, close clients with 1001, exit 0.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startHerald, Client, publish } = require('./lib/herald');

test('SIGTERM closes every client with 1001 and exits 0 within 5 s', async () => {
  const h = await startHerald();
  const clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(h.wsUrl)));
  await Promise.all(clients.map((c) => c.subscribe('bye')));
  assert.equal((await publish(h, 'bye', 1)).status, 202);
  const t0 = Date.now();
  const exit = h.stop('SIGTERM');
  const closes = await Promise.all(clients.map((c) => c.closed));
  for (const c of closes) {
    assert.equal(c.code, 1001);
    assert.equal(c.reason, 'server shutting down');
  }
  const r = await exit;
  assert.equal(r.code, 0);
  assert.ok(Date.now() - t0 < 5000, 'shut down within 5 s');
  assert.ok(h.logs.some((l) => /event=stopping signal=SIGTERM/.test(l)));
  assert.ok(h.logs.some((l) => /event=stopped/.test(l)));
});

test('SIGINT also stops cleanly', async () => {
  const h = await startHerald();
  const c = await Client.open(h.wsUrl);
  const r = await h.stop('SIGINT');
  assert.equal(r.code, 0);
  assert.equal((await c.closed).code, 1001);
});

test('a REST request in flight when SIGTERM arrives is finished and answered', async () => {
  const h = await startHerald();
  const sub = await Client.open(h.wsUrl);
  await sub.subscribe('inflight');
  const [host, port] = [h.apiAddr.split(':')[0], Number(h.apiAddr.split(':')[1])];
  const sock = net.connect(port, host);
  await new Promise((r) => sock.once('connect', r));
  let response = '';
  sock.on('data', (d) => (response += d.toString()));
  const ended = new Promise((r) => sock.once('close', r));
  const body = '{"late":true}';
  sock.write(`POST /v1/topics/inflight/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n{"la`);
  await new Promise((r) => setTimeout(r, 200)); // the request is in flight now
  const exit = h.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  // readiness says stopping while the request is still being finished
  sock.write(body.slice(4));
  await ended;
  assert.match(response, /^HTTP\/1\.1 202/);
  assert.match(response, /"topic":"inflight"/);
  // and the event it published reached the subscriber before the close
  const ev = await sub.waitFor((m) => m.op === 'event');
  assert.deepEqual(ev.data, { late: true });
  assert.equal((await sub.closed).code, 1001);
  assert.equal((await exit).code, 0);
});
