// Webhook delivery end to end: real heraldd, real HTTP receivers on
// loopback. Standard Webhooks interop (checked with the `standardwebhooks`
// library), retries and their schedule, redirects, Retry-After, 410, the
// attempt log, manual retry, replay, secret rotation, the send-time target
// guard, isolation between endpoints, and ordered endpoints.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Webhook, WebhookVerificationError } = require('standardwebhooks');
const { startHerald, Client, publish, sleep, until } = require('./lib/herald');
const { Receiver } = require('./lib/receiver');
const { api, deliveries } = require('./lib/webhooks');

// Short retries, no jitter: attempt 1 at once, then 1 s, 1 s, 1 s; failed after 4.
const HOOKS = {
  webhooks: {
    allowed_cidrs: ['127.0.0.1/32'],
    schedule: [0, 1, 1, 1],
    jitter_percent: 0,
    connect_timeout_ms: 1000,
    request_timeout_ms: 3000,
  },
};
const SECRET_RE = /^whsec_[A-Za-z0-9+/]+=*$/;
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;


function secretOf(nbytes = 32) {
  return 'whsec_' + crypto.randomBytes(nbytes).toString('base64');
}

async function create(h, body) {
  const r = await api(h, 'POST', '/v1/webhooks', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function pub(h, topic, data) {
  const r = await publish(h, topic, data);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body; // {id, topic, seq}
}


// Waits until the delivery of event `eventId` satisfies pred; returns it.
async function waitDelivery(h, epId, eventId, pred, { timeoutMs = 10000 } = {}) {
  let found;
  await until(
    async () => {
      found = (await deliveries(h, epId)).find((d) => d.event_id === eventId);
      return found && pred(found);
    },
    { timeoutMs, stepMs: 50 },
  ).catch((e) => {
    throw new Error(`${e.message}; delivery: ${JSON.stringify(found)}`);
  });
  return found;
}

function verifyThrows(secret, body, headers, re) {
  assert.throws(
    () => new Webhook(secret).verify(body, headers),
    (e) => e instanceof WebhookVerificationError && re.test(e.message),
  );
}

let h;
before(async () => {
  h = await startHerald(HOOKS);
});
after(async () => {
  const r = await h.stop();
  assert.equal(r.code, 0);
});

test('Standard Webhooks interop: 50 events from REST and WebSocket all verify with the library', async () => {
  const rx = await Receiver.start();
  const ws = await Client.open(h.wsUrl);
  try {
    const ep = await create(h, { url: rx.url('/interop'), topics: ['interop.>'] });
    const secret = ep.secret;
    const sent = []; // {id, seq, topic, data}
    const jobs = [];
    for (let i = 0; i < 50; i++) {
      const topic = i % 2 ? 'interop.b.c' : 'interop.a';
      const data = { i, text: 'héllo ✓ "q" \\ \u2028 <tag>', nested: { arr: [1, 2.5, null, true] } };
      if (i % 5 === 4) {
        jobs.push(
          ws.request({ op: 'publish', id: `p${i}`, topic, data }, { timeoutMs: 10000 }).then((m) => {
            assert.equal(m.op, 'ack', JSON.stringify(m));
            sent.push({ id: m.event.id, seq: m.event.seq, topic, data, via: 'ws' });
          }),
        );
      } else {
        jobs.push(pub(h, topic, data).then((b) => {
          assert.equal(b.topic, topic);
          sent.push({ id: b.id, seq: b.seq, topic, data, via: 'rest' });
        }));
      }
    }
    await Promise.all(jobs);
    assert.equal(sent.length, 50);
    assert.equal(sent.filter((s) => s.via === 'ws').length, 10);
    await rx.waitForCount(50, { timeoutMs: 15000 });
    await sleep(200);
    assert.equal(rx.requests.length, 50, 'each event once to a healthy receiver');

    const byId = new Map(sent.map((s) => [s.id, s]));
    const nowS = Math.floor(Date.now() / 1000);
    for (const q of rx.requests) {
      assert.equal(q.method, 'POST');
      assert.equal(q.path, '/interop');
      assert.match(q.headers['content-type'], /^application\/json/);
      assert.match(q.headers['user-agent'], /^Herald\/\S+/);
      assert.match(q.headers['webhook-timestamp'], /^\d+$/);
      assert.ok(Math.abs(Number(q.headers['webhook-timestamp']) - nowS) < 60);
      assert.match(q.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/, 'one v1 signature');
      // the library's own check: signature and timestamp
      const payload = new Webhook(secret).verify(q.body, q.headers);
      assert.deepEqual(payload, JSON.parse(q.body.toString('utf8')));
      // the envelope
      const s = byId.get(q.headers['webhook-id']);
      assert.ok(s, `webhook-id ${q.headers['webhook-id']} is one of the published ids`);
      assert.deepEqual(Object.keys(payload), ['type', 'timestamp', 'id', 'seq', 'data']);
      assert.equal(payload.type, s.topic);
      assert.equal(payload.id, s.id);
      assert.equal(payload.seq, s.seq);
      assert.deepEqual(payload.data, s.data);
      assert.match(payload.timestamp, ISO_RE);
      assert.ok(Math.abs(Date.parse(payload.timestamp) / 1000 - nowS) < 60);
    }
    assert.deepEqual(new Set(rx.requests.map((q) => q.headers['webhook-id'])), new Set(byId.keys()));
    // seq counts up by one per topic
    for (const t of ['interop.a', 'interop.b.c']) {
      const seqs = sent.filter((s) => s.topic === t).map((s) => s.seq).sort((a, b) => a - b);
      assert.deepEqual(seqs, seqs.map((_, k) => k + 1), t);
    }

    // the deliveries API pages through all 50, each delivered at attempt 1
    // (an outcome is recorded just after its request is answered)
    await until(async () => (await deliveries(h, ep.id, 'delivered')).length === 50, { timeoutMs: 5000, stepMs: 50 });
    const pages = [];
    let cursor = null;
    do {
      const r = await api(h, 'GET', `/v1/webhooks/${ep.id}/deliveries?limit=20${cursor ? '&cursor=' + cursor : ''}`);
      assert.equal(r.status, 200);
      pages.push(r.body.data);
      cursor = r.body.next_cursor;
    } while (cursor && pages.length < 10);
    assert.deepEqual(pages.map((p) => p.length), [20, 20, 10]);
    const all = pages.flat();
    assert.equal(new Set(all.map((d) => d.id)).size, 50);
    assert.deepEqual(new Set(all.map((d) => d.event_id)), new Set(byId.keys()));
    for (const d of all) {
      assert.equal(d.status, 'delivered');
      assert.equal(d.topic, byId.get(d.event_id).topic);
      assert.equal(d.seq, byId.get(d.event_id).seq);
      assert.equal('next_attempt_at' in d, false);
      assert.equal(d.attempts.length, 1);
      assert.equal(d.attempts[0].n, 1);
      assert.equal(d.attempts[0].http_status, 200);
      assert.equal(d.attempts[0].error, null);
      assert.equal(typeof d.attempts[0].latency_ms, 'number');
      assert.match(d.attempts[0].at, ISO_RE);
    }

    // What the library must refuse, on one captured delivery.
    const q = rx.requests.find((x) => /[^\x00-\x7f]/.test(x.body.toString('utf8'))) || rx.requests[0];
    const wh = new Webhook(secret);
    const ts = Number(q.headers['webhook-timestamp']);
    const id = q.headers['webhook-id'];
    // Herald signs exactly as the library does
    assert.equal(wh.sign(id, new Date(ts * 1000), q.body), q.headers['webhook-signature']);
    // a tampered body (one byte), a tampered id
    const tampered = Buffer.from(q.body);
    tampered[tampered.indexOf('"i":') + 4] ^= 1;
    verifyThrows(secret, tampered, q.headers, /No matching signature/);
    verifyThrows(secret, Buffer.concat([q.body, Buffer.from(' ')]), q.headers, /No matching signature/);
    verifyThrows(secret, q.body, { ...q.headers, 'webhook-id': id.replace(/.$/, (c) => (c === '0' ? '1' : '0')) }, /No matching signature/);
    // the wrong secret
    verifyThrows(secretOf(32), q.body, q.headers, /No matching signature/);
    // a timestamp 10 minutes off, with a signature valid for it: only the time check fails
    for (const [shift, re] of [[-600, /too old/], [600, /too new/]]) {
      const t2 = ts + shift;
      const h2 = { ...q.headers, 'webhook-timestamp': String(t2), 'webhook-signature': wh.sign(id, new Date(t2 * 1000), q.body) };
      verifyThrows(secret, q.body, h2, re);
    }
    // control: the same recomputation 30 s off verifies
    const t3 = ts - 30;
    assert.doesNotThrow(() => wh.verify(q.body, { ...q.headers, 'webhook-timestamp': String(t3), 'webhook-signature': wh.sign(id, new Date(t3 * 1000), q.body) }));
    // and the original timestamp with a signature made for another one fails
    verifyThrows(secret, q.body, { ...q.headers, 'webhook-signature': wh.sign(id, new Date((ts - 30) * 1000), q.body) }, /No matching signature/);
  } finally {
    await ws.close();
    await rx.close();
  }
});

test('a retry sends the same body bytes and webhook-id; every attempt is logged', async () => {
  const rx = await Receiver.start();
  try {
    rx.respond = (q, i) => (i === 0 ? { status: 500, body: 'try again' } : { status: 204 });
    const ep = await create(h, { url: rx.url('/retry'), topics: ['retry.x'] });
    const e = await pub(h, 'retry.x', { big: 'z'.repeat(5000), n: 1 });
    await rx.waitForCount(2, { timeoutMs: 10000 });
    const [a, b] = rx.requests;
    assert.ok(a.body.equals(b.body), 'identical body bytes');
    assert.equal(a.headers['webhook-id'], e.id);
    assert.equal(b.headers['webhook-id'], e.id);
    assert.ok(Number(b.headers['webhook-timestamp']) >= Number(a.headers['webhook-timestamp']));
    for (const q of [a, b]) new Webhook(ep.secret).verify(q.body, q.headers);
    // the schedule's 1 s (jitter 0) between them
    assert.ok(b.at - a.at >= 900, `retried after ${b.at - a.at} ms`);
    const d = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');
    assert.equal(d.seq, e.seq);
    assert.equal(d.attempts.length, 2);
    assert.deepEqual(d.attempts.map((x) => x.n), [1, 2]);
    assert.equal(d.attempts[0].http_status, 500);
    assert.match(d.attempts[0].error, /500/);
    assert.equal(d.attempts[0].response, 'try again');
    assert.equal(d.attempts[1].http_status, 204);
    assert.equal(d.attempts[1].error, null);
    assert.ok(Date.parse(d.attempts[1].at) - Date.parse(d.attempts[0].at) >= 900);
    await sleep(300);
    assert.equal(rx.requests.length, 2, 'nothing after the success');
  } finally {
    await rx.close();
  }
});

test('a 3xx answer is a failed attempt and the redirect is not followed', async () => {
  const rx = await Receiver.start();
  try {
    rx.respond = (q, i) => {
      if (q.path !== '/redir') return { status: 200 };
      if (i === 0) return { status: 307, headers: { Location: rx.url('/elsewhere') } };
      if (i === 1) return { status: 302, headers: { Location: rx.url('/elsewhere') } };
      return { status: 200 };
    };
    const ep = await create(h, { url: rx.url('/redir'), topics: ['redir.x'] });
    const e = await pub(h, 'redir.x', { r: 1 });
    const d = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered', { timeoutMs: 10000 });
    assert.equal(d.attempts.length, 3);
    assert.equal(d.attempts[0].http_status, 307);
    assert.match(d.attempts[0].error, /redirect/i);
    assert.equal(d.attempts[1].http_status, 302);
    assert.match(d.attempts[1].error, /redirect/i);
    assert.equal(d.attempts[2].http_status, 200);
    await sleep(200);
    assert.deepEqual(rx.requests.map((q) => `${q.method} ${q.path}`), ['POST /redir', 'POST /redir', 'POST /redir']);
  } finally {
    await rx.close();
  }
});

test('Retry-After on 503 and 429 sets the next attempt instead of the schedule', async () => {
  const r503 = await Receiver.start();
  const r429 = await Receiver.start();
  try {
    r503.respond = (q, i) => (i === 0 ? { status: 503, headers: { 'Retry-After': '2' } } : { status: 200 });
    r429.respond = (q, i) => (i === 0 ? { status: 429, headers: { 'Retry-After': ' 2 ' } } : { status: 200 });
    const a = await create(h, { url: r503.url('/ra'), topics: ['ra.x'] });
    const b = await create(h, { url: r429.url('/ra'), topics: ['ra.x'] });
    const e = await pub(h, 'ra.x', 1);
    await Promise.all([r503.waitForCount(2, { timeoutMs: 10000 }), r429.waitForCount(2, { timeoutMs: 10000 })]);
    for (const r of [r503, r429]) {
      const gap = r.requests[1].at - r.requests[0].at;
      // the schedule alone would have retried after 1 s
      assert.ok(gap >= 1800, `retried after ${gap} ms`);
      assert.ok(gap < 8000, `retried after ${gap} ms`);
      assert.ok(r.requests[0].body.equals(r.requests[1].body));
    }
    for (const [ep, code] of [[a, 503], [b, 429]]) {
      const d = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');
      assert.deepEqual(d.attempts.map((x) => x.http_status), [code, 200]);
    }
  } finally {
    await r503.close();
    await r429.close();
  }
});

test('410 disables the endpoint at once and announces it on herald.webhooks.endpoint_disabled', async () => {
  const gone = await Receiver.start();
  const watcher = await Receiver.start();
  const ws = await Client.open(h.wsUrl);
  try {
    await ws.subscribe('herald.webhooks.>');
    gone.respond = () => ({ status: 410, body: 'gone for good' });
    const w = await create(h, { url: watcher.url('/ops'), topics: ['herald.webhooks.>'] });
    const ep = await create(h, { url: gone.url('/gone'), topics: ['gone.>'] });
    const e = await pub(h, 'gone.a', 1);
    const ev = await ws.waitFor((m) => m.op === 'event' && m.topic === 'herald.webhooks.endpoint_disabled', { timeoutMs: 10000 });
    assert.equal(ev.data.endpoint_id, ep.id);
    assert.equal(ev.data.url, gone.url('/gone'));
    assert.equal(ev.data.reason, 'gone');
    assert.match(ev.data.disabled_at, ISO_RE);
    assert.ok(Math.abs(Date.parse(ev.data.disabled_at) - Date.now()) < 60000);
    const g = await api(h, 'GET', `/v1/webhooks/${ep.id}`);
    assert.equal(g.body.enabled, false);
    assert.equal(g.body.disabled_reason, 'gone');
    // no retry of a 410, the delivery failed at attempt 1
    const d = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'failed');
    assert.equal(d.attempts.length, 1);
    assert.equal(d.attempts[0].http_status, 410);
    assert.equal(d.attempts[0].response, 'gone for good');
    // an endpoint subscribed to herald.webhooks.> gets the announcement as a webhook too
    await watcher.waitForCount(1, { timeoutMs: 10000 });
    const wq = watcher.requests[0];
    const wp = new Webhook(w.secret).verify(wq.body, wq.headers);
    assert.equal(wp.type, 'herald.webhooks.endpoint_disabled');
    assert.deepEqual(wp.data, ev.data);
    // nothing more goes to it while disabled
    assert.equal((await pub(h, 'gone.a', 2)).seq, e.seq + 1);
    await sleep(1500);
    assert.equal(gone.requests.length, 1);
    assert.equal((await deliveries(h, ep.id)).length, 1);
    // enabling it again: new events go, and the failed one can be retried
    gone.respond = () => ({ status: 200 });
    const en = await api(h, 'PATCH', `/v1/webhooks/${ep.id}`, { enabled: true });
    assert.equal(en.body.enabled, true);
    assert.equal('disabled_reason' in en.body, false);
    const e3 = await pub(h, 'gone.c', 3);
    await waitDelivery(h, ep.id, e3.id, (x) => x.status === 'delivered');
    const rt = await api(h, 'POST', `/v1/webhooks/${ep.id}/deliveries/${d.id}/retry`);
    assert.equal(rt.status, 202, JSON.stringify(rt.body));
    await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');
    assert.deepEqual(gone.requests.map((q) => q.json.type), ['gone.a', 'gone.c', 'gone.a']);
    // exactly one announcement
    assert.equal(ws.events().filter((m) => m.topic === 'herald.webhooks.endpoint_disabled').length, 1);
    assert.equal((await api(h, 'DELETE', `/v1/webhooks/${w.id}`)).status, 200);
  } finally {
    await ws.close();
    await gone.close();
    await watcher.close();
  }
});

test('an exhausted schedule leaves the delivery failed with every attempt; manual retry resends it', async () => {
  const rx = await Receiver.start();
  try {
    const long = Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    rx.respond = () => ({ status: 500, body: long, headers: { 'Content-Type': 'text/plain' } });
    const ep = await create(h, { url: rx.url('/fail'), topics: ['fail.x'] });
    const e = await pub(h, 'fail.x', { doomed: true });
    const pending = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'pending' && x.attempts.length >= 1);
    assert.match(pending.next_attempt_at, ISO_RE);
    const d = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'failed', { timeoutMs: 15000 });
    assert.equal(d.attempts.length, 4, 'schedule [0,1,1,1]: four attempts');
    assert.deepEqual(d.attempts.map((x) => x.n), [1, 2, 3, 4]);
    for (const a of d.attempts) {
      assert.equal(a.http_status, 500);
      assert.match(a.error, /500/);
      assert.equal(a.response.length, 1024);
      assert.equal(a.response, long.slice(0, 1024));
      assert.equal(typeof a.latency_ms, 'number');
      assert.ok(a.latency_ms >= 0);
      assert.match(a.at, ISO_RE);
    }
    for (let k = 1; k < 4; k++) {
      const gap = Date.parse(d.attempts[k].at) - Date.parse(d.attempts[k - 1].at);
      assert.ok(gap >= 900, `gap ${gap} ms before attempt ${k + 1}`);
    }
    assert.equal('next_attempt_at' in d, false);
    assert.equal(rx.requests.length, 4);
    assert.ok(rx.requests.every((q) => q.body.equals(rx.requests[0].body)));
    // the status filter
    assert.deepEqual((await deliveries(h, ep.id, 'failed')).map((x) => x.id), [d.id]);
    assert.deepEqual(await deliveries(h, ep.id, 'delivered'), []);
    assert.deepEqual(await deliveries(h, ep.id, 'pending'), []);
    const bad = await api(h, 'GET', `/v1/webhooks/${ep.id}/deliveries?status=lost`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'status');

    // manual retry of the failed delivery: sent again, and it succeeds
    rx.respond = () => ({ status: 200, body: 'thanks' });
    const rt = await api(h, 'POST', `/v1/webhooks/${ep.id}/deliveries/${d.id}/retry`);
    assert.equal(rt.status, 202, JSON.stringify(rt.body));
    assert.equal(rt.body.id, d.id);
    assert.equal(rt.body.status, 'pending');
    await rx.waitForCount(5);
    assert.ok(rx.requests[4].body.equals(rx.requests[0].body));
    assert.equal(rx.requests[4].headers['webhook-id'], e.id);
    new Webhook(ep.secret).verify(rx.requests[4].body, rx.requests[4].headers);
    const ok = await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');
    assert.equal(ok.attempts.length, 5);
    assert.equal(ok.attempts[4].n, 5);
    assert.equal(ok.attempts[4].http_status, 200);
    assert.equal(ok.attempts[4].response, 'thanks');

    // a retry of a delivery still pending (here: in flight) is a 409
    rx.respond = (q) => (q.json && q.json.data && q.json.data.slow ? { status: 200, delayMs: 1500 } : { status: 200 });
    const slow = await pub(h, 'fail.x', { slow: true });
    const sd = await waitDelivery(h, ep.id, slow.id, (x) => x.status === 'pending');
    const r409 = await api(h, 'POST', `/v1/webhooks/${ep.id}/deliveries/${sd.id}/retry`);
    assert.equal(r409.status, 409, JSON.stringify(r409.body));
    assert.equal(r409.body.error.code, 'delivery_pending');
    await waitDelivery(h, ep.id, slow.id, (x) => x.status === 'delivered');
    // a delivery of another endpoint is not found through this one
    const other = await create(h, { url: rx.url('/other'), topics: ['nothing.here'] });
    const r404 = await api(h, 'POST', `/v1/webhooks/${other.id}/deliveries/${d.id}/retry`);
    assert.equal(r404.status, 404);
  } finally {
    await rx.close();
  }
});

test('replay requeues deliveries since an event id or an RFC 3339 time', async () => {
  const rx = await Receiver.start();
  try {
    const ep = await create(h, { url: rx.url('/replay'), topics: ['replay.>'] });
    const t0 = Date.now();
    await sleep(20);
    const evs = [];
    for (let i = 0; i < 3; i++) {
      evs.push(await pub(h, 'replay.x', { i }));
      await sleep(20); // distinct milliseconds in the ids
    }
    await rx.waitForCount(3);
    for (const e of evs) await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');
    const original = new Map(rx.requests.map((q) => [q.headers['webhook-id'], q.body]));

    // since the second event's id: the 2nd and 3rd again
    const r1 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: evs[1].id });
    assert.equal(r1.status, 202, JSON.stringify(r1.body));
    assert.deepEqual(r1.body, { requeued: 2 });
    await rx.waitForCount(5);
    await sleep(300);
    assert.equal(rx.requests.length, 5);
    assert.deepEqual(rx.requests.slice(3).map((q) => q.headers['webhook-id']).sort(), [evs[1].id, evs[2].id].sort());
    for (const q of rx.requests.slice(3)) {
      assert.ok(q.body.equals(original.get(q.headers['webhook-id'])), 'the same bytes as the first time');
      new Webhook(ep.secret).verify(q.body, q.headers);
    }
    for (const e of evs) await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');

    // since a time before all three, written with an offset: all three
    const d = new Date(t0 + 2 * 3600 * 1000);
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    const withOffset = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}+02:00`;
    const r2 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: withOffset });
    assert.equal(r2.status, 202, JSON.stringify(r2.body));
    assert.deepEqual(r2.body, { requeued: 3 });
    await rx.waitForCount(8);
    assert.deepEqual(rx.requests.slice(5).map((q) => q.headers['webhook-id']).sort(), evs.map((e) => e.id).sort());
    for (const e of evs) await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');

    // since a plain Z time after all of them: nothing
    const r3 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: new Date(Date.now() + 60000).toISOString() });
    assert.equal(r3.status, 202);
    assert.deepEqual(r3.body, { requeued: 0 });
    // since a Z time between the 2nd and the 3rd
    const mid = new Date(Number(BigInt('0x' + evs[2].id.replace(/-/g, '').slice(0, 12))) - 1).toISOString();
    const r4 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: mid });
    assert.deepEqual(r4.body, { requeued: 1 });
    await rx.waitForCount(9);
    assert.equal(rx.requests[8].headers['webhook-id'], evs[2].id);

    // bad since
    for (const body of [{}, { since: 42 }, { since: 'yesterday' }, { since: '2026-13-45T00:00:00Z' }, { since: '2026-01-01' },
      { since: evs[0].id.slice(0, -1) }, { since: '00000000-0000-4000-8000-000000000000' }, { since: '2026-01-01T00:00:00' }]) {
      const r = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, body);
      assert.equal(r.status, 422, `${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'invalid_field');
      assert.equal(r.body.error.field, 'since');
    }
    await sleep(300);
    assert.equal(rx.requests.length, 9, 'bad replays requeue nothing');
  } finally {
    await rx.close();
  }
});

test('after rotate-secret deliveries carry two signatures, each verifying alone', async () => {
  const rx = await Receiver.start();
  try {
    const s1 = secretOf(32);
    const ep = await create(h, { url: rx.url('/rot'), topics: ['rot.x'], secret: s1 });
    await pub(h, 'rot.x', 0);
    await rx.waitForCount(1);
    assert.equal(rx.requests[0].headers['webhook-signature'].split(' ').length, 1);

    const t = Date.now();
    const rot = await api(h, 'POST', `/v1/webhooks/${ep.id}/rotate-secret`);
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    assert.equal(rot.body.id, ep.id);
    const s2 = rot.body.secret;
    assert.match(s2, SECRET_RE);
    assert.notEqual(s2, s1);
    const key = Buffer.from(s2.slice(6), 'base64');
    assert.ok(key.length >= 24 && key.length <= 64);
    assert.match(rot.body.previous_secret_expires_at, ISO_RE);
    // secret_rotation_s defaults to a day
    const exp = Date.parse(rot.body.previous_secret_expires_at) - t;
    assert.ok(Math.abs(exp - 86400000) < 60000, `old secret expires in ${exp} ms`);
    assert.equal('secret' in (await api(h, 'GET', `/v1/webhooks/${ep.id}`)).body, false);

    const e = await pub(h, 'rot.x', 1);
    await rx.waitForCount(2);
    const q = rx.requests[1];
    assert.equal(q.headers['webhook-id'], e.id);
    const sigs = q.headers['webhook-signature'].split(' ');
    assert.equal(sigs.length, 2, q.headers['webhook-signature']);
    for (const s of sigs) assert.match(s, /^v1,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(new Webhook(s1).verify(q.body, q.headers), q.json);
    assert.deepEqual(new Webhook(s2).verify(q.body, q.headers), q.json);
    verifyThrows(secretOf(32), q.body, q.headers, /No matching signature/);
    // each signature on its own is the one for its secret
    const ts = new Date(Number(q.headers['webhook-timestamp']) * 1000);
    assert.deepEqual(
      [...sigs].sort(),
      [new Webhook(s1).sign(e.id, ts, q.body), new Webhook(s2).sign(e.id, ts, q.body)].sort(),
    );

    // a second rotation: the first secret stops signing
    const rot2 = await api(h, 'POST', `/v1/webhooks/${ep.id}/rotate-secret`);
    assert.equal(rot2.status, 200);
    const s3 = rot2.body.secret;
    assert.notEqual(s3, s2);
    await pub(h, 'rot.x', 2);
    await rx.waitForCount(3);
    const q3 = rx.requests[2];
    assert.equal(q3.headers['webhook-signature'].split(' ').length, 2);
    new Webhook(s2).verify(q3.body, q3.headers);
    new Webhook(s3).verify(q3.body, q3.headers);
    verifyThrows(s1, q3.body, q3.headers, /No matching signature/);
  } finally {
    await rx.close();
  }
});

test('the send-time guard refuses an address no longer allowed, and nothing reaches it', async () => {
  const dataRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-wh-guard-'));
  const rx = await Receiver.start({ host: '127.0.0.2' });
  const dataDir = path.join(dataRoot, 'var');
  let h1;
  let h2;
  try {
    h1 = await startHerald({ data_dir: dataDir, webhooks: { ...HOOKS.webhooks, allowed_cidrs: ['127.0.0.0/8'] } });
    const ep = await create(h1, { url: `http://127.0.0.2:${rx.port}/guarded`, topics: ['guard.x'] });
    // allowed at first: it is delivered
    const e1 = await pub(h1, 'guard.x', 1);
    await rx.waitForCount(1);
    assert.equal(rx.requests[0].headers['webhook-id'], e1.id);
    await waitDelivery(h1, ep.id, e1.id, (x) => x.status === 'delivered');
    assert.equal((await h1.stop()).code, 0);
    h1 = null;

    h2 = await startHerald({ data_dir: dataDir, webhooks: { ...HOOKS.webhooks, allowed_cidrs: ['127.0.0.1/32'] } });
    assert.equal((await api(h2, 'GET', `/v1/webhooks/${ep.id}`)).status, 200);
    const e2 = await pub(h2, 'guard.x', 2);
    const d = await waitDelivery(h2, ep.id, e2.id, (x) => x.attempts.length >= 2, { timeoutMs: 10000 });
    for (const a of d.attempts) {
      assert.match(a.error, /refused/, JSON.stringify(a));
      assert.match(a.error, /127\.0\.0\.2/);
      assert.equal(a.http_status, null);
    }
    await sleep(200);
    assert.equal(rx.requests.length, 1, 'the receiver got nothing after the restart');
  } finally {
    if (h1) await h1.stop();
    if (h2) assert.equal((await h2.stop()).code, 0);
    await rx.close();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  }
});

test('an endpoint that never answers does not hold up a healthy one', async () => {
  const hang = await Receiver.start();
  const healthy = await Receiver.start();
  try {
    hang.respond = () => ({ hang: true });
    const slow = await create(h, { url: hang.url('/hang'), topics: ['iso.>'] });
    const fast = await create(h, { url: healthy.url('/ok'), topics: ['iso.>'] });
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push((await pub(h, `iso.t${i % 3}`, { i })).id);
    await healthy.waitForCount(20, { timeoutMs: 10000 });
    assert.deepEqual(new Set(healthy.requests.map((q) => q.headers['webhook-id'])), new Set(ids));
    for (const q of healthy.requests) new Webhook(fast.secret).verify(q.body, q.headers);
    // the outcome of the last request is recorded just after it is answered
    await until(async () => (await deliveries(h, fast.id, 'delivered')).length === 20, { timeoutMs: 5000, stepMs: 50 });
    // the hanging one: attempts time out (request_timeout_ms 3000), at most
    // max_in_flight_per_endpoint (4) requests open at once
    assert.ok(hang.requests.length >= 1);
    assert.ok(hang.maxInFlight <= 4, `${hang.maxInFlight} requests open at once`);
    let timedOut;
    await until(async () => {
      timedOut = (await deliveries(h, slow.id)).find((d) => d.attempts.length > 0);
      return !!timedOut;
    }, { timeoutMs: 10000, stepMs: 100 });
    assert.match(timedOut.attempts[0].error, /time(d)? ?out/i, JSON.stringify(timedOut.attempts[0]));
    assert.equal(timedOut.attempts[0].http_status, null);
    assert.ok(timedOut.attempts[0].latency_ms >= 2500, `${timedOut.attempts[0].latency_ms} ms`);
    // stop it sending more while the rest of the file runs
    assert.equal((await api(h, 'DELETE', `/v1/webhooks/${slow.id}`)).status, 200);
  } finally {
    await hang.close();
    await healthy.close();
  }
});

test('an ordered endpoint gets events in seq order, one request at a time, across a retry', async () => {
  const rx = await Receiver.start();
  try {
    let failed = false;
    rx.respond = (q) => {
      if (q.json && q.json.seq === 2 && !failed) {
        failed = true;
        return { status: 500 };
      }
      return { status: 200, delayMs: 20 };
    };
    const ep = await create(h, { url: rx.url('/ordered'), topics: ['ordered.x'], ordered: true });
    assert.equal(ep.ordered, true);
    const evs = [];
    for (let i = 0; i < 10; i++) evs.push(await pub(h, 'ordered.x', { i }));
    assert.deepEqual(evs.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await rx.waitForCount(11, { timeoutMs: 15000 });
    await sleep(200);
    const seqs = rx.requests.map((q) => q.json.seq);
    assert.deepEqual(seqs, [1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(rx.maxInFlight, 1);
    assert.ok(rx.requests[2].at - rx.requests[1].at >= 900, 'seq 2 waited for its retry; seq 3 waited for it');
    for (const e of evs) await waitDelivery(h, ep.id, e.id, (x) => x.status === 'delivered');
  } finally {
    await rx.close();
  }
});

test('an endpoint failing for longer than disable_after_s is disabled with reason "failing"', async () => {
  const rx = await Receiver.start();
  let own;
  let ws;
  try {
    own = await startHerald({ webhooks: { ...HOOKS.webhooks, disable_after_s: 1 } });
    ws = await Client.open(own.wsUrl);
    await ws.subscribe('herald.webhooks.>');
    rx.respond = () => ({ status: 500 });
    const ep = await create(own, { url: rx.url('/failing'), topics: ['failing.x'] });
    const e = await pub(own, 'failing.x', 1);
    const ev = await ws.waitFor((m) => m.op === 'event' && m.topic === 'herald.webhooks.endpoint_disabled', { timeoutMs: 10000 });
    assert.equal(ev.data.endpoint_id, ep.id);
    assert.equal(ev.data.reason, 'failing');
    // failing since attempt 1; attempt 2 (1 s later) finds it failing for 1 s
    assert.equal(rx.requests.length, 2);
    const g = await api(own, 'GET', `/v1/webhooks/${ep.id}`);
    assert.equal(g.body.enabled, false);
    assert.equal(g.body.disabled_reason, 'failing');
    await sleep(1500);
    assert.equal(rx.requests.length, 2, 'a disabled endpoint gets no more attempts');
    const d = (await deliveries(own, ep.id)).find((x) => x.event_id === e.id);
    assert.equal(d.attempts.length, 2);
  } finally {
    if (ws) await ws.close();
    if (own) assert.equal((await own.stop()).code, 0);
    await rx.close();
  }
});

// webhooks.schedule's first entry is the delay before the first attempt
// (the default [0, 5, 300, ...] sends at once); a manual retry is sent at once.
test('the first attempt waits for the schedule\'s first delay; a manual retry does not', async () => {
  const rx = await Receiver.start();
  let own;
  try {
    own = await startHerald({ webhooks: { ...HOOKS.webhooks, schedule: [2, 1] } });
    rx.respond = (q, i) => (i === 0 ? { status: 500 } : { status: 200 });
    const ep = await create(own, { url: rx.url('/first'), topics: ['first.x'] });
    const t0 = Date.now();
    const e = await pub(own, 'first.x', 1);
    const d0 = (await deliveries(own, ep.id)).find((x) => x.event_id === e.id);
    assert.equal(d0.status, 'pending');
    assert.deepEqual(d0.attempts, []);
    const due = Date.parse(d0.next_attempt_at) - t0;
    assert.ok(due >= 1500 && due <= 3000, `first attempt due after ${due} ms`);
    const r409 = await api(own, 'POST', `/v1/webhooks/${ep.id}/deliveries/${d0.id}/retry`);
    assert.equal(r409.status, 409);
    await rx.waitForCount(2, { timeoutMs: 10000 });
    const wait = rx.requests[0].at - t0;
    assert.ok(wait >= 1800, `first attempt after ${wait} ms, schedule[0] is 2 s`);
    const gap = rx.requests[1].at - rx.requests[0].at;
    assert.ok(gap >= 900, `second attempt ${gap} ms after the first, schedule[1] is 1 s`);
    await waitDelivery(own, ep.id, e.id, (x) => x.status === 'delivered');
    const t1 = Date.now();
    assert.equal((await api(own, 'POST', `/v1/webhooks/${ep.id}/deliveries/${d0.id}/retry`)).status, 202);
    await rx.waitForCount(3, { timeoutMs: 10000 });
    const again = rx.requests[2].at - t1;
    assert.ok(again < 1500, `a manual retry went after ${again} ms`);
  } finally {
    if (own) assert.equal((await own.stop()).code, 0);
    await rx.close();
  }
});
