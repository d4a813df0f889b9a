// A real browser's EventSource on /sse: headless Chromium opens a page
// served from another origin (a tiny server here, listed in
// client.allowed_origins), whose EventSource goes through a TCP proxy the
// test cuts twice while it publishes over REST. The browser reconnects by
// itself with Last-Event-ID; the page must have every event once, in order.
// Driven over the DevTools protocol with ws, as browser.test.js.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { startHerald, publish, sleep, until } = require('./lib/herald');

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const skip = !CHROMIUM && 'chromium is not installed (scripts/install-deps.sh --test installs it)';

// A minimal DevTools-protocol client over one browser WebSocket.
class DevTools {
  constructor(url) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.next = 1;
    this.pending = new Map();
    this.ws.on('message', (d) => {
      const m = JSON.parse(d);
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new Error(JSON.stringify(m.error)));
      else p.resolve(m.result);
    });
    this.opened = new Promise((r, j) => { this.ws.once('open', r); this.ws.once('error', j); });
  }
  // Resolves with the command's result; rejects on an error or after 10 s.
  send(method, params = {}, sessionId) {
    const id = this.next++;
    this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`DevTools ${method} got no answer in 10 s`));
      }, 10000);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }
}

// A TCP proxy to target that the test can cut; keeps each connection's
// first bytes (its request).
function cutProxy(target) {
  const [host, port] = target.split(':');
  const pairs = new Set();
  const requests = [];
  const server = net.createServer((down) => {
    const up = net.connect(Number(port), host);
    const pair = { down, up };
    pairs.add(pair);
    let first = true;
    down.on('data', (d) => {
      if (first) requests.push(d.toString());
      first = false;
      up.write(d);
    });
    up.on('data', (d) => down.write(d));
    const end = () => { pairs.delete(pair); down.destroy(); up.destroy(); };
    down.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    cut() { for (const p of [...pairs]) { p.down.destroy(); p.up.destroy(); } },
    close() { this.cut(); return new Promise((r) => server.close(r)); },
  })));
}

let page, pageOrigin, h, proxy, browser, dir, dt, session;

before(async () => {
  if (!CHROMIUM) return;
  // the page: its own origin, and the stream's URL in a query parameter
  page = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>sse</title><script>
      window.got = []; window.opens = 0; window.errors = 0;
      const es = new EventSource(${JSON.stringify(u.searchParams.get('herald') || '')} + '/sse?topic=b.*');
      es.onopen = () => { window.opens++; };
      es.onerror = () => { window.errors++; };
      es.addEventListener('herald.event', (m) => {
        window.got.push({ seq: JSON.parse(m.data).seq, id: m.lastEventId });
      });
    </script>`);
  });
  await new Promise((r) => page.listen(0, '127.0.0.1', r));
  pageOrigin = `http://127.0.0.1:${page.address().port}`;
  h = await startHerald({ history: { durable: false }, sse: { retry_ms: 200 }, log_level: 'debug',
    client: { allowed_origins: [pageOrigin] } });
  proxy = await cutProxy(h.clientAddr);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
  browser = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', `--user-data-dir=${dir}`, '--remote-debugging-address=127.0.0.1',
    '--remote-debugging-port=0', 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const url = await new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error('chromium did not start: ' + err)), 20000);
    browser.stderr.on('data', (d) => {
      err += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    browser.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited (${code ?? sig}) before listening: ${err}`));
    });
  });
  dt = new DevTools(url);
  await dt.opened;
  const { targetId } = await dt.send('Target.createTarget',
    { url: `${pageOrigin}/?herald=${encodeURIComponent(proxy.url)}` });
  ({ sessionId: session } = await dt.send('Target.attachToTarget', { targetId, flatten: true }));
}, { timeout: 60000 });

after(async () => {
  if (browser) {
    if (browser.exitCode === null && browser.signalCode === null) {
      const exited = new Promise((r) => browser.once('exit', r));
      process.kill(-browser.pid, 'SIGKILL'); // the whole group: renderers and zygote too
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
  if (proxy) await proxy.close();
  if (page) await new Promise((r) => page.close(r));
  if (h) assert.equal((await h.stop()).code, 0);
}, { timeout: 30000 });

async function evaluate(expr) {
  const r = await dt.send('Runtime.evaluate', { expression: expr, returnByValue: true }, session);
  return r.result.value;
}

test('a browser EventSource cut twice mid-stream reconnects with Last-Event-ID and has every event once, in order', { timeout: 90000, skip }, async () => {
  await until(async () => (await evaluate('window.opens || 0')) === 1, { timeoutMs: 15000 });
  const N = 300;
  let last;
  for (let i = 1; i <= N; i++) {
    const r = await publish(h, 'b.x', { i });
    assert.equal(r.status, 202);
    last = r.body;
    if (i === 100 || i === 200) {
      await until(async () => (await evaluate('window.got.length')) >= i - 30, { timeoutMs: 10000 });
      proxy.cut(); // the stream drops mid-way; publishing goes on
      await sleep(20);
    }
  }
  await until(async () => (await evaluate('window.got.length')) >= N, { timeoutMs: 20000 });
  await sleep(200);
  const got = await evaluate('window.got');
  assert.deepEqual(got.map((g) => g.seq), Array.from({ length: N }, (_, i) => i + 1));
  assert.equal(got[N - 1].id, last.cursor); // the page's lastEventId is the cursor
  assert.ok((await evaluate('window.opens')) >= 3, 'the browser reconnected after each cut');
  // each reconnect was a plain GET (no preflight) carrying Last-Event-ID
  const again = proxy.requests.slice(1);
  assert.ok(again.length >= 2, again.join('\n---\n'));
  for (const r of again) {
    assert.match(r, /^GET \/sse\?topic=b\.\* HTTP\/1\.1\r\n/);
    assert.match(r, /^last-event-id: [a-z0-9]{8}:\d+\r$/im);
    assert.match(r, new RegExp(`^origin: ${pageOrigin}\r$`, 'im'));
  }
  assert.ok(h.logs.some((l) => /event=client_resumed .*transport=sse/.test(l)));
});
