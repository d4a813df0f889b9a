// The webhook endpoints API on the API port: create, list (pagination),
// get, patch, delete, the 4xx answers naming the field at fault, the target
// guard at registration, persistence across a restart, and endpoints
// declared in the config.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Webhook } = require('standardwebhooks');
const { startHerald, publish, sleep, until } = require('./lib/herald');
const { Receiver } = require('./lib/receiver');
const { api } = require('./lib/webhooks');

// Loopback receivers need the guard opened for 127.0.0.1; short retries.
const HOOKS = {
  webhooks: { allowed_cidrs: ['127.0.0.1/32'], schedule: [0, 1, 1], jitter_percent: 0 },
};
const SECRET_RE = /^whsec_[A-Za-z0-9+/]+=*$/;
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;


function secretOf(nbytes) {
  return 'whsec_' + crypto.randomBytes(nbytes).toString('base64');
}

function tmpDataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'herald-wh-data-'));
}

async function create(h, body) {
  const r = await api(h, 'POST', '/v1/webhooks', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function expect422(h, method, p, body, field) {
  const r = await api(h, method, p, body);
  assert.equal(r.status, 422, `${method} ${p} ${JSON.stringify(body)} -> ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, 'invalid_field', JSON.stringify(r.body));
  assert.equal(r.body.error.field, field, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  return r.body.error;
}

let h;
let rx; // a receiver that answers 200
before(async () => {
  rx = await Receiver.start();
  h = await startHerald(HOOKS);
});
after(async () => {
  await rx.close();
  const r = await h.stop();
  assert.equal(r.code, 0);
});

test('create answers 201 with the endpoint and a generated whsec_ secret', async () => {
  const before = Date.now();
  const r = await api(h, 'POST', '/v1/webhooks', { url: rx.url('/create'), topics: ['create.>', 'other.*.x'] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const ep = r.body;
  assert.equal(typeof ep.id, 'string');
  assert.ok(ep.id.length > 0);
  assert.equal(ep.url, rx.url('/create'));
  assert.deepEqual(ep.topics, ['create.>', 'other.*.x']);
  assert.equal(ep.description, '');
  assert.equal(ep.enabled, true);
  assert.equal(ep.ordered, false);
  assert.equal('from_config' in ep, false);
  assert.equal('disabled_reason' in ep, false);
  assert.match(ep.created_at, ISO_RE);
  assert.match(ep.updated_at, ISO_RE);
  assert.ok(Math.abs(Date.parse(ep.created_at) - before) < 60000, ep.created_at);
  assert.match(ep.secret, SECRET_RE);
  const key = Buffer.from(ep.secret.slice('whsec_'.length), 'base64');
  assert.ok(key.length >= 24 && key.length <= 64, `secret of ${key.length} bytes`);
  // the library takes it as it is
  assert.doesNotThrow(() => new Webhook(ep.secret));

  // two creations never share an id or a secret
  const other = await create(h, { url: rx.url('/create2'), topics: ['create.>'] });
  assert.notEqual(other.id, ep.id);
  assert.notEqual(other.secret, ep.secret);

  // the secret is shown at creation only: GET and the list leave it out
  const g = await api(h, 'GET', `/v1/webhooks/${ep.id}`);
  assert.equal(g.status, 200);
  assert.equal('secret' in g.body, false, JSON.stringify(g.body));
  const { secret, ...rest } = ep;
  assert.deepEqual(g.body, rest);
  const l = await api(h, 'GET', '/v1/webhooks?limit=250');
  assert.equal(l.status, 200);
  assert.ok(l.body.data.some((e) => e.id === ep.id));
  for (const e of l.body.data) assert.equal('secret' in e, false);
});

test('create keeps a secret given to it, and the other optional fields', async () => {
  const given = secretOf(32);
  const ep = await create(h, {
    url: rx.url('/given'),
    topics: ['given.>'],
    description: 'billing ✓',
    secret: given,
    enabled: false,
    ordered: true,
  });
  assert.equal(ep.secret, given);
  assert.equal(ep.description, 'billing ✓');
  assert.equal(ep.enabled, false);
  assert.equal(ep.ordered, true);
  // the shortest and longest keys the format allows
  for (const n of [24, 64]) {
    const s = secretOf(n);
    const e = await create(h, { url: rx.url('/given'), topics: ['given.>'], secret: s });
    assert.equal(e.secret, s);
  }
});

test('the list pages with limit and cursor: every endpoint once, next_cursor null at the end', async () => {
  const own = await startHerald(HOOKS);
  try {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await create(own, { url: rx.url(`/p${i}`), topics: [`page.${i}`] })).id);
    const pages = [];
    let cursor = null;
    for (let guard = 0; guard < 10; guard++) {
      const q = cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`;
      const r = await api(own, 'GET', '/v1/webhooks' + q);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(Array.isArray(r.body.data));
      assert.ok('next_cursor' in r.body);
      pages.push(r.body.data.map((e) => e.id));
      cursor = r.body.next_cursor;
      if (cursor === null) break;
      assert.equal(typeof cursor, 'string');
    }
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    const seen = pages.flat();
    assert.equal(new Set(seen).size, seen.length, 'no endpoint twice');
    assert.deepEqual([...seen].sort(), [...ids].sort());
    // in creation order
    assert.deepEqual(seen, ids);
    // without limit: all of them in one page
    const all = await api(own, 'GET', '/v1/webhooks');
    assert.deepEqual(all.body.data.map((e) => e.id), ids);
    assert.equal(all.body.next_cursor, null);
    // a limit of exactly the count: one page, no cursor
    const five = await api(own, 'GET', '/v1/webhooks?limit=5');
    assert.equal(five.body.data.length, 5);
    assert.equal(five.body.next_cursor, null);
    // bad limits are refused, naming the parameter
    for (const bad of ['0', '-1', 'abc', '251', '']) {
      const r = await api(own, 'GET', `/v1/webhooks?limit=${bad}`);
      assert.equal(r.status, 400, `limit=${bad}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.field, 'limit');
    }
    // a deleted endpoint leaves the list
    assert.equal((await api(own, 'DELETE', `/v1/webhooks/${ids[2]}`)).status, 200);
    const after = await api(own, 'GET', '/v1/webhooks');
    assert.deepEqual(after.body.data.map((e) => e.id), ids.filter((_, i) => i !== 2));
  } finally {
    assert.equal((await own.stop()).code, 0);
  }
});

test('get, patch and delete; after a topics patch only the new topics deliver', async () => {
  const r = await Receiver.start();
  try {
    const ep = await create(h, { url: r.url('/patch'), topics: ['patchold.>'], description: 'before' });
    const p1 = await publish(h, 'patchold.a', { n: 1 });
    assert.equal(p1.status, 202);
    await r.waitForCount(1);
    assert.equal(r.requests[0].json.type, 'patchold.a');

    const g = await api(h, 'GET', `/v1/webhooks/${ep.id}`);
    assert.equal(g.status, 200);
    assert.equal(g.body.description, 'before');

    await sleep(5); // updated_at moves on
    const pt = await api(h, 'PATCH', `/v1/webhooks/${ep.id}`, { topics: ['patchnew.>'], description: 'after' });
    assert.equal(pt.status, 200, JSON.stringify(pt.body));
    assert.deepEqual(pt.body.topics, ['patchnew.>']);
    assert.equal(pt.body.description, 'after');
    assert.equal(pt.body.url, r.url('/patch'), 'fields not in the patch are kept');
    assert.equal(pt.body.id, ep.id);
    assert.equal(pt.body.created_at, ep.created_at);
    assert.ok(Date.parse(pt.body.updated_at) >= Date.parse(ep.updated_at));
    assert.equal('secret' in pt.body, false);
    assert.deepEqual((await api(h, 'GET', `/v1/webhooks/${ep.id}`)).body, pt.body);

    const old = await publish(h, 'patchold.b', { n: 2 });
    const neu = await publish(h, 'patchnew.c', { n: 3 });
    assert.equal(old.status, 202);
    assert.equal(neu.status, 202);
    await r.waitFor((reqs) => reqs.some((q) => q.json && q.json.id === neu.body.id));
    await sleep(300); // a late delivery of patchold.b would show now
    assert.deepEqual(r.requests.map((q) => q.json.type), ['patchold.a', 'patchnew.c']);
    const d = await api(h, 'GET', `/v1/webhooks/${ep.id}/deliveries`);
    assert.equal(d.status, 200);
    assert.deepEqual(d.body.data.map((x) => x.event_id).sort(), [p1.body.id, neu.body.id].sort());

    // disabling by request: shown, and nothing more is delivered
    const dis = await api(h, 'PATCH', `/v1/webhooks/${ep.id}`, { enabled: false });
    assert.equal(dis.status, 200);
    assert.equal(dis.body.enabled, false);
    assert.equal(dis.body.disabled_reason, 'by_request');
    assert.equal((await publish(h, 'patchnew.d', 4)).status, 202);
    await sleep(300);
    assert.equal(r.requests.length, 2);
    const en = await api(h, 'PATCH', `/v1/webhooks/${ep.id}`, { enabled: true });
    assert.equal(en.body.enabled, true);
    assert.equal('disabled_reason' in en.body, false);

    // delete
    const del = await api(h, 'DELETE', `/v1/webhooks/${ep.id}`);
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.deepEqual(del.body, { id: ep.id, deleted: true });
    for (const [m, p, b] of [
      ['GET', `/v1/webhooks/${ep.id}`],
      ['DELETE', `/v1/webhooks/${ep.id}`],
      ['PATCH', `/v1/webhooks/${ep.id}`, { description: 'x' }],
      ['GET', `/v1/webhooks/${ep.id}/deliveries`],
      ['POST', `/v1/webhooks/${ep.id}/rotate-secret`],
      ['POST', `/v1/webhooks/${ep.id}/replay`, { since: '2020-01-01T00:00:00Z' }],
    ]) {
      const x = await api(h, m, p, b);
      assert.equal(x.status, 404, `${m} ${p}: ${JSON.stringify(x.body)}`);
      assert.equal(x.body.error.code, 'not_found');
    }
    assert.equal((await publish(h, 'patchnew.e', 5)).status, 202);
    await sleep(300);
    assert.equal(r.requests.length, 2, 'a deleted endpoint gets nothing');
  } finally {
    await r.close();
  }
});

test('unknown endpoints and deliveries are 404', async () => {
  for (const p of ['/v1/webhooks/nope', '/v1/webhooks/nope/deliveries']) {
    const r = await api(h, 'GET', p);
    assert.equal(r.status, 404, p);
    assert.equal(r.body.error.code, 'not_found');
  }
  const ep = await create(h, { url: rx.url('/x'), topics: ['nf.x'] });
  for (const d of ['999999', 'abc', '0']) {
    const r = await api(h, 'POST', `/v1/webhooks/${ep.id}/deliveries/${d}/retry`);
    assert.equal(r.status, 404, `${d}: ${JSON.stringify(r.body)}`);
  }
  const r = await api(h, 'GET', '/v1/webhooks/a/b/c/d/e');
  assert.equal(r.status, 404);
  for (const [q, field] of [['cursor=abc', 'cursor'], ['cursor=-5', 'cursor'], ['limit=0', 'limit'], ['limit=x', 'limit'], ['status=lost', 'status']]) {
    const x = await api(h, 'GET', `/v1/webhooks/${ep.id}/deliveries?${q}`);
    assert.equal(x.status, 400, `${q}: ${JSON.stringify(x.body)}`);
    assert.equal(x.body.error.code, 'invalid_parameter');
    assert.equal(x.body.error.field, field);
  }
  // at the limit of 100 patterns and 1024 bytes of description: fine
  await create(h, { url: rx.url('/x'), topics: Array.from({ length: 100 }, (_, i) => `t.${i}`), description: 'd'.repeat(1024) });
});

test('422 invalid_field names the field at fault', async () => {
  const url = rx.url('/v');
  const topics = ['valid.>'];
  const cases = [
    [{ url: 'ftp://127.0.0.1/x', topics }, 'url'],
    [{ url: 'not a url', topics }, 'url'],
    [{ url: '/relative/path', topics }, 'url'],
    [{ url: `http://user:pw@127.0.0.1:${rx.port}/x`, topics }, 'url'],
    [{ url: 42, topics }, 'url'],
    [{ url: `http://127.0.0.1:${rx.port}/x#frag`, topics }, 'url'],
    [{ url: `http://127.0.0.1:${rx.port}/` + 'x'.repeat(2048), topics }, 'url'],
    [{ topics }, 'url'],
    [{ url, topics: [] }, 'topics'],
    [{ url, topics: ['a..b'] }, 'topics'],
    [{ url, topics: ['a.>.b'] }, 'topics'],
    [{ url, topics: 'valid.>' }, 'topics'],
    [{ url, topics: [7] }, 'topics'],
    [{ url, topics: Array.from({ length: 101 }, (_, i) => `t.${i}`) }, 'topics'],
    [{ url }, 'topics'],
    [{ url, topics, secret: 'nope' }, 'secret'],
    [{ url, topics, secret: 'whsec_' + crypto.randomBytes(10).toString('base64') }, 'secret'],
    [{ url, topics, secret: 'whsec_' + crypto.randomBytes(65).toString('base64') }, 'secret'],
    [{ url, topics, secret: 'whsec_not base64!' }, 'secret'],
    [{ url, topics, secret: 12345 }, 'secret'],
    [{ url, topics, enabled: 'yes' }, 'enabled'],
    [{ url, topics, ordered: 1 }, 'ordered'],
    [{ url, topics, description: 5 }, 'description'],
    [{ url, topics, description: 'x'.repeat(1025) }, 'description'],
    [{ url, topics, colour: 'red' }, 'colour'],
    [{ url, topics, id: 'mine' }, 'id'],
  ];
  const before = (await api(h, 'GET', '/v1/webhooks?limit=250')).body.data.length;
  const msgs = {};
  for (const [body, field] of cases) {
    const e = await expect422(h, 'POST', '/v1/webhooks', body, field);
    msgs[JSON.stringify(body)] = e.message;
  }
  assert.match(msgs[JSON.stringify({ url: 'ftp://127.0.0.1/x', topics })], /scheme/);
  assert.match(msgs[JSON.stringify({ url: `http://user:pw@127.0.0.1:${rx.port}/x`, topics })], /credentials/);
  assert.match(msgs[JSON.stringify({ url, topics, colour: 'red' })], /unknown/);
  // nothing was created by any of them
  assert.equal((await api(h, 'GET', '/v1/webhooks?limit=250')).body.data.length, before);

  // PATCH: the secret cannot be set there; bad fields leave the endpoint as it was
  const ep = await create(h, { url, topics });
  const e = await expect422(h, 'PATCH', `/v1/webhooks/${ep.id}`, { secret: secretOf(32) }, 'secret');
  assert.match(e.message, /rotate-secret/);
  await expect422(h, 'PATCH', `/v1/webhooks/${ep.id}`, { description: 'changed', url: 'ftp://x/' }, 'url');
  await expect422(h, 'PATCH', `/v1/webhooks/${ep.id}`, { topics: ['ok.x'], enabled: 'no' }, 'enabled');
  await expect422(h, 'PATCH', `/v1/webhooks/${ep.id}`, { topics: [] }, 'topics');
  await expect422(h, 'PATCH', `/v1/webhooks/${ep.id}`, { extra: true }, 'extra');
  const g = await api(h, 'GET', `/v1/webhooks/${ep.id}`);
  assert.equal(g.body.url, url);
  assert.deepEqual(g.body.topics, topics);
  assert.equal(g.body.description, '');
  assert.equal(g.body.enabled, true);
});

test('malformed bodies get 400 invalid_json, wrong media types 415', async () => {
  const ep = await create(h, { url: rx.url('/j'), topics: ['json.x'] });
  for (const [method, p] of [
    ['POST', '/v1/webhooks'],
    ['PATCH', `/v1/webhooks/${ep.id}`],
    ['POST', `/v1/webhooks/${ep.id}/replay`],
  ]) {
    for (const raw of ['{', 'not json', '{"url":']) {
      const r = await api(h, method, p, undefined, { raw });
      assert.equal(r.status, 400, `${method} ${p} ${raw}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'invalid_json');
      assert.equal(typeof r.body.error.message, 'string');
    }
    const empty = await api(h, method, p, undefined, { raw: '' });
    assert.equal(empty.status, 400, `${method} ${p} empty`);
    assert.equal(empty.body.error.code, 'invalid_json');
  }
  for (const raw of ['[1,2]', '"str"', '3']) {
    const r = await api(h, 'POST', '/v1/webhooks', undefined, { raw });
    assert.equal(r.status, 400, raw);
    assert.equal(r.body.error.code, 'invalid_json');
  }
  const t = await api(h, 'POST', '/v1/webhooks', undefined, {
    raw: JSON.stringify({ url: rx.url('/j'), topics: ['json.x'] }),
    headers: { 'Content-Type': 'text/plain' },
  });
  assert.equal(t.status, 415);
  assert.equal(t.body.error.code, 'unsupported_media_type');
  // rotate-secret and retry take no body: no Content-Type needed
  const rot = await fetch(`${h.apiUrl}/v1/webhooks/${ep.id}/rotate-secret`, { method: 'POST' });
  assert.equal(rot.status, 200);
  await rot.text();
});

test('405 with Allow for methods a route does not take', async () => {
  const ep = await create(h, { url: rx.url('/m'), topics: ['m.x'] });
  const cases = [
    ['PUT', '/v1/webhooks', 'GET, POST'],
    ['DELETE', '/v1/webhooks', 'GET, POST'],
    ['POST', `/v1/webhooks/${ep.id}`, 'GET, PATCH, DELETE'],
    ['PUT', `/v1/webhooks/${ep.id}`, 'GET, PATCH, DELETE'],
    ['GET', `/v1/webhooks/${ep.id}/rotate-secret`, 'POST'],
    ['DELETE', `/v1/webhooks/${ep.id}/deliveries`, 'GET'],
    ['POST', `/v1/webhooks/${ep.id}/deliveries`, 'GET'],
    ['GET', `/v1/webhooks/${ep.id}/replay`, 'POST'],
    ['GET', `/v1/webhooks/${ep.id}/deliveries/1/retry`, 'POST'],
  ];
  for (const [m, p, allow] of cases) {
    const r = await api(h, m, p, m === 'GET' || m === 'DELETE' ? undefined : {});
    assert.equal(r.status, 405, `${m} ${p}: ${JSON.stringify(r.body)}`);
    assert.equal(r.headers.get('allow'), allow, `${m} ${p}`);
    assert.equal(r.body.error.code, 'method_not_allowed');
  }
  // the endpoint is untouched by all that
  assert.equal((await api(h, 'GET', `/v1/webhooks/${ep.id}`)).status, 200);
});

test('the target guard refuses addresses outside webhooks.allowed_cidrs at registration', async () => {
  const ok = await api(h, 'POST', '/v1/webhooks', { url: `http://127.0.0.1:${rx.port}/g`, topics: ['g.x'] });
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const refused = [
    `http://127.0.0.2:${rx.port}/g`, // loopback, outside 127.0.0.1/32
    `http://[::1]:${rx.port}/g`, // IPv6 loopback
    `http://[::ffff:127.0.0.1]:${rx.port}/g`, // IPv4-mapped: must not slip through as 127.0.0.1
    `http://[::ffff:7f00:1]:${rx.port}/g`, // the same, in hex
    'http://10.0.0.1/g',
    'http://192.168.1.1/g',
    'http://169.254.169.254/latest/meta-data/', // cloud metadata
    'http://0.0.0.0/g',
    'http://[fe80::1]/g',
    'http://[fd00::1]/g',
    'http://2130706434/g', // 127.0.0.2 as one number
    'http://0x0a000001/g', // 10.0.0.1 in hex
  ];
  for (const url of refused) {
    const e = await expect422(h, 'POST', '/v1/webhooks', { url, topics: ['g.x'] }, 'url');
    assert.match(e.message, /refused/, `${url}: ${e.message}`);
  }
  // and a PATCH cannot move an endpoint there either
  const e = await expect422(h, 'PATCH', `/v1/webhooks/${ok.body.id}`, { url: `http://127.0.0.2:${rx.port}/g` }, 'url');
  assert.match(e.message, /refused/);
  assert.equal((await api(h, 'GET', `/v1/webhooks/${ok.body.id}`)).body.url, `http://127.0.0.1:${rx.port}/g`);
});

test('the default guard (no allowed_cidrs) refuses loopback', async () => {
  const own = await startHerald({ webhooks: { schedule: [0, 1] } });
  try {
    const e = await expect422(own, 'POST', '/v1/webhooks', { url: rx.url('/d'), topics: ['d.x'] }, 'url');
    assert.match(e.message, /refused/);
    assert.match(e.message, /loopback/);
  } finally {
    assert.equal((await own.stop()).code, 0);
  }
});

test('endpoints, deliveries and topic seqs survive a restart with the same data dir', async () => {
  const dataRoot = tmpDataDir();
  const r = await Receiver.start();
  const cfg = { ...HOOKS, data_dir: path.join(dataRoot, 'var') };
  let h1;
  let h2;
  try {
    h1 = await startHerald(cfg);
    const secret = secretOf(32);
    const a = await create(h1, {
      url: r.url('/persist-a'),
      topics: ['persist.>'],
      description: 'kept',
      secret,
      ordered: true,
    });
    const b = await create(h1, { url: r.url('/persist-b'), topics: ['persist.b'] });
    const c = await create(h1, { url: r.url('/persist-c'), topics: ['persist.c'] });
    assert.equal((await api(h1, 'PATCH', `/v1/webhooks/${b.id}`, { enabled: false })).status, 200);
    assert.equal((await api(h1, 'DELETE', `/v1/webhooks/${c.id}`)).status, 200);
    const p1 = await publish(h1, 'persist.x', { before: true });
    assert.equal(p1.status, 202);
    await r.waitForCount(1);
    await until(async () => {
      const d = await api(h1, 'GET', `/v1/webhooks/${a.id}/deliveries?status=delivered`);
      return d.body.data.length === 1;
    });
    const listBefore = (await api(h1, 'GET', '/v1/webhooks')).body;
    const delivBefore = (await api(h1, 'GET', `/v1/webhooks/${a.id}/deliveries`)).body;
    assert.equal((await h1.stop()).code, 0);
    h1 = null;

    h2 = await startHerald(cfg);
    const listAfter = (await api(h2, 'GET', '/v1/webhooks')).body;
    assert.deepEqual(listAfter, listBefore);
    assert.deepEqual(listAfter.data.map((e) => e.id), [a.id, b.id]);
    const ga = (await api(h2, 'GET', `/v1/webhooks/${a.id}`)).body;
    assert.equal(ga.description, 'kept');
    assert.equal(ga.ordered, true);
    const gb = (await api(h2, 'GET', `/v1/webhooks/${b.id}`)).body;
    assert.equal(gb.enabled, false);
    assert.equal(gb.disabled_reason, 'by_request');
    assert.equal((await api(h2, 'GET', `/v1/webhooks/${c.id}`)).status, 404);
    assert.deepEqual((await api(h2, 'GET', `/v1/webhooks/${a.id}/deliveries`)).body, delivBefore);

    // the topic's seq carries on, and the stored secret still signs
    const p2 = await publish(h2, 'persist.x', { before: false });
    assert.equal(p2.status, 202);
    assert.equal(p2.body.seq, p1.body.seq + 1);
    await r.waitForCount(2);
    const q = r.requests[1];
    assert.equal(q.headers['webhook-id'], p2.body.id);
    assert.equal(q.json.seq, p2.body.seq);
    assert.deepEqual(new Webhook(secret).verify(q.body, q.headers), q.json);
    // the disabled endpoint got nothing, before or after
    assert.ok(r.requests.every((x) => x.path === '/persist-a'));
  } finally {
    if (h1) await h1.stop();
    if (h2) assert.equal((await h2.stop()).code, 0);
    await r.close();
    fs.rmSync(dataRoot, { recursive: true, force: true });
  }
});

test('endpoints declared in the config are listed with from_config and receive deliveries', async () => {
  const r = await Receiver.start();
  const secret = secretOf(32);
  let own;
  try {
    own = await startHerald({
      webhooks: {
        ...HOOKS.webhooks,
        endpoints: [
          { id: 'cfg-orders', url: r.url('/cfg'), topics: ['cfg.orders.>'], secret, description: 'declared' },
          { id: 'cfg-off', url: r.url('/cfg-off'), topics: ['cfg.off'], secret: secretOf(24), enabled: false },
        ],
      },
    });
    const g = await api(own, 'GET', '/v1/webhooks/cfg-orders');
    assert.equal(g.status, 200, JSON.stringify(g.body));
    assert.equal(g.body.from_config, true);
    assert.equal(g.body.url, r.url('/cfg'));
    assert.deepEqual(g.body.topics, ['cfg.orders.>']);
    assert.equal(g.body.description, 'declared');
    assert.equal(g.body.enabled, true);
    assert.equal('secret' in g.body, false);
    const off = await api(own, 'GET', '/v1/webhooks/cfg-off');
    assert.equal(off.body.from_config, true);
    assert.equal(off.body.enabled, false);
    const l = await api(own, 'GET', '/v1/webhooks');
    assert.deepEqual(l.body.data.map((e) => e.id).sort(), ['cfg-off', 'cfg-orders']);
    assert.ok(l.body.data.every((e) => e.from_config === true));
    // an endpoint made through the API next to them has no from_config
    const api1 = await create(own, { url: r.url('/api'), topics: ['cfg.none'] });
    assert.equal('from_config' in (await api(own, 'GET', `/v1/webhooks/${api1.id}`)).body, false);

    const p = await publish(own, 'cfg.orders.created', { total: 12 });
    assert.equal(p.status, 202);
    assert.equal((await publish(own, 'cfg.off', 1)).status, 202);
    await r.waitForCount(1);
    const q = r.requests[0];
    assert.equal(q.path, '/cfg');
    assert.equal(q.headers['webhook-id'], p.body.id);
    assert.deepEqual(new Webhook(secret).verify(q.body, q.headers), {
      type: 'cfg.orders.created',
      timestamp: q.json.timestamp,
      id: p.body.id,
      seq: p.body.seq,
      data: { total: 12 },
    });
    const d = await api(own, 'GET', '/v1/webhooks/cfg-orders/deliveries');
    assert.equal(d.status, 200);
    assert.equal(d.body.data.length, 1);
    await sleep(200);
    assert.equal(r.requests.length, 1, 'the disabled declared endpoint got nothing');
  } finally {
    if (own) assert.equal((await own.stop()).code, 0);
    await r.close();
  }
});

test('a config endpoint with a bad field stops the start with a message naming it', async () => {
  const bad = [
    [{ id: 'x', url: 'http://127.0.0.1:1/x', topics: ['a'], secret: 'nope' }, /webhooks\.endpoints\[0\].*secret/],
    [{ id: 'x', url: 'http://127.0.0.1:1/x', topics: ['a'] }, /webhooks\.endpoints\[0\].*secret/],
    [{ id: 'x', url: 'http://10.1.1.1/x', topics: ['a'], secret: secretOf(32) }, /webhooks\.endpoints\[0\].*url.*refused/],
    [{ url: 'http://127.0.0.1:1/x', topics: ['a'], secret: secretOf(32) }, /webhooks\.endpoints\[0\].*\bid\b/],
  ];
  for (const [ep, re] of bad) {
    await assert.rejects(
      startHerald({ webhooks: { allowed_cidrs: ['127.0.0.1/32'], endpoints: [ep] } }),
      (err) => {
        assert.match(err.message, re);
        return true;
      },
    );
  }
});
