// The command line: --check-config, --version, --help, bad arguments, bad configs.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { heralddCommand } = require('./lib/herald');

const REPO = path.resolve(__dirname, '../..');

function run(args) {
  return new Promise((resolve) => {
    execFile(...heralddCommand(args), { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

function tmpConfig(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-cli-'));
  const file = path.join(dir, 'herald.json');
  fs.writeFileSync(file, typeof text === 'string' ? text : JSON.stringify(text));
  return file;
}

test('--version and --help', async () => {
  const v = await run(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^heraldd \d+\.\d+\.\d+\n$/);
  const h = await run(['--help']);
  assert.equal(h.code, 0);
  for (const opt of ['-c', '--client-listen', '--api-listen', '--data-dir', '--check-config', '--log-level', '--version', '--help'])
    assert.ok(h.stdout.includes(opt), opt);
});

test('unknown options and stray arguments exit 2 with usage', async () => {
  for (const args of [['--bogus'], ['extra'], ['-c']]) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /Usage: heraldd/);
  }
});

test('--check-config accepts the embedded default and conf/herald.json', async () => {
  const a = await run(['--check-config']);
  assert.equal(a.code, 0, a.stderr);
  const b = await run(['--check-config', '-c', path.join(REPO, 'conf/herald.json')]);
  assert.equal(b.code, 0, b.stderr);
});

test('--check-config names what is wrong and exits 1', async () => {
  const cases = [
    [{ client: { listen: '127.0.0.1:8080', bogus: 1 } }, /client\.bogus: unknown key/],
    [{ nonsense: true }, /nonsense: unknown key/],
    [{ client: { workers: 'two' } }, /client\.workers: expected an integer/],
    [{ client: { max_subscriptions: 0 } }, /client\.max_subscriptions: 0 is out of range/],
    [{ api: { listen: '127.0.0.1:99999' } }, /api\.listen: .*port/],
    [{ api: { listen: 'example.com:80' } }, /api\.listen: .*numeric/],
    [{ client: 5 }, /client: expected an object/],
    [{ log_level: 'loud' }, /log_level: .*debug, info, warn, error/],
    [{ client: { listen: '127.0.0.1:7000' }, api: { listen: '127.0.0.1:7000' } }, /api\.listen: must differ/],
    ['{"client": {', /herald\.json:\d+:\d+:/],
    ['[1]', /must be a JSON object/],
    ['{"log_level":"info","log_level":"debug"}', /duplicate/],
  ];
  for (const [cfg, re] of cases) {
    const r = await run(['--check-config', '-c', tmpConfig(cfg)]);
    assert.equal(r.code, 1, JSON.stringify(cfg));
    assert.match(r.stderr, re, JSON.stringify(cfg));
  }
  const missing = await run(['--check-config', '-c', '/nonexistent/herald.json']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot open/);
  const badOverride = await run(['--check-config', '--client-listen', 'nope']);
  assert.equal(badOverride.code, 1);
  assert.match(badOverride.stderr, /client\.listen/);
});

test('an unusable data dir or a taken port fails start-up with a clear message', async () => {
  const file = tmpConfig({});
  const notDir = path.join(path.dirname(file), 'afile');
  fs.writeFileSync(notDir, 'x');
  const r = await run(['-c', file, '--client-listen', '127.0.0.1:0', '--api-listen', '127.0.0.1:0', '--data-dir', notDir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /event=data_dir_unusable/);
  // a port another process holds
  const net = require('node:net');
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((res) => srv.once('listening', res));
  const port = srv.address().port;
  const t = await run(['-c', file, '--client-listen', `127.0.0.1:${port}`, '--api-listen', '127.0.0.1:0', '--data-dir', path.dirname(file)]);
  srv.close();
  assert.equal(t.code, 1);
  assert.match(t.stderr, /event=listen_failed port=client .*Address already in use/);
});
