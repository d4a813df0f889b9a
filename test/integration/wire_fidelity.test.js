// Payload pass-through: the JSON text a publisher sends (REST body or the
// `data` of a WebSocket publish) is what every WebSocket subscriber and
// every webhook receiver gets, byte for byte, with only the insignificant
// whitespace removed. Numbers (0.1, 1.5e300, uint64 ids, 1.0, -0, 1e999),
// string escapes and key order are never re-spelled. Also: any RFC 8259
// number is accepted and still checked by schemas; duplicate keys are
// refused; Idempotency-Key equality is on the minified text.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { Webhook } = require('standardwebhooks');
const { startHerald, Client, publish } = require('./lib/herald');
const { Receiver } = require('./lib/receiver');
const { api } = require('./lib/webhooks');

// [what is sent, what every receiver must get]
const CASES = [
  ['{"x":0.1}', '{"x":0.1}'],
  ['{"x":1.5e300}', '{"x":1.5e300}'],
  ['{"id":18446744073709551615}', '{"id":18446744073709551615}'],
  ['{"id":-9223372036854775809,"big":123456789012345678901234567890}',
    '{"id":-9223372036854775809,"big":123456789012345678901234567890}'],
  ['{ "a" : 1.0 , "b" : -0 , "c" : 1E+2 , "d" : 2.50 }', '{"a":1.0,"b":-0,"c":1E+2,"d":2.50}'],
  ['{"huge":1e999,"tiny":1e-999}', '{"huge":1e999,"tiny":1e-999}'],
  ['{"s":"caf\\u00e9 \\ud83d\\ude00 \\/ \\" \\n","t":"caf\u00e9"}',
    '{"s":"caf\\u00e9 \\ud83d\\ude00 \\/ \\" \\n","t":"caf\u00e9"}'],
  ['{"z":1,"a":{"y":[ 1 ,\n\t2 ],"b":null}}', '{"z":1,"a":{"y":[1,2],"b":null}}'],
  [' [ 0.30000000000000004 , 100 ] ', '[0.30000000000000004,100]'],
  ['18446744073709551616', '18446744073709551616'],
];

// The text of the last member ("data") of a JSON object's text.
function dataText(raw) {
  const at = raw.indexOf('"data":');
  assert.ok(at > 0, raw);
  assert.equal(raw[raw.length - 1], '}');
  return raw.slice(at + 7, -1);
}

test('numbers, escapes and key order reach WebSocket subscribers and webhooks as sent', async () => {
  const rx = await Receiver.start();
  const h = await startHerald({
    topics: [{ pattern: 'fid.typed', schema: { type: 'object', properties: { id: { type: 'integer', minimum: 1e19 } } } }],
    webhooks: { allowed_cidrs: ['127.0.0.1/32'], schedule: [0, 1], jitter_percent: 0 },
  });
  try {
    const ep = await api(h, 'POST', '/v1/webhooks', { url: rx.url('/fid'), topics: ['fid.>'] });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    const secret = ep.body.secret;

    const sub = new WebSocket(h.wsUrl);
    const frames = [];
    sub.on('message', (d) => frames.push(d.toString()));
    await new Promise((res, rej) => { sub.once('open', res); sub.once('error', rej); });
    sub.send(JSON.stringify({ op: 'subscribe', id: 's', topic: 'fid.>' }));
    const pubc = await Client.open(h.wsUrl);

    const expected = new Map(); // event id -> expected data text
    for (const [sent, want] of CASES) {
      const r = await publish(h, 'fid.rest', sent, { raw: true });
      assert.equal(r.status, 202, `REST ${sent}: ${JSON.stringify(r.body)}`);
      expected.set(r.body.id, want);
    }
    // (WebSocket publishes are sent as raw text so that their numbers are not
    // re-spelled by JSON.stringify on the way in)
    for (const [i, [sent, want]] of CASES.entries()) {
      pubc.send(`{"op":"publish", "id":"w${i}", "topic":"fid.ws",\n "data" : ${sent} }`);
      const ack = await pubc.waitFor((m) => m.id === 'w' + i);
      assert.equal(ack.op, 'ack', `WS ${sent}: ${JSON.stringify(ack)}`);
      expected.set(ack.event.id, want);
    }

    // the WebSocket subscriber: the data text of each event frame
    const total = CASES.length * 2;
    const deadline = Date.now() + 10000;
    const events = () => frames.filter((f) => f.startsWith('{"op":"event"'));
    while (events().length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(events().length, total);
    for (const f of events()) {
      const id = JSON.parse(f).id;
      assert.equal(dataText(f), expected.get(id), `event ${id}`);
    }

    // the webhook receiver: a verified body whose data is the same text
    await rx.waitForCount(total, { timeoutMs: 15000 });
    const wh = new Webhook(secret);
    for (const q of rx.requests) {
      wh.verify(q.body, q.headers); // throws when the signature does not hold
      const body = q.body.toString('utf8');
      assert.equal(dataText(body), expected.get(q.headers['webhook-id']), body);
    }
    assert.equal(new Set(rx.requests.map((q) => q.headers['webhook-id'])).size, total);

    // big numbers are still checked by schemas: type integer holds for an
    // integral uint64, minimum compares its value
    let r = await publish(h, 'fid.typed', '{"id":18446744073709551615}', { raw: true });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    r = await publish(h, 'fid.typed', '{"id":18446744073709551615.5e0}', { raw: true });
    assert.equal(r.status, 202, 'integral after the exponent: ' + JSON.stringify(r.body));
    r = await publish(h, 'fid.typed', '{"id":1.5}', { raw: true });
    assert.equal(r.status, 422);
    r = await publish(h, 'fid.typed', '{"id":9000000000000000000}', { raw: true });
    assert.equal(r.status, 422, 'below the minimum');
    pubc.send('{"op":"publish","id":"t1","topic":"fid.typed","data":{"id":1.25e19}}');
    assert.equal((await pubc.waitFor((m) => m.id === 't1')).op, 'ack');
    pubc.send('{"op":"publish","id":"t2","topic":"fid.typed","data":{"id":0.5}}');
    assert.equal((await pubc.waitFor((m) => m.id === 't2')).code, 'schema_violation');

    sub.close();
    await pubc.close();
  } finally {
    await h.stop();
    await rx.close();
  }
});

test('duplicate keys are refused; bad JSON stays refused; whitespace does not change an Idempotency-Key body', async () => {
  const h = await startHerald({ webhooks: { allowed_cidrs: ['127.0.0.1/32'] } });
  try {
    let r = await publish(h, 'dup.a', '{"amount":1e9,"amount":5}', { raw: true });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_json');
    assert.match(r.body.error.message, /duplicate/);
    r = await publish(h, 'dup.a', '{"a":{"b":1,"b":2}}', { raw: true });
    assert.equal(r.status, 400, 'nested duplicates too');
    // ('[1,9\0]': jansson alone would take the NUL for the end of the number)
    for (const bad of ['{"x":01}', '{"x":.5}', '[1,]', '{"x":NaN}', '{"x":1}x', '[1,9\u0000]', '\ufeff{}'])
      assert.equal((await publish(h, 'dup.a', bad, { raw: true })).status, 400, bad);

    const c = await Client.open(h.wsUrl);
    // (the message is not read at all, so the error cannot carry its id)
    c.send('{"op":"publish","id":"d1","topic":"dup.b","data":{"k":1,"k":2}}');
    const e = await c.waitFor((m) => m.op === 'error');
    assert.equal(e.code, 'invalid_json');
    assert.match(e.message, /duplicate/);
    c.send('{"op":"publish","id":"d2","topic":"dup.b","data":1,"data":2}');
    assert.equal((await c.waitFor((m) => m.op === 'error', { from: 1 })).code, 'invalid_json');
    assert.equal(c.events().length, 0);
    await c.close();

    const key = { headers: { 'Idempotency-Key': 'fid-1' }, raw: true };
    r = await publish(h, 'idem.a', '{"n":1}', key);
    assert.equal(r.status, 202);
    r = await publish(h, 'idem.a', ' { "n" : 1 } ', key);
    assert.equal(r.status, 202, 'whitespace does not matter');
    assert.equal(r.headers.get('idempotent-replayed'), 'true');
    r = await publish(h, 'idem.a', '{"n":1.0}', key);
    assert.equal(r.status, 409, '1.0 is another body than 1');
    r = await publish(h, 'idem.a', '{"n":"\\u0041"}', { ...key, headers: { 'Idempotency-Key': 'fid-2' } });
    assert.equal(r.status, 202);
    r = await publish(h, 'idem.a', '{"n":"A"}', { ...key, headers: { 'Idempotency-Key': 'fid-2' } });
    assert.equal(r.status, 409, 'an escape is another body than its character');
  } finally {
    await h.stop();
  }
});
