// The benchmark harness (issue 6) must not rot: bench/compare.sh --quick runs
// every scenario, tiny, against heraldd, nchan and the Node ws peer with the
// real load generator, and must finish with a full table. It checks that the
// harness works, not how fast anything is (timing belongs in benchmarks).
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');
const HERALDD = path.resolve(process.env.HERALDD || path.join(REPO, 'build/heraldd'));
const LOADGEN = path.join(path.dirname(HERALDD), 'bench/loadgen');

test('bench/compare.sh --quick runs every scenario against every server', {
  // under valgrind a benchmark means nothing and takes minutes
  skip: process.env.HERALD_WRAPPER ? 'heraldd is wrapped (valgrind)' : false,
}, async () => {
  const r = await new Promise((resolve) => {
    execFile(path.join(REPO, 'bench/compare.sh'), ['--quick', '--no-install', '--no-build'],
      { env: { ...process.env, HERALDD, LOADGEN }, timeout: 280000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
  assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr.slice(-3000));
  const out = r.stdout;
  for (const row of ['(a) fan-out', '(a) ramp', '(b) 50% of saturation', '(b) same load', '(c) idle',
    '(d) REST publish (wrk)', '(d) Herald vs nginx return 204', '(e) routing']) {
    assert.ok(out.includes(row), `no row ${row} in:\n${out.slice(-3000)}`);
  }
  // and the floor under the CPU per delivery was measured
  assert.match(out, /^floor: one 100-byte write to a loopback TCP socket costs the writer [0-9.]+ CPU-us/m);
  // every server delivered everything it accepted: fan-out, ramp, same load, routing
  const lost = out.split('\n').filter((l) => /^\s+lost\s/.test(l));
  assert.ok(lost.length >= 5, out.slice(-3000));
  for (const l of lost) assert.match(l, /^\s+lost\s+low\s+0\s+0\s+0\s/, l);
});
