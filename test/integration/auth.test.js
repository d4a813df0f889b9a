// Security: JWT authentication on the client port (handshake header, ?token=,
// the auth op, refresh, expiry, the auth timeout), topic grants by
// containment, the Origin check, API keys on the REST port, --hash-key, the
// start-up refusal of open ports beyond loopback, and logs that never hold a
// token or a key. Tokens are real: made here with jose from fresh keys.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const jose = require('jose');
const { startHerald, heralddCommand, Client, publish, sleep } = require('./lib/herald');
const { api } = require('./lib/webhooks');

const ISS = 'https://issuer.herald.test';
const AUD = 'herald-tests';
const SECRETS = []; // every token and key made here: none may appear in a log
const SERVERS = []; // every heraldd started, for the log check at the end

const b64u = (b) => Buffer.from(b).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

function remember(secret) {
  SECRETS.push(secret);
  return secret;
}

async function start(overrides) {
  const h = await startHerald({ log_level: 'debug', ...overrides });
  SERVERS.push(h);
  return h;
}

// --- keys and tokens -------------------------------------------------------

const K = {}; // hs, rs, es (in auth.jwt_keys), jw (in the JWKS file)

async function makeKeys() {
  const secret = crypto.randomBytes(32);
  remember(b64u(secret));
  K.hs = { alg: 'HS256', kid: 'hs-1', sign: new Uint8Array(secret), jwk: { kty: 'oct', k: b64u(secret), alg: 'HS256', kid: 'hs-1' } };
  for (const [name, alg, kid, opts] of [
    ['rs', 'RS256', 'rs-1', { modulusLength: 2048 }],
    ['es', 'ES256', 'es-1', {}],
    ['jw', 'ES256', 'jwks-es', {}],
  ]) {
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, opts);
    const jwk = { ...(await jose.exportJWK(publicKey)), alg, kid };
    K[name] = { alg, kid, sign: privateKey, jwk, pem: await jose.exportSPKI(publicKey) };
  }
}

// The claims of a token: valid for 10 minutes for this ISS and AUD, with
// `claims` over them (a claim set to undefined is left out).
function payload(claims = {}) {
  const now = nowS();
  return { iss: ISS, aud: AUD, sub: 'tester', iat: now, exp: now + 600, ...claims };
}

// A token signed by jose with key K[kind]; header entries over {alg, kid}.
async function jwt(kind, claims, header = {}) {
  const k = K[kind];
  const hdr = { alg: k.alg, kid: k.kid, ...header };
  for (const key of Object.keys(hdr)) if (hdr[key] === undefined) delete hdr[key];
  return remember(await new jose.SignJWT(payload(claims)).setProtectedHeader(hdr).sign(k.sign));
}

// A compact JWS put together by hand; sign(input) gives the signature bytes.
function compact(header, claims, sign) {
  const input = b64u(JSON.stringify(header)) + '.' + b64u(JSON.stringify(claims));
  return remember(input + '.' + (sign ? b64u(sign(input)) : ''));
}

const jwtKeys = () => [K.hs.jwk, K.rs.jwk, K.es.jwk];

// --- clients ---------------------------------------------------------------

// Opens a WebSocket; resolves {status: 101, client} or {status} of the HTTP
// answer refusing the upgrade ('unexpected-response').
function connect(url, options = {}) {
  const c = new Client(url, ['herald.v1'], options);
  return new Promise((resolve) => {
    c.ws.on('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      resolve({ status: res.statusCode });
    });
    c.opened.then(
      () => resolve({ status: 101, client: c }),
      (error) => resolve({ status: 0, error }),
    );
  });
}

const bearer = (t) => ({ headers: { Authorization: `Bearer ${t}` } });
const withToken = (h, t) => `${h.wsUrl}?token=${encodeURIComponent(t)}`;

async function open(url, options) {
  const r = await connect(url, options);
  assert.equal(r.status, 101, `handshake to ${url.slice(0, 80)} refused: ${r.status} ${r.error || ''}`);
  return r.client;
}

let seq = 0;
const nextId = (p = 'r') => `${p}${++seq}`;

// Sends a subscribe/publish/auth op and checks the answer: 'ack' or an error code.
async function expectOp(c, obj, want, what = '') {
  const msg = { id: nextId(obj.op[0]), ...obj };
  const r = await c.request(msg);
  const label = `${what} ${JSON.stringify(msg).slice(0, 120)} -> ${JSON.stringify(r)}`;
  if (want === 'ack') assert.equal(r.op, 'ack', label);
  else {
    assert.equal(r.op, 'error', label);
    assert.equal(r.code, want, label);
    assert.ok(typeof r.message === 'string' && r.message.length > 0, label);
  }
  return r;
}
const sub = (c, topic, want = 'ack', what) => expectOp(c, { op: 'subscribe', topic }, want, what);
const pub = (c, topic, want = 'ack', what) => expectOp(c, { op: 'publish', topic, data: { t: topic } }, want, what);

// Publishes `unwanted` topics through REST, then `sentinel`; once the
// sentinel reached c, checks that none of the unwanted did.
async function assertNotDelivered(h, c, unwanted, sentinel, { headers } = {}) {
  for (const t of unwanted) assert.equal((await publish(h, t, { t }, { headers })).status, 202, t);
  assert.equal((await publish(h, sentinel, { t: sentinel }, { headers })).status, 202, sentinel);
  await c.waitFor((m) => m.op === 'event' && m.topic === sentinel);
  await sleep(100);
  const got = c.events().map((e) => e.topic).filter((t) => unwanted.includes(t));
  assert.deepEqual(got, [], 'events that must not have arrived');
}

// --- servers shared by several tests ---------------------------------------

let A; // JWT (3 keys), issuer and audience, anonymous may do nothing
let B; // JWT, leeway 0, auth timeout 500 ms
let C; // JWT from a JWKS file, anonymous may subscribe to public.>
let jwksDir;

before(async () => {
  await makeKeys();
  A = await start({ auth: { jwt_keys: jwtKeys(), issuer: ISS, audience: AUD } });
  B = await start({ auth: { jwt_keys: [K.hs.jwk], leeway_s: 0, timeout_ms: 500 } });
  jwksDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-jwks-'));
  const jwksFile = path.join(jwksDir, 'jwks.json');
  // An encryption key ("use": "enc", no alg) is skipped, not refused.
  const enc = { ...(await jose.exportJWK((await jose.generateKeyPair('RSA-OAEP', { modulusLength: 2048 })).publicKey)), use: 'enc' };
  fs.writeFileSync(jwksFile, JSON.stringify({ keys: [enc, { ...K.jw.jwk, use: 'sig' }] }));
  C = await start({ auth: { jwks_file: jwksFile, anonymous_subscribe: ['public.>'] } });
});

after(async () => {
  for (const h of SERVERS) await h.stop();
  if (jwksDir) fs.rmSync(jwksDir, { recursive: true, force: true });
});

// --- 1. valid tokens ---------------------------------------------------------

test('valid HS256, RS256 and ES256 tokens are accepted by header, ?token= and the auth op', async () => {
  const grant = { herald: { subscribe: ['t1.>'], publish: ['t1.*'] } };
  for (const kind of ['hs', 'rs', 'es']) {
    const tok = await jwt(kind, grant);
    const byHeader = await open(A.wsUrl, bearer(tok));
    await sub(byHeader, 't1.a', 'ack', `${kind} header`);
    await pub(byHeader, 't1.b', 'ack', `${kind} header`);
    await sub(byHeader, 'other.a', 'forbidden', `${kind} header`);
    byHeader.close();

    const byQuery = await open(withToken(A, tok));
    await sub(byQuery, 't1.a', 'ack', `${kind} query`);
    byQuery.close();

    const byOp = await open(A.wsUrl);
    await sub(byOp, 't1.a', 'forbidden', `${kind} before auth`); // anonymous: nothing
    const id = nextId('auth');
    assert.deepEqual(await byOp.request({ op: 'auth', id, token: tok }), { op: 'ack', id });
    await sub(byOp, 't1.a', 'ack', `${kind} after auth`);
    await pub(byOp, 't1.c', 'ack', `${kind} after auth`);
    byOp.close();
  }
  // without kid every key of the alg is tried; aud may be an array
  const noKid = await jwt('rs', { ...grant, aud: ['someone-else', AUD] }, { kid: undefined });
  const c = await open(A.wsUrl, bearer(noKid));
  await sub(c, 't1.x');
  c.close();
  // expired 10 s ago: still inside the 30 s leeway
  const late = await jwt('es', { ...grant, exp: nowS() - 10 });
  const l = await open(withToken(A, late));
  await sub(l, 't1.x');
  l.close();
  // a key from auth.jwks_file (the "enc" key beside it was skipped)
  const fromFile = await jwt('jw', { herald: { subscribe: ['files.>'] } });
  const f = await open(C.wsUrl, bearer(fromFile));
  await sub(f, 'files.a');
  f.close();
  // ... and only from there: server A does not know that key
  assert.equal((await connect(A.wsUrl, bearer(fromFile))).status, 401);
});

// --- 2. invalid tokens -----------------------------------------------------------

// Each bad token would grant secret.> ; none may.
const SECRET_GRANT = { herald: { subscribe: ['secret.>'], publish: ['secret.*'] } };

async function badTokens() {
  const now = nowS();
  const hmac = (key) => (input) => crypto.createHmac('sha256', key).update(input).digest();
  const flip = (t) => {
    const [h, p, s] = t.split('.');
    const sig = Buffer.from(s, 'base64url');
    sig[7] ^= 0x10;
    return remember(`${h}.${p}.${b64u(sig)}`);
  };
  const long = await jwt('hs', { ...SECRET_GRANT, pad: 'x'.repeat(7000) });
  assert.ok(long.length > 8192, `long token is ${long.length} bytes`);
  const bad = [
    ['alg none', compact({ alg: 'none', typ: 'JWT' }, payload(SECRET_GRANT))],
    ['alg none, kid of the HS key', compact({ alg: 'none', kid: 'hs-1' }, payload(SECRET_GRANT))],
    ['HS256 keyed with the RSA public PEM, kid rs-1', compact({ alg: 'HS256', kid: 'rs-1' }, payload(SECRET_GRANT), hmac(K.rs.pem))],
    ['HS256 keyed with the RSA public PEM, no kid', compact({ alg: 'HS256' }, payload(SECRET_GRANT), hmac(K.rs.pem))],
    ['HS256 keyed with the RSA PEM without its newline', compact({ alg: 'HS256', kid: 'rs-1' }, payload(SECRET_GRANT), hmac(K.rs.pem.trimEnd()))],
    ['expired', await jwt('hs', { ...SECRET_GRANT, exp: now - 120 })],
    ['no exp', await jwt('hs', { ...SECRET_GRANT, exp: undefined })],
    ['not yet valid', await jwt('rs', { ...SECRET_GRANT, nbf: now + 120 })],
    ['wrong aud', await jwt('es', { ...SECRET_GRANT, aud: 'someone-else' })],
    ['no aud', await jwt('es', { ...SECRET_GRANT, aud: undefined })],
    ['wrong iss', await jwt('hs', { ...SECRET_GRANT, iss: 'https://evil.example' })],
    ['flipped signature bit (HS256)', flip(await jwt('hs', SECRET_GRANT))],
    ['flipped signature bit (RS256)', flip(await jwt('rs', SECRET_GRANT))],
    ['flipped signature bit (ES256)', flip(await jwt('es', SECRET_GRANT))],
    ['unknown kid', await jwt('hs', SECRET_GRANT, { kid: 'nope' })],
    ['ES256 token with the kid of the RS256 key', await jwt('es', SECRET_GRANT, { kid: 'rs-1' })],
    ['RS256 token with the kid of the HS256 key', await jwt('rs', SECRET_GRANT, { kid: 'hs-1' })],
    ['key from nowhere (JWKS file of another server)', await jwt('jw', SECRET_GRANT)],
    ['crit header', compact({ alg: 'HS256', kid: 'hs-1', crit: ['x-herald'], 'x-herald': 1 }, payload(SECRET_GRANT), hmac(K.hs.sign))],
    ['garbage', remember('garbage-not-a-jwt')],
    ['garbage with dots', remember('eyJub3QiOiJqc29uIn0.eyJhIjoxfQ.c2ln')],
    ['longer than 8192 bytes', remember(long)],
    ['invalid pattern in herald.subscribe', await jwt('hs', { herald: { subscribe: ['secret.>.x'] } })],
    ['invalid pattern in herald.publish', await jwt('rs', { herald: { subscribe: ['secret.>'], publish: ['secret..x'] } })],
    ['herald not an object', await jwt('rs', { herald: ['secret.>'] })],
  ];
  return bad;
}

test('invalid tokens are refused at the handshake with 401 (header and ?token=)', async () => {
  for (const [name, tok] of await badTokens()) {
    const h = await connect(A.wsUrl, bearer(tok));
    if (h.client) h.client.close();
    assert.equal(h.status, 401, `${name} (Authorization header)`);
    if (name === 'longer than 8192 bytes') continue; // its own test below
    const q = await connect(withToken(A, tok));
    if (q.client) q.client.close();
    assert.equal(q.status, 401, `${name} (?token=)`);
  }
  // a header that is not "Bearer <token>"
  const valid = await jwt('hs', SECRET_GRANT);
  const basic = await connect(A.wsUrl, { headers: { Authorization: `Basic ${valid}` } });
  if (basic.client) basic.client.close();
  assert.equal(basic.status, 401, 'Basic scheme');
  const empty = await connect(A.wsUrl, { headers: { Authorization: 'Bearer ' } });
  if (empty.client) empty.client.close();
  assert.equal(empty.status, 401, 'Bearer and no token');
  // the server still serves: a valid token still gets in
  const c = await open(A.wsUrl, bearer(valid));
  await sub(c, 'secret.a');
  c.close();
});

// Regression: a ?token= too long for the handshake's buffer was once taken
// for no token (101, anonymous) instead of refused with 401. Past lws's
// header limit (~12.2 kB) the socket is dropped with no status.
test('a ?token= longer than 8192 bytes is refused with 401', async () => {
  const long = await jwt('hs', { ...SECRET_GRANT, pad: 'x'.repeat(7000) });
  const q = await connect(withToken(A, long));
  if (q.client) {
    // whatever the status, it must not have what the token grants
    await sub(q.client, 'secret.a', 'forbidden', 'long ?token=');
    q.client.close();
  }
  assert.equal(q.status, 401);
});

test('invalid tokens in the auth op get invalid_token and change nothing', async () => {
  // The connection holds a valid token for base.>; each refused token would
  // grant secret.>.
  const c = await open(A.wsUrl, bearer(await jwt('es', { herald: { subscribe: ['base.>'], publish: ['base.*'] } })));
  await sub(c, 'base.a');
  for (const [name, tok] of await badTokens()) {
    if (name === 'longer than 8192 bytes') continue; // its own test below
    const id = nextId('bad');
    const r = await c.request({ op: 'auth', id, token: tok });
    assert.equal(r.op, 'error', `${name}: ${JSON.stringify(r)}`);
    assert.equal(r.code, 'invalid_token', `${name}: ${JSON.stringify(r)}`);
    assert.ok(r.message.length > 0);
    assert.ok(!r.message.includes(tok), 'the reason does not echo the token');
    await sub(c, 'secret.a', 'forbidden', name);
    await pub(c, 'secret.a', 'forbidden', name);
    await sub(c, 'base.b', 'ack', `${name}: the old identity stays`);
  }
  assert.equal(c.ws.readyState, c.ws.OPEN);
  // nothing slipped in: the one subscription that got through is base.*
  await assertNotDelivered(A, c, ['secret.a'], 'base.a');
  c.close();
});

// Regression: a token over 8192 bytes in the auth op was once refused as
// invalid_message by the parser; a refused token is invalid_token.
test('a token longer than 8192 bytes in the auth op gets invalid_token', async () => {
  const long = await jwt('hs', { ...SECRET_GRANT, pad: 'x'.repeat(7000) });
  const c = await open(A.wsUrl);
  const r = await c.request({ op: 'auth', id: 'long', token: long });
  await sub(c, 'secret.a', 'forbidden', 'after the long token');
  c.close();
  assert.equal(r.op, 'error', JSON.stringify(r));
  assert.equal(r.code, 'invalid_token', JSON.stringify(r));
});

// --- 3. permissions ------------------------------------------------------------

test('grants are checked by containment and a refused subscribe changes nothing', async () => {
  const watcher = await open(A.wsUrl, bearer(await jwt('hs', { herald: { subscribe: ['>'] } })));
  await sub(watcher, '>');
  const c = await open(A.wsUrl, bearer(await jwt('rs', { herald: { subscribe: ['orders.>'], publish: ['orders.*'] } })));
  await sub(c, 'orders.*.created');
  await sub(c, 'orders.>');
  await sub(c, 'billing.>', 'forbidden');
  await sub(c, '>', 'forbidden');
  await sub(c, 'orders', 'forbidden'); // orders.> needs at least one more segment
  await sub(c, '*.x', 'forbidden');
  await pub(c, 'orders.eu');
  await pub(c, 'orders.eu.x', 'forbidden');
  await pub(c, 'orders', 'forbidden');
  // the refused subscribes did not subscribe: billing.x reaches the watcher only
  await assertNotDelivered(A, c, ['billing.x', 'other'], 'orders.sentinel');
  // the refused publish was not published: the watcher (on >) never got it
  await watcher.waitFor((m) => m.op === 'event' && m.topic === 'orders.sentinel');
  const seen = watcher.events().map((e) => e.topic);
  assert.ok(seen.includes('orders.eu'), 'the allowed publish arrived');
  assert.ok(seen.includes('billing.x'), 'the watcher does get billing.x');
  assert.equal(seen.includes('orders.eu.x'), false, 'the forbidden publish went nowhere');
  assert.equal(seen.includes('orders'), false);
  c.close();

  const star = await open(A.wsUrl, bearer(await jwt('es', { herald: { subscribe: ['orders.*'] } })));
  await sub(star, 'orders.>', 'forbidden');
  await sub(star, 'orders.*.x', 'forbidden');
  await sub(star, 'orders.eu');
  await sub(star, 'orders.*');
  await pub(star, 'orders.eu', 'forbidden'); // nothing to publish
  await assertNotDelivered(A, star, ['orders.eu.deep'], 'orders.eu');
  star.close();
  watcher.close();
});

test('anonymous grants: public.> only; with JWT keys and no anonymous grants, nothing', async () => {
  const anon = await open(C.wsUrl);
  await sub(anon, 'public.news');
  await sub(anon, 'public.>');
  await sub(anon, 'other.x', 'forbidden');
  await sub(anon, '>', 'forbidden');
  await sub(anon, 'public', 'forbidden');
  await pub(anon, 'public.news', 'forbidden'); // anonymous_publish null + JWT keys: nothing
  await assertNotDelivered(C, anon, ['other.x', 'public'], 'public.news');
  // no auth timeout: anonymous may do something here
  assert.deepEqual(await anon.request({ op: 'ping', id: 'p' }), { op: 'pong', id: 'p' });
  anon.close();

  const none = await open(A.wsUrl);
  for (const t of ['public.news', 'x', '>', '*']) await sub(none, t, 'forbidden');
  await pub(none, 'x', 'forbidden');
  assert.equal(none.messages.filter((m) => m.op === 'ack').length, 0);
  none.close();
});

// --- 4. refresh and expiry -------------------------------------------------------

test('token refresh: a fresh auth keeps the connection past exp; without it token_expired and 4001', async () => {
  const exp = nowS() + 3;
  const grant = { herald: { subscribe: ['r.>'] } };
  const short = await jwt('hs', { ...grant, exp });
  const kept = await open(B.wsUrl, bearer(short));
  const dropped = await open(B.wsUrl, bearer(short));
  await sub(kept, 'r.a');
  await sub(dropped, 'r.a');
  const droppedClosed = dropped.closed.then((r) => ({ ...r, at: Date.now() }));
  await sleep(1000);
  const id = nextId('refresh');
  assert.deepEqual(await kept.request({ op: 'auth', id, token: await jwt('hs', { ...grant, exp: nowS() + 600 }) }), { op: 'ack', id });

  const closed = await Promise.race([droppedClosed, sleep(8000).then(() => null)]);
  assert.ok(closed, 'the connection without a fresh token was not closed');
  assert.equal(closed.code, 4001);
  assert.equal(closed.reason, 'token expired');
  assert.ok(closed.at >= exp * 1000, `closed ${exp * 1000 - closed.at} ms before exp`);
  const err = dropped.messages.find((m) => m.op === 'error');
  assert.equal(err && err.code, 'token_expired', JSON.stringify(dropped.messages));
  assert.equal('id' in err, false);

  // past exp (+1 s for whole seconds, +tick): the refreshed one is still there
  const wait = (exp + 2) * 1000 - Date.now();
  if (wait > 0) await sleep(wait);
  assert.equal(kept.ws.readyState, kept.ws.OPEN);
  assert.equal(kept.messages.some((m) => m.op === 'error'), false, JSON.stringify(kept.messages));
  assert.deepEqual(await kept.request({ op: 'ping', id: 'alive' }), { op: 'pong', id: 'alive' });
  // its subscription survived the refresh
  assert.equal((await publish(B, 'r.a', 1)).status, 202);
  await kept.waitFor((m) => m.op === 'event' && m.topic === 'r.a');
  kept.close();
});

test('a refresh with narrower grants drops the subscriptions they no longer cover, before the ack', async () => {
  const c = await open(B.wsUrl, bearer(await jwt('hs', { herald: { subscribe: ['keep.>', 'drop.>'] } })));
  await sub(c, 'keep.a');
  await sub(c, 'drop.>');
  await sub(c, 'drop.x');
  const from = c.messages.length;
  c.send({ op: 'auth', id: 'narrow', token: await jwt('hs', { herald: { subscribe: ['keep.>'] } }) });
  const ack = await c.waitFor((m) => m.op === 'ack' && m.id === 'narrow', { from });
  const ackAt = c.messages.indexOf(ack);
  const drops = c.messages.slice(from, ackAt);
  assert.equal(drops.length, 2, JSON.stringify(c.messages.slice(from)));
  for (const d of drops) {
    assert.equal(d.op, 'error');
    assert.equal(d.code, 'forbidden');
    assert.equal(d.id, 'narrow');
  }
  const named = drops.map((d) => d.message).join(' | ');
  assert.match(named, /drop\.>/);
  assert.match(named, /drop\.x/);
  assert.doesNotMatch(named, /keep\.a/);
  await sub(c, 'drop.y', 'forbidden');
  await assertNotDelivered(B, c, ['drop.x', 'drop.z'], 'keep.a');
  c.close();
});

// --- 5. auth timeout ---------------------------------------------------------------

test('a client that never authenticates gets auth_timeout and 4002; one that does stays', async () => {
  const t0 = Date.now();
  const idle = await open(B.wsUrl);
  const good = await open(B.wsUrl);
  const id = nextId('auth');
  assert.deepEqual(await good.request({ op: 'auth', id, token: await jwt('hs', {}) }), { op: 'ack', id });
  const closed = await Promise.race([idle.closed, sleep(5000).then(() => null)]);
  const took = Date.now() - t0;
  assert.ok(closed, 'not closed in 5 s');
  assert.equal(closed.code, 4002);
  assert.equal(closed.reason, 'authentication timeout');
  assert.ok(took >= 450, `closed after ${took} ms`);
  const err = idle.messages.find((m) => m.op === 'error');
  assert.equal(err && err.code, 'auth_timeout', JSON.stringify(idle.messages));
  await sleep(Math.max(0, t0 + 1500 - Date.now()));
  assert.equal(good.ws.readyState, good.ws.OPEN);
  assert.deepEqual(await good.request({ op: 'ping', id: 'p' }), { op: 'pong', id: 'p' });
  assert.equal(good.messages.some((m) => m.op === 'error'), false);
  good.close();
});

// --- 6. Origin -------------------------------------------------------------------------

test('Origin: same origin by default, an exact allowlist, or *', async () => {
  const status = async (h, origin) => {
    const r = await connect(h.wsUrl, origin === undefined ? {} : { origin });
    if (r.client) r.client.close();
    return r.status;
  };
  assert.equal(await status(A, `http://${A.clientAddr}`), 101);
  assert.equal(await status(A, `https://${A.clientAddr}`), 101);
  assert.equal(await status(A, 'http://evil.example'), 403);
  assert.equal(await status(A, `http://${A.clientAddr}.evil.example`), 403);
  assert.equal(await status(A, 'null'), 403);
  assert.equal(await status(A, undefined), 101);
  // the Origin is checked before the token: a valid token does not help
  const tok = await jwt('hs', {});
  const r = await connect(A.wsUrl, { origin: 'http://evil.example', ...bearer(tok) });
  assert.equal(r.status, 403);

  const D = await start({ client: { allowed_origins: ['https://app.example'] } });
  assert.equal(await status(D, 'https://app.example'), 101);
  assert.equal(await status(D, 'https://app.example.evil'), 403);
  assert.equal(await status(D, 'https://APP.example:443'), 403);
  assert.equal(await status(D, 'http://app.example'), 403);
  assert.equal(await status(D, `http://${D.clientAddr}`), 403); // the list replaces same-origin
  assert.equal(await status(D, undefined), 101);
  await D.stop();

  const E = await start({ client: { allowed_origins: ['*'] } });
  assert.equal(await status(E, 'http://evil.example'), 101);
  assert.equal(await status(E, 'https://app.example'), 101);
  await E.stop();
});

// --- 7. API keys ------------------------------------------------------------------------

test('API keys: 401 without a valid Bearer key, 403 outside its grants, and nothing published', async () => {
  const pubKey = remember(crypto.randomBytes(24).toString('base64url'));
  const adminKey = remember(crypto.randomBytes(24).toString('base64url'));
  const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
  const F = await start({
    auth: {
      api_keys: [
        { name: 'publisher', sha256: sha(pubKey), publish: ['orders.>'] },
        { name: 'admin', sha256: sha(adminKey), admin: true },
      ],
    },
  });
  const watcher = await open(F.wsUrl); // no JWT keys: anonymous may do everything
  await sub(watcher, '>');
  const auth = (k) => ({ Authorization: `Bearer ${k}` });
  const expect = async (method, p, headers, status, code, body) => {
    const r = await api(F, method, p, body, { headers });
    const label = `${method} ${p} ${JSON.stringify(Object.keys(headers))} -> ${r.status} ${JSON.stringify(r.body)}`;
    assert.equal(r.status, status, label);
    if (code) assert.equal(r.body.error.code, code, label);
    if (status === 401) assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="herald"', label);
    return r;
  };
  const ev = '/v1/topics/orders.x/events';
  await expect('POST', ev, {}, 401, 'unauthorized', { n: 1 });
  await expect('GET', '/v1/webhooks', {}, 401, 'unauthorized');
  await expect('POST', ev, auth('x' + pubKey), 401, 'unauthorized', { n: 2 });
  await expect('POST', ev, auth(pubKey.slice(0, -1)), 401, 'unauthorized', { n: 3 });
  await expect('POST', ev, { Authorization: `Basic ${pubKey}` }, 401, 'unauthorized', { n: 4 });
  await expect('POST', ev, { Authorization: `Basic ${Buffer.from('publisher:' + pubKey).toString('base64')}` }, 401, 'unauthorized', { n: 5 });
  await expect('POST', ev, { Authorization: pubKey }, 401, 'unauthorized', { n: 6 });
  await expect('POST', ev, auth(''), 401, 'unauthorized', { n: 7 });
  await expect('GET', '/v1/webhooks', auth('wrong-key-wrong-key'), 401, 'unauthorized');
  await expect('POST', '/v1/topics/billing.x/events', auth(pubKey), 403, 'forbidden', { n: 8 });
  await expect('POST', '/v1/topics/orders/events', auth(pubKey), 403, 'forbidden', { n: 9 });
  await expect('GET', '/v1/webhooks', auth(pubKey), 403, 'forbidden');
  await expect('POST', '/v1/webhooks', auth(pubKey), 403, 'forbidden', { url: 'http://127.0.0.1:9/x', topics: ['a'] });
  await expect('GET', '/v1/webhooks', auth(adminKey), 200);
  await expect('POST', ev, auth(adminKey), 403, 'forbidden', { n: 10 });
  await expect('GET', '/healthz', {}, 200);
  await expect('GET', '/readyz', {}, 200);
  await expect('POST', ev, auth(pubKey), 202, null, { n: 11 });
  await expect('POST', '/v1/topics/orders.final/events', auth(pubKey), 202, null, { n: 12 });
  await watcher.waitFor((m) => m.op === 'event' && m.topic === 'orders.final');
  await sleep(100);
  const got = watcher.events().map((e) => `${e.topic}:${e.data.n}`);
  assert.deepEqual(got, ['orders.x:11', 'orders.final:12'], 'only the accepted publishes arrive');
  watcher.close();
  await F.stop();
});

// --- 8. --hash-key ------------------------------------------------------------------------

function run(args, input) {
  return new Promise((resolve) => {
    const [file, argv] = heralddCommand(args);
    const p = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

test('heraldd --hash-key prints the SHA-256 of the key on stdin', async () => {
  const key = remember(crypto.randomBytes(32).toString('base64'));
  const want = crypto.createHash('sha256').update(key).digest('hex');
  const a = await run(['--hash-key'], key);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, want + '\n');
  const b = await run(['--hash-key'], key + '\n');
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, want + '\n');
  // the longest key, with its newline
  const longest = 'k'.repeat(4096);
  const l = await run(['--hash-key'], longest + '\n');
  assert.equal(l.code, 0, l.stderr);
  assert.equal(l.stdout.trim(), crypto.createHash('sha256').update(longest).digest('hex'));
  const sixteen = 'k'.repeat(16);
  const c = await run(['--hash-key'], sixteen);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(c.stdout.trim(), crypto.createHash('sha256').update(sixteen).digest('hex'));
  for (const [what, input] of [
    ['15 characters', 'k'.repeat(15)],
    ['15 characters and a newline', 'k'.repeat(15) + '\n'],
    ['nothing', ''],
    ['two lines', 'first-line-key-1\nsecond-line-key-2'],
    ['over 4096 bytes', 'k'.repeat(4097)],
    ['over 4096 bytes and a newline', 'k'.repeat(4097) + '\n'],
    ['a NUL inside', 'first-half-key\0second-half'],
    ['a CR inside', 'first-half-key\rsecond-half'],
  ]) {
    const r = await run(['--hash-key'], input);
    assert.equal(r.code, 1, `${what}: ${r.stdout}`);
    assert.equal(r.stdout, '', what);
    assert.match(r.stderr, /hash-key/, what);
  }
});

// --- 9. no open port beyond loopback ------------------------------------------------------

test('--check-config refuses an open API or client port beyond loopback unless auth.insecure', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-auth-cli-'));
  const check = async (cfg) => {
    const file = path.join(dir, `c${nextId()}.json`);
    fs.writeFileSync(file, JSON.stringify({ data_dir: path.join(dir, 'var'), ...cfg }));
    return run(['--check-config', '-c', file], '');
  };
  try {
    const loop = '127.0.0.1:0';
    const any = '0.0.0.0:0';
    const hs = [K.hs.jwk];
    const key = { name: 'k', sha256: 'a'.repeat(64), publish: ['>'] };

    let r = await check({ client: { listen: loop }, api: { listen: any } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /api\.listen/);
    r = await check({ client: { listen: loop }, api: { listen: any }, auth: { insecure: true } });
    assert.equal(r.code, 0, r.stderr);
    r = await check({ client: { listen: loop }, api: { listen: any }, auth: { api_keys: [key] } });
    assert.equal(r.code, 0, r.stderr);

    r = await check({ client: { listen: any }, api: { listen: loop } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /client\.listen/);
    r = await check({ client: { listen: any }, api: { listen: loop }, auth: { anonymous_subscribe: ['>'] } });
    assert.equal(r.code, 1, 'anonymous_publish still null: ' + r.stderr);
    assert.match(r.stderr, /client\.listen/);
    r = await check({ client: { listen: any }, api: { listen: loop }, auth: { insecure: true } });
    assert.equal(r.code, 0, r.stderr);
    r = await check({ client: { listen: any }, api: { listen: loop }, auth: { jwt_keys: hs } });
    assert.equal(r.code, 0, r.stderr);
    r = await check({ client: { listen: any }, api: { listen: loop }, auth: { anonymous_subscribe: ['public.>'], anonymous_publish: [] } });
    assert.equal(r.code, 0, r.stderr);
    r = await check({ client: { listen: '[::]:0' }, api: { listen: loop } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /client\.listen/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// --- 10. logs -------------------------------------------------------------------------------

test('no log line holds a token or a key', async () => {
  for (const h of SERVERS) await h.stop();
  const lines = SERVERS.flatMap((h) => h.logs);
  const text = lines.join('\n');
  // the failures above were logged, so the check below is not vacuous
  for (const ev of ['client_refused', 'client_auth_failed', 'client_forbidden', 'client_token_expired',
    'client_auth_timeout', 'api_auth_failed', 'api_forbidden']) assert.match(text, new RegExp(`event=${ev}\\b`), ev);
  // the whole secret, and each long piece of a token (payload, signature)
  const needles = new Set();
  for (const s of SECRETS) {
    needles.add(s);
    const parts = s.split('.');
    if (parts.length === 3) for (const p of parts.slice(1)) if (p.length >= 16) needles.add(p);
  }
  assert.ok(needles.size > 40, `${needles.size} secrets`);
  for (const n of needles)
    for (const line of lines) assert.ok(!line.includes(n), `log line holds a secret: ${line.slice(0, 200)}`);
});
