// Issue 19: the data files are private. herald.db holds webhook secrets in
// clear, so a data_dir heraldd creates is 0700 and herald.db, -wal and -shm
// are 0600 whatever the umask; a data_dir or database file that group or
// others may open is used as it is, with one warning line for each.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startHerald, publish } = require('./lib/herald');
const { createEndpoint } = require('./lib/webhooks');

const FILES = ['herald.db', 'herald.db-wal', 'herald.db-shm'];
const modeOf = (p) => fs.statSync(p).mode & 0o7777;
const octal = (m) => m.toString(8).padStart(4, '0');
const warnings = (h) => h.logs.filter((l) => /event=data_dir_permissions/.test(l));

// Starts heraldd under umask `mask`: the child inherits the umask in force
// when startHerald spawns it, which it does before its first await.
async function startWithUmask(mask, overrides) {
  const old = process.umask(mask);
  let started;
  try {
    started = startHerald(overrides);
  } finally {
    process.umask(old);
  }
  const h = await started;
  // the daemon really runs under that umask (Linux: /proc/PID/status)
  const status = fs.readFileSync(`/proc/${h.proc.pid}/status`, 'utf8');
  assert.match(status, new RegExp(`^Umask:\\s+${octal(mask)}$`, 'm'));
  return h;
}

function scratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'herald-datadir-'));
}

test('under umask 000 a new data_dir is 0700 and herald.db, -wal and -shm are 0600', async () => {
  const h = await startWithUmask(0o000, { webhooks: { allowed_cidrs: ['127.0.0.1/32'] } });
  const dataDir = path.join(h.dir, 'var');
  try {
    // writes through the store: an endpoint with its secret, an event for it
    // (port 9 refuses: the delivery just waits for its retry)
    await createEndpoint(h, { url: 'http://127.0.0.1:9/in', topics: ['orders.>'] });
    assert.equal((await publish(h, 'orders.created', { n: 1 })).status, 202);
    assert.equal(octal(modeOf(dataDir)), '0700');
    for (const f of FILES) assert.equal(octal(modeOf(path.join(dataDir, f))), '0600', f);
    assert.deepEqual(warnings(h), []);
  } finally {
    assert.equal((await h.stop()).code, 0);
  }
});

test('an existing 0755 data_dir is used as it is, with one warning naming it and its mode', async () => {
  const root = scratch();
  const dataDir = path.join(root, 'open');
  fs.mkdirSync(dataDir);
  fs.chmodSync(dataDir, 0o755);
  const h = await startWithUmask(0o000, { data_dir: dataDir });
  try {
    const lines = warnings(h);
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0], /level=warn event=data_dir_permissions /);
    assert.ok(lines[0].includes(`path="${dataDir}" mode=0755 `), lines[0]);
    assert.equal(octal(modeOf(dataDir)), '0755'); // not changed behind the operator's back
    for (const f of FILES) assert.equal(octal(modeOf(path.join(dataDir, f))), '0600', f);
  } finally {
    assert.equal((await h.stop()).code, 0);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('an existing herald.db open to group is kept, warned about, and -wal and -shm take its mode', async () => {
  const root = scratch();
  const dataDir = path.join(root, 'var');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const db = path.join(dataDir, 'herald.db');
  fs.writeFileSync(db, ''); // an empty file: SQLite makes a new database of it
  fs.chmodSync(db, 0o640); // not SQLite's own default (0644 under umask 000)
  const h = await startWithUmask(0o000, { data_dir: dataDir });
  try {
    const lines = warnings(h);
    assert.equal(lines.length, FILES.length, lines.join('\n'));
    FILES.forEach((f, i) => {
      assert.ok(lines[i].includes(`path="${path.join(dataDir, f)}" mode=0640 `), lines[i]);
      assert.equal(octal(modeOf(path.join(dataDir, f))), '0640', f);
    });
  } finally {
    assert.equal((await h.stop()).code, 0);
    fs.rmSync(root, { recursive: true, force: true });
  }
});
