// The WebSocket handshake's limits: a header too long is answered with 431
// (it once got no answer, and one error line per connection in the log);
// libwebsockets' own log lines are throttled and never errors; and an
// Authorization header or ?token= that is there but empty is refused with
// 401 instead of being taken for no token.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald, Client, sleep } = require('./lib/herald');
const { RawWs } = require('./lib/rawws');

let h;
before(async () => {
  // one worker: one throttle, so the count of lines is exact
  h = await startHerald({ client: { workers: 1 } });
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

const oversized = () => ['Authorization: Bearer ' + 'a'.repeat(13000)];

async function status(opts) {
  const r = await RawWs.open(h.clientAddr, opts);
  r.destroy();
  return r;
}

const lwsLines = (from) => h.logs.slice(from).filter((l) => / event=lws /.test(l));

test('200 handshakes with a 13 kB header each get 431, and the log stays a few lines', async () => {
  const from = h.logs.length;
  const start = Date.now();
  const N = 200;
  for (let i = 0; i < N; i++) {
    const r = await status({ headers: oversized() });
    assert.equal(r.status, 431, `handshake ${i}: ${r.head}`);
  }
  const seconds = Math.ceil((Date.now() - start) / 1000);
  // one more after the throttle's second has passed: its line carries the
  // count of the lines left out
  let extra = 0;
  for (; extra < 50 && !lwsLines(from).some((l) => /suppressed=[1-9]/.test(l)); extra++) {
    await sleep(100);
    assert.equal((await status({ headers: oversized() })).status, 431);
  }
  // and a last one past the throttle's second, so that its line counts
  // every attempt since the line before (the count is then exact)
  await sleep(1100);
  const shown = lwsLines(from).length;
  assert.equal((await status({ headers: oversized() })).status, 431);
  extra++;
  for (let i = 0; i < 100 && lwsLines(from).length === shown; i++) await sleep(50);
  const lines = lwsLines(from);
  assert.ok(lines.some((l) => /suppressed=[1-9]/.test(l)), lines.join('\n'));
  // at most one lws line a second, and every line counted: shown + left out
  assert.ok(lines.length <= seconds + 3 + extra, `${lines.length} lws lines in ${seconds} s:\n${lines.join('\n')}`);
  const suppressed = lines.reduce((n, l) => n + Number(/suppressed=(\d+)/.exec(l)[1]), 0);
  assert.equal(lines.length + suppressed, N + extra, lines.join('\n'));
  // and no libwebsockets line at error level
  assert.ok(lines.every((l) => / level=(info|warn) /.test(l)), lines.join('\n'));
  const refused = h.logs.slice(from).filter((l) => /event=client_refused .*status=431/.test(l));
  assert.ok(refused.length >= 1 && refused.length <= seconds + 2 + extra, refused.join('\n'));
});

test('a ?token= or a plain request with a header too long gets 431 too', async () => {
  assert.equal((await status({ path: '/ws?token=' + 'a'.repeat(13000) })).status, 431);
  const r = await new Promise((resolve) => {
    const net = require('node:net');
    const [host, port] = h.clientAddr.split(':');
    const s = net.connect({ host, port: Number(port) });
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', () => {});
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${'c'.repeat(13000)}\r\n\r\n`);
  });
  assert.match(r, /^HTTP\/1\.[01] 431/);
  // a header just under the limit is not too long: a token that long is
  // refused as a token
  assert.equal((await status({ headers: ['Authorization: Bearer ' + 'a'.repeat(9000)] })).status, 401);
});

test('libwebsockets giving up on a request is not logged as an error', async () => {
  // headers that together pass the request's room (not one of them past
  // its limit): libwebsockets 4.1 drops the socket without an answer
  const from = h.logs.length;
  const r = await status({ headers: ['X-Big: ' + 'x'.repeat(13000)] });
  assert.notEqual(r.status, 101);
  await sleep(1100); // the throttle's next second: this line is let through
  assert.notEqual((await status({ headers: ['X-Big: ' + 'x'.repeat(13000)] })).status, 101);
  const lines = lwsLines(from);
  assert.ok(lines.length >= 1, 'the give-up is logged');
  assert.ok(lines.every((l) => / level=warn /.test(l)), lines.join('\n'));
  assert.equal(h.logs.slice(from).filter((l) => / level=error /.test(l)).length, 0);
  // the port still serves
  const c = await Client.open(h.wsUrl);
  assert.deepEqual(await c.request({ op: 'ping', id: '1' }), { op: 'pong', id: '1' });
  await c.close();
});

test('an empty or non-Bearer Authorization header, or an empty ?token=, is refused with 401', async () => {
  for (const header of ['Authorization:', 'Authorization: ', 'Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Authorization: Bearer', 'Authorization: Bearer '])
    assert.equal((await status({ headers: [header] })).status, 401, JSON.stringify(header));
  for (const path of ['/ws?token=', '/ws?x=1&token=', '/ws?token=&x=1'])
    assert.equal((await status({ path })).status, 401, path);
  // no token at all is still anonymous (allowed here: no JWT keys)
  assert.equal((await status({})).status, 101);
  assert.equal((await status({ path: '/ws?x=1' })).status, 101);
});
