// The REST port's Authorization header: a present but empty header is a 401
// with and without API keys, and unknown keys are logged at most once a
// second per API thread, with the count of the lines left out.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
const { startHerald, sleep } = require('./lib/herald');

const KEY = 'rest-auth-test-key-00001';
const keys = { api_keys: [{ name: 'pub', sha256: crypto.createHash('sha256').update(KEY).digest('hex'), publish: ['>'] }] };

function hostPort(addr) {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

// Sends one request as raw bytes (fetch cannot send an empty header value
// as it is) and resolves with the server's answer, once it closes.
function rawRequest(addr, text) {
  const [host, port] = hostPort(addr);
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    let data = '';
    s.on('connect', () => s.end(text));
    s.on('data', (d) => { data += d; });
    s.on('error', () => {});
    s.on('close', () => resolve(data));
  });
}

const emptyAuth = (value) => 'POST /v1/topics/a.b/events HTTP/1.1\r\nHost: localhost\r\n' +
  `Content-Type: application/json\r\nAuthorization:${value}\r\nContent-Length: 7\r\n\r\n{"n":1}`;

for (const [label, auth] of [['no API keys (open loopback port)', {}], ['API keys', keys]]) {
  test(`an empty Authorization header is 401, ${label}`, async () => {
    const h = await startHerald({ auth });
    try {
      for (const value of ['', ' ', ' \t ']) {
        const r = await rawRequest(h.apiAddr, emptyAuth(value));
        assert.match(r, /^HTTP\/1\.1 401 /, JSON.stringify(value));
        assert.match(r, /\r\nWWW-Authenticate: Bearer realm="herald"\r\n/i);
        assert.match(r, /"code":"unauthorized","message":"the Authorization header is empty/);
      }
      // without the header: the open port publishes, the keyed one wants a key
      const res = await fetch(`${h.apiUrl}/v1/topics/a.b/events`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"n":2}',
      });
      assert.equal(res.status, auth.api_keys ? 401 : 202);
      await res.text();
    } finally {
      assert.equal((await h.stop()).code, 0);
    }
  });
}

test('500 unknown keys: 500 401s, and api_auth_failed at most once a second with what it left out', async () => {
  const h = await startHerald({ api: { threads: 1 }, auth: keys });
  try {
    const bad = async () => {
      const res = await fetch(`${h.apiUrl}/v1/topics/a.b/events`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer not-the-key-not-the-key' },
        body: '{"n":1}',
      });
      await res.text();
      return res.status;
    };
    const statuses = [];
    for (let i = 0; i < 50; i++) statuses.push(...await Promise.all(Array.from({ length: 10 }, bad)));
    assert.deepEqual(statuses, Array(500).fill(401));
    // one more in a later second lets the last count out
    await sleep(1100);
    assert.equal(await bad(), 401);
    // the daemon's stderr is read as it comes: wait (bounded) for the last line
    const authLines = () => h.logs.filter((l) => l.includes('event=api_auth_failed'));
    const counted = (ls) => ls.reduce((n, l) => n + 1 + Number((/ suppressed=(\d+)/.exec(l) || [0, NaN])[1]), 0);
    for (let i = 0; i < 100 && counted(authLines()) < 501; i++) await sleep(20);
    const lines = authLines();
    assert.ok(lines.length >= 2, 'the first line and the one after the pause');
    assert.ok(lines.length < 50, `${lines.length} lines for 501 refusals`);
    for (const l of lines) assert.match(l, /reason=unknown_key suppressed=\d+/);
    assert.equal(counted(lines), 501, 'lines plus what they left out: every refusal');
    assert.ok(lines.every((l) => !l.includes('not-the-key')), 'no key in the log');
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});
