#!/usr/bin/env node
// How much of the REST publish path schema validation takes. For ROUNDS
// rounds it starts heraldd on free loopback ports twice, (a) without topic
// rules and (b) with {"pattern": "orders.>", "schema": schemas/topics/order.json},
// alternating which goes first, publishes EVENTS copies of the 1 KiB order
// event bench/data/order-1k.json (compact) to orders.eu.created with
// CONCURRENCY keep-alive requests, and reads heraldd's CPU time
// (utime + stime of /proc/PID/stat) around the publishing window. Nobody
// subscribes. It prints per round and as medians the server CPU-us per
// publish of (a) and (b), the validation cost b - a and its share (b - a) / b;
// then the direct estimate from build/bench/schema_bench: ns per quiet
// validation / (b)'s CPU-us per publish (heraldd parses the body in both
// cases, so parsing is not part of the validation cost). Both shares are
// checked against the target: under 10% of the publish path. b - a is the
// end-to-end figure but drifts with whatever else the machine runs (client
// and server share it): it gets a verdict only when the middle half of the
// per-round shares lies on one side of 10%, and says "not resolved" otherwise.
// Every answer must be 202 and every heraldd must exit 0 on SIGTERM, or the
// run fails. Bounded: fixed counts, a deadline per round and for the whole run.
//   node bench/schema_publish.js [events=20000] [rounds=5] [concurrency=32]
// env: HERALDD (default build/heraldd), SCHEMA_BENCH (default build/bench/schema_bench),
//      PROFILE=1: then one more (b) run, not counted above, under `perf record
//      --call-graph dwarf`, printing schema_validate's share of heraldd's CPU samples and of
//      the publish handler's: the in-process share, free of the drift between
//      separate runs (needs perf and permission to profile).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const http = require('node:http');
const { spawn, execFile, execFileSync } = require('node:child_process');
const { positiveInt, cpuSeconds, TICK } = require('./lib/proc');

const ROOT = path.join(__dirname, '..');
const HERALDD = path.resolve(process.env.HERALDD || path.join(ROOT, 'build/heraldd'));
const SCHEMA_BENCH = path.resolve(process.env.SCHEMA_BENCH || path.join(ROOT, 'build/bench/schema_bench'));
const SCHEMA = path.join(ROOT, 'schemas/topics/order.json');
const INSTANCE = path.join(ROOT, 'bench/data/order-1k.json');
const TOPIC = 'orders.eu.created';

const EVENTS = positiveInt('schema_publish', process.argv[2], 20000, 'events');
const ROUNDS = positiveInt('schema_publish', process.argv[3], 5, 'rounds');
const CONCURRENCY = positiveInt('schema_publish', process.argv[4], 32, 'concurrency');
const WARMUP = Math.min(1000, EVENTS); // per server, outside the measured window
const TARGET = 0.1;
const TOTAL_MS = 5 * 60 * 1000; // the whole run
const ROUND_MS = 60 * 1000; // one server: start, warm-up, publish, stop
const START_MS = 15 * 1000, STOP_MS = 15 * 1000, REQUEST_MS = 10 * 1000;
const BENCH_ARGS = ['1', '5']; // schema_bench: 1 s x 4 loops x 5 rounds = 20 s
const BENCH_MS = 60 * 1000;



const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
// Linear interpolation between the order statistics (R's type 7).
const quantile = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y), h = (s.length - 1) * p, lo = Math.floor(h);
  return lo + 1 < s.length ? s[lo] + (h - lo) * (s[lo + 1] - s[lo]) : s[lo];
};


const running = new Set(); // heraldds to kill if the run has to give up

// Starts heraldd on 127.0.0.1:0 (both ports) with the given topic rules.
// Resolves with {proc, apiHost, apiPort, stop()} once the API port listens.
async function startHeraldd(topics) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-bench-'));
  const config = {
    client: { listen: '127.0.0.1:0', workers: 2 },
    api: { listen: '127.0.0.1:0' },
    data_dir: path.join(dir, 'var'),
    log_level: 'info', // the listening line is at info; publishes log at debug only
    topics,
  };
  const configPath = path.join(dir, 'herald.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = spawn(HERALDD, ['-c', configPath], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs = [];
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  proc.on('error', () => {}); // reported through exited (code null) and the start timeout
  const h = {
    proc,
    logs,
    // SIGTERM, then waits for the exit; a heraldd that hangs is killed and reported.
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      let timer;
      const r = await Promise.race([exited, new Promise((res) => { timer = setTimeout(() => res(null), STOP_MS); })]);
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      if (!r) {
        proc.kill('SIGKILL');
        throw new Error(`heraldd did not exit within ${STOP_MS} ms of SIGTERM`);
      }
      if (r.code !== 0) throw new Error(`heraldd exited with code ${r.code} signal ${r.signal}:\n${logs.slice(-20).join('\n')}`);
    },
  };
  running.add(h);
  exited.then(() => running.delete(h));
  let buf = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('heraldd did not start:\n' + logs.join('\n'))), START_MS);
    proc.stderr.on('data', (chunk) => {
      buf += chunk.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (logs.length < 1000) logs.push(line);
        const m = /event=listening port=api addr=(\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`heraldd exited with code ${code} signal ${signal} at start:\n${logs.join('\n')}`));
    });
  }).catch(async (e) => {
    proc.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const i = addr.lastIndexOf(':');
  h.apiHost = addr.slice(0, i);
  h.apiPort = Number(addr.slice(i + 1));
  if (h.apiHost !== '127.0.0.1') throw new Error(`heraldd listens on ${addr}, expected 127.0.0.1`);
  return h;
}

// node's http module with keep-alive: several times faster than fetch here.
// Resolves with the status code; rejects on a socket error or after REQUEST_MS.
function post(agent, h, urlPath, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: h.apiHost, port: h.apiPort, path: urlPath, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.setTimeout(REQUEST_MS, () => req.destroy(new Error(`no answer within ${REQUEST_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// Publishes count copies of body with CONCURRENCY requests in flight; stops
// at deadline. Returns {sent, errors, statuses} (statuses: count per non-202 code).
async function publish(agent, h, body, count, deadline) {
  const urlPath = `/v1/topics/${TOPIC}/events`;
  let next = 0, errors = 0;
  const statuses = {};
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count && Date.now() < deadline) {
      next++;
      let status;
      try {
        status = await post(agent, h, urlPath, body);
      } catch (e) {
        status = e.message;
      }
      if (status !== 202) {
        errors++;
        statuses[status] = (statuses[status] || 0) + 1;
      }
    }
  }));
  return { sent: next, errors, statuses };
}

// One server, one variant: warm-up, then the measured window.
async function measure(withRules, body, roundDeadline, profiled = false) {
  const topics = withRules ? [{ pattern: 'orders.>', schema: SCHEMA }] : [];
  const h = await startHeraldd(topics);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let result, failure;
  try {
    const warm = await publish(agent, h, body, WARMUP, roundDeadline);
    const perf = profiled ? startPerf(h.proc.pid) : null;
    const cpu0 = cpuSeconds(h.proc.pid), t0 = process.hrtime.bigint();
    const run = await publish(agent, h, body, EVENTS, roundDeadline);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSeconds(h.proc.pid) - cpu0;
    if (perf) profile = await finishPerf(perf);
    const errors = warm.errors + run.errors;
    if (errors || run.sent < EVENTS || warm.sent < WARMUP) {
      const why = errors ? `${errors} answers were not 202: ${JSON.stringify({ ...warm.statuses, ...run.statuses })}`
        : `the round deadline (${ROUND_MS} ms) passed after ${run.sent} of ${EVENTS} publishes`;
      throw new Error(`${withRules ? '(b) with rules' : '(a) no rules'}: ${why}`);
    }
    result = { usPerPublish: (cpu * 1e6) / EVENTS, rate: EVENTS / secs, cpu, secs };
  } catch (e) {
    failure = e;
  }
  agent.destroy();
  try {
    await h.stop(); // throws unless heraldd exits 0
  } catch (e) {
    failure = failure || e;
  }
  if (failure) throw failure;
  return result;
}

const PROFILE = process.env.PROFILE === '1';
let profile = null; // {samples, validate, handler}: from the extra (b) run when PROFILE=1

// perf record on pid until finishPerf; sampled call graphs (dwarf), so the
// inclusive share of schema_validate is known.
function startPerf(pid) {
  const file = path.join(os.tmpdir(), `herald-schema-publish-${process.pid}.perf`);
  const proc = spawn('perf', ['record', '-q', '-F', '499', '--call-graph', 'dwarf,16384', '-p', String(pid), '-o', file],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  proc.on('error', (e) => { err += e.message; });
  return { proc, file, exited, err: () => err };
}

// Stops perf and reads the inclusive (children) shares from its report.
async function finishPerf(p) {
  p.proc.kill('SIGINT');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, 20000))]);
  try {
    const report = execFileSync('perf', ['report', '-i', p.file, '--children', '--stdio', '--sort', 'sym'],
      { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'], timeout: 120000 });
    const share = (sym) => {
      const m = new RegExp(`^\\s+([0-9.]+)%\\s+[0-9.]+%\\s+\\[\\.\\] ${sym}\\s*$`, 'm').exec(report);
      return m ? Number(m[1]) / 100 : NaN;
    };
    const samples = /of event '[^']*'\n# Event count[^\n]*|# Samples: (\S+)/.exec(report);
    return { samples: samples && samples[1], validate: share('schema_validate'), handler: share('publish') };
  } catch (e) {
    return { error: `perf failed: ${e.message.split('\n')[0]} ${p.err().split('\n')[0]}` };
  } finally {
    fs.rmSync(p.file, { force: true });
  }
}

// Runs schema_bench on the same schema and instance; returns its summary medians.
function schemaBench() {
  return new Promise((resolve, reject) => {
    execFile(SCHEMA_BENCH, [SCHEMA, INSTANCE, ...BENCH_ARGS], { timeout: BENCH_MS, cwd: ROOT }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${SCHEMA_BENCH} failed: ${err.message}\n${stderr}`));
      const line = stdout.split('\n').find((l) => l.startsWith('summary: '));
      if (!line) return reject(new Error(`${SCHEMA_BENCH}: no summary line in:\n${stdout}`));
      const out = {};
      for (const kv of line.slice(9).split(' ')) {
        const [k, v] = kv.split('=');
        out[k] = Number(v);
      }
      resolve(out);
    });
  });
}

const pct = (x) => `${(x * 100).toFixed(1)}%`;
const verdict = (share) => (share < TARGET ? 'met' : 'NOT met');

async function main() {
  for (const f of [HERALDD, SCHEMA_BENCH]) {
    if (!fs.existsSync(f)) throw new Error(`${f} not found: build first (cmake --build build -j2)`);
  }
  const body = Buffer.from(JSON.stringify(JSON.parse(fs.readFileSync(INSTANCE, 'utf8'))));
  const runDeadline = Date.now() + TOTAL_MS;
  console.log(`${ROUNDS} rounds x 2 servers: ${EVENTS} publishes of ${body.length} bytes to ${TOPIC} after ${WARMUP} ` +
    `warm-up publishes, ${CONCURRENCY} keep-alive requests in flight; server CPU from /proc/PID/stat (1/${TICK} s ticks)`);
  const a = [], b = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [true, false] : [false, true]; // (a)(b), then (b)(a): drift hits both alike
    for (const withRules of order) {
      if (Date.now() + ROUND_MS > runDeadline) throw new Error(`the whole run would pass ${TOTAL_MS / 1000} s; use fewer events or rounds`);
      const m = await measure(withRules, body, Math.min(Date.now() + ROUND_MS, runDeadline));
      (withRules ? b : a).push(m.usPerPublish);
      console.log(`round ${r + 1} ${withRules ? '(b) schema rule' : '(a) no rules  '}: ${Math.round(m.rate)} publishes/s, ` +
        `server ${m.cpu.toFixed(2)} CPU-s in ${m.secs.toFixed(2)} s = ${m.usPerPublish.toFixed(2)} CPU-us per publish`);
    }
    console.log(`round ${r + 1}: validation ${(b[r] - a[r]).toFixed(2)} CPU-us per publish, ${pct((b[r] - a[r]) / b[r])} of (b)`);
  }
  const ma = median(a), mb = median(b), diff = mb - ma, share = diff / mb;
  const diffs = a.map((x, i) => b[i] - x);
  const shares = diffs.map((d, i) => d / b[i]); // paired: (a) and (b) of a round ran back to back
  const pairShare = median(shares);
  // On a shared machine CPU-us per publish drifts by tens of percent between
  // rounds, so b - a gets a verdict only when the middle half of the
  // per-round shares lies on one side of the target.
  const q1 = quantile(shares, 0.25), q3 = quantile(shares, 0.75);
  const endToEnd = q3 < TARGET ? 'met' : q1 >= TARGET ? 'NOT met' : 'not resolved';

  if (PROFILE) {
    console.log('\none more (b) run under perf record (not counted above)...');
    await measure(true, body, Math.min(Date.now() + ROUND_MS, runDeadline), true);
  }
  console.log(`\nrunning ${path.relative(ROOT, SCHEMA_BENCH)} ${BENCH_ARGS.join(' ')} on the same schema and instance...`);
  const sb = await schemaBench();
  const direct = sb.validate_ns / 1000 / mb;

  console.log(`\nmedian of ${ROUNDS} rounds, server CPU-us per publish of a ${body.length}-byte event:`);
  console.log(`  (a) no topic rules:            ${ma.toFixed(2)}`);
  console.log(`  (b) orders.> -> order.json:    ${mb.toFixed(2)}`);
  console.log(`  b - a (validation):            ${diff.toFixed(2)}  = ${pct(share)} of (b)  (median of per-round shares: ${pct(pairShare)})`);
  console.log(`  spread over rounds: (a) ${Math.min(...a).toFixed(1)}-${Math.max(...a).toFixed(1)}, (b) ${Math.min(...b).toFixed(1)}-${Math.max(...b).toFixed(1)}, ` +
    `b - a ${Math.min(...diffs).toFixed(1)} to ${Math.max(...diffs).toFixed(1)}; per-round shares, middle half: ${pct(q1)} to ${pct(q3)}`);
  console.log(`schema_bench medians: ${sb.validate_ns.toFixed(0)} ns per quiet validation (${Math.round(sb.validations_per_s)}/s), ` +
    `${sb.parse_ns.toFixed(0)} ns json_loadb, ${sb.parse_validate_ns.toFixed(0)} ns parse+validate`);
  console.log(`  direct estimate: ${(sb.validate_ns / 1000).toFixed(2)} us / ${mb.toFixed(2)} us = ${pct(direct)} of (b)`);
  if (profile && profile.error) console.log(`  in-process profile: ${profile.error}`);
  else if (profile) {
    console.log(`  in-process profile of an extra (b) run (perf, ${profile.samples} samples, inclusive): schema_validate ` +
      `${pct(profile.validate)} of heraldd's CPU, ${pct(profile.validate / profile.handler)} of the publish handler ` +
      `(${pct(profile.handler)} of heraldd)`);
  }
  console.log(`\ntarget: validation under ${pct(TARGET)} of the REST publish path: ` +
    `${endToEnd} by b - a (${pct(share)}; per-round shares ${pct(q1)} to ${pct(q3)})` +
    `${endToEnd === 'not resolved' ? ', too noisy here: more rounds or a quieter machine' : ''}; ` +
    `${verdict(direct)} by the direct estimate (${pct(direct)})` +
    `${profile && !profile.error ? `; ${verdict(profile.validate)} by the in-process profile (${pct(profile.validate)} of heraldd)` : ''}`);
}

// The last resort if something hangs past the run's deadline.
const watchdog = setTimeout(() => {
  console.error(`schema_publish: gave up after ${(TOTAL_MS + BENCH_MS) / 1000} s`);
  for (const h of running) h.proc.kill('SIGKILL');
  process.exit(1);
}, TOTAL_MS + BENCH_MS);
watchdog.unref();

main().then(() => clearTimeout(watchdog), (e) => {
  console.error('schema_publish: FAILED: ' + (e && e.message ? e.message : e));
  for (const h of running) h.proc.kill('SIGKILL');
  process.exit(1);
});
