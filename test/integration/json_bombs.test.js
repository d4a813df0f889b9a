// JSON bombs on both ports: documents nested past jansson's parser depth
// (2048) are refused as invalid JSON before anything else reads them, on
// the REST port (400) and on the WebSocket (an error op, the connection
// stays); a document nested just inside it is published and delivered like
// any other. Sizes stay under the message and body caps (64 KiB), so it is
// the depth that is refused. docs/security.md, "Attacks tried".
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald, Client, publish } = require('./lib/herald');

const nestedArrays = (n) => '['.repeat(n) + ']'.repeat(n);
const nestedObjects = (n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
const depthOf = (v) => (Array.isArray(v) ? 1 + (v.length ? depthOf(v[0]) : 0) : 0);

let h;
before(async () => {
  h = await startHerald();
});
after(async () => {
  assert.equal((await h.stop()).code, 0);
});

test('REST: a body nested past 2048 levels gets 400 invalid_json; 2000 levels are published and delivered', async () => {
  const sub = await Client.open(h.wsUrl);
  await sub.subscribe('bombs.rest');
  for (const body of [nestedArrays(30000), nestedArrays(2049), nestedObjects(5000)]) {
    assert.ok(body.length < 65536);
    const r = await publish(h, 'bombs.rest', body, { raw: true });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'invalid_json');
    assert.match(r.body.error.message, /depth/);
  }
  const ok = await publish(h, 'bombs.rest', nestedArrays(2000), { raw: true });
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
  const ev = await sub.waitFor((m) => m.op === 'event');
  assert.equal(ev.seq, 1); // the refused ones took no seq
  assert.equal(depthOf(ev.data), 2000);
  await sub.close();
});

test('WebSocket: a message nested past 2048 levels gets an invalid_json error op and the connection stays open', async () => {
  const c = await Client.open(h.wsUrl);
  const sub = await Client.open(h.wsUrl);
  await sub.subscribe('bombs.ws');
  for (const data of [nestedArrays(30000), nestedObjects(5000)]) {
    const before = c.messages.length;
    c.send(`{"op":"publish","id":"p","topic":"bombs.ws","data":${data}}`);
    const m = await c.waitFor((x) => x.op === 'error', { from: before });
    assert.equal(m.code, 'invalid_json', JSON.stringify(m));
  }
  const ack = await c.request({ op: 'publish', id: 'ok', topic: 'bombs.ws', data: JSON.parse(nestedArrays(2000)) });
  assert.equal(ack.op, 'ack', JSON.stringify(ack));
  assert.equal(ack.event.seq, 1);
  const ev = await sub.waitFor((m) => m.op === 'event');
  assert.equal(depthOf(ev.data), 2000);
  assert.equal((await c.request({ op: 'ping', id: 'still' })).op, 'pong');
  await c.close();
  await sub.close();
});
