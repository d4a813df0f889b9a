// Restarts and the history log (docs/history.md#restarts-and-durability):
// with the durable log a kill -9 keeps the epoch, every topic's seq and the
// events, so a client resumes with its last cursor and gets exactly what it
// missed; with a memory-only log the resume says epoch_changed.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHerald, Client, publish, until } = require('./lib/herald');

function dataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'herald-restart-'));
}

test('durable log: kill -9, restart: epoch, offsets and seq continue; the cursor resumes exactly', async (t) => {
  const data = dataDir();
  t.after(() => fs.rmSync(data, { recursive: true, force: true }));
  const cfg = { data_dir: data, history: { durable: true } };
  let h = await startHerald(cfg);
  let lastSeen;
  const acks = [];
  try {
    const c = await Client.open(h.wsUrl);
    await c.subscribe('k.*');
    for (let i = 0; i < 30; i++) {
      const r = await publish(h, i % 3 ? 'k.a' : 'k.b', { i });
      assert.strictEqual(r.status, 202);
      acks.push(r.body);
    }
    // the client saw the first 20, then went away
    await until(() => c.events().length >= 30);
    lastSeen = c.events()[19].cursor;
    await c.close();
  } finally {
    await h.stop('SIGKILL');
  }
  h = await startHerald(cfg);
  try {
    const epoch = acks[0].cursor.split(':')[0];
    assert.ok(h.logs.some((l) => l.includes('event=history') && l.includes(`epoch=${epoch}`)), h.logs.join('\n'));
    // seq continues on both topics, the offset after the last one
    const a = await publish(h, 'k.a', { after: true });
    const b = await publish(h, 'k.b', { after: true });
    const lastA = acks.filter((x) => x.topic === 'k.a').pop();
    const lastB = acks.filter((x) => x.topic === 'k.b').pop();
    assert.strictEqual(a.body.seq, lastA.seq + 1);
    assert.strictEqual(b.body.seq, lastB.seq + 1);
    assert.strictEqual(a.body.offset, acks[29].offset + 1);
    assert.strictEqual(a.body.cursor.split(':')[0], epoch);
    // the client resumes with its last cursor: the 10 it missed, then the 2 new ones
    const c = await Client.open(h.wsUrl);
    const r = await c.request({ op: 'subscribe', id: 'r', topic: 'k.*', since: lastSeen });
    assert.ok(r.resumed, JSON.stringify(r));
    assert.strictEqual(r.resumed.replayed, 12);
    await until(() => c.events().length >= 12);
    assert.deepStrictEqual(
      c.events().map((e) => e.offset),
      [...acks.slice(20).map((x) => x.offset), a.body.offset, b.body.offset],
    );
    // the replayed events are the ones published, byte for byte in data
    assert.deepStrictEqual(c.events()[0].data, { i: 20 });
    assert.strictEqual(c.events()[0].id, acks[20].id);
    await c.close();
  } finally {
    await h.stop();
  }
});

test('memory-only log: a restart changes the epoch and the resume says epoch_changed', async (t) => {
  const data = dataDir();
  t.after(() => fs.rmSync(data, { recursive: true, force: true }));
  const cfg = { data_dir: data, history: { durable: false } };
  let h = await startHerald(cfg);
  let cursor;
  try {
    cursor = (await publish(h, 'm.a', { i: 1 })).body.cursor;
  } finally {
    await h.stop('SIGKILL');
  }
  h = await startHerald(cfg);
  try {
    const r2 = await publish(h, 'm.a', { i: 2 });
    assert.notStrictEqual(r2.body.cursor.split(':')[0], cursor.split(':')[0]);
    const c = await Client.open(h.wsUrl);
    const r = await c.request({ op: 'subscribe', id: 'r', topic: 'm.a', since: cursor });
    assert.strictEqual(r.gap && r.gap.reason, 'epoch_changed', JSON.stringify(r));
    assert.strictEqual(r.gap.requested, cursor);
    assert.strictEqual(r.gap.oldest, r2.body.cursor);
    await until(() => c.events().length >= 1);
    assert.strictEqual(c.events()[0].offset, r2.body.offset);
    await c.close();
  } finally {
    await h.stop();
  }
});

test('a restart with a lower broker.max_topics than the stored topics starts, says so, and keeps every event', async (t) => {
  const data = dataDir();
  t.after(() => fs.rmSync(data, { recursive: true, force: true }));
  let h = await startHerald({ data_dir: data, history: { durable: true } });
  const acks = [];
  try {
    for (let i = 0; i < 6; i++) {
      const r = await publish(h, `m.t${i}`, { i });
      assert.strictEqual(r.status, 202);
      acks.push(r.body);
    }
  } finally {
    await h.stop();
  }
  h = await startHerald({ data_dir: data, history: { durable: true }, broker: { max_topics: 2 } });
  try {
    const warn = h.logs.find((l) => l.includes('event=history_topics_skipped'));
    assert.ok(warn, h.logs.join('\n'));
    assert.match(warn, /count=[1-9]/);
    const c = await Client.open(h.wsUrl);
    const r = await c.request({ op: 'subscribe', id: 'r', topic: 'm.*', since: `${acks[0].cursor.split(':')[0]}:0` });
    assert.ok(r.resumed, JSON.stringify(r));
    await until(() => c.events().length >= 6);
    assert.deepStrictEqual(c.events().map((e) => e.offset), acks.map((a) => a.offset));
    await c.close();
  } finally {
    assert.deepStrictEqual(await h.stop(), { code: 0, signal: null });
  }
});
