#!/usr/bin/env node
// Webhook delivery throughput and the latency the durable commit adds to a
// publish. Run through bench/webhooks.sh (it checks the build and bounds the
// whole run), or directly:
//   node bench/webhooks.js [rounds=3] [deliveries=20000] [latency_publishes=2000]
//
// Everything is on loopback: heraldd (build/heraldd) on free ports with a
// fresh data dir under the temp dir (TMPDIR, /tmp: a real file system, so
// the commit's fsync is real), and build/bench/hook_receiver, a one-thread
// epoll HTTP/1.1 keep-alive receiver on 127.0.0.1 that counts answers,
// answers 500 to every 10th delivery in the 10% scenarios (a counter:
// exactly 10% of attempts fail, retries included), checks the signature of
// 1 delivery in 1000 and can hold deliveries unanswered (POST /pause).
//
// Scenarios: {1 endpoint, 100 endpoints} x {0%, 10% of answers failing}. All
// endpoints subscribe to "bench.>" and share the receiver (paths /e/0..99);
// each window has DELIVERIES deliveries (1 endpoint: 20,000 events; 100
// endpoints: 200 events). heraldd runs with its defaults except
// webhooks.schedule [0,1,1,...] (ten attempts a second apart, so a failed
// attempt is retried within the round), jitter 20%, request_timeout_ms 60000
// (held requests must not time out while the drain's backlog is published)
// and allowed_cidrs 127.0.0.1/32. Each round starts a fresh heraldd and
// receiver per scenario (the order of the scenarios alternates by round)
// and measures:
//   (a) drain: the receiver holds deliveries (POST /pause) while the events
//       are published, so the backlog is committed to SQLite with up to
//       max_in_flight_per_endpoint requests per endpoint parked at the
//       receiver; then POST /resume, and the receiver's counts are polled
//       every POLL_MS. (Disabling the endpoints instead does not build a
//       backlog: a disabled endpoint gets no deliveries at all, see on_hold
//       in webhooks/hooks.c.)
//   (b) steady: the receiver answers at once while the events are published
//       with CONCURRENCY keep-alive connections as fast as heraldd takes
//       them (a small raw HTTP/1.1 client: node's http module would take
//       CPU from heraldd on this 2-core machine).
// For both, "busy" rates are over the time until as many attempts were
// answered as there are deliveries (the first pass, retries of early
// failures mixed in): the delivery capacity, and what the 10% / 0% ratio
// and the target use. "All delivered" is the time until every delivery got
// its 2xx; with failures it includes the wait before the last retries (1 s
// +- 20% per failed attempt, by the schedule), which no throughput removes.
// heraldd's and the receiver's CPU time (utime + stime of /proc/PID/stat)
// over each window give CPU-us per attempt.
//   (c) latency: per round one more heraldd with one endpoint on
//       "lat.hooked" and none on "lat.plain"; LATENCY_N publishes to each,
//       first sequentially on one connection (alternating topics), then
//       with 16 connections per topic (which topic first alternates by
//       round). hooked - plain is what waiting for the durable commit
//       (group commit: one fsync per dispatcher turn) adds to the 202.
//
// The machine is shared: before each window the bench waits (at most
// QUIET_WAIT_MS) until other processes use less than QUIET_CORES, measures
// the temp dir's fsync time (a 4 KiB write + fdatasync, median of 31), and
// marks a window NOISY when other processes used more than NOISY_CORES
// during it (from /proc/stat, minus heraldd, the receiver and this process).
// Prints per round, then medians (min-max) over the rounds, the 10% / 0%
// ratios and the issue's target (>= 10,000 deliveries/s with 0% failing;
// with 10% failing at least 90% of that). Every publish must answer 202,
// every delivery must reach the receiver with a 2xx exactly once
// (duplicates are counted by (path, webhook-id)), every sampled signature
// must verify and heraldd must exit 0 on SIGTERM; otherwise the round prints
// PROBLEMS. A window that does not finish within ROUND_MS is incomplete and
// left out of the medians. Bounded: fixed counts, a deadline per window, a
// check before each scenario and a watchdog on the whole run; receivers
// exit by themselves after their lifetime.
// env: HERALDD, HOOK_RECEIVER (default build/heraldd, build/bench/hook_receiver),
//      PER_ENDPOINT=N: webhooks.max_in_flight_per_endpoint (default: heraldd's, 4),
//      TMPDIR: where the data dirs go (TMPDIR=/dev/shm: tmpfs, fsync costs nothing),
//      PROFILE=1: then one more drain per 0% scenario (not counted) under
//      `perf record --call-graph dwarf` on heraldd, printing its top symbols
//      (needs perf); with rounds=0 only those.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const crypto = require('node:crypto');
const { spawn, execFileSync } = require('node:child_process');
const { positiveInt, cpuSeconds, TICK } = require('./lib/proc');

const ROOT = path.join(__dirname, '..');
const HERALDD = path.resolve(process.env.HERALDD || path.join(ROOT, 'build/heraldd'));
const RECEIVER = path.resolve(process.env.HOOK_RECEIVER || path.join(ROOT, 'build/bench/hook_receiver'));

const PROFILE = process.env.PROFILE === '1';
const PER_ENDPOINT = positiveInt('webhooks', process.env.PER_ENDPOINT, 0, 'PER_ENDPOINT'); // 0: heraldd's default (4)
const ROUNDS = positiveInt('webhooks', process.argv[2], 3, 'rounds', { zeroOk: PROFILE, zeroHint: '0 with PROFILE=1' }); // 0: the profile runs only
const DELIVERIES = positiveInt('webhooks', process.argv[3], 20000, 'deliveries');
const LATENCY_N = positiveInt('webhooks', process.argv[4], 2000, 'latency_publishes');

const SCENARIOS = [
  { endpoints: 1, failEvery: 0 },
  { endpoints: 1, failEvery: 10 },
  { endpoints: 100, failEvery: 0 },
  { endpoints: 100, failEvery: 10 },
];
const CONCURRENCY = 32; // publishing connections
const LAT_CONCURRENCY = 16;
const LAT_WARMUP = 200;
const POLL_MS = 10; // receiver stats while a window runs
const ROUND_MS = 60 * 1000; // one measurement (a drain, a steady run, a latency run)
const START_MS = 15 * 1000, STOP_MS = 20 * 1000, REQUEST_MS = 30 * 1000;
const TOTAL_MS = 40 * 60 * 1000; // the whole run: the watchdog
const TARGET = 10000, TARGET_RATIO = 0.9;
const QUIET_CORES = 0.2, QUIET_WAIT_MS = 60 * 1000; // before each window: others below 0.2 cores, or 60 s passed
const NOISY_CORES = 0.2; // a window during which others used more is marked noisy
const BODY = JSON.stringify({ kind: 'bench', pad: 'x'.repeat(64) }); // ~90 bytes of data
const SECRET = 'whsec_' + crypto.randomBytes(32).toString('base64');

// A process that has exited counts as NaN CPU seconds here (it ends a window).
function cpuSecondsOf(pid) {
  try {
    return cpuSeconds(pid);
  } catch {
    return NaN;
  }
}


// Busy and total CPU time of the whole machine so far, in seconds (/proc/stat).
function machineCpu() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4]; // idle + iowait
  const total = f.slice(0, 8).reduce((a, x) => a + x, 0); // up to steal; guest is in user
  return { busy: (total - idle) / TICK, total: total / TICK };
}

// CPU seconds the rest of the machine (not heraldd, the receiver or this
// process) spent between two snapshots: the noise of a shared machine.
function snapshot(pids) {
  const u = process.cpuUsage();
  return { m: machineCpu(), own: pids.reduce((a, p) => a + cpuSecondsOf(p), 0) + (u.user + u.system) / 1e6, t: nowMs() };
}
function othersShare(a, b) {
  const others = (b.m.busy - a.m.busy) - (b.own - a.own);
  return Math.max(0, others) / ((b.t - a.t) / 1000); // in cores
}

// The median time (ms) of a 4 KiB write + fdatasync in the temp dir: what
// one commit waits for at least, and it moves with the disk's other users.
function fsyncMs() {
  const file = path.join(os.tmpdir(), `herald-hooks-bench-fsync-${process.pid}`);
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1), ts = [];
  try {
    for (let i = 0; i < 31; i++) {
      fs.writeSync(fd, buf, 0, buf.length, (i % 8) * 4096);
      const t = nowMs();
      fs.fdatasyncSync(fd);
      ts.push(nowMs() - t);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return median(ts);
}

// Waits (at most QUIET_WAIT_MS) until the rest of the machine is using less
// than QUIET_CORES; returns the fsync time then (see fsyncMs).
async function quiet(pids) {
  const until = Date.now() + QUIET_WAIT_MS;
  for (;;) {
    const a = snapshot(pids);
    await sleep(1000);
    const others = othersShare(a, snapshot(pids));
    if (others < QUIET_CORES || Date.now() > until) return fsyncMs();
  }
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b), m = Math.floor(s.length / 2);
  if (!s.length) return NaN;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pctile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// ---- a minimal keep-alive HTTP/1.1 client ----
// node's http module costs several times more CPU per request than this,
// and the client shares the machine's two cores with heraldd. One request
// at a time per connection; answers must carry Content-Length (heraldd's
// and the receiver's do). A connection the server closed while it was idle
// (heraldd's API closes them after 30 s) is opened again before a request.
class Conn {
  constructor(port) {
    this.port = port;
    this.buf = Buffer.alloc(0);
    this.pending = null;
    this.closed = true;
  }

  open() {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: this.port }, () => {
        this.closed = false;
        resolve(this);
      });
      this.sock = sock;
      this.buf = Buffer.alloc(0);
      sock.setNoDelay(true);
      sock.on('data', (d) => this.onData(d));
      sock.on('error', (e) => {
        if (this.pending && this.sock === sock) this.fail(e);
        reject(e);
      });
      sock.on('close', () => {
        if (this.sock !== sock) return;
        this.closed = true;
        if (this.pending) this.fail(new Error(`connection to port ${this.port} closed`));
      });
    });
  }

  fail(e) {
    const p = this.pending;
    this.pending = null;
    clearTimeout(p.timer);
    p.reject(e);
  }

  onData(d) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (!this.pending) return;
    const eoh = this.buf.indexOf('\r\n\r\n');
    if (eoh < 0) return;
    const head = this.buf.toString('latin1', 0, eoh);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (this.buf.length < eoh + 4 + len) return;
    const status = Number(head.slice(9, 12));
    const body = this.buf.toString('utf8', eoh + 4, eoh + 4 + len);
    this.buf = this.buf.subarray(eoh + 4 + len);
    const p = this.pending;
    this.pending = null;
    clearTimeout(p.timer);
    p.resolve({ status, body });
  }

  // Sends raw request bytes; resolves with {status, body}.
  async send(raw) {
    if (this.closed) await this.open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        this.sock.destroy();
        reject(new Error(`no answer on port ${this.port} within ${REQUEST_MS} ms`));
      }, REQUEST_MS);
      this.pending = { resolve, reject, timer };
      this.sock.write(raw);
    });
  }

  async json(method, urlPath, obj) {
    const body = obj === undefined ? '' : JSON.stringify(obj);
    const r = await this.send(`${method} ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      (body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : 'Content-Length: 0\r\n') +
      `\r\n${body}`);
    let parsed = null;
    try {
      parsed = r.body ? JSON.parse(r.body) : null;
    } catch {
      // not JSON: left null
    }
    return { status: r.status, body: parsed, text: r.body };
  }

  close() {
    this.closed = true;
    if (this.sock) this.sock.destroy();
  }
}

const publishRequest = (topic) => Buffer.from(`POST /v1/topics/${topic}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY}`);

async function openConns(port, n) {
  return Promise.all(Array.from({ length: n }, () => new Conn(port).open()));
}

// Publishes `count` events to `topic` over conns (one request in flight per
// connection), stopping at deadline. With `lat` an array, pushes each
// publish's latency in ms. Returns {sent, bad: {status: count}, ms}.
async function publish(conns, topic, count, deadline, lat) {
  const raw = publishRequest(topic);
  let next = 0;
  const bad = {};
  const t0 = nowMs();
  await Promise.all(conns.map(async (c) => {
    while (next < count && Date.now() < deadline) {
      next++;
      const s = lat ? nowMs() : 0;
      let status;
      try {
        status = (await c.send(raw)).status;
      } catch (e) {
        status = e.message;
      }
      if (lat) lat.push(nowMs() - s);
      if (status !== 202) bad[status] = (bad[status] || 0) + 1;
    }
  }));
  return { sent: next, bad, ms: nowMs() - t0 };
}

// ---- processes ----
const running = new Set(); // children to kill if the run has to give up

function track(proc) {
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  proc.on('error', () => {}); // reported through the start timeout
  return new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
}

// Reads a child's stream line by line.
function lines(stream, onLine) {
  let buf = '';
  stream.on('data', (chunk) => {
    buf += chunk.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

async function waitFor(promise, ms, what) {
  let timer;
  const r = await Promise.race([promise, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(what)), ms); })]);
  clearTimeout(timer);
  return r;
}

// Starts hook_receiver; resolves with {port, proc, stop() -> final stats}.
async function startReceiver(failEvery) {
  const args = ['-p', '0', '-f', String(failEvery), '-s', SECRET, '-v', '1000', '-t', String(Math.ceil(TOTAL_MS / 1000))];
  const proc = spawn(RECEIVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(proc);
  const out = [];
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const port = await waitFor(new Promise((resolve, reject) => {
    lines(proc.stdout, (l) => {
      out.push(l);
      const m = /^listening port=(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    exited.then(({ code }) => reject(new Error(`hook_receiver exited with ${code}: ${err}`)));
  }), START_MS, 'hook_receiver did not start');
  return {
    port,
    proc,
    async stop() {
      proc.kill('SIGTERM');
      const r = await waitFor(exited, STOP_MS, 'hook_receiver did not stop').catch((e) => {
        proc.kill('SIGKILL');
        throw e;
      });
      if (r.code !== 0) throw new Error(`hook_receiver exited with code ${r.code} signal ${r.signal}: ${err}`);
      return JSON.parse(out[out.length - 1]);
    },
  };
}

// Starts heraldd with the bench's config; resolves with {apiPort, pid, stop()}.
async function startHeraldd() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-hooks-bench-'));
  const config = {
    client: { listen: '127.0.0.1:0' },
    api: { listen: '127.0.0.1:0', max_connections: 1024 },
    data_dir: path.join(dir, 'var'),
    log_level: 'info', // the listening line is at info (and each failed attempt)
    webhooks: {
      allowed_cidrs: ['127.0.0.1/32'],
      schedule: [0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
      jitter_percent: 20,
      request_timeout_ms: 60000,
      ...(PER_ENDPOINT ? { max_in_flight_per_endpoint: PER_ENDPOINT } : {}),
    },
  };
  const configPath = path.join(dir, 'herald.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = spawn(HERALDD, ['-c', configPath], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = track(proc);
  const logs = []; // the last lines, for error messages
  const events = {}; // count per event= name
  let apiPort;
  const listening = new Promise((resolve, reject) => {
    lines(proc.stderr, (l) => {
      const e = /event=(\S+)/.exec(l);
      if (e) events[e[1]] = (events[e[1]] || 0) + 1;
      if (!e || e[1] !== 'delivery_failed') {
        logs.push(l);
        if (logs.length > 50) logs.shift();
      }
      const m = /event=listening port=api addr=127\.0\.0\.1:(\d+)/.exec(l);
      if (m) {
        apiPort = Number(m[1]);
        resolve();
      }
    });
    exited.then(({ code, signal }) => reject(new Error(`heraldd exited with ${code} ${signal}:\n${logs.join('\n')}`)));
  });
  try {
    await waitFor(listening, START_MS, 'heraldd did not start');
  } catch (e) {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    apiPort,
    pid: proc.pid,
    events,
    logs,
    async stop() {
      proc.kill('SIGTERM');
      let r;
      try {
        r = await waitFor(exited, STOP_MS, `heraldd did not exit within ${STOP_MS} ms of SIGTERM`);
      } catch (e) {
        proc.kill('SIGKILL');
        throw e;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      if (r.code !== 0) throw new Error(`heraldd exited with code ${r.code} signal ${r.signal}:\n${logs.slice(-10).join('\n')}`);
    },
  };
}

// ---- measurements ----

// Polls the receiver every POLL_MS until `want` deliveries got a 2xx or the
// deadline passes. Returns the samples [{t, requests, ok}] (t in ms from t0).
async function watch(rc, t0, want, deadline, during) {
  const samples = [];
  let duringDone = !during;
  if (during) during.then(() => { duringDone = true; }, () => { duringDone = true; });
  for (;;) {
    const r = await rc.json('GET', '/stats');
    const s = r.body;
    samples.push({ t: nowMs() - t0, requests: s.requests, ok: s.ok, unique: s.unique_ok, stats: s });
    if ((s.unique_ok >= want && duringDone) || Date.now() > deadline) return samples;
    await sleep(POLL_MS);
  }
}

// The time (ms) at which field first reached `want`, interpolated between samples.
function crossing(samples, field, want) {
  for (let i = 0; i < samples.length; i++) {
    if (samples[i][field] >= want) {
      if (i === 0) return samples[0].t;
      const a = samples[i - 1], b = samples[i];
      return a.t + ((want - a[field]) / (b[field] - a[field])) * (b.t - a.t);
    }
  }
  return NaN;
}
// The value of field at time t, interpolated.
function valueAt(samples, field, t) {
  for (let i = 1; i < samples.length; i++) {
    if (samples[i].t >= t) {
      const a = samples[i - 1], b = samples[i];
      return a[field] + ((t - a.t) / (b.t - a.t || 1)) * (b[field] - a[field]);
    }
  }
  return samples[samples.length - 1][field];
}

// The window's rates: "busy" until as many attempts were answered as there
// are deliveries (the first pass; retries of early failures mixed in),
// "all" until the last delivery got its 2xx (for failing answers: after
// the last retry's wait).
function rates(samples, want) {
  const last = samples[samples.length - 1];
  const busyMs = crossing(samples, 'requests', want), allMs = crossing(samples, 'unique', want);
  return {
    busyMs,
    allMs,
    busyOkRate: (valueAt(samples, 'ok', busyMs) / busyMs) * 1000,
    attemptRate: (want / busyMs) * 1000,
    allRate: (want / allMs) * 1000,
    attempts: last.requests,
  };
}

function checkDeliveries(last, want, what) {
  const s = last.stats;
  const problems = [];
  if (s.unique_ok < want) problems.push(`${what}: ${s.unique_ok} of ${want} deliveries got a 2xx within ${ROUND_MS / 1000} s (incomplete)`);
  if (s.duplicate_ok) problems.push(`${what}: ${s.duplicate_ok} deliveries got a 2xx more than once`);
  if (s.sig_bad) problems.push(`${what}: ${s.sig_bad} of ${s.sig_checked} sampled signatures did not verify`);
  if (s.bad) problems.push(`${what}: ${s.bad} requests the receiver could not read`);
  return problems;
}

// Creates n endpoints on receiver port; returns their ids.
async function createEndpoints(api, port, n, topics) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const r = await api.json('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/e/${i}`, topics, secret: SECRET });
    if (r.status !== 201) throw new Error(`POST /v1/webhooks: ${r.status} ${r.text}`);
    ids.push(r.body.id);
  }
  return ids;
}

function startPerf(pid, file) {
  const proc = spawn('perf', ['record', '-q', '-F', '999', '--call-graph', 'dwarf,16384', '-p', String(pid), '-o', file],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = track(proc);
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  return { proc, exited, err: () => err };
}

async function finishPerf(p, file) {
  p.proc.kill('SIGINT');
  await waitFor(p.exited, 30000, 'perf did not stop').catch(() => p.proc.kill('SIGKILL'));
  const run = (args) => execFileSync('perf', ['report', '-i', file, '--stdio', ...args],
    { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'], timeout: 300000 });
  try {
    const rows = (t) => t.split('\n').filter((l) => /^\s+[0-9.]+%/.test(l));
    const dso = rows(run(['--no-children', '--sort', 'dso', '-g', 'none']));
    // Inclusive: heraldd's and the libraries' named functions, and the
    // kernel entry points that say what a syscall's CPU went to.
    const KERNEL = /\[k\] (__x64_sys_fdatasync|__x64_sys_sendto|__x64_sys_recvfrom|__x64_sys_poll|__x64_sys_pwrite64|__x64_sys_fcntl|sock_def_readable)\s*$/;
    const incl = rows(run(['--children', '--sort', 'sym', '-g', 'none', '--percent-limit', '1.5']))
      .filter((l) => (!/\[k\]/.test(l) && !/\] 0x[0-9a-f]+\s*$/.test(l) && !/(clone3|start_thread)\s*$/.test(l)) || KERNEL.test(l));
    return `heraldd's CPU samples by library (self):\n${dso.slice(0, 8).join('\n')}\n` +
      `inclusive (>= 1.5%; kernel: syscall entries only):\n${incl.join('\n')}`;
  } catch (e) {
    return `perf report failed: ${e.message.split('\n')[0]} ${p.err().split('\n')[0]}`;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

// One scenario, one round: a fresh receiver and heraldd, the drain, then
// the steady run. Returns {drain, steady, problems}.
async function scenarioRound(sc, profiled) {
  const rec = await startReceiver(sc.failEvery);
  let h, api, rc, pubs, perf;
  const problems = [];
  const out = {};
  const events = DELIVERIES / sc.endpoints;
  try {
    h = await startHeraldd();
    api = await new Conn(h.apiPort).open();
    rc = await new Conn(rec.port).open();
    await createEndpoints(api, rec.port, sc.endpoints, ['bench.>']);
    pubs = await openConns(h.apiPort, CONCURRENCY);

    // (a) drain
    await rc.json('POST', '/pause');
    const p = await publish(pubs, 'bench.drain', events, Date.now() + ROUND_MS);
    if (p.sent < events || Object.keys(p.bad).length) {
      problems.push(`drain: publishing: ${p.sent} of ${events} sent, not 202: ${JSON.stringify(p.bad)}`);
      throw new Error(problems.join('; '));
    }
    // Let the dispatcher park its first requests at the receiver; whatever
    // has not arrived yet simply arrives after the resume.
    const parkedWant = Math.min(sc.endpoints * (PER_ENDPOINT || 4), 256); // webhooks.max_in_flight: 256
    for (let i = 0; i < 100; i++) {
      const s = (await rc.json('GET', '/stats')).body;
      if (s.parked >= parkedWant) break;
      await sleep(10);
    }
    await rc.json('POST', '/reset');
    const pids = [h.pid, rec.proc.pid];
    const fsync = await quiet(pids);
    const perfFile = path.join(os.tmpdir(), `herald-hooks-bench-${process.pid}.perf`);
    if (profiled) {
      perf = startPerf(h.pid, perfFile);
      await sleep(1000); // perf attaches
    }
    const snap0 = snapshot(pids), cpu0 = cpuSecondsOf(h.pid), rcpu0 = cpuSecondsOf(rec.proc.pid), t0 = nowMs();
    await rc.json('POST', '/resume');
    const ds = await watch(rc, t0, DELIVERIES, Date.now() + ROUND_MS);
    const cpu = cpuSecondsOf(h.pid) - cpu0, recCpu = cpuSecondsOf(rec.proc.pid) - rcpu0;
    const others = othersShare(snap0, snapshot(pids));
    if (perf) out.profile = await finishPerf(perf, perfFile);
    const last = ds[ds.length - 1];
    const dp = checkDeliveries(last, DELIVERIES, 'drain');
    problems.push(...dp);
    out.drain = {
      ...rates(ds, DELIVERIES),
      complete: !dp.length,
      publishRate: (events / p.ms) * 1000, // publishes/s while the receiver holds everything
      cpuUs: (cpu * 1e6) / last.requests,
      others,
      fsync,
      recvCpuUs: (recCpu * 1e6) / last.requests,
    };

    // (b) steady
    if (!profiled) {
      await rc.json('POST', '/reset');
      const sfsync = await quiet(pids);
      // fresh connections: the idle ones may be closing (api: 30 s idle timeout)
      for (const c of pubs) c.close();
      await Promise.all(pubs.map((c) => c.open()));
      const ssnap0 = snapshot(pids), scpu0 = cpuSecondsOf(h.pid), srcpu0 = cpuSecondsOf(rec.proc.pid), st0 = nowMs();
      const pub = publish(pubs, 'bench.steady', events, Date.now() + ROUND_MS);
      const ss = await watch(rc, st0, DELIVERIES, Date.now() + ROUND_MS, pub);
      const sp = await pub;
      const scpu = cpuSecondsOf(h.pid) - scpu0, srecCpu = cpuSecondsOf(rec.proc.pid) - srcpu0;
      const sothers = othersShare(ssnap0, snapshot(pids));
      const slast = ss[ss.length - 1];
      if (sp.sent < events || Object.keys(sp.bad).length) problems.push(`steady: publishing: ${sp.sent} of ${events} sent, not 202: ${JSON.stringify(sp.bad)}`);
      const sprob = checkDeliveries(slast, DELIVERIES, 'steady');
      problems.push(...sprob);
      out.steady = {
        ...rates(ss, DELIVERIES),
        complete: !sprob.length && sp.sent === events,
        publishRate: (events / sp.ms) * 1000,
        duringRate: (valueAt(ss, 'ok', sp.ms) / sp.ms) * 1000, // 2xx/s while publishing
        pubMs: sp.ms,
        cpuUs: (scpu * 1e6) / slast.requests,
        others: sothers,
        fsync: sfsync,
        recvCpuUs: (srecCpu * 1e6) / slast.requests,
      };
    }
  } catch (e) {
    problems.push(e.message);
  } finally {
    if (perf && perf.proc.exitCode === null) perf.proc.kill('SIGKILL');
    for (const c of pubs || []) c.close();
    if (api) api.close();
    if (rc) rc.close();
    if (h) {
      const failedCommits = h.events.store_commit_failed || 0;
      if (failedCommits) problems.push(`heraldd logged ${failedCommits} store_commit_failed`);
      await h.stop().catch((e) => problems.push(e.message));
    }
    await rec.stop().catch((e) => problems.push(e.message));
  }
  out.problems = problems;
  return out;
}

// The latency of a publish to a topic with no endpoint vs one with one
// endpoint (which waits for the durable commit). Returns p50/p99 in ms.
async function latencyRound(round) {
  const rec = await startReceiver(0);
  let h, api;
  const conns = [];
  const problems = [];
  const out = {};
  try {
    h = await startHeraldd();
    api = await new Conn(h.apiPort).open();
    await createEndpoints(api, rec.port, 1, ['lat.hooked']);
    out.fsync = await quiet([h.pid, rec.proc.pid]);
    conns.push(...(await openConns(h.apiPort, LAT_CONCURRENCY)));
    const snap0 = snapshot([h.pid, rec.proc.pid]);
    const deadline = Date.now() + ROUND_MS;
    // warm-up, both topics
    await publish(conns, 'lat.plain', LAT_WARMUP, deadline);
    await publish(conns, 'lat.hooked', LAT_WARMUP, deadline);
    // sequential, alternating topics on one connection
    const seq = { plain: [], hooked: [] };
    const raws = { plain: publishRequest('lat.plain'), hooked: publishRequest('lat.hooked') };
    for (let i = 0; i < 2 * LATENCY_N && Date.now() < deadline; i++) {
      const topic = (i + round) % 2 ? 'hooked' : 'plain';
      const t = nowMs();
      const r = await conns[0].send(raws[topic]);
      seq[topic].push(nowMs() - t);
      if (r.status !== 202) throw new Error(`latency: publish to lat.${topic}: ${r.status}`);
    }
    // concurrent: LAT_CONCURRENCY connections, one topic at a time
    const conc = { plain: [], hooked: [] };
    for (const topic of round % 2 ? ['hooked', 'plain'] : ['plain', 'hooked']) {
      const p = await publish(conns, `lat.${topic}`, LATENCY_N, deadline, conc[topic]);
      if (Object.keys(p.bad).length) throw new Error(`latency: concurrent publish to lat.${topic}: ${JSON.stringify(p.bad)}`);
      out[`rate_${topic}`] = (p.sent / p.ms) * 1000;
    }
    out.others = othersShare(snap0, snapshot([h.pid, rec.proc.pid]));
    for (const [name, set] of [['seq', seq], ['conc', conc]]) {
      for (const topic of ['plain', 'hooked']) {
        const s = set[topic].sort((a, b) => a - b);
        if (s.length < LATENCY_N) throw new Error(`latency: ${name} ${topic}: ${s.length} of ${LATENCY_N} publishes within ${ROUND_MS / 1000} s`);
        out[`${name}_${topic}_p50`] = pctile(s, 0.5);
        out[`${name}_${topic}_p99`] = pctile(s, 0.99);
      }
    }
  } catch (e) {
    problems.push(e.message);
  } finally {
    for (const c of conns) c.close();
    if (api) api.close();
    if (h) await h.stop().catch((e) => problems.push(e.message));
    await rec.stop().catch((e) => problems.push(e.message));
  }
  out.problems = problems;
  return out;
}

// ---- the report ----
const k = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const range = (xs, fmt) => {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? `${fmt(median(v))} (${fmt(Math.min(...v))}-${fmt(Math.max(...v))})` : 'n/a';
};
const label = (sc) => `${String(sc.endpoints).padStart(3)} endpoint${sc.endpoints > 1 ? 's' : ' '}, ${String(sc.failEvery ? 100 / sc.failEvery : 0).padStart(2)}% failing`;

// Prints the medians over the rounds, the ratios and the verdicts.
function summarize(results, latencies) {
  // medians over the complete rounds
  const col = (i, part, field) => results[i].filter((m) => m[part] && m[part].complete).map((m) => m[part][field]);
  const complete = (i, part) => {
    const done = results[i].filter((m) => m[part] && m[part].complete);
    const noisy = done.filter((m) => m[part].others >= NOISY_CORES).length;
    return `${done.length}/${ROUNDS}${noisy ? ` (${noisy} noisy)` : ''}`;
  };
  const med = (i, part, field) => median(col(i, part, field));
  console.log(`\nmedian (min-max) over ${ROUNDS} rounds, incomplete rounds left out; ${DELIVERIES} deliveries per window; ` +
    'busy = until as many attempts as deliveries were answered, all = until the last 2xx');
  for (const part of ['drain', 'steady']) {
    console.log(`\n${part}:\n${'scenario'.padEnd(27)} | ${'busy 2xx/s'.padEnd(24)} | ${'busy attempts/s'.padEnd(24)} | ` +
      `${'all delivered, 2xx/s'.padEnd(24)} | ${'all delivered, s'.padEnd(18)} | CPU-us/attempt | fsync ms | complete`);
    SCENARIOS.forEach((sc, i) => {
      console.log(`${label(sc).padEnd(27)} | ${range(col(i, part, 'busyOkRate'), k).padEnd(24)} | ` +
        `${range(col(i, part, 'attemptRate'), k).padEnd(24)} | ${range(col(i, part, 'allRate'), k).padEnd(24)} | ` +
        `${range(col(i, part, 'allMs').map((x) => x / 1000), f2).padEnd(18)} | ${f2(med(i, part, 'cpuUs')).padEnd(14)} | ` +
        `${f2(med(i, part, 'fsync')).padEnd(8)} | ` +
        complete(i, part));
    });
  }
  const pair = (e) => [SCENARIOS.findIndex((x) => x.endpoints === e && !x.failEvery),
    SCENARIOS.findIndex((x) => x.endpoints === e && x.failEvery)];
  console.log('\n10% failing / 0% failing, ratio of the medians:');
  for (const e of [1, 100]) {
    const [a0, a1] = pair(e);
    const r = (part, field) => f2(med(a1, part, field) / med(a0, part, field));
    console.log(`  ${String(e).padStart(3)} endpoint${e > 1 ? 's' : ' '}: 2xx/s busy: drain ${r('drain', 'busyOkRate')}, ` +
      `steady ${r('steady', 'busyOkRate')}; attempts/s busy: drain ${r('drain', 'attemptRate')}, steady ${r('steady', 'attemptRate')}; ` +
      `all delivered: drain ${r('drain', 'allRate')}, steady ${r('steady', 'allRate')}`);
  }
  const L = latencies.filter((l) => !l.problems.length);
  const lm = (key) => median(L.map((l) => l[key]));
  console.log(`\npublish latency, ms, median over ${L.length} rounds of ${LATENCY_N} publishes per topic (no endpoint -> one endpoint, added):`);
  for (const [name, what] of [['seq', 'sequential, 1 connection'], ['conc', `${LAT_CONCURRENCY} concurrent connections`]]) {
    for (const p of ['p50', 'p99']) {
      const a = lm(`${name}_plain_${p}`), b = lm(`${name}_hooked_${p}`);
      console.log(`  ${what.padEnd(28)} ${p}: ${f2(a)} -> ${f2(b)}  (+${f2(b - a)})`);
    }
  }
  console.log(`  ${LAT_CONCURRENCY} concurrent publishes/s: no endpoint ${k(lm('rate_plain'))}, one endpoint ${k(lm('rate_hooked'))}; ` +
    `fsync (4 KiB write + fdatasync in the temp dir) before the runs: ${f2(lm('fsync'))} ms`);

  const verdicts = [1, 100].map((e) => {
    const [a0, a1] = pair(e);
    const base = Math.min(med(a0, 'drain', 'busyOkRate'), med(a0, 'steady', 'busyOkRate'));
    const ratio = Math.min(med(a1, 'drain', 'busyOkRate') / med(a0, 'drain', 'busyOkRate'),
      med(a1, 'steady', 'busyOkRate') / med(a0, 'steady', 'busyOkRate'));
    return `${String(e).padStart(3)} endpoint${e > 1 ? 's' : ' '}: 0% failing: ${k(base)} deliveries/s (the lower of drain and steady, busy): ` +
      `${base >= TARGET ? 'met' : 'NOT met'}; 10% failing: ${f2(ratio)} of that (the lower ratio): ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`;
  });
  {
    console.log(`\ntarget >= ${k(TARGET)} deliveries/s with 0% failing and >= ${TARGET_RATIO * 100}% of that with 10% failing ` +
      `(busy rates; the all-delivered rates of the 10% case also wait out the retry schedule):\n  ${verdicts.join('\n  ')}`);
  }
}

async function main() {
  for (const f of [HERALDD, RECEIVER]) {
    if (!fs.existsSync(f)) throw new Error(`${f} not found: build first (make -C build -j2)`);
  }
  for (const sc of SCENARIOS) {
    if (DELIVERIES % sc.endpoints) throw new Error(`deliveries (${DELIVERIES}) must be a multiple of ${sc.endpoints}`);
  }
  const started = Date.now();
  console.log(`webhooks bench: ${ROUNDS} rounds; ${DELIVERIES} deliveries per measurement; ${CONCURRENCY} publishing ` +
    `connections; ${BODY.length}-byte event data; ${os.cpus().length} CPUs; data dir under ${os.tmpdir()}; ` +
    `max_in_flight_per_endpoint ${PER_ENDPOINT || '4 (default)'}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const results = SCENARIOS.map(() => []), latencies = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = SCENARIOS.map((_, i) => i);
    if (r % 2) order.reverse(); // drift hits every scenario alike
    for (const i of order) {
      if (Date.now() - started > TOTAL_MS - 2 * ROUND_MS) throw new Error('the run is about to pass its time limit: use fewer rounds');
      const sc = SCENARIOS[i];
      const m = await scenarioRound(sc, false);
      results[i].push(m);
      const d = m.drain, s = m.steady;
      const line = (x) => `busy ${k(x.busyOkRate)} 2xx/s, ${k(x.attemptRate)} attempts/s (${(x.busyMs / 1000).toFixed(2)} s); ` +
        `all delivered ${k(x.allRate)}/s (${(x.allMs / 1000).toFixed(2)} s); CPU-us/attempt: heraldd ${f2(x.cpuUs)}, ` +
        `receiver ${f2(x.recvCpuUs)}; fsync ${f2(x.fsync)} ms` +
        `${x.others >= NOISY_CORES ? `; NOISY: other processes used ${f2(x.others)} cores` : ''}`;
      console.log(`round ${r + 1} ${label(sc)}:` +
        (d ? `\n  drain:  ${line(d)}; publishing while held ${k(d.publishRate)}/s` : '') +
        (s ? `\n  steady: ${line(s)}; publishing ${k(s.publishRate)}/s, 2xx/s meanwhile ${k(s.duringRate)}` : '') +
        (m.problems.length ? `\n  PROBLEMS: ${m.problems.join('; ')}` : ''));
    }
    const l = await latencyRound(r);
    latencies.push(l);
    console.log(`round ${r + 1} latency (ms): sequential p50 plain ${f2(l.seq_plain_p50)} hooked ${f2(l.seq_hooked_p50)}, ` +
      `p99 ${f2(l.seq_plain_p99)} / ${f2(l.seq_hooked_p99)}; ${LAT_CONCURRENCY} concurrent p50 ${f2(l.conc_plain_p50)} / ` +
      `${f2(l.conc_hooked_p50)}, p99 ${f2(l.conc_plain_p99)} / ${f2(l.conc_hooked_p99)}` +
      `; fsync ${f2(l.fsync)} ms${l.others >= NOISY_CORES ? `; NOISY: other processes used ${f2(l.others)} cores` : ''}` +
      (l.problems.length ? `\n  PROBLEMS: ${l.problems.join('; ')}` : ''));
  }

  if (ROUNDS) summarize(results, latencies);

  if (PROFILE) {
    for (const sc of SCENARIOS.filter((s) => !s.failEvery)) {
      console.log(`\nprofile: one more drain, ${label(sc)}, under perf record (not counted above)...`);
      const m = await scenarioRound(sc, true);
      if (m.drain) console.log(`  this drain: ${k(m.drain.allRate)} deliveries/s (perf slows it down)`);
      if (m.problems.length) console.log(`  PROBLEMS: ${m.problems.join('; ')}`);
      console.log(m.profile || 'no profile');
    }
  }
}

function killAll() {
  for (const p of running) p.kill('SIGKILL');
}

const watchdog = setTimeout(() => {
  console.error(`webhooks: gave up after ${TOTAL_MS / 1000} s`);
  killAll();
  process.exit(1);
}, TOTAL_MS + 10 * 60 * 1000); // + the profile runs
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`webhooks: ${sig}: stopping`);
    killAll();
    process.exit(1);
  });
}

main().then(() => clearTimeout(watchdog), (e) => {
  console.error('webhooks: FAILED: ' + (e && e.message ? e.message : e));
  killAll();
  process.exit(1);
});
