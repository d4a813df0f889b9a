// Both ports listen on exactly the configured address, never on every interface.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { startHerald, Client, until } = require('./lib/herald');

// Listening TCP sockets of this machine as [{addr, port}] from /proc/net/tcp{,6}.
function listeners() {
  const out = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]]) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A = LISTEN
      const [hex, port] = f[1].split(':');
      let addr;
      if (!v6) addr = hex.match(/../g).reverse().map((b) => parseInt(b, 16)).join('.');
      else addr = hex === '0'.repeat(32) ? '::' : hex === '00000000000000000000000001000000' ? '::1' : hex;
      out.push({ addr, port: parseInt(port, 16) });
    }
  }
  return out;
}

const portOf = (addr) => Number(addr.slice(addr.lastIndexOf(':') + 1));

test('IPv4 loopback: both ports bound to 127.0.0.1 only', async () => {
  const h = await startHerald();
  try {
    for (const a of [h.clientAddr, h.apiAddr]) {
      const l = listeners().filter((x) => x.port === portOf(a));
      assert.deepEqual(l, [{ addr: '127.0.0.1', port: portOf(a) }], `listeners on ${a}`);
    }
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

const hasV6Loopback = fs.existsSync('/proc/net/if_inet6') &&
  fs.readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001');

test('IPv6 loopback: both ports bound to ::1 only, and clients are served', { skip: !hasV6Loopback && 'no ::1 here' }, async () => {
  const h = await startHerald({ client: { listen: '[::1]:0' }, api: { listen: '[::1]:0' } });
  try {
    assert.match(h.clientAddr, /^\[::1\]:\d+$/);
    for (const a of [h.clientAddr, h.apiAddr]) {
      const l = listeners().filter((x) => x.port === portOf(a));
      assert.deepEqual(l, [{ addr: '::1', port: portOf(a) }]);
    }
    const c = await Client.open(h.wsUrl);
    await c.subscribe('v6.topic');
    const r = await fetch(`${h.apiUrl}/v1/topics/v6.topic/events`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"v":6}',
    });
    assert.equal(r.status, 202);
    assert.deepEqual((await c.waitFor((m) => m.op === 'event')).data, { v: 6 });
    await c.close();
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('--client-listen and --api-listen override the config file', async () => {
  const h = await startHerald({}, { args: ['--client-listen', '127.0.0.1:0', '--api-listen', 'localhost:0'] });
  try {
    assert.match(h.apiAddr, /^127\.0\.0\.1:\d+$/);
    assert.equal((await fetch(`${h.apiUrl}/healthz`)).status, 200);
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('max_connections refuses clients past the cap and admits them again later', async () => {
  const h = await startHerald({ client: { max_connections: 3 } });
  try {
    const ok = await Promise.all([1, 2, 3].map(() => Client.open(h.wsUrl)));
    const extra = new Client(h.wsUrl);
    await assert.rejects(extra.opened);
    await until(() => h.logs.some((l) => /event=connection_refused reason=max_connections/.test(l)));
    await ok[0].close();
    // the slot frees once the server has seen the close
    let again;
    for (let i = 0; i < 50 && !again; i++) {
      try { again = await Client.open(h.wsUrl); } catch { await new Promise((r) => setTimeout(r, 50)); }
    }
    assert.ok(again, 'a client is admitted after one left');
    await Promise.all([again.close(), ok[1].close(), ok[2].close()]);
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});
