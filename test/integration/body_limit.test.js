// A body over api.max_body_bytes, and any request answered before its body
// was read: the client reads its answer (413, 401...) instead of a reset.
// libmicrohttpd answers such a request at once and closes the socket; Herald
// keeps the socket open behind it and drains it (the lingering close,
// gateway/linger.c) until the client closes, 8 MiB came or 5 s passed.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startHerald, curl } = require('./lib/herald');

const LIMIT = 65536;
const LINGER_BYTES = 8 << 20; // gateway/api.c LINGER_BYTES
const KEY = 'body-limit-test-key-0001';

let h;
before(async () => {
  h = await startHerald({
    api: { max_body_bytes: LIMIT },
    auth: {
      api_keys: [{ name: 'pub', sha256: crypto.createHash('sha256').update(KEY).digest('hex'), publish: ['>'] }],
    },
  });
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

// POSTs body with fetch; resolves with the status and error code read, or
// with the transport error's code (EPIPE, ECONNRESET) when none was read.
async function post(body, key = KEY) {
  try {
    const res = await fetch(`${h.apiUrl}/v1/topics/a.b/events`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body,
    });
    const j = await res.json();
    return `${res.status} ${j.error ? j.error.code : 'ok'}`;
  } catch (e) {
    return String((e.cause && e.cause.code) || e);
  }
}

test('30 fetch POSTs of 2 MiB to a 64 KiB limit each read 413 payload_too_large', async () => {
  const body = 'x'.repeat(2 << 20);
  const got = [];
  for (let i = 0; i < 30; i++) got.push(await post(body));
  assert.deepEqual(got, Array(30).fill('413 payload_too_large'));
  // and the port still publishes
  assert.equal(await post('{"n":1}'), '202 ok');
});

test('a refusal before the body (a bad key) with a 2 MiB body on its way: 30 of 30 read 401', async () => {
  const body = 'x'.repeat(2 << 20);
  const got = [];
  for (let i = 0; i < 30; i++) got.push(await post(body, 'not-the-key-not-the-key'));
  assert.deepEqual(got, Array(30).fill('401 unauthorized'));
});

test('Expect: 100-continue over the limit: curl gets 413 at once and sends no byte of the body', async () => {
  const file = path.join(os.tmpdir(), `herald-body-${process.pid}.json`);
  fs.writeFileSync(file, 'x'.repeat(2 << 20));
  try {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code} %{size_upload}', '-H', 'Expect: 100-continue',
      '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${KEY}`,
      '--data-binary', `@${file}`, `${h.apiUrl}/v1/topics/a.b/events`]);
    assert.equal(r.stdout, '413 0', r.stderr);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

function hostPort(addr) {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

// Sends a publish head announcing `announce` bytes, then (at once, or once
// the answer's first bytes were read: afterAnswer) up to `send` bytes of body
// in 64 KiB writes, each after the last was taken, while reading. Resolves
// when the socket closes with what was read, the bytes written, and how it
// ended: 'end' (the server's FIN, no error) or an error code (a reset).
function rawUpload(announce, send, { afterAnswer = false } = {}) {
  const [host, port] = hostPort(h.apiAddr);
  return new Promise((resolve) => {
    // half open: the server's FIN (after its answer) does not end our side
    const s = net.connect({ port, host, allowHalfOpen: true });
    let data = '';
    let written = 0;
    let how = null;
    let ended = false;
    const chunk = Buffer.alloc(65536, 0x20);
    const pump = () => {
      if (s.destroyed || how || written >= send) {
        if (!s.destroyed && !how) s.end();
        return;
      }
      written += chunk.length;
      s.write(chunk, (err) => { if (!err) pump(); });
    };
    s.on('connect', () => {
      s.write('POST /v1/topics/a.b/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${KEY}\r\nContent-Length: ${announce}\r\n\r\n`);
      if (!afterAnswer) pump();
    });
    s.on('data', (d) => {
      const first = data === '';
      data += d;
      if (first && afterAnswer) pump();
    });
    s.on('end', () => { ended = true; });
    s.on('error', (e) => { how = how || e.code; });
    s.on('close', () => resolve({ data, written, how: how || (ended ? 'end' : 'close') }));
  });
}

test('a client that sends a whole 4 MiB body before reading gets its 413 and a clean end, no reset', async () => {
  const r = await rawUpload(4 << 20, 4 << 20);
  assert.match(r.data, /^HTTP\/1\.1 413 /);
  assert.match(r.data, /\r\nConnection: close\r\n/i);
  assert.match(r.data, /"payload_too_large"/);
  assert.equal(r.written, 4 << 20, 'the whole body was taken');
  assert.equal(r.how, 'end');
});

test('past the drain bound (8 MiB) the socket is cut: the 413 came first, the rest of the body is not taken', async () => {
  // The client reads the answer before it sends the body: a client that is
  // still writing when the cut comes may lose an answer it did not read yet
  // (the reset), as with any server's lingering close.
  const announce = 256 << 20;
  const r = await rawUpload(announce, announce, { afterAnswer: true });
  assert.match(r.data, /^HTTP\/1\.1 413 /);
  assert.ok(['ECONNRESET', 'EPIPE'].includes(r.how), r.how);
  // what was taken past the bound is at most what the two sockets' buffers
  // hold (a few MiB on loopback), far from the 256 MiB announced
  assert.ok(r.written > LINGER_BYTES, `written ${r.written}`);
  assert.ok(r.written < LINGER_BYTES + (64 << 20), `written ${r.written}`);
});

test('over TLS too: 30 https POSTs of 2 MiB to a 64 KiB limit each read 413 (the linger drains the TLS records)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-tls-'));
  try {
    await new Promise((resolve, reject) => execFile('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
      'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { cwd: dir, timeout: 30000 }, (err, _o, stderr) =>
      (err ? reject(new Error(stderr)) : resolve())));
    const t = await startHerald({ api: { max_body_bytes: LIMIT, tls_cert: path.join(dir, 'cert.pem'), tls_key: path.join(dir, 'key.pem') } });
    try {
      const [host, port] = hostPort(t.apiAddr);
      const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
      const body = Buffer.alloc(2 << 20, 0x20);
      const once = () => new Promise((resolve) => {
        const req = https.request({ host, port, path: '/v1/topics/a.b/events', method: 'POST', ca, servername: 'localhost',
          headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } }, (res) => {
          let text = '';
          res.on('data', (d) => { text += d; });
          res.on('end', () => resolve(`${res.statusCode} ${JSON.parse(text).error.code}`));
        });
        req.on('error', (e) => resolve(e.code));
        req.end(body);
      });
      const got = [];
      for (let i = 0; i < 30; i++) got.push(await once());
      assert.deepEqual(got, Array(30).fill('413 payload_too_large'));
    } finally {
      assert.equal((await t.stop()).code, 0);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
