#!/usr/bin/env node
// Memory per 100,000 logged events (docs/performance.md#history): starts
// heraldd (HERALDD, default build/heraldd) on loopback once per history
// mode, publishes N events (default 100,000) of a ~100-byte body over REST
// with no subscriber, and prints the growth of its resident set from before
// the first publish to after the last, next to the same run with history off
// (what publishing costs without a log). Bounded: N events, 16 requests in
// flight, 300 s at most per mode.
//   node bench/history_mem.js [--events N] [--modes off,memory,durable]
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');

const HERALDD = path.resolve(process.env.HERALDD || path.join(__dirname, '../build/heraldd'));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const N = Number(opt('--events', '100000'));
const MODES = opt('--modes', 'off,memory,durable').split(',');
const INFLIGHT = 16;
const LIMIT_MS = 300000;

const HISTORY = {
  off: { enabled: false },
  memory: { enabled: true, durable: false, max_events: 0, max_bytes: 0, max_age_s: 0 },
  durable: { enabled: true, durable: true, max_events: 0, max_bytes: 0, max_age_s: 0 },
};

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

async function start(mode) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-histmem-'));
  const cfg = {
    client: { listen: '127.0.0.1:0', workers: 1 },
    api: { listen: '127.0.0.1:0', rate_per_s: 0 },
    history: HISTORY[mode],
    data_dir: path.join(dir, 'var'),
    log_level: 'info',
  };
  fs.writeFileSync(path.join(dir, 'herald.json'), JSON.stringify(cfg));
  const proc = spawn(HERALDD, ['-c', path.join(dir, 'herald.json')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let buf = '';
  const api = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('heraldd did not start: ' + buf)), 20000);
    proc.stderr.on('data', (d) => {
      buf += d;
      const m = /event=listening port=api addr=(\S+)/.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    proc.on('exit', (c) => reject(new Error('heraldd exited ' + c + ': ' + buf)));
  });
  return { proc, dir, api };
}

function post(agent, api, i) {
  const [host, port] = [api.slice(0, api.lastIndexOf(':')), api.slice(api.lastIndexOf(':') + 1)];
  const body = JSON.stringify({ n: i, pad: 'x'.repeat(80) });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, agent, method: 'POST', path: `/v1/topics/mem.t${i % 100}/events`,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error('status ' + res.statusCode))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(mode) {
  const s = await start(mode);
  const deadline = Date.now() + LIMIT_MS;
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: INFLIGHT });
    // a few publishes first, so the answer paths are warm
    for (let i = 0; i < 200; i++) await post(agent, s.api, i);
    await new Promise((r) => setTimeout(r, 500));
    const before = rssKiB(s.proc.pid);
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: INFLIGHT }, async () => {
        while (next < N && Date.now() < deadline) await post(agent, s.api, next++);
      }),
    );
    const secs = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssKiB(s.proc.pid);
    agent.destroy();
    return { mode, events: next, before, after, secs };
  } finally {
    s.proc.kill('SIGTERM');
    await new Promise((r) => s.proc.once('exit', r));
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}

(async () => {
  const rows = [];
  for (const m of MODES) rows.push(await run(m));
  const off = rows.find((r) => r.mode === 'off');
  console.log('mode     events   rss_before_KiB  rss_after_KiB  growth_KiB  per_100k_events_MiB  minus_off_MiB');
  for (const r of rows) {
    const growth = r.after - r.before;
    const per = (growth / r.events) * 100000 / 1024;
    const offPer = off ? ((off.after - off.before) / off.events) * 100000 / 1024 : 0;
    console.log(
      `${r.mode.padEnd(8)} ${String(r.events).padStart(7)} ${String(r.before).padStart(15)} ` +
      `${String(r.after).padStart(14)} ${String(growth).padStart(11)} ${per.toFixed(1).padStart(20)} ` +
      `${off && r !== off ? (per - offPer).toFixed(1).padStart(14) : '-'.padStart(14)}`,
    );
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
