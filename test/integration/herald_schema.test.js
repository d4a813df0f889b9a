// The herald-schema command: exit 0 all valid, 1 some instance invalid or
// not JSON (each error as "file: /path: message"), 2 bad schema or usage.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../..');
const BIN = path.resolve(process.env.HERALD_SCHEMA || path.join(REPO, 'build/herald-schema'));

function run(args, opts = {}) {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 60000, ...opts }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'herald-schema-cli-'));
}

test('validate: 0 when every instance is valid, 1 with one line per error otherwise', async () => {
  const schema = path.join(REPO, 'schemas/topics/order.json');
  const valid = path.join(REPO, 'schemas/topics/examples/order-valid.json');
  const invalid = path.join(REPO, 'schemas/topics/examples/order-invalid.json');
  let r = await run(['validate', schema, valid, valid]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  r = await run(['validate', schema, valid, invalid]);
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length >= 2, r.stdout);
  for (const line of lines) assert.ok(line.startsWith(invalid + ': '), line);
  assert.ok(lines.some((l) => l.startsWith(`${invalid}: /items/0/qty: `)), r.stdout);
});

test('validate: an instance that is not JSON counts as invalid (1) and says where', async () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 's.json'), '{"type":"object"}');
  fs.writeFileSync(path.join(dir, 'bad.json'), '{"a":');
  const r = await run(['validate', 's.json', 'bad.json'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^bad\.json: not JSON: line 1/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('exit 2: invalid or unreadable schema, bad usage', async () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'i.json'), '1');
  fs.writeFileSync(path.join(dir, 'bad-type.json'), '{"type": 5}');
  fs.writeFileSync(path.join(dir, 'bad-json.json'), '{');
  fs.writeFileSync(path.join(dir, 'bad-ref.json'), '{"$ref": "https://example.com/x.json"}');
  fs.writeFileSync(path.join(dir, 'bad-regex.json'), '{"pattern": "a("}');
  for (const [file, why] of [['bad-type.json', /type/], ['bad-json.json', /bad-json\.json/],
    ['bad-ref.json', /never fetched/], ['bad-regex.json', /regex|parenthes/], ['missing.json', /No such file/]]) {
    const r = await run(['validate', file, 'i.json'], { cwd: dir });
    assert.equal(r.code, 2, file);
    assert.match(r.stderr, why, file);
  }
  for (const args of [[], ['validate'], ['validate', 'i.json'], ['frobnicate', 'a', 'b'], ['check'], ['--remote', 'nodir', 'check', 'i.json']]) {
    const r = await run(args, { cwd: dir });
    assert.equal(r.code, 2, JSON.stringify(args));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('relative $refs resolve next to the schema; --remote serves absolute ones from a directory', async () => {
  const dir = tmpdir();
  fs.mkdirSync(path.join(dir, 'lib'));
  fs.mkdirSync(path.join(dir, 'remote'));
  fs.writeFileSync(path.join(dir, 'main.json'), JSON.stringify({
    properties: { money: { $ref: 'lib/money.json' }, id: { $ref: 'https://schemas.example.com/id.json' } },
  }));
  fs.writeFileSync(path.join(dir, 'lib/money.json'), JSON.stringify({ type: 'number', minimum: 0 }));
  fs.writeFileSync(path.join(dir, 'remote/id.json'), JSON.stringify({ type: 'string', format: 'uuid' }));
  fs.writeFileSync(path.join(dir, 'ok.json'), JSON.stringify({ money: 3, id: '0190a3b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b' }));
  fs.writeFileSync(path.join(dir, 'no.json'), JSON.stringify({ money: -1, id: 'x' }));
  let r = await run(['validate', 'main.json', 'ok.json'], { cwd: dir });
  assert.equal(r.code, 2, 'absolute $ref without --remote');
  const remote = `--remote=https://schemas.example.com/=${path.join(dir, 'remote')}`;
  r = await run([remote, 'validate', 'main.json', 'ok.json'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await run([remote, 'validate', 'main.json', 'no.json'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /no\.json: \/money: -1 is less than the minimum 0/);
  assert.match(r.stdout, /no\.json: \/id: string is not a valid uuid/);
  r = await run([remote, 'check', 'main.json'], { cwd: dir });
  assert.equal(r.code, 0);
  // --no-format turns format into an annotation
  r = await run([remote, '--no-format', 'validate', 'main.json', 'no.json'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stdout, /uuid/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('boolean schema files (true, false) are valid draft-07 schemas', async () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'yes.json'), 'true\n');
  fs.writeFileSync(path.join(dir, 'no.json'), ' false ');
  fs.writeFileSync(path.join(dir, 'inst.json'), '{"any":[1,"thing"]}');
  let r = await run(['check', 'yes.json'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await run(['validate', 'yes.json', 'inst.json'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await run(['validate', 'no.json', 'inst.json'], { cwd: dir });
  assert.equal(r.code, 1, 'false allows nothing: ' + r.stdout + r.stderr);
  assert.match(r.stdout, /^inst\.json: \(root\): /);
  fs.writeFileSync(path.join(dir, 'num.json'), '42');
  r = await run(['check', 'num.json'], { cwd: dir });
  assert.equal(r.code, 2, 'a number is not a schema');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('any RFC 8259 number: a uint64 id is valid JSON and an integer; 1e400 is a number', async () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 's.json'),
    '{"properties":{"id":{"type":"integer","minimum":0},"x":{"type":"number","maximum":1e400}}}');
  fs.writeFileSync(path.join(dir, 'ok.json'), '{"id":18446744073709551615,"x":1e300}');
  fs.writeFileSync(path.join(dir, 'frac.json'), '{"id":18446744073709551615.5}');
  fs.writeFileSync(path.join(dir, 'neg.json'), '{"id":-18446744073709551615}');
  let r = await run(['validate', 's.json', 'ok.json'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await run(['validate', 's.json', 'neg.json'], { cwd: dir });
  assert.equal(r.code, 1, 'below the minimum: ' + r.stdout);
  assert.match(r.stdout, /^neg\.json: \/id: /);
  // 18446744073709551615.5 is 18446744073709551616 as a double: integral
  // (the schemas see doubles beyond 2^53, as ajv and Python's float do)
  r = await run(['validate', 's.json', 'frac.json'], { cwd: dir });
  assert.equal(r.code, 0, r.stdout);
  fs.rmSync(dir, { recursive: true, force: true });
});
