// Connection limits of the client port: connections per IP, the handshake
// timeout, pings and the idle timeout, the per-connection rate limit, and
// TLS on both ports. (The 1009 close for client.max_message_bytes and the
// too_many_subscriptions cap are in errors.test.js.)
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { startHerald, heralddCommand, Client, publish, sleep, until } = require('./lib/herald');

const WRAPPED = Boolean(process.env.HERALD_WRAPPER);

// Resolves with what p resolves with, or with `late` after ms (the timer is
// cleared either way, so it does not hold the process open).
function within(p, ms, late = null) {
  let timer;
  return Promise.race([p, new Promise((resolve) => { timer = setTimeout(() => resolve(late), ms); })])
    .finally(() => clearTimeout(timer));
}

function hostPort(addr) {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

// A raw TCP socket to addr that writes `send` (if any) once connected.
// Resolves, when the server closes it or after maxMs, with
// {closed, ms (connect to close), data (what the server sent)}.
function rawSocket(addr, { send, maxMs = 10000, trickle } = {}) {
  const [host, port] = hostPort(addr);
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    let data = '';
    let t0 = 0;
    let timer;
    let drip;
    const done = (closed) => {
      clearTimeout(timer);
      clearInterval(drip);
      sock.destroy();
      resolve({ closed, ms: Date.now() - t0, data });
    };
    sock.on('connect', () => {
      t0 = Date.now();
      if (send) sock.write(send);
      if (trickle) {
        // one byte at a time, bounded by maxMs
        let i = 0;
        drip = setInterval(() => {
          if (!sock.destroyed && i < trickle.length) sock.write(trickle[i++]);
        }, 200);
      }
      timer = setTimeout(() => done(false), maxMs);
    });
    sock.on('data', (d) => { data += d; });
    sock.on('error', () => {});
    sock.on('close', () => done(true));
  });
}

function run(args) {
  return new Promise((resolve) => {
    execFile(...heralddCommand(args), { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test('client.max_connections_per_ip: the 4th socket from one address is closed at accept; closing one frees its place', async () => {
  const h = await startHerald({ client: { max_connections_per_ip: 3 } });
  try {
    const open = [];
    for (let i = 0; i < 3; i++) {
      const c = await Client.open(h.wsUrl);
      assert.deepEqual(await c.request({ op: 'ping', id: 'p' + i }), { op: 'pong', id: 'p' + i });
      open.push(c);
    }
    // A 4th WebSocket client: no handshake answer, the socket is just closed.
    const fourth = new Client(h.wsUrl);
    let upgraded = false;
    fourth.ws.on('upgrade', () => { upgraded = true; });
    fourth.ws.on('unexpected-response', () => { upgraded = true; });
    await assert.rejects(fourth.opened);
    assert.equal(upgraded, false, 'the server answered the handshake');
    // A 4th raw socket is closed at once (well before the 10 s handshake timeout), with nothing sent.
    const raw = await rawSocket(h.clientAddr, { maxMs: 5000 });
    assert.equal(raw.closed, true, 'the 4th socket was not closed');
    assert.ok(raw.ms < 3000, `closed after ${raw.ms} ms`);
    assert.equal(raw.data, '');
    await until(() => h.logs.some((l) => /event=connection_refused .*reason=max_connections_per_ip max=3/.test(l)));
    // The three are still served.
    for (const [i, c] of open.entries()) assert.equal((await c.request({ op: 'ping', id: 'q' + i })).op, 'pong');
    // Closing one releases its count: a new connection gets in (the release
    // happens when the server has seen the close, so retry for a while).
    await open.shift().close();
    let again;
    const end = Date.now() + 5000;
    while (!again && Date.now() < end) {
      const c = new Client(h.wsUrl);
      try {
        await c.opened;
        again = c;
      } catch {
        await sleep(100);
      }
    }
    assert.ok(again, 'no new connection got in after one closed');
    assert.equal((await again.request({ op: 'ping', id: 'again' })).op, 'pong');
    open.push(again);
    // Back at 3: the next one is refused again (refused sockets were not counted).
    const fifth = new Client(h.wsUrl);
    await assert.rejects(fifth.opened);
    await Promise.all(open.map((c) => c.close()));
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('client.handshake_timeout_s: silent, partial and trickling requests are closed; a finished handshake stays', async () => {
  const h = await startHerald({ client: { handshake_timeout_s: 1 } });
  try {
    const t0 = Date.now();
    // The default timeout is 10 s: closing within 6 s shows the 1 s setting
    // applies, without asserting exact timings.
    const [silent, partial, trickle, ws] = await Promise.all([
      rawSocket(h.clientAddr, { maxMs: 10000 }),
      rawSocket(h.clientAddr, { maxMs: 10000, send: 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' }),
      rawSocket(h.clientAddr, {
        maxMs: 10000,
        send: 'GET /ws HTTP/1.1\r\n',
        trickle: 'Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Slow: ' + 'z'.repeat(100),
      }),
      (async () => {
        const c = await Client.open(h.wsUrl);
        await sleep(3000);
        const open = c.ws.readyState === c.ws.OPEN;
        const pong = open ? await c.request({ op: 'ping', id: 'still' }) : null;
        await c.close();
        return { open, pong };
      })(),
    ]);
    for (const [name, r] of Object.entries({ silent, partial, trickle })) {
      assert.equal(r.closed, true, `${name}: not closed in 10 s`);
      assert.ok(r.ms < 6000, `${name}: closed after ${r.ms} ms`);
      assert.doesNotMatch(r.data, /^HTTP\/1\.1 101/, name);
    }
    console.log(`handshake timeout 1 s: silent closed after ${silent.ms} ms, partial ${partial.ms} ms, trickle ${trickle.ms} ms (all in ${Date.now() - t0} ms)`);
    assert.equal(ws.open, true, 'a connection that finished its handshake was closed');
    assert.deepEqual(ws.pong, { op: 'pong', id: 'still' });
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('the client port closes what is not a WebSocket or the demo page: CONNECT, bodies, a foreign Host on the open loopback port', async () => {
  const h = await startHerald({ client: { handshake_timeout_s: 10 } });
  try {
    // CONNECT would make a raw socket of the connection, never timed out.
    const connect = await rawSocket(h.clientAddr, { send: 'CONNECT a:1 HTTP/1.1\r\nHost: x\r\n\r\n', maxMs: 8000 });
    assert.ok(connect.closed, 'a CONNECT socket was kept open');
    // A request with a body is answered and closed, not read to its end.
    const post = await rawSocket(h.clientAddr, {
      send: 'POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n', maxMs: 8000,
    });
    assert.ok(post.closed, 'a POST with a huge body kept its socket');
    assert.match(post.data, /^HTTP\/1\.[01] 404/);
    // The port is open (no JWT keys) on loopback: a Host that is not a
    // loopback name (DNS rebinding) is refused, whatever the Origin says.
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const upgrade = (host, extra = '') => `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
    const rebound = await rawSocket(h.clientAddr, {
      send: upgrade('rebind.attacker.example:8080', 'Origin: http://rebind.attacker.example:8080\r\n'), maxMs: 5000,
    });
    assert.match(rebound.data, /^HTTP\/1\.[01] 403/, rebound.data.slice(0, 80));
    for (const host of [h.clientAddr, 'localhost:1', '[::1]:8080']) {
      const ok = await rawSocket(h.clientAddr, { send: upgrade(host), maxMs: 1000 });
      assert.match(ok.data, /^HTTP\/1\.1 101/, `${host}: ${ok.data.slice(0, 80)}`);
    }
    // RFC 6455: the Upgrade value is case-insensitive.
    const caps = await rawSocket(h.clientAddr, { send: upgrade(h.clientAddr).replace('websocket', 'WebSocket'), maxMs: 1000 });
    assert.match(caps.data, /^HTTP\/1\.1 101/, caps.data.slice(0, 80));
    // The open API port refuses the foreign Host too; a loopback one publishes.
    const [, apiPort] = hostPort(h.apiAddr);
    const api = (host) => rawSocket(h.apiAddr, {
      send: `POST /v1/topics/rebind.x/events HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
        'Content-Length: 2\r\nConnection: close\r\n\r\n{}', maxMs: 5000,
    });
    const foreign = await api(`rebind.attacker.example:${apiPort}`);
    assert.match(foreign.data, /^HTTP\/1\.1 403/, foreign.data.slice(0, 80));
    assert.match(foreign.data, /"forbidden"/);
    const local = await api(`127.0.0.1:${apiPort}`);
    assert.match(local.data, /^HTTP\/1\.1 202/, local.data.slice(0, 80));
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('pings: a client that does not answer them is closed with 4003; one that does stays open', async () => {
  const h = await startHerald({ client: { ping_interval_s: 1, idle_timeout_s: 3 } });
  try {
    const mute = await Client.open(h.wsUrl, ['herald.v1'], { autoPong: false });
    const good = await Client.open(h.wsUrl);
    let mutePings = 0;
    let goodPings = 0;
    mute.ws.on('ping', () => { mutePings++; });
    good.ws.on('ping', () => { goodPings++; });
    const t0 = Date.now();
    const closed = await within(mute.closed, 10000);
    assert.ok(closed, 'the client that does not answer pings was not closed in 10 s');
    assert.ok(mutePings >= 1, 'it got no ping');
    assert.equal(closed.code, 4003);
    assert.equal(closed.reason, 'idle timeout: no pong');
    const closedMs = Date.now() - t0;
    // The other one sent nothing but its pongs and is still open after 5 s.
    await sleep(Math.max(0, 5000 - (Date.now() - t0)));
    assert.equal(good.ws.readyState, good.ws.OPEN, 'a client answering pings was closed');
    assert.ok(goodPings >= 2, `the answering client got ${goodPings} pings in 5 s`);
    assert.deepEqual(await good.request({ op: 'ping', id: 'x' }), { op: 'pong', id: 'x' });
    console.log(`idle: the mute client got ${mutePings} ping(s) and was closed after ${closedMs} ms; the other got ${goodPings} pings in 5 s`);
    assert.ok(h.logs.some((l) => /event=client_idle .*idle_timeout_s=3/.test(l)));
    await good.close();
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('client.rate_per_s: messages past the burst get rate_limited errors; a long run of them closes with 1008', async () => {
  const h = await startHerald({ client: { rate_per_s: 5, rate_burst: 5, rate_close_after: 20 } });
  try {
    const c = await Client.open(h.wsUrl);
    const ids = Array.from({ length: 10 }, (_, i) => 'r' + i);
    for (const id of ids) c.send({ op: 'ping', id });
    await until(() => c.messages.length >= 10);
    await sleep(200); // nothing more arrives
    assert.equal(c.messages.length, 10, JSON.stringify(c.messages));
    const pongs = c.messages.filter((m) => m.op === 'pong');
    const errors = c.messages.filter((m) => m.op === 'error');
    // The bucket refills 1 token per 200 ms: under a slow wrapper a 6th may pass.
    if (WRAPPED) assert.ok(pongs.length >= 5 && pongs.length <= 6, JSON.stringify(c.messages));
    else assert.equal(pongs.length, 5, JSON.stringify(c.messages));
    assert.equal(pongs.length + errors.length, 10);
    assert.deepEqual(pongs.map((m) => m.id), ids.slice(0, pongs.length));
    assert.deepEqual(errors.map((m) => m.id), ids.slice(pongs.length));
    for (const e of errors) {
      assert.equal(e.code, 'rate_limited');
      assert.match(e.message, /wait \d+ ms/);
    }
    assert.ok(h.logs.some((l) => /event=client_rate_limited .*rate_per_s=5/.test(l)));
    // Tokens come back: after 1.2 s a message is handled again.
    await sleep(1200);
    assert.deepEqual(await c.request({ op: 'ping', id: 'later' }), { op: 'pong', id: 'later' });
    // 30 at once: at most the burst passes, then 20 refused in a row close the connection.
    const from = c.messages.length;
    for (let i = 0; i < 30; i++) c.send({ op: 'ping', id: 'f' + i });
    const closed = await within(c.closed, 10000);
    assert.ok(closed, 'the connection was not closed');
    await until(() => h.logs.some((l) => /event=client_rate_closed .*refused=20/.test(l)));
    // The client must see the close frame. (1006 means it did not: e.g. the
    // server reset the TCP connection while the client's pings were still
    // arriving, without waiting for the client's Close.)
    assert.equal(closed.code, 1008, `the client saw close code ${closed.code}, not 1008`);
    assert.equal(closed.reason, 'rate limit exceeded');
    const after = c.messages.slice(from);
    const fp = after.filter((m) => m.op === 'pong').length;
    const fe = after.filter((m) => m.op === 'error' && m.code === 'rate_limited').length;
    assert.ok(fp <= 6, `${fp} pongs in the second burst`);
    // The answers queued before the close are sent first: 19 errors, never the 20th.
    assert.equal(fe, 19, `${fe} rate_limited errors before the close`);
    assert.ok(fp + fe < 30, 'every message was answered: nothing was cut off');
    console.log(`rate: first burst ${pongs.length} pongs / ${errors.length} rate_limited; second burst ${fp} pongs, ${fe} errors, then 1008`);
    // Other connections are not affected.
    const other = await Client.open(h.wsUrl);
    assert.equal((await other.request({ op: 'ping', id: 'o' })).op, 'pong');
    await other.close();
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('client.rate_close_after: a steady flood that lets a message through now and then is still closed', async () => {
  // 40 messages/s against 20/s: every other one passes, the refusals keep counting.
  const h = await startHerald({ client: { rate_per_s: 20, rate_burst: 1, rate_close_after: 30 } });
  try {
    const c = await Client.open(h.wsUrl);
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < 400) c.send({ op: 'ping', id: 's' + sent++ });
    }, 25);
    const closed = await within(c.closed, 15000);
    clearInterval(timer);
    assert.ok(closed, `not closed after ${sent} messages`);
    assert.equal(closed.code, 1008);
    const pongs = c.messages.filter((m) => m.op === 'pong').length;
    const limited = c.messages.filter((m) => m.op === 'error' && m.code === 'rate_limited').length;
    assert.ok(pongs > 0, 'some messages passed in between');
    assert.equal(limited, 29);
    console.log(`steady flood: ${sent} sent, ${pongs} pongs, ${limited} rate_limited, then 1008`);
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

function openssl(args, cwd) {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')}: ${stderr}`));
      else resolve(stdout);
    });
  });
}

function httpsPost(url, body, ca) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = https.request(url, {
      method: 'POST',
      ca,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
      timeout: 10000,
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

test('TLS on both ports: wss:// and https:// work, plain ws:// and http:// do not, a mismatched key is a config error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-tls-'));
  const subj = ['-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'];
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'key.pem', '-out', 'cert.pem', ...subj], dir);
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'other-key.pem', '-out', 'other-cert.pem', ...subj], dir);
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const ca = fs.readFileSync(cert);
  const h = await startHerald({
    client: { tls_cert: cert, tls_key: key, handshake_timeout_s: 2 },
    api: { tls_cert: cert, tls_key: key },
  });
  try {
    const wss = `wss://${h.clientAddr}/ws`;
    const api = `https://${h.apiAddr}`;
    const c = await Client.open(wss, ['herald.v1'], { ca });
    await c.subscribe('tls.news');
    const r = await httpsPost(`${api}/v1/topics/tls.news/events`, { over: 'tls' }, ca);
    assert.equal(r.status, 202, JSON.stringify(r));
    const ev = await c.waitFor((m) => m.op === 'event');
    assert.equal(ev.topic, 'tls.news');
    assert.deepEqual(ev.data, { over: 'tls' });
    assert.equal(ev.id, r.body.id);
    // HTTP/2 is not offered: a WebSocket over HTTP/2 (RFC 8441) would skip the
    // handshake's Origin and token checks. A foreign-origin CONNECT must fail.
    const h2 = require('node:http2').connect(`https://${h.clientAddr}`, { ca });
    h2.on('error', () => {});
    const h2Outcome = await within(new Promise((resolve) => {
      const st = h2.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws',
        origin: 'https://evil.example', 'sec-websocket-version': '13' });
      st.on('response', (hd) => resolve('status ' + hd[':status']));
      st.on('error', () => resolve('failed'));
    }), 10000, 'no answer in 10 s');
    h2.destroy();
    assert.equal(h2Outcome, 'failed');
    assert.equal(h2.alpnProtocol, false, 'the TLS handshake chose h2');
    // Without the CA the certificate is not trusted (it really is TLS with this certificate).
    await assert.rejects(new Client(wss).opened, /self[- ]signed|certificate/i);
    // Plain text to the TLS ports fails.
    const plainWs = new Client(`ws://${h.clientAddr}/ws`);
    const wsOutcome = await within(plainWs.opened.then(() => 'opened', () => 'failed'), 10000, 'no answer in 10 s');
    plainWs.ws.terminate();
    assert.equal(wsOutcome, 'failed');
    let httpOutcome;
    try {
      const res = await fetch(`http://${h.apiAddr}/healthz`, { signal: AbortSignal.timeout(10000) });
      httpOutcome = 'status ' + res.status;
    } catch (e) {
      httpOutcome = e.name === 'TimeoutError' ? 'no answer in 10 s' : 'failed';
    }
    assert.equal(httpOutcome, 'failed');
    // A TCP socket that never starts TLS is closed by the handshake timeout.
    const silent = await rawSocket(h.clientAddr, { maxMs: 10000 });
    assert.equal(silent.closed, true, 'a silent socket on the TLS port was not closed in 10 s');
    // The TLS connection is still fine.
    assert.deepEqual(await c.request({ op: 'ping', id: 't' }), { op: 'pong', id: 't' });
    await c.close();
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
  // A key that does not belong to the certificate: --check-config exits 1 naming the key.
  const other = path.join(dir, 'other-key.pem');
  const cases = [
    [{ client: { listen: '127.0.0.1:0', tls_cert: cert, tls_key: other } }, /client\.tls_key/],
    [{ api: { listen: '127.0.0.1:0', tls_cert: cert, tls_key: other } }, /api\.tls_key/],
    [{ client: { listen: '127.0.0.1:0', tls_cert: cert, tls_key: path.join(dir, 'missing.pem') } }, /client\.tls_key/],
  ];
  for (const [cfg, re] of cases) {
    const file = path.join(dir, 'check.json');
    fs.writeFileSync(file, JSON.stringify(cfg));
    const r = await run(['--check-config', '-c', file]);
    assert.equal(r.code, 1, `${JSON.stringify(cfg)}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, re, JSON.stringify(cfg));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
