// HTTP/1.1 framing on the API port (RFC 9112), over raw TCP: a request
// whose body length or head is ambiguous is refused and its connection
// closed, so a request pipelined behind it is never answered (what a
// request-smuggling attack would need). docs/security.md, HTTP framing.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startHerald } = require('./lib/herald');

let h;
before(async () => {
  h = await startHerald({});
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

function hostPort(addr) {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

// Writes `bytes` on a new connection and resolves, once the server closed it
// (or after 10 s: closed false), with the answers' status codes and bodies.
function exchange(bytes) {
  const [host, port] = hostPort(h.apiAddr);
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    let data = '';
    const timer = setTimeout(() => { s.destroy(); done(false); }, 10000);
    const done = (closed) => {
      clearTimeout(timer);
      const statuses = [...data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      const codes = [...data.matchAll(/"code":"(\w+)"/g)].map((m) => m[1]);
      resolve({ statuses, codes, closed, data });
    };
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => { data += d; });
    s.on('error', () => {});
    s.on('close', () => done(true));
  });
}

const HEAD = 'POST /v1/topics/a.b/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n';
// a second publish behind the first, closing the connection after it
const NEXT = HEAD + 'Content-Length: 7\r\nConnection: close\r\n\r\n{"n":2}';

test('control: a well-framed publish and one pipelined behind it are both answered', async () => {
  for (const first of [HEAD + 'Content-Length: 7\r\n\r\n{"n":1}',
    HEAD + 'Transfer-Encoding: chunked\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n',
    // the same Content-Length twice is one length (RFC 9110 §8.6 lets it pass)
    HEAD + 'Content-Length: 7\r\ncontent-length: 7\r\n\r\n{"n":1}',
    // an empty header value is a value
    HEAD + 'X-Empty:\r\nContent-Length: 7\r\n\r\n{"n":1}']) {
    const r = await exchange(first + NEXT);
    assert.deepEqual(r.statuses, [202, 202], JSON.stringify(first));
    assert.equal(r.closed, true);
  }
});

const refused = [
  ['two different Content-Length values', HEAD + 'Content-Length: 7\r\nContent-Length: 0\r\n\r\n{"n":1}', 400],
  ['two different Content-Length values, the first one 0', HEAD + 'Content-Length: 0\r\nContent-Length: 7\r\n\r\n{"n":1}', 400],
  ['Content-Length and Transfer-Encoding: chunked', HEAD + 'Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n', 400],
  ['Transfer-Encoding: chunked and Content-Length', HEAD + 'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n', 400],
  ['Transfer-Encoding that does not end in chunked', HEAD + 'Transfer-Encoding: gzip\r\n\r\n{"n":1}', 400],
  ['Transfer-Encoding twice', HEAD + 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n', 400],
  ['Transfer-Encoding on HTTP/1.0', HEAD.replace('HTTP/1.1', 'HTTP/1.0') + 'Transfer-Encoding: chunked\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n', 400],
  ['a coding before chunked (not implemented)', HEAD + 'Transfer-Encoding: gzip, chunked\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n', 501],
  ['a NUL inside a header value', HEAD + 'X-A: a\0b\r\nContent-Length: 7\r\n\r\n{"n":1}', 400],
  ['a NUL ending the last header value', HEAD + 'Content-Length: 7\r\nX-A: a\0\r\n\r\n{"n":1}', 400],
  ['a NUL hiding a second Content-Length', HEAD + 'X-A: a\0\r\nContent-Length: 0\r\nContent-Length: 7\r\n\r\n{"n":1}', 400],
  ['an obs-fold line', HEAD + 'X-A: a\r\n b\r\nContent-Length: 7\r\n\r\n{"n":1}', 400],
  ['an obs-fold line as the last header', HEAD + 'Content-Length: 7\r\nX-A: a\r\n\tb\r\n\r\n{"n":1}', 400],
  ['bare LF line ends', HEAD.replace(/\r\n/g, '\n') + 'Content-Length: 7\n\n{"n":1}', 400],
  ['one bare LF, ending the head', HEAD + 'Content-Length: 7\r\n\n{"n":1}', 400],
  ['a space before a header\'s colon', HEAD + 'Content-Length : 7\r\n\r\n{"n":1}', 400],
  ['no Host on HTTP/1.1', HEAD.replace('Host: localhost\r\n', '') + 'Content-Length: 7\r\n\r\n{"n":1}', 400],
  ['two Host headers', HEAD + 'Host: other.example\r\nContent-Length: 7\r\n\r\n{"n":1}', 400],
];

for (const [what, first, status] of refused) {
  test(`${what}: ${status}, the connection closed, the pipelined request not answered`, async () => {
    const r = await exchange(first + NEXT);
    assert.deepEqual(r.statuses, [status], r.data.slice(0, 300));
    assert.deepEqual(r.codes, [status === 400 ? 'invalid_request' : 'not_implemented']);
    assert.match(r.data, /\r\nConnection: close\r\n/i);
    assert.equal(r.closed, true);
  });
}

test('the port still publishes after every refusal', async () => {
  const r = await exchange(HEAD + 'Content-Length: 7\r\nConnection: close\r\n\r\n{"n":3}');
  assert.deepEqual(r.statuses, [202]);
});
