// Idempotency-Key entries belong to the caller: with API keys `billing`
// (billing.>) and `publisher` (orders.>), both publish with one
// Idempotency-Key string and both are published; neither gets the other's
// answer, a conflict, or an "in progress" (which would tell one tenant
// which keys the other used). Within one API key a replay still works,
// also after a restart (the scoped key is what the store records).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHerald, Client, publish } = require('./lib/herald');

const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');

test('two API keys with one Idempotency-Key both publish; a replay within one key still works', async () => {
  const billingKey = crypto.randomBytes(16).toString('hex');
  const publisherKey = crypto.randomBytes(16).toString('hex');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-idem-'));
  const config = {
    data_dir: dataDir,
    auth: {
      api_keys: [
        { name: 'billing', sha256: sha(billingKey), publish: ['billing.>'] },
        { name: 'publisher', sha256: sha(publisherKey), publish: ['orders.>'] },
      ],
    },
  };
  const as = (key, idem) => ({ headers: { Authorization: `Bearer ${key}`, 'Idempotency-Key': idem } });
  let h = await startHerald(config);
  try {
    const watcher = await Client.open(h.wsUrl);
    await watcher.subscribe('>');

    const b1 = await publish(h, 'billing.invoice', { amount: 10 }, as(billingKey, 'order-1042'));
    assert.equal(b1.status, 202, JSON.stringify(b1.body));
    const p1 = await publish(h, 'orders.created', { order: 1042 }, as(publisherKey, 'order-1042'));
    assert.equal(p1.status, 202, 'publisher is not blocked by billing\'s key: ' + JSON.stringify(p1.body));
    assert.equal(p1.headers.get('idempotent-replayed'), null);
    assert.notEqual(p1.body.id, b1.body.id);

    // replays, each within its own key
    const b2 = await publish(h, 'billing.invoice', { amount: 10 }, as(billingKey, 'order-1042'));
    assert.equal(b2.status, 202);
    assert.equal(b2.headers.get('idempotent-replayed'), 'true');
    assert.equal(b2.body.id, b1.body.id);
    const p2 = await publish(h, 'orders.created', { order: 1042 }, as(publisherKey, 'order-1042'));
    assert.equal(p2.headers.get('idempotent-replayed'), 'true');
    assert.equal(p2.body.id, p1.body.id);
    // a conflict only within one key
    const b3 = await publish(h, 'billing.invoice', { amount: 11 }, as(billingKey, 'order-1042'));
    assert.equal(b3.status, 409);
    assert.equal(b3.body.error.code, 'idempotency_conflict');

    // both events reached the subscriber, once each
    await watcher.waitFor(() => watcher.events().length >= 2);
    assert.deepEqual(watcher.events().map((e) => e.topic).sort(), ['billing.invoice', 'orders.created']);
    await watcher.close();

    // after a restart the keys are still each caller's own
    await h.stop();
    h = await startHerald(config);
    const p3 = await publish(h, 'orders.created', { order: 1042 }, as(publisherKey, 'order-1042'));
    assert.equal(p3.headers.get('idempotent-replayed'), 'true');
    assert.equal(p3.body.id, p1.body.id);
    const b4 = await publish(h, 'billing.invoice', { amount: 10 }, as(billingKey, 'order-1042'));
    assert.equal(b4.body.id, b1.body.id);
  } finally {
    await h.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
