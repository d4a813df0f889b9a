#!/usr/bin/env node
// A quick local measurement, not the real benchmark (that one has its own
// issue and a C load generator): starts heraldd on free loopback ports and
// reports (1) events/s delivered to 100 WebSocket subscribers of one topic
// while REST publishes run as fast as 32 keep-alive requests allow, with
// heraldd's CPU time per delivered message, and (2) heraldd's RSS growth per
// idle connection at 1,000 connections. Each scenario runs RUNS times and the
// median is printed. Bounded: fixed counts, and every wait has a timeout.
//   node bench/quick.js [events=20000] [runs=3]
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const http = require('node:http');
const { startHerald, Client } = require(path.join(__dirname, '../test/integration/lib/herald'));

const EVENTS = Number(process.argv[2] || 20000);
const RUNS = Number(process.argv[3] || 3);
const SUBSCRIBERS = 100, PARALLEL = 32, IDLE = 1000;
const TICK = 100; // clock ticks per second in /proc/PID/stat (USER_HZ)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime
}
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

async function fanout() {
  const h = await startHerald();
  try {
    const subs = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => Client.open(h.wsUrl)));
    await Promise.all(subs.map((c) => c.subscribe('bench.fanout')));
    // count only: keeping 2M parsed messages would measure node, not heraldd
    const counts = new Array(SUBSCRIBERS).fill(0);
    subs.forEach((c, i) => c.ws.on('message', () => counts[i]++));
    const body = JSON.stringify({ pad: 'x'.repeat(80) }); // ~100-byte payload
    const agent = new http.Agent({ keepAlive: true, maxSockets: PARALLEL });
    const cpu0 = cpuSeconds(h.proc.pid), t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next++ < EVENTS) {
        const status = await post(agent, h.apiAddr, '/v1/topics/bench.fanout/events', body);
        if (status !== 202) throw new Error('publish failed: ' + status);
      }
    }));
    const deadline = Date.now() + 60000;
    while (counts.some((n) => n < EVENTS + 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const delivered = counts.reduce((a, n) => a + n - 1, 0); // minus the subscribe ack
    const cpu = cpuSeconds(h.proc.pid) - cpu0;
    agent.destroy();
    await Promise.all(subs.map((c) => c.close()));
    return { rate: delivered / secs, publishRate: EVENTS / secs, cpuUsPerMsg: (cpu * 1e6) / delivered, lost: SUBSCRIBERS * EVENTS - delivered };
  } finally {
    await h.stop();
  }
}

async function idle() {
  const h = await startHerald();
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

(async () => {
  const f = [], m = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await fanout();
    f.push(r);
    console.log(`fanout run ${i + 1}: ${Math.round(r.rate)} msg/s delivered, ${Math.round(r.publishRate)} publishes/s, ${r.cpuUsPerMsg.toFixed(2)} server CPU-us/msg, lost ${r.lost}`);
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
