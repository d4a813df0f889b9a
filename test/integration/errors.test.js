// Bad input on both ports gets a clear error and the server keeps serving.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const { startHerald, Client, publish, curl, until } = require('./lib/herald');

let h;
before(async () => {
  h = await startHerald({ client: { max_subscriptions: 3, max_message_bytes: 4096, send_queue_bytes: 65536 } });
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

async function expectError(c, payload, code, { id } = {}) {
  const before = c.messages.length;
  c.send(payload);
  const m = await c.waitFor((x) => x.op === 'error', { from: before });
  assert.equal(m.code, code, JSON.stringify(m));
  assert.equal(typeof m.message, 'string');
  assert.ok(m.message.length > 0);
  if (id === undefined) assert.equal('id' in m, false, 'no id when none could be read');
  else assert.equal(m.id, id);
  return m;
}

test('bad WebSocket messages get error ops and the connection stays open', async () => {
  const c = await Client.open(h.wsUrl);
  await expectError(c, 'not json', 'invalid_json');
  await expectError(c, '{"op":"subscribe","id":"1","topic":"a"', 'invalid_json');
  await expectError(c, '[1,2,3]', 'invalid_message');
  await expectError(c, '{"id":"7"}', 'invalid_message', { id: '7' });
  await expectError(c, { op: 'explode', id: '8' }, 'unknown_op', { id: '8' });
  await expectError(c, { op: 42, id: '9' }, 'invalid_message', { id: '9' });
  await expectError(c, { op: 'subscribe', topic: 'a.b' }, 'invalid_message');
  await expectError(c, { op: 'subscribe', id: 5, topic: 'a.b' }, 'invalid_message');
  await expectError(c, { op: 'subscribe', id: 'x'.repeat(129), topic: 'a' }, 'invalid_message');
  await expectError(c, { op: 'subscribe', id: '10' }, 'invalid_message', { id: '10' });
  await expectError(c, { op: 'publish', id: '11', topic: 'a.b' }, 'invalid_message', { id: '11' });
  await expectError(c, { op: 'subscribe', id: '12', topic: 'a.>.b' }, 'invalid_topic', { id: '12' });
  await expectError(c, { op: 'subscribe', id: '13', topic: 'a..b' }, 'invalid_topic', { id: '13' });
  await expectError(c, { op: 'subscribe', id: '14', topic: 'a b' }, 'invalid_topic', { id: '14' });
  await expectError(c, { op: 'subscribe', id: '15', topic: 'a'.repeat(256) }, 'invalid_topic', { id: '15' });
  const deep = await expectError(c, { op: 'subscribe', id: '15b', topic: Array(33).fill('*').join('.') }, 'invalid_topic', { id: '15b' });
  assert.match(deep.message, /32 segments/);
  await expectError(c, { op: 'publish', id: '16', topic: 'a.*', data: 1 }, 'invalid_topic', { id: '16' });
  await expectError(c, { op: 'publish', id: '17', topic: '', data: 1 }, 'invalid_topic', { id: '17' });
  c.ws.send(Buffer.from('{"op":"ping","id":"b"}'), { binary: true });
  await c.waitFor((x) => x.op === 'error' && x.code === 'unsupported_frame');
  // still serving this very connection
  assert.deepEqual(await c.request({ op: 'ping', id: 'alive' }), { op: 'pong', id: 'alive' });
  assert.equal(c.ws.readyState, c.ws.OPEN);
  await c.close();
});

test('a topic of exactly 255 bytes is accepted', async () => {
  const c = await Client.open(h.wsUrl);
  const topic = 'a'.repeat(127) + '.' + 'b'.repeat(127);
  assert.equal(topic.length, 255);
  await c.subscribe(topic, 'long');
  assert.equal((await publish(h, topic, 1)).status, 202);
  const ev = await c.waitFor((m) => m.op === 'event');
  assert.equal(ev.topic, topic);
  await c.close();
});

test('the subscription cap answers too_many_subscriptions and keeps the others', async () => {
  const c = await Client.open(h.wsUrl);
  for (const t of ['cap.a', 'cap.b', 'cap.c']) await c.subscribe(t);
  await expectError(c, { op: 'subscribe', id: 'x', topic: 'cap.d' }, 'too_many_subscriptions', { id: 'x' });
  // freeing one makes room again
  await c.request({ op: 'unsubscribe', id: 'u', topic: 'cap.a' });
  await c.subscribe('cap.d');
  await publish(h, 'cap.d', 1);
  await c.waitFor((m) => m.op === 'event' && m.topic === 'cap.d');
  await c.close();
});

test('a message in several fragments is reassembled', async () => {
  const c = await Client.open(h.wsUrl);
  const text = JSON.stringify({ op: 'ping', id: 'frag' });
  c.ws.send(text.slice(0, 5), { fin: false });
  c.ws.send(text.slice(5, 12), { fin: false });
  c.ws.send(text.slice(12), { fin: true });
  await c.waitFor((m) => m.op === 'pong' && m.id === 'frag');
  await c.close();
});

test('an oversize message closes the connection with 1009, others are unaffected', async () => {
  const other = await Client.open(h.wsUrl);
  const big = await Client.open(h.wsUrl);
  big.send(JSON.stringify({ op: 'ping', id: 'x'.repeat(5000) }));
  const closed = await big.closed;
  assert.equal(closed.code, 1009);
  assert.match(closed.reason, /larger than 4096 bytes/);
  const frag = await Client.open(h.wsUrl);
  frag.ws.send('x'.repeat(3000), { fin: false });
  frag.ws.send('x'.repeat(3000), { fin: true });
  assert.equal((await frag.closed).code, 1009);
  assert.deepEqual(await other.request({ op: 'ping', id: 'ok' }), { op: 'pong', id: 'ok' });
  await other.close();
});

test('the client port serves the demo page at / and refuses other paths', async () => {
  const page = await fetch(`http://${h.clientAddr}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  const html = await page.text();
  assert.match(html, /new WebSocket\(url, "herald\.v1"\)/);
  assert.equal(Number(page.headers.get('content-length')), Buffer.byteLength(html));
  for (const p of ['/index.html', '/ws', '/../etc/passwd', '/x?y=1']) {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--path-as-is', `http://${h.clientAddr}${p}`]);
    assert.equal(r.stdout, '404', p);
  }
  const bad = new Client(`ws://${h.clientAddr}/elsewhere`);
  await assert.rejects(bad.opened, /Unexpected server response: 404/);
  // HEAD answers the headers without the body: the next response on the
  // same connection must follow right after them.
  const [host, port] = [h.clientAddr.split(':')[0], Number(h.clientAddr.split(':')[1])];
  const raw = await new Promise((resolve) => {
    const sock = net.connect(port, host, () => sock.write('HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    sock.on('data', (d) => { got += d; });
    setTimeout(() => { sock.destroy(); resolve(got); }, 500);
  });
  assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
  assert.doesNotMatch(raw, /<!doctype/i);
  assert.match(raw, /\r\n\r\nHTTP\/1\.1 404/);
  // no upgrade but to WebSocket: h2c is refused
  const h2 = await curl(['--http2', '-o', '/dev/null', '-w', '%{http_code}', `http://${h.clientAddr}/`]);
  assert.notEqual(h2.stdout, '200');
  assert.notEqual(h2.stdout, '101');
});

async function restError(args, status, code) {
  const r = await curl(['-w', '\n%{http_code}', ...args]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.at(-1), String(status), r.stdout);
  const body = JSON.parse(lines.slice(0, -1).join('\n'));
  assert.equal(body.error.code, code);
  assert.ok(body.error.message.length > 0);
  return body;
}

test('bad REST requests get JSON errors with the right status', async () => {
  const url = (t) => `${h.apiUrl}/v1/topics/${t}/events`;
  const json = ['-H', 'Content-Type: application/json'];
  await restError([...json, '-d', '{"n":', url('a.b')], 400, 'invalid_json');
  await restError([...json, '-d', '', url('a.b')], 400, 'invalid_json');
  const badUtf8 = path.join(h.dir, 'bad-utf8.json');
  fs.writeFileSync(badUtf8, Buffer.from([0x22, 0xff, 0xfe, 0x22]));
  await restError([...json, '--data-binary', '@' + badUtf8, url('a.b')], 400, 'invalid_json');
  await restError(['-H', 'Content-Type: text/plain', '-d', '{}', url('a.b')], 415, 'unsupported_media_type');
  await restError(['-d', '{}', url('a.b')], 415, 'unsupported_media_type');
  await restError([...json, '-d', '{}', url('a.*')], 400, 'invalid_topic');
  await restError([...json, '-d', '{}', url('a..b')], 400, 'invalid_topic');
  await restError([...json, '-d', '{}', url('a'.repeat(256))], 400, 'invalid_topic');
  await restError([...json, '-d', '{}', `${h.apiUrl}/v1/nope`], 404, 'not_found');
  await restError([...json, '-d', '{}', `${h.apiUrl}/v1/topics//events`], 400, 'invalid_topic');
  const r405 = await curl(['-i', url('a.b')]);
  assert.match(r405.stdout, /^HTTP\/1\.1 405/);
  assert.match(r405.stdout, /^Allow: POST\r?$/m);
  assert.match(r405.stdout, /"code":"method_not_allowed"/);
  const h405 = await curl(['-i', '-X', 'POST', `${h.apiUrl}/healthz`]);
  assert.match(h405.stdout, /^HTTP\/1\.1 405/);
  assert.match(h405.stdout, /^Allow: GET, HEAD\r?$/m);
  // too large by Content-Length, and too large in chunks
  const big = JSON.stringify({ x: 'y'.repeat(70000) });
  await restError([...json, '-d', big, url('a.b')], 413, 'payload_too_large');
  await restError([...json, '-H', 'Transfer-Encoding: chunked', '-d', big, url('a.b')], 413, 'payload_too_large');
  // a chunked body that goes on and on is cut off rather than read to its end
  const huge = path.join(h.dir, 'huge.json');
  fs.writeFileSync(huge, '"' + 'z'.repeat(8 << 20) + '"');
  const cut = await curl([...json, '-H', 'Transfer-Encoding: chunked', '--data-binary', '@' + huge, url('a.b')]);
  assert.notEqual(cut.code, 0, 'the connection was closed');
  await until(() => h.logs.some((l) => l.includes('event=api_body_dropped reason=too_large')));
  // headers: about 15 KiB fit the connection's pool; past it, 431 and nothing published
  const pad = (n) => ['-H', `X-Pad: ${'p'.repeat(n)}`];
  const fits = await curl(['-w', '\n%{http_code}', ...json, ...pad(14000), '-d', '{"pad":1}', url('pad.ok')]);
  assert.match(fits.stdout, /\n202$/, fits.stdout);
  const over = await curl(['-o', '/dev/null', '-w', '%{http_code}', ...json, ...pad(20000), '-d', '{"pad":2}', url('pad.over')]);
  assert.equal(over.stdout, '431', over.stdout + over.stderr);
  const next = await publish(h, 'pad.over', { pad: 3 });
  assert.equal(next.status, 202);
  assert.equal(next.body.seq, 1, 'the refused request took no seq');
});

test('after all that, publishing and delivery still work', async () => {
  const c = await Client.open(h.wsUrl);
  await c.subscribe('after.errors');
  const r = await publish(h, 'after.errors', { fine: true });
  assert.equal(r.status, 202);
  assert.equal(r.headers.get('content-type'), 'application/json');
  await c.waitFor((m) => m.op === 'event' && m.data.fine === true);
  await c.close();
  const health = await fetch(`${h.apiUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
  const ready = await fetch(`${h.apiUrl}/readyz`);
  assert.equal(ready.status, 200);
});
