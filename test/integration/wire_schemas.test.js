// What a real heraldd sends is what schemas/herald describes: every kind of
// WebSocket message (each ack, pong, event and error op it can be made to
// send) and every REST body (202, each error, health) is captured and
// checked with the validator (build/herald-schema).
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHerald, Client, publish } = require('./lib/herald');

const REPO = path.resolve(__dirname, '../..');
const SCHEMAS = path.join(REPO, 'schemas');
const HERALD_SCHEMA = process.env.HERALD_SCHEMA || path.join(REPO, 'build/herald-schema');

function validate(schema, instances) {
  // Not under HERALD_WRAPPER (valgrind): the validator's memory checks are
  // its unit tests' job, and valgrind flags reads in PCRE2's JIT-compiled code.
  const file = HERALD_SCHEMA;
  const argv = ['validate', schema, ...instances];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: 120000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`cannot run ${file} (${err.code || err.signal})`));
      else resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

let h;
let tmp;
before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-wire-'));
  h = await startHerald({
    client: { max_subscriptions: 2 },
    api: { max_body_bytes: 1024 },
    topics: [
      { pattern: 'orders.>', schema: path.join(SCHEMAS, 'topics/order.json') },
      { pattern: 'chat.>', schema: true },
    ],
    schemas: { unmatched_topics: 'reject' },
  });
});
after(async () => {
  fs.rmSync(tmp, { recursive: true, force: true });
  const r = await h.stop();
  assert.equal(r.code, 0);
});

// Writes each captured body to a file and validates them all in one run.
async function expectValid(schemaRel, bodies) {
  const files = bodies.map((b, i) => {
    const f = path.join(tmp, `${path.basename(schemaRel, '.json')}-${i}.json`);
    fs.writeFileSync(f, typeof b === 'string' ? b : JSON.stringify(b));
    return f;
  });
  const r = await validate(path.join(SCHEMAS, schemaRel), files);
  const listing = bodies.map((b, i) => `  ${i}: ${typeof b === 'string' ? b : JSON.stringify(b)}`.slice(0, 300)).join('\n');
  assert.equal(r.code, 0, `${schemaRel}:\n${r.stdout}${r.stderr}\ncaptured:\n${listing}`);
}

test('every WebSocket message the server sends matches ws-server-message.json', async () => {
  const c = await Client.open(h.wsUrl);
  const start = c.messages.length;
  const raw = [];
  c.ws.on('message', (data, isBinary) => raw.push({ text: data.toString(), isBinary }));
  const order = JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'topics/examples/order-valid.json'), 'utf8'));

  await c.request({ op: 'subscribe', id: 's1', topic: 'chat.>' });
  await c.request({ op: 'subscribe', id: 's2', topic: 'orders.*.created' });
  await c.request({ op: 'subscribe', id: 's3', topic: 'x.*' }); // too_many_subscriptions
  await c.request({ op: 'unsubscribe', id: 'u1', topic: 'x.*' });
  await c.request({ op: 'subscribe', id: 's4', topic: 'a.>.b' }); // invalid_topic
  await c.request({ op: 'ping', id: 'p1' });
  await c.request({ op: 'publish', id: 'pub1', topic: 'chat.lobby', data: { text: 'hi' } });
  await c.request({ op: 'publish', id: 'pub2', topic: 'orders.eu.created', data: order });
  await c.request({ op: 'publish', id: 'pub3', topic: 'orders.eu.created', data: { ...order, total: -1, currency: 'BTC' } });
  await c.request({ op: 'publish', id: 'pub4', topic: 'orders.eu.created', data: { metadata: Object.fromEntries([...Array(15)].map((_, i) => ['k' + i, i])) } });
  await c.request({ op: 'publish', id: 'pub5', topic: 'nowhere', data: 1 }); // unknown_topic
  await c.request({ op: 'publish', id: 'pub6', topic: 'chat.*', data: 1 }); // invalid_topic
  await c.request({ op: 'publish', id: 'pub7', topic: 'chat.lobby' }); // invalid_message
  await c.request({ op: 'explode', id: 'o1' }); // unknown_op
  const n = c.messages.length;
  c.send('not json');
  c.send('[1]');
  c.ws.send(Buffer.from('{}'), { binary: true });
  await c.waitFor(() => c.messages.length >= n + 3);
  await c.waitFor((m) => m.op === 'event' && m.topic === 'orders.eu.created');
  await c.close();

  const sent = raw.map((r) => r.text);
  assert.ok(raw.every((r) => !r.isBinary), 'every server message is a text frame');
  const ops = new Set(c.messages.slice(start).map((m) => m.op));
  const codes = new Set(c.messages.filter((m) => m.op === 'error').map((m) => m.code));
  assert.deepEqual([...ops].sort(), ['ack', 'error', 'event', 'pong']);
  for (const code of ['too_many_subscriptions', 'invalid_topic', 'schema_violation', 'unknown_topic', 'invalid_message',
    'unknown_op', 'invalid_json', 'unsupported_frame'])
    assert.ok(codes.has(code), `no ${code} error captured: ${[...codes]}`);
  assert.ok(c.messages.some((m) => m.code === 'schema_violation' && m.truncated === true), 'a truncated schema_violation');
  await expectValid('herald/ws-server-message.json', sent);
});

test('every REST body the server sends matches its schema', async () => {
  const ok = [];
  const errors = [];
  const health = [];
  const order = JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'topics/examples/order-valid.json'), 'utf8'));
  const expect = async (p, status, into) => {
    const r = await p;
    assert.equal(r.status, status, JSON.stringify(r.body));
    into.push(r.body);
  };
  const req = async (url, init) => {
    const res = await fetch(h.apiUrl + url, init);
    return { status: res.status, body: JSON.parse(await res.text()) };
  };
  await expect(publish(h, 'chat.lobby', { text: 'hi' }), 202, ok);
  await expect(publish(h, 'orders.eu.created', order), 202, ok);
  await expect(publish(h, 'chat.lobby', 'not json', { raw: true }), 400, errors);
  await expect(publish(h, 'chat.lobby', '', { raw: true }), 400, errors);
  await expect(publish(h, 'chat..lobby', 1), 400, errors);
  await expect(publish(h, 'nowhere', 1), 404, errors);
  await expect(publish(h, 'orders.eu.created', { ...order, currency: 'BTC' }), 422, errors);
  await expect(publish(h, 'chat.lobby', 'x'.repeat(2000)), 413, errors);
  await expect(publish(h, 'chat.lobby', 1, { headers: { 'Content-Type': 'text/plain' } }), 415, errors);
  await expect(req('/v1/nothing'), 404, errors);
  await expect(req('/v1/topics/chat.lobby/events'), 405, errors);
  await expect(req('/healthz', { method: 'POST' }), 405, errors);
  await expect(req('/healthz'), 200, health);
  await expect(req('/readyz'), 200, health);
  const codes = errors.map((b) => b.error && b.error.code);
  for (const code of ['invalid_json', 'invalid_topic', 'unknown_topic', 'schema_violation', 'payload_too_large',
    'unsupported_media_type', 'not_found', 'method_not_allowed'])
    assert.ok(codes.includes(code), `no ${code} captured: ${codes}`);
  await expectValid('herald/rest-publish-response.json', ok);
  await expectValid('herald/rest-error.json', errors);
  await expectValid('herald/rest-health.json', health);
});
