// Topic schemas: publishes whose data fails the schema bound to their topic
// are refused (REST 422, WebSocket error op schema_violation) and delivered
// to nobody; unmatched topics are accepted or refused (404 unknown_topic).
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHerald, heralddCommand, Client, publish } = require('./lib/herald');

const REPO = path.resolve(__dirname, '../..');
const ORDER_SCHEMA = path.join(REPO, 'schemas/topics/order.json');
const validOrder = () => JSON.parse(fs.readFileSync(path.join(REPO, 'schemas/topics/examples/order-valid.json')));

let h;
before(async () => {
  h = await startHerald({
    topics: [
      // Relative to heraldd's working directory (the repository root here).
      { pattern: 'orders.>', schema: 'schemas/topics/order.json' },
      { pattern: 'chat.*', schema: { type: 'object', required: ['text'], properties: { text: { type: 'string', maxLength: 20 } } } },
      { pattern: 'free.>', schema: true },
      { pattern: 'presence.>', history: false }, // no schema: a rule all the same
    ],
    schemas: { unmatched_topics: 'reject' },
  }, { cwd: REPO });
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

test('REST: valid data is published, invalid data gets 422 with the error list and is not delivered', async () => {
  const sub = await Client.open(h.wsUrl);
  await sub.subscribe('orders.>');
  const bad = validOrder();
  bad.items[1].qty = 0;
  delete bad.customer.email;
  const r = await publish(h, 'orders.eu.created', bad);
  assert.equal(r.status, 422);
  assert.equal(r.body.error.code, 'schema_violation');
  assert.match(r.body.error.message, /orders\.>/);
  assert.equal(r.body.error.truncated, false);
  const paths = r.body.error.errors.map((e) => e.instance_path).sort();
  assert.deepEqual(paths, ['/customer', '/items/1/qty']);
  const qty = r.body.error.errors.find((e) => e.instance_path === '/items/1/qty');
  assert.equal(qty.keyword_path, '/definitions/item/properties/qty/minimum');
  assert.match(qty.message, /minimum/);

  const ok = await publish(h, 'orders.eu.created', validOrder());
  assert.equal(ok.status, 202);
  const ev = await sub.waitFor((m) => m.op === 'event');
  assert.equal(ev.id, ok.body.id);
  assert.deepEqual(ev.data, validOrder());
  // The refused publish took no sequence number and reached nobody.
  assert.equal(ok.body.seq, 1);
  assert.equal(sub.events().length, 1);
  await sub.close();
});

test('REST: many errors are capped at 10 and flagged truncated', async () => {
  const bad = { metadata: {} };
  for (let i = 0; i < 15; i++) bad.metadata['k' + i] = i; // 15 non-string values
  const r = await publish(h, 'orders.x', bad);
  assert.equal(r.status, 422);
  assert.equal(r.body.error.errors.length, 10);
  assert.equal(r.body.error.truncated, true);
});

test('REST: topics matching no rule are refused with 404 unknown_topic when configured', async () => {
  const r = await publish(h, 'misc.thing', { a: 1 });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, 'unknown_topic');
  const free = await publish(h, 'free.anything.goes', [1, 'x', null]);
  assert.equal(free.status, 202);
  // a rule with only a history setting matches: the topic is known
  const presence = await publish(h, 'presence.u1', { online: true });
  assert.equal(presence.status, 202);
  assert.equal(presence.body.offset, undefined); // and it is kept out of history
});

test('WebSocket: invalid publish gets a schema_violation error op, valid one an ack', async () => {
  const sub = await Client.open(h.wsUrl);
  await sub.subscribe('chat.*');
  const pub = await Client.open(h.wsUrl);
  const bad = await pub.request({ op: 'publish', id: 'p1', topic: 'chat.lobby', data: { text: 'x'.repeat(21) } });
  assert.equal(bad.op, 'error');
  assert.equal(bad.code, 'schema_violation');
  assert.equal(bad.errors.length, 1);
  assert.equal(bad.errors[0].instance_path, '/text');
  assert.equal(bad.errors[0].keyword_path, '/properties/text/maxLength');
  assert.equal(bad.truncated, false);
  const missing = await pub.request({ op: 'publish', id: 'p2', topic: 'chat.lobby', data: 'hello' });
  assert.equal(missing.code, 'schema_violation');
  assert.match(missing.errors[0].message, /expected object/);
  const unknown = await pub.request({ op: 'publish', id: 'p3', topic: 'nowhere', data: {} });
  assert.equal(unknown.op, 'error');
  assert.equal(unknown.code, 'unknown_topic');
  const ok = await pub.request({ op: 'publish', id: 'p4', topic: 'chat.lobby', data: { text: 'hi' } });
  assert.equal(ok.op, 'ack');
  const ev = await sub.waitFor((m) => m.op === 'event');
  assert.deepEqual(ev.data, { text: 'hi' });
  assert.equal(sub.events().length, 1);
  await pub.close();
  await sub.close();
});

function checkConfig(config) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-schemas-'));
  const file = path.join(dir, 'herald.json');
  fs.writeFileSync(file, JSON.stringify(config));
  return new Promise((resolve) => {
    execFile(...heralddCommand(['--check-config', '-c', file]), { cwd: dir, timeout: 60000 }, (err, stdout, stderr) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test('--check-config compiles the topic schemas and names the file and the reason', async () => {
  const ok = await checkConfig({ topics: [{ pattern: 'orders.>', schema: ORDER_SCHEMA }] });
  assert.equal(ok.code, 0, ok.stderr);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bad-schema-'));
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, '{"type": "object", "properties": {"a": {"minLength": -1}}}');
  let r = await checkConfig({ topics: [{ pattern: 'a.>', schema: broken }] });
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes('topics[0].schema'), r.stderr);
  assert.ok(r.stderr.includes(broken), r.stderr);
  assert.match(r.stderr, /minLength/);

  fs.writeFileSync(broken, '{"type": "object",');
  r = await checkConfig({ topics: [{ pattern: 'a.>', schema: broken }] });
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(broken), r.stderr);

  r = await checkConfig({ topics: [{ pattern: 'a.>', schema: path.join(dir, 'missing.json') }] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.json: No such file/);

  r = await checkConfig({ topics: [{ pattern: 'a.>', schema: { $ref: 'http://example.com/s.json' } }] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /never fetched/);

  r = await checkConfig({ topics: [{ pattern: 'a.>', schema: { pattern: '(' } }] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /topics\[0\]\.schema/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('--check-config checks the config against its schema and names the key', async () => {
  let r = await checkConfig({ client: { workers: -1 } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /client\.workers/);
  r = await checkConfig({ topics: [{ pattern: 'a.>' }] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /topics\[0\]/);
  r = await checkConfig({ topics: [{ pattern: 'a.>', schema: true, extra: 1 }] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /topics\[0\]\.extra|extra/);
  r = await checkConfig({ topics: [{ pattern: 'a..b', schema: true }] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /topics\[0\]\.pattern/);
  r = await checkConfig({ schemas: { unmatched_topics: 'maybe' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /schemas\.unmatched_topics/);
});
