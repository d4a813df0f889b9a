// History over REST (docs/protocol.md, REST API): GET /v1/events pages
// through the history log with cursors (every event once, gaps and epoch
// changes reported), GET /v1/topics/{topic}/events/latest, the `subscribe`
// grant of API keys, and POST /v1/webhooks/{id}/replay from a cursor, which
// delivers again, signed, exactly the endpoint's events after it.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Webhook } = require('standardwebhooks');
const { startHerald, Client, publish, sleep, until } = require('./lib/herald');
const { Receiver } = require('./lib/receiver');
const { api } = require('./lib/webhooks');

const memory = { history: { durable: false } };
const HOOKS = {
  webhooks: { allowed_cidrs: ['127.0.0.1/32'], schedule: [0, 1, 1, 1], jitter_percent: 0 },
};
const CURSOR_RE = /^[a-z0-9]{8}:\d+$/;

async function pub(h, topic, data, headers) {
  const r = await publish(h, topic, data, { headers });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body; // {id, topic, seq, offset, cursor}
}

// GET on the API port; query is an object (URL-encoded here).
function get(h, path, query, headers) {
  const q = query ? '?' + new URLSearchParams(query) : '';
  return api(h, 'GET', path + q, undefined, { headers });
}

// Every page of /v1/events from `since` (none: the oldest), `limit` at a time.
async function walk(h, topic, { since, limit, headers } = {}) {
  const pages = [];
  for (let i = 0; i < 1000; i++) {
    const query = { topic };
    if (since) query.since = since;
    if (limit) query.limit = String(limit);
    const r = await get(h, '/v1/events', query, headers);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(r.body.next, CURSOR_RE);
    pages.push(r.body);
    since = r.body.next;
    if (!r.body.more) return pages;
  }
  throw new Error('too many pages');
}

test('pagination: next walks every matching event exactly once, the objects are the WebSocket ones', async () => {
  const h = await startHerald(memory);
  try {
    const c = await Client.open(h.wsUrl);
    await c.subscribe('a.*');
    const acks = [];
    for (let i = 0; i < 23; i++) acks.push(await pub(h, ['a.x', 'b.y', 'a.z'][i % 3], { i }));
    const want = acks.filter((a) => a.topic.startsWith('a.'));
    await until(() => c.events().length === want.length);

    const pages = await walk(h, 'a.*', { limit: 4 });
    const got = pages.flatMap((p) => p.events);
    assert.deepEqual(got.map((e) => e.offset), want.map((a) => a.offset));
    assert.deepEqual(got, c.events(), 'identical to what the WebSocket sent');
    assert.ok(pages.slice(0, -1).every((p) => p.events.length === 4 && p.more === true));
    for (const p of pages) assert.equal(p.gap, undefined);
    // each page's next is the cursor of its last event
    for (const p of pages.slice(0, -1)) assert.equal(p.next, p.events[p.events.length - 1].cursor);

    // from the end: nothing more, and next stays where it was
    const end = pages[pages.length - 1].next;
    const r = await get(h, '/v1/events', { topic: 'a.*', since: end });
    assert.deepEqual(r.body, { events: [], next: end, more: false });
    // a new event after it is the next page
    const late = await pub(h, 'a.x', { late: true });
    const r2 = await get(h, '/v1/events', { topic: 'a.*', since: end });
    assert.deepEqual(r2.body.events.map((e) => e.offset), [late.offset]);
    assert.equal(r2.body.next, late.cursor);

    // since in the middle: exactly the events after it
    const mid = want[3];
    const rest = (await walk(h, 'a.*', { since: mid.cursor, limit: 1000 })).flatMap((p) => p.events);
    assert.deepEqual(rest.map((e) => e.offset), [...want.slice(4), late].map((a) => a.offset));
    // a concrete topic is a pattern too
    const only = (await walk(h, 'b.y')).flatMap((p) => p.events);
    assert.deepEqual(only.map((e) => e.id), acks.filter((a) => a.topic === 'b.y').map((a) => a.id));
    await c.close();
  } finally {
    await h.stop();
  }
});

test('limit: 100 by default, 1 to 1000; bad parameters, cursors and topics are 400; GET only', async () => {
  const h = await startHerald(memory);
  try {
    const acks = [];
    for (let i = 0; i < 105; i++) acks.push(await pub(h, 'l.x', { i }));
    const d = await get(h, '/v1/events', { topic: 'l.>' });
    assert.equal(d.status, 200);
    assert.equal(d.body.events.length, 100);
    assert.equal(d.body.more, true);
    assert.equal(d.body.next, acks[99].cursor);
    const big = await get(h, '/v1/events', { topic: 'l.>', limit: '1000' });
    assert.equal(big.body.events.length, 105);
    assert.equal(big.body.more, false);
    const one = await get(h, '/v1/events', { topic: 'l.>', limit: '1' });
    assert.deepEqual(one.body.events.map((e) => e.offset), [acks[0].offset]);

    for (const limit of ['0', '1001', '-1', 'abc', '1.5', '', '99999', ' 5']) {
      const r = await get(h, '/v1/events', { topic: 'l.>', limit });
      assert.equal(r.status, 400, limit);
      assert.equal(r.body.error.code, 'invalid_parameter');
      assert.equal(r.body.error.field, 'limit');
    }
    const [epoch] = acks[0].cursor.split(':');
    for (const since of ['', 'nope', `${epoch}:`, `${epoch}:01`, `${epoch.slice(1)}:1`, `${epoch}:1x`]) {
      const r = await get(h, '/v1/events', { topic: 'l.>', since });
      assert.equal(r.status, 400, since);
      assert.equal(r.body.error.code, 'invalid_cursor', since);
    }
    const ahead = await get(h, '/v1/events', { topic: 'l.>', since: `${epoch}:${acks[104].offset + 1}` });
    assert.equal(ahead.status, 400);
    assert.equal(ahead.body.error.code, 'invalid_cursor');
    assert.match(ahead.body.error.message, /ahead/);
    const zero = await get(h, '/v1/events', { topic: 'l.>', since: `${epoch}:0`, limit: '1' });
    assert.equal(zero.status, 200);
    assert.equal(zero.body.events[0].offset, acks[0].offset);

    for (const topic of ['l..x', 'l.>.x', '', 'a b']) {
      const r = await get(h, '/v1/events', { topic });
      assert.equal(r.status, 400, topic);
      assert.equal(r.body.error.code, 'invalid_topic');
    }
    const none = await get(h, '/v1/events');
    assert.equal(none.status, 400);
    assert.equal(none.body.error.code, 'invalid_topic');
    const nul = await api(h, 'GET', '/v1/events?topic=l.%00x');
    assert.equal(nul.status, 400);
    assert.equal(nul.body.error.code, 'invalid_topic');

    const post = await api(h, 'POST', '/v1/events?topic=l.x', { n: 1 });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
    const postLatest = await api(h, 'POST', '/v1/topics/l.x/events/latest', { n: 1 });
    assert.equal(postLatest.status, 405);
    assert.equal(postLatest.headers.get('allow'), 'GET');
  } finally {
    await h.stop();
  }
});

test('a page stops before 4 MiB of events (more: true) and the walk still gets every event once', async () => {
  const h = await startHerald({ history: { durable: false, max_bytes: 64 << 20 } });
  try {
    const big = 'x'.repeat(60000);
    const acks = [];
    for (let i = 0; i < 80; i++) acks.push(await pub(h, 'big.x', { i, big }));
    const first = await get(h, '/v1/events', { topic: 'big.x', limit: '1000' });
    assert.equal(first.status, 200);
    assert.ok(first.body.events.length < 80 && first.body.events.length > 10, String(first.body.events.length));
    assert.equal(first.body.more, true);
    const pages = await walk(h, 'big.x', { limit: 1000 });
    assert.deepEqual(pages.flatMap((p) => p.events).map((e) => e.offset), acks.map((a) => a.offset));
  } finally {
    await h.stop();
  }
});

test('gap: events removed after since are reported (evicted), the page goes on from the oldest', async () => {
  const h = await startHerald({ history: { durable: false, max_events: 5 } });
  try {
    const acks = [];
    for (let i = 0; i < 10; i++) acks.push(await pub(h, 'g.x', { i }));
    const r = await get(h, '/v1/events', { topic: 'g.*', since: acks[1].cursor });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.gap, { requested: acks[1].cursor, oldest: acks[5].cursor, reason: 'evicted' });
    assert.deepEqual(r.body.events.map((e) => e.offset), acks.slice(5).map((a) => a.offset));
    assert.equal(r.body.more, false);
    // without since: from the oldest retained, nothing was asked for that is gone
    const all = await get(h, '/v1/events', { topic: 'g.*' });
    assert.equal(all.body.gap, undefined);
    assert.equal(all.body.events.length, 5);
    // from a retained cursor: no gap
    const ok = await get(h, '/v1/events', { topic: 'g.*', since: acks[6].cursor });
    assert.equal(ok.body.gap, undefined);
    assert.deepEqual(ok.body.events.map((e) => e.offset), acks.slice(7).map((a) => a.offset));
  } finally {
    await h.stop();
  }
});

test('a cursor of another epoch: gap epoch_changed, read from the oldest, next in this epoch', async () => {
  const h = await startHerald(memory);
  try {
    const acks = [];
    for (let i = 0; i < 4; i++) acks.push(await pub(h, 'e.x', { i }));
    const [epoch] = acks[0].cursor.split(':');
    const other = epoch === 'zzzzzzzz' ? 'yyyyyyyy' : 'zzzzzzzz';
    const r = await get(h, '/v1/events', { topic: 'e.x', since: `${other}:2`, limit: '3' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.gap, { requested: `${other}:2`, oldest: acks[0].cursor, reason: 'epoch_changed' });
    assert.deepEqual(r.body.events.map((e) => e.offset), acks.slice(0, 3).map((a) => a.offset));
    assert.equal(r.body.more, true);
    assert.equal(r.body.next, acks[2].cursor);
    // even a cursor "ahead" of this log is fine in another epoch
    const far = await get(h, '/v1/events', { topic: 'e.x', since: `${other}:999999` });
    assert.equal(far.status, 200);
    assert.equal(far.body.gap.reason, 'epoch_changed');
    assert.equal(far.body.events.length, 4);
  } finally {
    await h.stop();
  }
});

test('latest: the last retained event of a topic, as the WebSocket sends it; 404 when none', async () => {
  const h = await startHerald(memory);
  try {
    const c = await Client.open(h.wsUrl);
    await c.subscribe('t.>');
    await pub(h, 't.a', { n: 1 });
    await pub(h, 't.b', { n: 2 });
    const last = await pub(h, 't.a', { n: 3 });
    await until(() => c.events().length === 3);
    const r = await get(h, '/v1/topics/t.a/events/latest');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.cursor, last.cursor);
    assert.deepEqual(r.body, c.events()[2]);
    const none = await get(h, '/v1/topics/t.c/events/latest');
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'not_found');
    const wild = await get(h, '/v1/topics/t.*/events/latest');
    assert.equal(wild.status, 400);
    assert.equal(wild.body.error.code, 'invalid_topic');
    await c.close();
  } finally {
    await h.stop();
  }
});

test('history off: both routes answer 409 history_disabled', async () => {
  const h = await startHerald({ history: { enabled: false } });
  try {
    await pub(h, 'o.x', { n: 1 });
    for (const path of ['/v1/events?topic=o.x', '/v1/topics/o.x/events/latest']) {
      const r = await api(h, 'GET', path);
      assert.equal(r.status, 409, path);
      assert.equal(r.body.error.code, 'history_disabled');
    }
  } finally {
    await h.stop();
  }
});

const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
const KEYS = {
  reader: 'history-reader-key-000001',
  writer: 'history-writer-key-000001',
  admin: 'history-admin-key-0000001',
};

test('grants: a key reads what its subscribe patterns cover; admin reads everything; others 401/403', async () => {
  const h = await startHerald({
    ...memory,
    auth: {
      api_keys: [
        { name: 'reader', sha256: sha(KEYS.reader), subscribe: ['a.>'] },
        { name: 'writer', sha256: sha(KEYS.writer), publish: ['>'] },
        { name: 'admin', sha256: sha(KEYS.admin), admin: true },
      ],
    },
  });
  const as = (who) => ({ Authorization: `Bearer ${KEYS[who]}` });
  try {
    const ev = await pub(h, 'a.x', { n: 1 }, as('writer'));
    await pub(h, 'b.x', { n: 2 }, as('writer'));
    const cases = [
      ['reader', 'a.*', 200], ['reader', 'a.>', 200], ['reader', 'a.x', 200],
      ['reader', '>', 403], ['reader', 'b.x', 403], ['reader', '*.x', 403],
      ['writer', 'a.x', 403], ['admin', '>', 200],
    ];
    for (const [who, topic, status] of cases) {
      const r = await get(h, '/v1/events', { topic }, as(who));
      assert.equal(r.status, status, `${who} ${topic}: ${JSON.stringify(r.body)}`);
      if (status === 403) assert.equal(r.body.error.code, 'forbidden');
    }
    const mine = await get(h, '/v1/events', { topic: 'a.>' }, as('reader'));
    assert.deepEqual(mine.body.events.map((e) => e.id), [ev.id]);
    const all = await get(h, '/v1/events', { topic: '>' }, as('admin'));
    assert.equal(all.body.events.length, 2);

    assert.equal((await get(h, '/v1/topics/a.x/events/latest', null, as('reader'))).status, 200);
    assert.equal((await get(h, '/v1/topics/b.x/events/latest', null, as('reader'))).status, 403);
    assert.equal((await get(h, '/v1/topics/b.x/events/latest', null, as('admin'))).status, 200);
    assert.equal((await get(h, '/v1/topics/a.x/events/latest', null, as('writer'))).status, 403);
    // no key, an unknown key: 401; a reader may not publish
    assert.equal((await get(h, '/v1/events', { topic: 'a.x' })).status, 401);
    assert.equal((await get(h, '/v1/events', { topic: 'a.x' }, { Authorization: 'Bearer nope' })).status, 401);
    assert.equal((await get(h, '/v1/topics/a.x/events/latest')).status, 401);
    assert.equal((await publish(h, 'a.x', { n: 3 }, { headers: as('reader') })).status, 403);
  } finally {
    await h.stop();
  }
});

test('an API key with a bad subscribe pattern is refused at start, naming the key', async () => {
  await assert.rejects(
    startHerald({ auth: { api_keys: [{ name: 'r', sha256: sha('x'), subscribe: ['a..b'] }] } }),
    /auth\.api_keys\[0\]\.subscribe/,
  );
});

test('webhook replay since a cursor: exactly the endpoint\'s events after it, signed; bounded by history.max_replay', async () => {
  const rx = await Receiver.start();
  const h = await startHerald({ ...HOOKS, history: { durable: false, max_replay: 3 } });
  try {
    const ep = (await api(h, 'POST', '/v1/webhooks', { url: rx.url('/r'), topics: ['r.a.>', 'r.c'] })).body;
    assert.ok(ep.id, JSON.stringify(ep));
    const acks = [];
    const topics = ['r.a.1', 'r.b', 'r.a.2', 'r.c', 'r.b', 'r.a.1', 'r.a.3', 'r.b'];
    for (let i = 0; i < topics.length; i++) acks.push(await pub(h, topics[i], { i }));
    const mine = acks.filter((a) => a.topic !== 'r.b');
    await rx.waitForCount(mine.length);
    const original = new Map(rx.requests.map((q) => [q.headers['webhook-id'], q.body]));

    // after the first event: its four matching successors, three at a time
    const r1 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: acks[0].cursor });
    assert.equal(r1.status, 202, JSON.stringify(r1.body));
    const want = mine.filter((a) => a.offset > acks[0].offset);
    assert.equal(want.length, 4);
    assert.deepEqual(r1.body, { queued: 3, truncated: true, next: want[2].cursor });
    const r2 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: r1.body.next });
    assert.equal(r2.status, 202, JSON.stringify(r2.body));
    assert.deepEqual(r2.body, { queued: 1, truncated: false, next: acks[acks.length - 1].cursor });
    await rx.waitForCount(mine.length + 4);
    await sleep(300);
    assert.equal(rx.requests.length, mine.length + 4, 'nothing else was sent');
    const again = rx.requests.slice(mine.length);
    assert.deepEqual(again.map((q) => q.headers['webhook-id']).sort(), want.map((a) => a.id).sort());
    for (const q of again) {
      assert.deepEqual(new Webhook(ep.secret).verify(q.body, q.headers), q.json);
      assert.ok(q.body.equals(original.get(q.headers['webhook-id'])), 'the same bytes as the first time');
    }

    // from the end: nothing; another epoch: a gap, from the oldest (bounded)
    const r3 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: acks[acks.length - 1].cursor });
    assert.deepEqual(r3.body, { queued: 0, truncated: false, next: acks[acks.length - 1].cursor });
    const [epoch] = acks[0].cursor.split(':');
    const other = epoch === 'zzzzzzzz' ? 'yyyyyyyy' : 'zzzzzzzz';
    const r4 = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: `${other}:5` });
    assert.equal(r4.status, 202, JSON.stringify(r4.body));
    assert.equal(r4.body.queued, 3);
    assert.equal(r4.body.truncated, true);
    assert.deepEqual(r4.body.gap, { requested: `${other}:5`, oldest: acks[0].cursor, reason: 'epoch_changed' });
    await rx.waitForCount(mine.length + 7);
    assert.deepEqual(rx.requests.slice(mine.length + 4).map((q) => q.headers['webhook-id']).sort(),
      mine.slice(0, 3).map((a) => a.id).sort());

    // errors: a cursor ahead of the log, an unknown endpoint; the time form still works
    const ahead = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: `${epoch}:999999` });
    assert.equal(ahead.status, 422);
    assert.equal(ahead.body.error.field, 'since');
    const nope = await api(h, 'POST', '/v1/webhooks/no-such-endpoint/replay', { since: acks[0].cursor });
    assert.equal(nope.status, 404);
    const bad = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: 'not-a-thing' });
    assert.equal(bad.status, 422);
    const byTime = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: new Date(Date.now() + 60000).toISOString() });
    assert.deepEqual(byTime.body, { requeued: 0 });
  } finally {
    await h.stop();
    await rx.close();
  }
});

test('webhook replay since a cursor: a gap when events after it were removed; 409 with history off', async () => {
  const rx = await Receiver.start();
  const h = await startHerald({ ...HOOKS, history: { durable: false, max_events: 3 } });
  const off = await startHerald({ ...HOOKS, history: { enabled: false } });
  try {
    const ep = (await api(h, 'POST', '/v1/webhooks', { url: rx.url('/g'), topics: ['g.>'] })).body;
    const acks = [];
    for (let i = 0; i < 6; i++) acks.push(await pub(h, 'g.x', { i }));
    await rx.waitForCount(6);
    const r = await api(h, 'POST', `/v1/webhooks/${ep.id}/replay`, { since: acks[0].cursor });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.queued, 3);
    assert.deepEqual(r.body.gap, { requested: acks[0].cursor, oldest: acks[3].cursor, reason: 'evicted' });
    await rx.waitForCount(9);
    assert.deepEqual(rx.requests.slice(6).map((q) => q.headers['webhook-id']).sort(),
      acks.slice(3).map((a) => a.id).sort());

    const ep2 = (await api(off, 'POST', '/v1/webhooks', { url: rx.url('/o'), topics: ['g.>'] })).body;
    const r2 = await api(off, 'POST', `/v1/webhooks/${ep2.id}/replay`, { since: 'abcdefgh:1' });
    assert.equal(r2.status, 409);
    assert.equal(r2.body.error.code, 'history_disabled');
  } finally {
    await h.stop();
    await off.stop();
    await rx.close();
  }
});
