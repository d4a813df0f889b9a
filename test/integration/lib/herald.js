// Test harness: starts a real heraldd on free loopback ports (port 0, the
// daemon logs the address it got) and gives tests real clients to drive it.
'use strict';
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');

const HERALDD = path.resolve(process.env.HERALDD || path.join(__dirname, '../../../build/heraldd'));
// HERALD_WRAPPER runs heraldd under another program, e.g.
// HERALD_WRAPPER="valgrind --error-exitcode=99": every test then also
// checks that program's verdict through heraldd's exit code.
const WRAPPER = (process.env.HERALD_WRAPPER || '').split(' ').filter(Boolean);

// The command line that runs heraldd with args: [file, argv].
function heralddCommand(args) {
  return WRAPPER.length ? [WRAPPER[0], [...WRAPPER.slice(1), HERALDD, ...args]] : [HERALDD, args];
}

function deepMerge(a, b) {
  const out = { ...a };
  for (const [k, v] of Object.entries(b || {})) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? deepMerge(a[k] || {}, v) : v;
  }
  return out;
}

// Starts heraldd with the given config overrides. Resolves once both ports
// listen; the result has the URLs, the process, its log lines and stop().
async function startHerald(overrides = {}, { args = [], cwd } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-test-'));
  const config = deepMerge(
    {
      client: { listen: '127.0.0.1:0', workers: 2 },
      api: { listen: '127.0.0.1:0' },
      data_dir: path.join(dir, 'var'),
      log_level: 'info',
    },
    overrides,
  );
  const configPath = path.join(dir, 'herald.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = spawn(...heralddCommand(['-c', configPath, ...args]), { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  const logs = [];
  // (a binary that cannot be run, e.g. a wrong HERALDD, gives 'error' and no 'exit')
  let spawnError = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
    proc.on('error', (e) => {
      spawnError = e;
      resolve({ code: null, signal: null });
    });
  });
  let buf = '';
  const listening = new Promise((resolve, reject) => {
    const addrs = {};
    const timer = setTimeout(() => reject(new Error('heraldd did not start:\n' + logs.join('\n'))), 30000);
    proc.stderr.on('data', (chunk) => {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        const m = /event=listening port=(\w+) addr=(\S+)/.exec(line);
        if (m) addrs[m[1]] = m[2];
        if (addrs.client && addrs.api) {
          clearTimeout(timer);
          resolve(addrs);
        }
      }
    });
    exited.then(({ code }) => {
      clearTimeout(timer);
      if (spawnError) reject(new Error(`cannot run heraldd (${HERALDD}): ${spawnError.message}`));
      reject(new Error(`heraldd exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  const addrs = await listening;
  const h = {
    proc,
    logs,
    dir,
    configPath,
    clientAddr: addrs.client,
    apiAddr: addrs.api,
    wsUrl: `ws://${addrs.client}/ws`,
    apiUrl: `http://${addrs.api}`,
    exited,
    // Sends a signal and resolves with {code, signal} when the process ends.
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      fs.rmSync(dir, { recursive: true, force: true });
      return r;
    },
  };
  return h;
}

// A WebSocket client that keeps every message it receives in order, so
// tests can wait for the next one matching a predicate.
class Client {
  constructor(url, protocols = ['herald.v1'], options = {}) {
    this.ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    this.messages = [];
    this.waiters = [];
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString();
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        msg = { unparsable: text, isBinary };
      }
      this.messages.push(msg);
      this.waiters = this.waiters.filter((w) => !w.check());
    });
  }

  static async open(url, protocols, options) {
    const c = new Client(url, protocols, options);
    await c.opened;
    return c;
  }

  // Sends a text frame: objects JSON-encoded, strings and Buffers as they are.
  send(obj) {
    const data = typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj);
    this.ws.send(data, { binary: false });
  }

  // Resolves with the first message (from `from` on) that satisfies pred;
  // rejects after timeoutMs. Returns {msg, index}.
  waitFor(pred, { timeoutMs = 5000, from = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          for (let i = from; i < this.messages.length; i++) {
            if (pred(this.messages[i])) {
              clearTimeout(w.timer);
              resolve(this.messages[i]);
              return true;
            }
          }
          return false;
        },
      };
      if (w.check()) return;
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${this.messages.length} messages; last: ` +
          JSON.stringify(this.messages.slice(-2)).slice(0, 400)));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  // Sends a request op and resolves with the reply carrying the same id.
  async request(obj, opts) {
    this.send(obj);
    return this.waitFor((m) => m.id === obj.id && m.op !== 'event', opts);
  }

  async subscribe(topic, id = 's-' + topic) {
    const r = await this.request({ op: 'subscribe', id, topic });
    if (r.op !== 'ack') throw new Error('subscribe failed: ' + JSON.stringify(r));
    return r;
  }

  events() {
    return this.messages.filter((m) => m.op === 'event');
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}

// POSTs data (JSON-encoded, or sent as it is when raw) to the topic.
async function publish(h, topic, data, { headers = {}, raw = false } = {}) {
  const res = await fetch(`${h.apiUrl}/v1/topics/${topic}/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: raw ? data : JSON.stringify(data),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

// Runs curl; resolves with {code, stdout, stderr} (never rejects on HTTP errors).
function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(fn, { timeoutMs = 5000, stepMs = 20 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(stepMs);
  }
}

module.exports = { HERALDD, heralddCommand, startHerald, Client, publish, curl, sleep, until };
