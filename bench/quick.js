#!/usr/bin/env node
// A quick local measurement, not the real benchmark (that one has its own
// issue and a C load generator): starts heraldd on free loopback ports and
// reports (1) events/s delivered to 100 WebSocket subscribers of one topic
// while 32 keep-alive REST publishers run as fast as the slowest subscriber
// keeps up (at most 2,000 events ahead of it), with
// heraldd's CPU time per delivered message, and (2) heraldd's RSS growth per
// idle connection at 1,000 connections. Each scenario runs RUNS times and the
// median is printed. Bounded: fixed counts, and every wait has a timeout.
//   node bench/quick.js [events=20000] [runs=3]
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const http = require('node:http');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { startHerald, Client } = require(path.join(__dirname, '../test/integration/lib/herald'));
const { cpuSeconds } = require('./lib/proc');

const EVENTS = Number(process.argv[2] || 20000);
const RUNS = Number(process.argv[3] || 3);
const SUBSCRIBERS = 100, PARALLEL = 32, IDLE = 1000, WINDOW = 2000;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function rssKiB(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// node's http module with keep-alive: several times faster than fetch here.
function post(agent, addr, urlPath, body) {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: addr.slice(0, i), port: Number(addr.slice(i + 1)), path: urlPath, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// The subscribers live in a worker thread, so that receiving and publishing
// do not queue behind each other on one event loop. Every 5 ms the thread
// reports the fewest events any subscriber has received so far.
function startSubscribers(wsUrl, n, topic) {
  const w = new Worker(__filename, { workerData: { wsUrl, n, topic } });
  const s = { min: 0, total: 0, stop: () => w.terminate() };
  s.ready = new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m === 'ready') return resolve();
      s.min = m.min;
      s.total = m.total;
    });
    w.once('error', reject);
  });
  return s;
}

function subscriberThread() {
  const { Client } = require(path.join(__dirname, '../test/integration/lib/herald'));
  const { wsUrl, n, topic } = workerData;
  (async () => {
    const subs = await Promise.all(Array.from({ length: n }, () => Client.open(wsUrl)));
    await Promise.all(subs.map((c) => c.subscribe(topic)));
    // count only: keeping millions of parsed messages would measure node, not heraldd
    const counts = new Array(n).fill(0);
    subs.forEach((c, i) => {
      c.ws.removeAllListeners('message');
      c.ws.on('message', () => counts[i]++);
    });
    setInterval(() => parentPort.postMessage({
      min: Math.min(...counts), total: counts.reduce((a, x) => a + x, 0),
    }), 5);
    parentPort.postMessage('ready');
  })();
}

async function fanout() {
  const h = await startHerald();
  const subs = startSubscribers(h.wsUrl, SUBSCRIBERS, 'bench.fanout');
  try {
    await subs.ready;
    const body = JSON.stringify({ pad: 'x'.repeat(80) }); // ~100-byte payload
    const agent = new http.Agent({ keepAlive: true, maxSockets: PARALLEL });
    const cpu0 = cpuSeconds(h.proc.pid), t0 = process.hrtime.bigint();
    let next = 0;
    const deadline = Date.now() + 120000;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < EVENTS && Date.now() < deadline) {
        // publish as fast as the slowest subscriber keeps up, WINDOW ahead at most
        if (next - subs.min > WINDOW) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        next++;
        const status = await post(agent, h.apiAddr, '/v1/topics/bench.fanout/events', body);
        if (status !== 202) throw new Error('publish failed: ' + status);
      }
    }));
    while (subs.min < EVENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSeconds(h.proc.pid) - cpu0;
    agent.destroy();
    return {
      rate: subs.total / secs,
      publishRate: EVENTS / secs,
      cpuUsPerMsg: (cpu * 1e6) / subs.total,
      lost: SUBSCRIBERS * EVENTS - subs.total,
      cut: h.logs.filter((l) => l.includes('event=slow_consumer')).length,
    };
  } finally {
    await subs.stop();
    await h.stop();
  }
}

async function idle() {
  // 1,000 connections from 127.0.0.1: the per-address limit (1,000) is off
  const h = await startHerald({ client: { max_connections_per_ip: 0 } });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const before = rssKiB(h.proc.pid);
    const clients = [];
    for (let i = 0; i < IDLE; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => Client.open(h.wsUrl)))));
    }
    await new Promise((r) => setTimeout(r, 500));
    const after = rssKiB(h.proc.pid);
    await Promise.all(clients.map((c) => c.close()));
    return { perConnKiB: (after - before) / IDLE, before, after };
  } finally {
    await h.stop();
  }
}

if (!isMainThread) {
  subscriberThread();
} else (async () => {
  const f = [], m = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await fanout();
    f.push(r);
    console.log(`fanout run ${i + 1}: ${Math.round(r.rate)} msg/s delivered, ${Math.round(r.publishRate)} publishes/s, ${r.cpuUsPerMsg.toFixed(2)} server CPU-us/msg, lost ${r.lost}, slow consumers cut ${r.cut}`);
  }
  for (let i = 0; i < RUNS; i++) {
    const r = await idle();
    m.push(r);
    console.log(`idle run ${i + 1}: RSS ${r.before} -> ${r.after} KiB, ${r.perConnKiB.toFixed(2)} KiB per connection`);
  }
  console.log(`\nmedian of ${RUNS}: ${Math.round(median(f.map((r) => r.rate)))} events/s delivered to ${SUBSCRIBERS} subscribers ` +
    `(${Math.round(median(f.map((r) => r.publishRate)))} REST publishes/s, ${median(f.map((r) => r.cpuUsPerMsg)).toFixed(2)} server CPU-us per delivered message); ` +
    `${median(m.map((r) => r.perConnKiB)).toFixed(2)} KiB RSS per idle connection at ${IDLE}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
