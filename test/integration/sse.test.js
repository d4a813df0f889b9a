// Server-Sent Events at GET /sse on the client port (docs/protocol.md#sse):
// the headers and first bytes, events with id = cursor and data = the
// WebSocket event JSON, CORS, grants, tokens and their refusals, resume from
// Last-Event-ID (exact, with a gap announced first), heartbeats, a slow
// consumer cut, and the npm eventsource client reconnecting by itself through
// a proxy the test cuts. Clients: curl -N, node:http, npm eventsource.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');
const jose = require('jose');
const { EventSource } = require('eventsource');
const { startHerald, Client, publish, curl, sleep, until } = require('./lib/herald');

const memory = { history: { durable: false } };

// One SSE record ("field: value" lines up to a blank line) as an object:
// id, event, data (lines joined with \n), retry, comments; json: data parsed.
function parseRecord(block) {
  const r = { comments: [] };
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) {
      r.comments.push(line.slice(1).trim());
      continue;
    }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'data') r.data = r.data === undefined ? value : r.data + '\n' + value;
    else r[field] = value;
  }
  if (r.data !== undefined) {
    try {
      r.json = JSON.parse(r.data);
    } catch {
      r.json = undefined;
    }
  }
  return r;
}

// GET url with node:http, reading the body as an SSE stream. Resolves once the
// headers are in: {status, headers, raw, records, waitFor, ended, close}.
function openStream(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let buf = '';
      let waiters = [];
      const s = {
        status: res.statusCode,
        headers: res.headers,
        raw: '',
        records: [],
        ended: new Promise((r) => res.once('close', r)),
        events: () => s.records.filter((x) => x.event === 'herald.event').map((x) => x.json),
        // Resolves with the first record from `from` on that satisfies pred.
        waitFor(pred, { timeoutMs = 5000, from = 0 } = {}) {
          return new Promise((ok, fail) => {
            const w = () => {
              const i = s.records.findIndex((x, k) => k >= from && pred(x));
              if (i < 0) return false;
              clearTimeout(timer);
              ok(s.records[i]);
              return true;
            };
            const timer = setTimeout(() => {
              waiters = waiters.filter((x) => x !== w);
              fail(new Error(`no such record in ${timeoutMs} ms; got ${s.records.length}: ${s.raw.slice(-400)}`));
            }, timeoutMs);
            if (!w()) waiters.push(w);
          });
        },
        close() {
          req.destroy();
          return s.ended;
        },
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        s.raw += d;
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          s.records.push(parseRecord(buf.slice(0, i)));
          buf = buf.slice(i + 2);
        }
        waiters = waiters.filter((w) => !w());
      });
      res.on('error', () => {});
      resolve(s);
    });
    req.on('error', reject);
  });
}

// A refused request: its status, headers and JSON body.
async function refused(url, headers = {}) {
  const s = await openStream(url, headers);
  await s.ended;
  return { status: s.status, headers: s.headers, body: JSON.parse(s.raw) };
}

const sseUrl = (h, query) => `http://${h.clientAddr}/sse?${query}`;

test('headers, the retry line, and events whose id is the cursor and data the WebSocket event JSON', async () => {
  const h = await startHerald({ ...memory, sse: { retry_ms: 1500 } });
  try {
    // the WebSocket twin, with its frames as text
    const ws = await Client.open(h.wsUrl);
    const wsText = [];
    ws.ws.on('message', (d) => wsText.push(d.toString()));
    await ws.subscribe('orders.*');
    const run = curl(['-N', '-i', '--max-time', '3', '-H', 'Accept: text/event-stream',
      `http://${h.clientAddr}/sse?topic=orders.*`]);
    await until(() => h.logs.some((l) => l.includes('event=listening')));
    await sleep(500);
    const a = await publish(h, 'orders.created', { n: 1, price: 0.1 });
    const b = await publish(h, 'orders.paid', { n: 2, big: 18446744073709551615n.toString() });
    assert.equal(a.status, 202);
    const out = (await run).stdout;
    const [head, body] = out.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.match(head, /^content-type: text\/event-stream\r?$/im);
    assert.match(head, /^cache-control: no-cache\r?$/im);
    assert.match(head, /^x-accel-buffering: no\r?$/im);
    assert.doesNotMatch(head, /access-control-allow-origin/i); // no Origin, no CORS
    assert.ok(body.startsWith('retry: 1500\n\n'), JSON.stringify(body.slice(0, 40)));
    const recs = body.split('\n\n').filter(Boolean).map(parseRecord);
    const evs = recs.filter((r) => r.event === 'herald.event');
    assert.equal(evs.length, 2);
    await until(() => wsText.filter((t) => t.includes('"op":"event"')).length === 2);
    const wsEvents = wsText.filter((t) => t.includes('"op":"event"'));
    for (const [i, r] of [a, b].entries()) {
      assert.equal(evs[i].id, r.body.cursor); // id: the cursor
      assert.equal(evs[i].data, wsEvents[i]); // data: the same bytes as the WebSocket frame
      assert.equal(evs[i].json.id, r.body.id);
    }
    assert.match(body, new RegExp(`^id: ${a.body.cursor}\nevent: herald\\.event\ndata: \\{"op":"event"`, 'm'));
    await ws.close();
  } finally {
    await h.stop();
  }
});

test('topics: several patterns, each event once; URL-decoded; refusals are JSON with a status', async () => {
  const h = await startHerald({ ...memory, client: { max_subscriptions: 3 } });
  try {
    const s = await openStream(sseUrl(h, 'topic=a.*&topic=a.x&topic=' + encodeURIComponent('b.>')));
    assert.equal(s.status, 200);
    await sleep(100);
    for (const t of ['a.x', 'a.y', 'b.c.d', 'c.x']) assert.equal((await publish(h, t, { t })).status, 202);
    await s.waitFor((r) => r.json && r.json.topic === 'b.c.d');
    await sleep(100);
    assert.deepEqual(s.events().map((e) => e.topic), ['a.x', 'a.y', 'b.c.d']);
    await s.close();

    let r = await refused(sseUrl(h, 'x=1'));
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_topic');
    r = await refused(sseUrl(h, 'topic=a..b'));
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_topic');
    r = await refused(sseUrl(h, 'topic=a&topic=b&topic=c&topic=d'));
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'too_many_subscriptions');
    r = await refused(sseUrl(h, 'topic=a'), { 'Last-Event-ID': 'not-a-cursor' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_cursor');
    r = await refused(sseUrl(h, 'topic=a&last_event_id=abc'));
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_cursor');
    const post = await fetch(sseUrl(h, 'topic=a'), { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
    assert.equal((await post.json()).error.code, 'method_not_allowed');
    assert.equal(h.logs.filter((l) => /event=client_refused .*transport=sse status=400/.test(l)).length >= 1, true);
  } finally {
    await h.stop();
  }
});

test('CORS: a listed Origin is echoed with Vary, "*" gives * without credentials, others get 403 and no header', async () => {
  const h = await startHerald({ ...memory, client: { allowed_origins: ['http://app.example'] } });
  const star = await startHerald({ ...memory, client: { allowed_origins: ['*'] } });
  try {
    let s = await openStream(sseUrl(h, 'topic=a'), { Origin: 'http://app.example' });
    assert.equal(s.status, 200);
    assert.equal(s.headers['access-control-allow-origin'], 'http://app.example');
    assert.equal(s.headers['access-control-allow-credentials'], 'true');
    assert.equal(s.headers.vary, 'Origin');
    await s.close();
    const r = await refused(sseUrl(h, 'topic=a'), { Origin: 'http://evil.example' });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'forbidden');
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    s = await openStream(sseUrl(star, 'topic=a'), { Origin: 'http://any.example' });
    assert.equal(s.status, 200);
    assert.equal(s.headers['access-control-allow-origin'], '*');
    assert.equal(s.headers['access-control-allow-credentials'], undefined);
    await s.close();
  } finally {
    await Promise.all([h.stop(), star.stop()]);
  }
});

test('tokens and grants: ?token= and Bearer; 401 for a bad or missing token, 403 for a pattern not granted; expiry ends the stream', async () => {
  const secret = crypto.randomBytes(32);
  const jwk = { kty: 'oct', k: secret.toString('base64url'), alg: 'HS256', kid: 'sse-1' };
  const jwt = (claims, expIn = 600) => new jose.SignJWT({ sub: 'sse-tester', ...claims })
    .setProtectedHeader({ alg: 'HS256', kid: 'sse-1' }).setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expIn).sign(new Uint8Array(secret));
  const h = await startHerald({ ...memory, auth: { jwt_keys: [jwk], anonymous_subscribe: ['public.>'], leeway_s: 0 } });
  try {
    const tok = await jwt({ herald: { subscribe: ['orders.>'] } });
    let s = await openStream(sseUrl(h, `topic=orders.*&token=${encodeURIComponent(tok)}`));
    assert.equal(s.status, 200);
    await sleep(100);
    await publish(h, 'orders.x', { n: 1 });
    await s.waitFor((r) => r.json && r.json.topic === 'orders.x');
    await s.close();
    s = await openStream(sseUrl(h, 'topic=orders.>'), { Authorization: `Bearer ${tok}` });
    assert.equal(s.status, 200);
    await s.close();
    s = await openStream(sseUrl(h, 'topic=public.news')); // anonymous, granted
    assert.equal(s.status, 200);
    await s.close();

    let r = await refused(sseUrl(h, `topic=secret.x&token=${encodeURIComponent(tok)}`));
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'forbidden');
    assert.match(r.body.error.message, /secret\.x/);
    r = await refused(sseUrl(h, 'topic=orders.*')); // anonymous may not
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'unauthorized');
    assert.equal(r.headers['www-authenticate'], 'Bearer');
    r = await refused(sseUrl(h, 'topic=public.news&token=not.a.jwt'));
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, 'invalid_token');
    r = await refused(sseUrl(h, 'topic=public.news'), { Authorization: 'Basic eDp5' });
    assert.equal(r.status, 401);

    // a token that expires: the stream gets herald.close 4001, then ends
    const short = await jwt({ herald: { subscribe: ['orders.>'] } }, 2);
    s = await openStream(sseUrl(h, `topic=orders.*&token=${encodeURIComponent(short)}`));
    assert.equal(s.status, 200);
    const close = await s.waitFor((x) => x.event === 'herald.close', { timeoutMs: 5000 });
    assert.deepEqual(close.json, { code: 4001, reason: 'token expired' });
    await s.ended;
    assert.ok(!h.logs.some((l) => l.includes(tok) || l.includes(short)), 'no token in the logs');
  } finally {
    await h.stop();
  }
});

test('Last-Event-ID: the gap is announced first, then the replay, then live, with no loss and no duplicate', async () => {
  const h = await startHerald({ history: { durable: false, max_events: 5 } });
  try {
    const first = (await publish(h, 'r.a', { i: 0 })).body;
    const all = [first];
    for (let i = 1; i < 12; i++) all.push((await publish(h, i % 2 ? 'r.b' : 'r.a', { i })).body);
    // the first event's cursor is 11 events ago: 5 are retained
    const s = await openStream(sseUrl(h, 'topic=r.*&topic=other.x'), { 'Last-Event-ID': first.cursor });
    assert.equal(s.status, 200);
    await s.waitFor((r) => r.json && r.json.data && r.json.data.i === 11);
    const live = (await publish(h, 'r.a', { i: 12 })).body;
    await s.waitFor((r) => r.json && r.json.data && r.json.data.i === 12);
    const recs = s.records.filter((r) => r.event);
    const gaps = recs.filter((r) => r.event === 'herald.gap');
    // one per pattern, the one no retained event matches too (what was
    // evicted might have matched it)
    assert.deepEqual(gaps.map((g) => g.json), ['r.*', 'other.x'].map((topic) =>
      ({ requested: first.cursor, oldest: all[7].cursor, reason: 'evicted', topic })));
    assert.deepEqual(recs.slice(0, 2).map((r) => r.event), ['herald.gap', 'herald.gap'], 'the gaps come first');
    assert.ok(gaps.every((g) => g.id === undefined), 'a gap has no id: Last-Event-ID stays the last event');
    assert.deepEqual(s.records.filter((r) => r.event === 'herald.event').map((r) => r.id),
      [...all.slice(7).map((e) => e.cursor), live.cursor]);
    await s.close();

    // a resume from the last event received: nothing replayed, live next
    const last = live.cursor;
    const t = await openStream(sseUrl(h, `topic=r.*&last_event_id=${last}`));
    await sleep(100);
    const next = (await publish(h, 'r.b', { i: 13 })).body;
    await t.waitFor((r) => r.id === next.cursor);
    assert.deepEqual(t.records.filter((r) => r.event).map((r) => r.id), [next.cursor]);
    // the header wins over the query parameter
    const u = await openStream(sseUrl(h, `topic=r.*&last_event_id=${all[9].cursor}`), { 'Last-Event-ID': all[10].cursor });
    await u.waitFor((r) => r.id === next.cursor);
    assert.deepEqual(u.records.filter((r) => r.event).map((r) => r.id), [all[11].cursor, live.cursor, next.cursor]);
    await Promise.all([t.close(), u.close()]);

    const r = await refused(sseUrl(h, 'topic=r.*'), { 'Last-Event-ID': `${first.cursor.split(':')[0]}:999999` });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_cursor');
  } finally {
    await h.stop();
  }
});

test('Last-Event-ID while publishes race: streams cut and resumed get every event once, in order', async () => {
  const h = await startHerald({ history: { durable: false }, client: { workers: 2 } });
  try {
    let stop = false;
    const published = [];
    const pub = (async () => {
      for (let i = 0; !stop; i++) {
        const t = ['m.a', 'm.b', 'n.c'][i % 3];
        published.push((await publish(h, t, { i })).body);
      }
    })();
    const got = [];
    let cursor = '';
    for (let round = 0; round < 6; round++) {
      const s = await openStream(sseUrl(h, 'topic=m.*&topic=n.c&topic=m.a'), cursor ? { 'Last-Event-ID': cursor } : {});
      assert.equal(s.status, 200);
      await sleep(150);
      await s.close();
      const evs = s.records.filter((r) => r.event === 'herald.event');
      assert.equal(s.records.filter((r) => r.event === 'herald.gap').length, 0);
      got.push(...evs);
      if (evs.length) cursor = evs[evs.length - 1].id;
    }
    stop = true;
    await pub;
    const s = await openStream(sseUrl(h, 'topic=m.*&topic=n.c'), { 'Last-Event-ID': cursor });
    const lastCursor = published[published.length - 1].cursor;
    if (cursor !== lastCursor) await s.waitFor((r) => r.id === lastCursor);
    await sleep(50);
    await s.close();
    got.push(...s.records.filter((r) => r.event === 'herald.event'));
    const first = published.findIndex((p) => p.cursor === got[0].id);
    assert.ok(first >= 0);
    assert.deepEqual(got.map((r) => r.id), published.slice(first).map((p) => p.cursor));
    assert.ok(got.length > 20, `got ${got.length}`);
  } finally {
    await h.stop();
  }
});

test('a replay bigger than client.send_queue_bytes comes in parts, each stream ending; in offset order across patterns', async () => {
  const h = await startHerald({ ...memory, client: { send_queue_bytes: 8192, max_message_bytes: 4096 } });
  try {
    const start = (await publish(h, 'p.a', { i: 0 })).body;
    const all = [];
    const pad = 'x'.repeat(400);
    for (let i = 1; i <= 60; i++) all.push((await publish(h, i % 3 ? 'p.a' : 'p.b', { i, pad })).body);
    const got = [];
    let cursor = start.cursor;
    for (let round = 0; round < 20 && got.length < all.length; round++) {
      const s = await openStream(sseUrl(h, 'topic=p.b&topic=p.a'), { 'Last-Event-ID': cursor });
      assert.equal(s.status, 200);
      await Promise.race([s.ended, sleep(300)]);
      await s.close();
      const evs = s.records.filter((r) => r.event === 'herald.event');
      got.push(...evs.map((r) => r.id));
      if (evs.length) cursor = evs[evs.length - 1].id;
    }
    assert.deepEqual(got, all.map((e) => e.cursor));
    assert.ok(h.logs.some((l) => l.includes('event=sse_replay_cut')), 'the replay was cut at least once');
  } finally {
    await h.stop();
  }
});

test('history off: Last-Event-ID subscribes live and announces a history_disabled gap; events carry no id', async () => {
  const h = await startHerald({ history: { enabled: false } });
  try {
    const s = await openStream(sseUrl(h, 'topic=q.*'), { 'Last-Event-ID': 'abcdefgh:12' });
    assert.equal(s.status, 200);
    const gap = await s.waitFor((r) => r.event === 'herald.gap');
    assert.deepEqual(gap.json, { requested: 'abcdefgh:12', oldest: null, reason: 'history_disabled', topic: 'q.*' });
    await publish(h, 'q.x', { n: 1 });
    const ev = await s.waitFor((r) => r.event === 'herald.event');
    assert.equal(ev.id, undefined);
    assert.equal(ev.json.cursor, undefined);
    await s.close();
  } finally {
    await h.stop();
  }
});

test('a heartbeat comment after sse.heartbeat_s of silence', async () => {
  const h = await startHerald({ ...memory, log_level: 'debug', sse: { heartbeat_s: 1 } });
  try {
    const s = await openStream(sseUrl(h, 'topic=hb'));
    const t0 = Date.now();
    const hb = await s.waitFor((r) => r.comments.includes('heartbeat'), { timeoutMs: 3000 });
    assert.ok(Date.now() - t0 >= 700, 'not before a second of silence');
    assert.ok(hb);
    await s.waitFor((r, k) => r.comments.includes('heartbeat') && s.records.indexOf(r) > s.records.indexOf(hb), { timeoutMs: 3000 });
    await s.close();
    // a client that went away is found by the heartbeat and its socket closed
    await until(() => h.logs.filter((l) => /event=client_closed .*transport=sse connections=0/.test(l)).length >= 1,
      { timeoutMs: 4000 });
  } finally {
    await h.stop();
  }
});

test('a stream that does not read is cut as a slow consumer; others get everything', async () => {
  const h = await startHerald({ ...memory, log_level: 'debug', client: { send_queue_bytes: 262144, max_message_bytes: 4096 } });
  try {
    const fast = await openStream(sseUrl(h, 'topic=firehose'));
    const [host, port] = h.clientAddr.split(':');
    const slow = net.connect(Number(port), host);
    let slowRaw = '';
    slow.on('data', (d) => { slowRaw += d; });
    await new Promise((r) => slow.once('connect', r));
    slow.write('GET /sse?topic=firehose HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await until(() => slowRaw.includes('retry:'));
    slow.pause(); // the kernel buffers fill, then Herald's queue
    const pad = 'p'.repeat(2000);
    let sent = 0;
    while (sent < 40000 && !h.logs.some((l) => /event=slow_consumer .*transport=sse/.test(l))) {
      const batch = [];
      for (let i = 0; i < 50; i++) batch.push(publish(h, 'firehose', { n: sent++, pad }));
      for (const r of await Promise.all(batch)) assert.equal(r.status, 202);
      await fast.waitFor((r) => r.json && r.json.seq === sent, { timeoutMs: 10000 });
    }
    assert.ok(h.logs.some((l) => /event=slow_consumer .*transport=sse/.test(l)), 'the slow stream was cut');
    const ended = new Promise((r) => slow.once('close', r));
    slow.resume();
    await ended;
    const recs = slowRaw.split('\r\n\r\n')[1].split('\n\n').filter(Boolean).map(parseRecord);
    const last = recs[recs.length - 1];
    assert.equal(last.event, 'herald.close');
    assert.deepEqual(last.json, { code: 4008, reason: 'slow consumer' });
    const seqs = recs.filter((r) => r.event === 'herald.event').map((r) => r.json.seq);
    assert.ok(seqs.length < sent);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));
    assert.equal(fast.events().length, sent);
    await fast.close();
  } finally {
    await h.stop();
  }
});

test('shutdown: a stream gets herald.close 1001, and new streams are refused at accept beyond the limits', async () => {
  const h = await startHerald({ ...memory, client: { max_connections_per_ip: 2 } });
  const a = await openStream(sseUrl(h, 'topic=z'));
  const b = await openStream(sseUrl(h, 'topic=z'));
  // a third socket from this address is closed at accept, before any HTTP
  const third = await curl(['-N', '--max-time', '2', sseUrl(h, 'topic=z')]);
  assert.notEqual(third.code, 0);
  assert.equal(third.stdout, '');
  await until(() => h.logs.some((l) => /event=connection_refused .*reason=max_connections_per_ip/.test(l)));
  await b.close();
  const stopped = h.stop();
  const close = await a.waitFor((r) => r.event === 'herald.close');
  assert.deepEqual(close.json, { code: 1001, reason: 'server shutting down' });
  await a.ended;
  assert.equal((await stopped).code, 0);
});

// A TCP proxy in front of the client port that the test can cut: each
// connection's first bytes (the request) are kept.
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

test('npm eventsource reconnects by itself with Last-Event-ID and gets every event once, in order', async () => {
  const h = await startHerald({ ...memory, sse: { retry_ms: 200 } });
  const proxy = await cutProxy(h.clientAddr);
  const es = new EventSource(`${proxy.url}/sse?topic=e.*`);
  try {
    const seqs = [];
    let opens = 0;
    es.addEventListener('herald.event', (m) => seqs.push(JSON.parse(m.data).seq));
    es.onopen = () => { opens++; };
    await until(() => opens === 1);
    const N = 300;
    for (let i = 1; i <= N; i++) {
      assert.equal((await publish(h, 'e.x', { i })).status, 202);
      if (i === 100 || i === 200) {
        await until(() => seqs.length >= i - 20, { timeoutMs: 5000 });
        proxy.cut();
      }
    }
    await until(() => seqs.length >= N, { timeoutMs: 10000 });
    await sleep(100);
    assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1));
    assert.ok(opens >= 3, `opened ${opens} times`);
    const again = proxy.requests.slice(1);
    assert.ok(again.length >= 2 && again.every((r) => /^last-event-id: [a-z0-9]{8}:\d+\r$/im.test(r)), again.join('\n'));
  } finally {
    es.close();
    await proxy.close();
    await h.stop();
  }
});
