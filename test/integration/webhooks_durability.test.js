// Webhooks durability: what survives a kill -9, a full store, a restart;
// idempotent publishing; retention; seq restored from the store.
// Every heraldd here keeps its state in a data dir of the test's own
// (passed as the data_dir override), so it can be restarted on it.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const net = require('node:net');
const { startHerald, Client, publish, sleep, until } = require('./lib/herald');
const { api, createEndpoint, deliveries } = require('./lib/webhooks');

// ---- helpers ----

const WRAPPED = Boolean(process.env.HERALD_WRAPPER);

function tempDataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'herald-dur-'));
}

// The config of a heraldd with webhooks to loopback receivers.
function hookConfig(dataDir, webhooks = {}, extra = {}) {
  return {
    ...extra,
    data_dir: dataDir,
    webhooks: { allowed_cidrs: ['127.0.0.1/32'], schedule: [0, 1, 1], jitter_percent: 0, ...webhooks },
  };
}

// The pids below `pid`, deepest first (from /proc: ppid is the 2nd field after "comm").
function descendants(pid) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(d));
  }
  const out = [];
  const walk = (p) => {
    for (const c of children.get(p) || []) {
      walk(c);
      out.push(c);
    }
  };
  walk(pid);
  return out;
}

// kill -9 heraldd: the spawned process and, when it runs under a wrapper
// (HERALD_WRAPPER), every process below it, heraldd itself first.
async function killHard(h) {
  // without a wrapper the child is heraldd: kill it at once (walking /proc takes a while)
  for (const pid of WRAPPED ? [...descendants(h.proc.pid), h.proc.pid] : [h.proc.pid]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  const r = await h.exited;
  assert.equal(r.signal, 'SIGKILL', 'heraldd was killed, not stopped: ' + JSON.stringify(r));
}

// A webhook receiver on 127.0.0.1:0. mode: 'ok' answers 200 (after
// delayMs), 'hold' never answers. Records each request's webhook-id and
// the envelope it carried.
async function startReceiver({ mode = 'ok', delayMs = 0, port = 0 } = {}) {
  const r = {
    mode,
    delayMs,
    requests: 0,
    counts: new Map(), // webhook-id -> requests
    envelopes: new Map(), // webhook-id -> parsed body (the last one)
    held: new Set(),
  };
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const id = req.headers['webhook-id'];
      r.requests++;
      r.counts.set(id, (r.counts.get(id) || 0) + 1);
      try {
        r.envelopes.set(id, JSON.parse(Buffer.concat(chunks).toString()));
      } catch {
        r.envelopes.set(id, null);
      }
      if (r.mode === 'hold') {
        r.held.add(res);
        res.on('close', () => r.held.delete(res));
        return;
      }
      const answer = () => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
      };
      if (r.delayMs) setTimeout(answer, r.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  r.port = server.address().port;
  r.url = `http://127.0.0.1:${r.port}/hook`;
  r.close = async () => {
    for (const res of r.held) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return r;
}

// A loopback port with nothing listening on it (connection refused).
async function deadPort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}




// One POST over a given keep-alive agent; never rejects (err is set instead).
// onSent, if given, is called once the request is written out.
function post(agent, addr, topic, data, headers = {}, { timeoutMs = 15000, onSent } = {}) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  const body = typeof data === 'string' ? data : JSON.stringify(data);
  return new Promise((resolve) => {
    const req = http.request(
      {
        host,
        port,
        agent,
        method: 'POST',
        path: `/v1/topics/${topic}/events`,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString());
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode, body: json, headers: res.headers });
        });
        res.on('error', (err) => resolve({ err }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ err }));
    if (onSent) req.on('finish', onSent);
    req.end(body);
  });
}

// Runs the cleanups registered with it, last first, ignoring failures.
function cleanupStack() {
  const fns = [];
  return {
    add: (fn) => fns.push(fn),
    run: async () => {
      while (fns.length) {
        try {
          await fns.pop()();
        } catch {
          /* best effort */
        }
      }
    },
  };
}

// Stops heraldd and checks it exited cleanly (under HERALD_WRAPPER=valgrind,
// its verdict too).
async function stopClean(h) {
  const r = await h.stop();
  assert.deepEqual(r, { code: 0, signal: null }, 'heraldd exit:\n' + h.logs.slice(-15).join('\n'));
}

function stopQuietly(h) {
  return async () => {
    if (h) await h.stop();
  };
}

// Publishes {i, pad} to topic from `publishers` keep-alive connections
// (i from from(), until total) and kill -9s heraldd once killAfter are
// acknowledged, at a moment when publishes are in flight. onAck(r, i) sees
// every 202. Resolves with the indices whose publish failed at the kill.
async function publishUntilKilled(h, topic, { publishers, total, killAfter, from, headers = () => ({}) }, onAck) {
  let acks = 0;
  let sent = 0; // written out, not answered yet
  let killed = false;
  let killing = null;
  let armed = false;
  const failed = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: publishers });
  const kill = () => {
    if (killing) return;
    killed = true;
    killing = killHard(h); // SIGKILL is sent before this returns
  };
  const onSent = () => {
    sent++;
    // most publishers have a request on the wire: kill now
    if (armed && sent >= publishers / 2) kill();
  };
  const worker = async () => {
    while (!killed) {
      const i = from();
      if (i >= total) return;
      let counted = false;
      const r = await post(agent, h.apiAddr, topic, { i, pad: 'p'.repeat(64) }, headers(i), {
        onSent: () => {
          counted = true;
          onSent();
        },
      });
      if (counted) sent--;
      if (r.status === 202) {
        onAck(r, i);
        if (++acks >= killAfter && !armed) {
          armed = true;
          setTimeout(kill, 2000); // in case the wire is never that busy
        }
      } else if (killed) {
        failed.push(i); // in flight at the kill
      } else {
        killed = true; // stop the others
        await sleep(200);
        assert.fail(
          `publish ${i} before the kill: ${r.err ? r.err.message : r.status + ' ' + JSON.stringify(r.body)}; ` +
            `heraldd exit=${h.proc.exitCode} signal=${h.proc.signalCode}\n${h.logs.slice(-10).join('\n')}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: publishers }, worker));
  agent.destroy();
  assert.ok(killing, 'the kill happened');
  await killing;
  return { failed };
}

// ---- 1. crash safety ----

test('kill -9 while publishing and delivering: every acknowledged event is delivered after restart', { timeout: 150000 }, async () => {
  // smaller under a wrapper such as valgrind, which runs heraldd ~30 times slower
  const TOTAL = WRAPPED ? 600 : 3000;
  const PUBLISHERS = 16;
  const KILL_AFTER = WRAPPED ? 200 : 1000;
  const TOPIC = 'crash.orders';
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    // a receiver a little slower than the publishers, so a backlog is queued at the kill
    const recv = await startReceiver({ delayMs: 2 });
    c.add(recv.close);
    const config = hookConfig(dataDir);
    const h1 = await startHerald(config);
    c.add(stopQuietly(h1));
    const ep = await createEndpoint(h1, { url: recv.url, topics: ['crash.>'] });

    const acked = new Map(); // event id -> {i, seq, phase}
    let next = 0;
    const run = await publishUntilKilled(h1, TOPIC, { publishers: PUBLISHERS, total: TOTAL, killAfter: KILL_AFTER, from: () => next++ }, (r, i) => {
      assert.equal(r.body.topic, TOPIC);
      assert.ok(!acked.has(r.body.id), 'ids are unique');
      acked.set(r.body.id, { i, seq: r.body.seq, phase: 1 });
    });
    const failedAtKill = run.failed.length;
    const ackedBefore = acked.size;
    assert.ok(ackedBefore >= KILL_AFTER);
    const receivedAtKill = recv.counts.size;
    const maxSeqBefore = Math.max(...[...acked.values()].map((a) => a.seq));
    // every acknowledged event took a seq of its own
    assert.equal(maxSeqBefore >= ackedBefore, true);

    // restart on the same data dir: the endpoint and the queue are in the store
    const h2 = await startHerald(config);
    c.add(stopQuietly(h2));
    const rec = h2.logs.map((l) => /event=webhooks_recovered topics=(\d+) requeued_in_flight=(\d+)/.exec(l)).find(Boolean);
    assert.ok(rec, 'the recovery is logged');
    assert.equal(Number(rec[1]), 1, 'one topic seq restored');
    const requeued = Number(rec[2]);

    // publish the rest to the restarted daemon: seq continues above what was acknowledged
    const agent2 = new http.Agent({ keepAlive: true, maxSockets: PUBLISHERS });
    const firstSeqsAfter = [];
    const worker2 = async () => {
      while (next < TOTAL) {
        const i = next++;
        const r = await post(agent2, h2.apiAddr, TOPIC, { i, pad: 'p'.repeat(64) });
        assert.equal(r.status, 202, `publish ${i} after the restart: ${r.err ? r.err.message : JSON.stringify(r.body)}`);
        assert.ok(!acked.has(r.body.id), 'ids are unique');
        acked.set(r.body.id, { i, seq: r.body.seq, phase: 2 });
        firstSeqsAfter.push(r.body.seq);
      }
    };
    await Promise.all(Array.from({ length: PUBLISHERS }, worker2));
    agent2.destroy();
    const minSeqAfter = Math.min(...firstSeqsAfter);
    assert.ok(minSeqAfter > maxSeqBefore, `seq after the restart (${minSeqAfter}) continues above the last acknowledged (${maxSeqBefore})`);
    const seqs = new Set([...acked.values()].map((a) => a.seq));
    assert.equal(seqs.size, acked.size, 'no seq given twice');

    // every acknowledged event reaches the receiver at least once
    const missing = () => [...acked.keys()].filter((id) => !recv.counts.has(id));
    try {
      await until(() => missing().length === 0, { timeoutMs: 60000, stepMs: 100 });
    } catch {
      assert.fail(`${missing().length} acknowledged events never delivered, e.g. ${missing().slice(0, 3)}`);
    }
    // and with the body it was published with
    for (const [id, a] of acked) {
      const env = recv.envelopes.get(id);
      assert.equal(env.id, id);
      assert.equal(env.type, TOPIC);
      assert.equal(env.seq, a.seq, `seq of ${id}`);
      assert.equal(env.data.i, a.i, `data of ${id}`);
    }
    // the queue drains: nothing left pending or failed
    await until(async () => (await deliveries(h2, ep.id, 'pending')).length === 0, { timeoutMs: 30000, stepMs: 200 });
    assert.equal((await deliveries(h2, ep.id, 'failed')).length, 0);
    const unacked = [...recv.counts.keys()].filter((id) => !acked.has(id));
    const duplicates = recv.requests - recv.counts.size;
    console.log(
      `crash: acknowledged=${acked.size} received_unique=${recv.counts.size} duplicates=${duplicates} ` +
        `acknowledged_before_kill=${ackedBefore} failed_in_flight=${failedAtKill} committed_unacknowledged=${unacked.length} ` +
        `received_at_kill=${receivedAtKill} requeued_in_flight=${requeued} seq_before=${maxSeqBefore} seq_after_from=${minSeqAfter}`,
    );
    // an event that was received but never acknowledged was committed before the kill
    for (const id of unacked) {
      const env = recv.envelopes.get(id);
      assert.ok(env.seq <= maxSeqBefore + failedAtKill && env.seq < minSeqAfter, `unacknowledged ${id} seq ${env.seq}`);
    }
    assert.ok(receivedAtKill < ackedBefore, `a backlog was being delivered at the kill (${receivedAtKill} of ${ackedBefore} received)`);
    await stopClean(h2);
  } finally {
    await c.run();
  }
});

test('publishes in flight at a kill -9, retried with their Idempotency-Key after the restart, are published exactly once', { timeout: 120000 }, async () => {
  const TOPIC = 'ikill.orders';
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const recv = await startReceiver();
    c.add(recv.close);
    const config = hookConfig(dataDir);
    const h1 = await startHerald(config);
    c.add(stopQuietly(h1));
    const ep = await createEndpoint(h1, { url: recv.url, topics: ['ikill.>'] });
    const byIndex = new Map(); // i -> the 202 body
    let next = 0;
    const keyOf = (i) => ({ 'Idempotency-Key': `order-${i}` });
    const { failed } = await publishUntilKilled(
      h1,
      TOPIC,
      { publishers: 16, total: 1500, killAfter: 400, from: () => next++, headers: keyOf },
      (r, i) => byIndex.set(i, r.body),
    );
    const ackedBefore = byIndex.size;

    const h2 = await startHerald(config);
    c.add(stopQuietly(h2));
    // the client retries what failed, with the same key and body
    let replayed = 0;
    const agent = new http.Agent({ keepAlive: true });
    c.add(() => agent.destroy());
    for (const i of failed) {
      const r = await post(agent, h2.apiAddr, TOPIC, { i, pad: 'p'.repeat(64) }, keyOf(i));
      assert.equal(r.status, 202, `retry of ${i}: ${r.err ? r.err.message : JSON.stringify(r.body)}`);
      if (r.headers['idempotent-replayed'] === 'true') replayed++;
      byIndex.set(i, r.body);
    }
    // a retry of an acknowledged one is a replay too
    const [i0, b0] = byIndex.entries().next().value;
    const again = await post(agent, h2.apiAddr, TOPIC, { i: i0, pad: 'p'.repeat(64) }, keyOf(i0));
    assert.equal(again.status, 202);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.body, b0);

    const ids = new Set([...byIndex.values()].map((b) => b.id));
    assert.equal(ids.size, byIndex.size, 'one event per index');
    try {
      await until(() => [...ids].every((id) => recv.counts.has(id)), { timeoutMs: 30000, stepMs: 100 });
    } catch {
      assert.fail(`${[...ids].filter((id) => !recv.counts.has(id)).length} acknowledged events never delivered`);
    }
    await until(async () => (await deliveries(h2, ep.id, 'pending')).length === 0, { timeoutMs: 30000, stepMs: 200 });
    // exactly once: the receiver got no event that was not acknowledged to the client
    const orphans = [...recv.counts.keys()].filter((id) => !ids.has(id));
    assert.deepEqual(orphans, [], 'events published twice (once before the kill, once at the retry)');
    for (const [i, b] of byIndex) assert.equal(recv.envelopes.get(b.id).data.i, i);
    console.log(
      `crash+idempotency: acknowledged_before=${ackedBefore} failed_at_kill=${failed.length} replayed=${replayed} ` +
        `fresh=${failed.length - replayed} received_unique=${recv.counts.size} duplicates=${recv.requests - recv.counts.size}`,
    );
    await stopClean(h2);
  } finally {
    await c.run();
  }
});

// ---- 2. a delivery in flight at the crash ----

test('a delivery in flight at a kill -9 is sent again after the restart and recorded delivered', { timeout: 60000 }, async () => {
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const recv = await startReceiver({ mode: 'hold' });
    c.add(recv.close);
    const config = hookConfig(dataDir, { request_timeout_ms: 60000 });
    const h1 = await startHerald(config);
    c.add(stopQuietly(h1));
    const ep = await createEndpoint(h1, { url: recv.url, topics: ['inflight.*'] });
    const r = await publish(h1, 'inflight.a', { n: 1 });
    assert.equal(r.status, 202);
    const id = r.body.id;
    await until(() => recv.counts.get(id) === 1, { timeoutMs: 10000 });
    assert.equal(recv.held.size, 1, 'the request is held open');
    const before = await deliveries(h1, ep.id);
    assert.equal(before.length, 1);
    assert.equal(before[0].event_id, id);
    assert.equal(before[0].status, 'pending');
    assert.deepEqual(before[0].attempts, []);

    await killHard(h1);
    // the receiver answers from now on
    recv.mode = 'ok';
    const h2 = await startHerald(config);
    c.add(stopQuietly(h2));
    assert.ok(h2.logs.some((l) => /event=webhooks_recovered .*requeued_in_flight=1\b/.test(l)), h2.logs.join('\n'));
    await until(() => recv.counts.get(id) === 2, { timeoutMs: 10000 });
    await until(async () => (await deliveries(h2, ep.id, 'delivered')).length === 1, { timeoutMs: 10000 });
    const [d] = await deliveries(h2, ep.id, 'delivered');
    assert.equal(d.event_id, id);
    assert.equal(d.topic, 'inflight.a');
    assert.equal(d.seq, 1);
    assert.equal(d.attempts.length, 1, JSON.stringify(d.attempts));
    assert.equal(d.attempts[0].http_status, 200);
    assert.equal(recv.envelopes.get(id).data.n, 1);
    await sleep(300);
    assert.equal(recv.counts.get(id), 2, 'not sent again once delivered');
    await stopClean(h2);
  } finally {
    await c.run();
  }
});

// ---- 3. store full ----

// 60 KiB events: 1 MiB of store holds about 16 of them.
const BIG = 60 * 1024;
const fullConfig = (dataDir, schedule) =>
  hookConfig(dataDir, { store_max_mb: 1, schedule }, { api: { max_body_bytes: 262144 } });

// Publishes big events to `topic` until one is refused; returns {accepted, refused}.
async function fillStore(h, topic) {
  const accepted = [];
  for (let i = 0; i < 60; i++) {
    const r = await publish(h, topic, { i, blob: 'x'.repeat(BIG) });
    if (r.status !== 202) return { accepted, refused: { i, ...r } };
    accepted.push(r.body);
  }
  assert.fail(`no publish was refused after ${accepted.length} events of 60 KiB in a 1 MiB store`);
}

test('a full store refuses publishes that need it with 503 store_full, all or nothing', { timeout: 60000 }, async () => {
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const port = await deadPort();
    // the receiver is down; its one retry is an hour away
    const h = await startHerald(fullConfig(dataDir, [0, 3600]));
    c.add(stopQuietly(h));
    const ep = await createEndpoint(h, { url: `http://127.0.0.1:${port}/down`, topics: ['full.>'] });
    const ws = await Client.open(h.wsUrl);
    c.add(() => ws.close());
    await ws.subscribe('full.big');
    await ws.subscribe('free.topic');

    const { accepted, refused } = await fillStore(h, 'full.big');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.ok(accepted.length >= 5 && accepted.length <= 17, `accepted ${accepted.length} before the store was full`);
    // still full: the next one is refused too
    const again = await publish(h, 'full.big', { i: 'again', blob: 'y'.repeat(BIG) });
    assert.equal(again.status, 503, JSON.stringify(again.body));

    // a topic no endpoint matches needs no store: still published
    const free = await publish(h, 'free.topic', { free: true });
    assert.equal(free.status, 202, JSON.stringify(free.body));
    await ws.waitFor((m) => m.op === 'event' && m.id === free.body.id, { timeoutMs: 5000 });
    // with an Idempotency-Key it needs a (small) row in the store: fill what is left
    const keyedOk = [];
    let keyedRefused = null;
    for (let n = 0; n < 5000 && !keyedRefused; n++) {
      const r = await publish(h, 'free.topic', { n }, { headers: { 'Idempotency-Key': `fill-${n}` } });
      if (r.status === 202) keyedOk.push(r.body);
      else keyedRefused = { n, ...r };
    }
    assert.ok(keyedRefused, 'keyed publishes never filled the store');
    assert.equal(keyedRefused.status, 503, JSON.stringify(keyedRefused.body));
    assert.equal(keyedRefused.body.error.code, 'store_full', JSON.stringify(keyedRefused.body));
    // the refused key was not kept: trying it again is not a replay
    const retried = await publish(h, 'free.topic', { n: keyedRefused.n }, { headers: { 'Idempotency-Key': `fill-${keyedRefused.n}` } });
    assert.equal(retried.status, 503);
    if (keyedOk.length) {
      const replay = await publish(h, 'free.topic', { n: 0 }, { headers: { 'Idempotency-Key': 'fill-0' } });
      assert.equal(replay.status, 202);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(replay.body, keyedOk[0]);
    }
    // without a key: still published
    const free2 = await publish(h, 'free.topic', { free: 2 });
    assert.equal(free2.status, 202, JSON.stringify(free2.body));
    await ws.waitFor((m) => m.op === 'event' && m.id === free2.body.id, { timeoutMs: 5000 });
    assert.deepEqual(
      ws.events().filter((e) => e.topic === 'free.topic').map((e) => e.id),
      [free.body.id, ...keyedOk.map((b) => b.id), free2.body.id],
      'the subscriber got exactly the accepted events',
    );
    // the WebSocket subscriber got exactly the accepted events
    await until(() => ws.events().filter((e) => e.topic === 'full.big').length >= accepted.length, { timeoutMs: 5000 });
    await sleep(300);
    const got = ws.events().filter((e) => e.topic === 'full.big');
    assert.deepEqual(got.map((e) => e.id), accepted.map((a) => a.id));
    assert.deepEqual(got.map((e) => e.data.i), accepted.map((_, i) => i));
    // the deliveries are those of the accepted events only, each attempted once
    const all = await deliveries(h, ep.id);
    assert.deepEqual(new Set(all.map((d) => d.event_id)), new Set(accepted.map((a) => a.id)));
    assert.equal(all.length, accepted.length);
    console.log(`store_full: accepted=${accepted.length} refused_at=${refused.i} codes=${refused.body.error.code},${again.body.error.code} keyed_small_accepted_after=${keyedOk.length}`);
    // the refusal names the cause
    assert.equal(refused.body.error.code, 'store_full', JSON.stringify(refused.body));
    assert.equal(again.body.error.code, 'store_full', JSON.stringify(again.body));
    await stopClean(h);
  } finally {
    await c.run();
  }
});

test('refused publishes while the store is full do not strand retries: all accepted events are delivered when the receiver is back', { timeout: 60000 }, async () => {
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const port = await deadPort();
    // retried every second while the receiver is down
    const h = await startHerald(fullConfig(dataDir, Array(30).fill(1)));
    c.add(stopQuietly(h));
    const ep = await createEndpoint(h, { url: `http://127.0.0.1:${port}/hook`, topics: ['full.>'] });
    const { accepted } = await fillStore(h, 'full.big');
    // keep publishing (refused) while the retries come round
    const statuses = new Map();
    const end = Date.now() + 2500;
    while (Date.now() < end) {
      const r = await publish(h, 'full.big', { blob: 'z'.repeat(BIG) });
      statuses.set(r.status, (statuses.get(r.status) || 0) + 1);
      await sleep(5);
    }
    assert.deepEqual([...statuses.keys()], [503], JSON.stringify([...statuses]));
    // the receiver comes up on the endpoint's port
    const recv = await startReceiver({ port });
    c.add(recv.close);
    const missing = () => accepted.filter((a) => !recv.counts.has(a.id));
    try {
      await until(() => missing().length === 0, { timeoutMs: 15000, stepMs: 100 });
    } catch {
      const stuck = (await deliveries(h, ep.id, 'pending')).map((d) => `${d.id}:${d.attempts.length} attempts, next ${d.next_attempt_at}`);
      assert.fail(`${missing().length} of ${accepted.length} accepted events never delivered (stuck: ${stuck.join('; ')})`);
    }
    await until(async () => (await deliveries(h, ep.id, 'delivered')).length === accepted.length, { timeoutMs: 10000 });
    await stopClean(h);
  } finally {
    await c.run();
  }
});

// ---- 4. idempotency ----

test('Idempotency-Key: replay, conflicts, invalid keys, concurrency, and across a restart', { timeout: 90000 }, async () => {
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const recv = await startReceiver();
    c.add(recv.close);
    const config = hookConfig(dataDir);
    const h1 = await startHerald(config);
    c.add(stopQuietly(h1));
    const ep = await createEndpoint(h1, { url: recv.url, topics: ['idem.>'] });
    const ws = await Client.open(h1.wsUrl);
    c.add(() => ws.close());
    await ws.subscribe('idem.>');
    await ws.subscribe('plain.>');
    const key = (k) => ({ headers: { 'Idempotency-Key': k } });

    // same key, same body: the original answer again, nothing published
    const first = await publish(h1, 'idem.a', { n: 1 }, key('k-one'));
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const again = await publish(h1, 'idem.a', { n: 1 }, key('k-one'));
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);
    // the same JSON with other spacing is the same body
    const spaced = await publish(h1, 'idem.a', '{ "n" :  1 }', { raw: true, ...key('k-one') });
    assert.equal(spaced.status, 202);
    assert.equal(spaced.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(spaced.body, first.body);

    // same key, another body or another topic: 409
    const otherBody = await publish(h1, 'idem.a', { n: 2 }, key('k-one'));
    assert.equal(otherBody.status, 409);
    assert.equal(otherBody.body.error.code, 'idempotency_conflict');
    const otherTopic = await publish(h1, 'idem.b', { n: 1 }, key('k-one'));
    assert.equal(otherTopic.status, 409);
    assert.equal(otherTopic.body.error.code, 'idempotency_conflict');

    // invalid keys: 400, nothing published
    const agent = new http.Agent({ keepAlive: false });
    for (const bad of ['', 'k'.repeat(256), 'a b', 'a\tb', 'caf\u00e9']) {
      const r = await post(agent, h1.apiAddr, 'idem.a', { bad: true }, { 'Idempotency-Key': bad });
      assert.equal(r.status, 400, `key ${JSON.stringify(bad)}: ${JSON.stringify(r.body || r.err)}`);
      assert.equal(r.body.error.code, 'invalid_idempotency_key');
    }
    // 255 visible characters is a key
    const longest = await publish(h1, 'idem.a', { n: 3 }, key('~'.repeat(255)));
    assert.equal(longest.status, 202);

    // ten identical requests at once (on ten open connections): exactly one event
    const pool = new http.Agent({ keepAlive: true, maxSockets: 10 });
    c.add(() => pool.destroy());
    const warm = await Promise.all(Array.from({ length: 10 }, (_, i) => post(pool, h1.apiAddr, 'warmup.x', { i })));
    assert.deepEqual(warm.map((r) => r.status), Array(10).fill(202));
    const burst = await Promise.all(Array.from({ length: 10 }, () => post(pool, h1.apiAddr, 'idem.burst', { b: 1 }, { 'Idempotency-Key': 'k-burst' })));
    for (const r of burst) {
      assert.ok(r.status === 202 || (r.status === 409 && r.body.error.code === 'idempotency_in_progress'), JSON.stringify(r.body || r.err));
    }
    const burstOk = burst.filter((r) => r.status === 202);
    const burstIds = new Set(burstOk.map((r) => r.body.id));
    assert.equal(burstIds.size, 1, `distinct ids: ${[...burstIds]}`);
    const burstId = [...burstIds][0];
    // the one that published is the one not marked replayed
    assert.equal(burstOk.filter((r) => r.headers['idempotent-replayed'] !== 'true').length, 1);
    console.log(`idempotency burst: 202=${burstOk.length} 409_in_progress=${burst.length - burstOk.length}`);

    // a key on a topic no endpoint matches
    const plain = await publish(h1, 'plain.x', { p: 1 }, key('k-plain'));
    assert.equal(plain.status, 202);
    const plainAgain = await publish(h1, 'plain.x', { p: 1 }, key('k-plain'));
    assert.equal(plainAgain.status, 202);
    assert.equal(plainAgain.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(plainAgain.body, plain.body);

    // what the subscriber and the receiver saw: each event once
    const expected = [first.body.id, longest.body.id, burstId, plain.body.id];
    await until(() => ws.events().length >= expected.length, { timeoutMs: 5000 });
    await until(() => [first.body.id, longest.body.id, burstId].every((id) => recv.counts.has(id)), { timeoutMs: 10000 });
    await sleep(300);
    assert.deepEqual(ws.events().map((e) => e.id).sort(), [...expected].sort());
    assert.equal(recv.requests, 3, JSON.stringify([...recv.counts]));
    for (const id of [first.body.id, longest.body.id, burstId]) assert.equal(recv.counts.get(id), 1);
    assert.equal(recv.counts.has(plain.body.id), false);
    // the deliveries are recorded before the kill, so none is sent again after it
    await until(async () => (await deliveries(h1, ep.id, 'delivered')).length === 3, { timeoutMs: 10000 });

    // kill -9 and restart: the keys are on disk
    await killHard(h1);
    const h2 = await startHerald(config);
    c.add(stopQuietly(h2));
    const ws2 = await Client.open(h2.wsUrl);
    c.add(() => ws2.close());
    await ws2.subscribe('idem.>');
    await ws2.subscribe('plain.>');
    for (const [topic, data, k, orig] of [
      ['idem.a', { n: 1 }, 'k-one', first.body],
      ['idem.burst', { b: 1 }, 'k-burst', burstOk[0].body],
      ['plain.x', { p: 1 }, 'k-plain', plain.body],
    ]) {
      const r = await publish(h2, topic, data, key(k));
      assert.equal(r.status, 202, `${k}: ${JSON.stringify(r.body)}`);
      assert.equal(r.headers.get('idempotent-replayed'), 'true', k);
      assert.deepEqual(r.body, orig, k);
    }
    const conflict = await publish(h2, 'idem.a', { n: 9 }, key('k-one'));
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'idempotency_conflict');
    // a new key after the restart publishes (seq continues on idem.a: 1 and 2 were taken)
    const fresh = await publish(h2, 'idem.a', { n: 4 }, key('k-fresh'));
    assert.equal(fresh.status, 202);
    assert.equal(fresh.headers.get('idempotent-replayed'), null);
    assert.equal(fresh.body.seq, 3);
    await ws2.waitFor((m) => m.op === 'event' && m.id === fresh.body.id);
    await until(() => recv.counts.has(fresh.body.id), { timeoutMs: 10000 });
    await sleep(300);
    assert.deepEqual(ws2.events().map((e) => e.id), [fresh.body.id], 'replays after the restart publish nothing');
    assert.equal(recv.requests, 4, JSON.stringify([...recv.counts]));
    await stopClean(h2);
  } finally {
    await c.run();
  }
});

// ---- 5. retention ----

test('retention: delivered deliveries are pruned after retention_s, pending ones are kept', { timeout: 60000 }, async () => {
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const recv = await startReceiver();
    c.add(recv.close);
    const port = await deadPort();
    const h = await startHerald(hookConfig(dataDir, { retention_s: 2, schedule: [0, 3600] }));
    c.add(stopQuietly(h));
    const good = await createEndpoint(h, { url: recv.url, topics: ['ret.>'] });
    const down = await createEndpoint(h, { url: `http://127.0.0.1:${port}/down`, topics: ['ret.>'] });
    const r = await publish(h, 'ret.a', { n: 1 });
    assert.equal(r.status, 202);
    await until(async () => (await deliveries(h, good.id, 'delivered')).some((d) => d.event_id === r.body.id), { timeoutMs: 10000 });
    // the failed attempt of the other endpoint is recorded; the delivery stays pending (next try in an hour)
    await until(async () => (await deliveries(h, down.id, 'pending')).some((d) => d.attempts.length === 1), { timeoutMs: 10000 });
    const t0 = Date.now();
    await until(async () => (await deliveries(h, good.id)).length === 0, { timeoutMs: 15000, stepMs: 200 });
    const gone = Date.now() - t0;
    assert.ok(gone >= 500, `pruned after ${gone} ms, before its retention`);
    const pending = await deliveries(h, down.id);
    assert.equal(pending.length, 1, 'a pending delivery is not pruned');
    assert.equal(pending[0].event_id, r.body.id);
    assert.equal(pending[0].status, 'pending');
    assert.equal(pending[0].topic, 'ret.a', 'its event is kept too');
    await stopClean(h);
  } finally {
    await c.run();
  }
});

// ---- 6. seq durability ----

test('seq is restored from the store after a clean restart and after kill -9', { timeout: 60000 }, async () => {
  const c = cleanupStack();
  const dataDir = tempDataDir();
  c.add(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  try {
    const recv = await startReceiver();
    c.add(recv.close);
    const config = hookConfig(dataDir);
    const h1 = await startHerald(config);
    c.add(stopQuietly(h1));
    await createEndpoint(h1, { url: recv.url, topics: ['seq.*'] });
    for (let i = 1; i <= 5; i++) {
      const r = await publish(h1, 'seq.a', { i });
      assert.equal(r.status, 202);
      assert.equal(r.body.seq, i);
    }
    const stopped = await h1.stop();
    assert.equal(stopped.code, 0);

    const h2 = await startHerald(config);
    c.add(stopQuietly(h2));
    const ws = await Client.open(h2.wsUrl);
    c.add(() => ws.close());
    await ws.subscribe('seq.a');
    const sixth = await publish(h2, 'seq.a', { i: 6 });
    assert.equal(sixth.status, 202);
    assert.equal(sixth.body.seq, 6);
    const ev = await ws.waitFor((m) => m.op === 'event');
    assert.equal(ev.seq, 6);
    await killHard(h2);

    const h3 = await startHerald(config);
    c.add(stopQuietly(h3));
    const seventh = await publish(h3, 'seq.a', { i: 7 });
    assert.equal(seventh.status, 202);
    assert.equal(seventh.body.seq, 7);
    await until(() => recv.counts.has(seventh.body.id), { timeoutMs: 10000 });
    await stopClean(h3);
  } finally {
    await c.run();
  }
});
