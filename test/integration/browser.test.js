// A real browser tab: headless Chromium opens the demo page on the client
// port, subscribes and publishes through the page's own buttons, and shows
// events published over REST. Driven over the DevTools protocol with ws.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const { startHerald, publish, until } = require('./lib/herald');

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

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

let h, browser, dir, dt, session;

before(async () => {
  h = await startHerald();
  if (!CHROMIUM) return;
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
  const { targetId } = await dt.send('Target.createTarget', { url: `http://${h.clientAddr}/` });
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
  assert.equal((await h.stop()).code, 0);
}, { timeout: 30000 });

async function page(expr) {
  const r = await dt.send('Runtime.evaluate', { expression: expr, returnByValue: true }, session);
  return r.result.value;
}
const logText = () => page('document.getElementById("log") ? document.getElementById("log").textContent : ""');

test('a browser tab subscribes from the demo page and sees REST-published events', { timeout: 60000, skip: !CHROMIUM && 'chromium is not installed (scripts/install-deps.sh --test installs it)' }, async () => {
  await until(async () => /connected to ws:/.test(await page('document.getElementById("state") ? document.getElementById("state").textContent : ""')), { timeoutMs: 15000 });
  await page('document.getElementById("pattern").value = "orders.*"; document.querySelector("#sub button").click()');
  await until(async () => (await logText()).includes('< {"op":"ack","id":"1"}'));

  const r = await publish(h, 'orders.created', { n: 1 });
  assert.equal(r.status, 202);
  await until(async () => (await logText()).includes(`"id":"${r.body.id}"`));
  const line = (await logText()).split('< ').find((l) => l.includes(r.body.id));
  const ev = JSON.parse(line);
  assert.equal(ev.op, 'event');
  assert.equal(ev.topic, 'orders.created');
  assert.deepEqual(ev.data, { n: 1 });

  // publishing from the page: acknowledged, then delivered back to the tab
  await page('document.getElementById("topic").value = "orders.paid"; document.getElementById("data").value = "{\\"from\\":\\"browser\\"}"; document.querySelector("#pub button").click()');
  await until(async () => /"op":"event","topic":"orders.paid".*"data":\{"from":"browser"\}/.test(await logText()));
  assert.match(await logText(), /< \{"op":"ack","id":"2","event":\{"id":"[0-9a-f-]{36}","seq":1,"offset":\d+,"cursor":"[a-z0-9]{8}:\d+"\}\}/);
});
