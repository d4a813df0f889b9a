// The JSON in the docs is what Herald really sends and accepts: every example
// marked in README.md and docs/*.md is checked against the schema its marker
// names with the real validator (build/herald-schema), and so are
// conf/herald.json, the example topic schema's instances and a set of cases on
// each side of every rule (lib/schema_cases.js). Every schema under
// schemas/herald and schemas/topics must itself be a valid draft-07 schema.
//
// Markers are HTML comments (invisible once rendered) on the line right before
// what they mark; SCHEMA is a path under schemas/:
//   <!-- schema: SCHEMA -->          the next fenced block is one instance, valid
//   <!-- schema-invalid: SCHEMA -->  the same, and it must be invalid
//   <!-- schema-lines: SCHEMA -->    in the next fenced block (e.g. a shell
//                                    session), each line starting with `{` (or
//                                    `# {`) is an instance
//   <!-- schema-spans: SCHEMA -->    in the next paragraph or list (up to a blank
//                                    line), each code span holding a JSON object,
//                                    optionally after an HTTP status (`200 {…}`)
//   <!-- schema-columns: S1 | S2 --> in the next table, code spans starting with
//                                    `{` in column i are instances of Si (`-`: none)
//   <!-- schema-none: REASON -->     the next fenced block is deliberately unchecked
// Every ```json block must carry one of schema, schema-invalid or schema-none.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const CASES = require('./lib/schema_cases');

const REPO = path.resolve(__dirname, '../..');
const SCHEMAS = path.join(REPO, 'schemas');
const HERALD_SCHEMA = process.env.HERALD_SCHEMA || path.join(REPO, 'build/herald-schema');

// How many instances the docs mark today. The test fails below it, so it
// cannot pass by finding nothing; raise it when you mark more.
const MIN_DOC_EXAMPLES = 21;

const DOCS = [
  'README.md',
  ...fs.readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`),
];

let tmp;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-docs-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Runs `herald-schema validate schema instances…`; resolves with {code, stdout, stderr}.
function validate(schema, instances) {
  // Not under HERALD_WRAPPER (valgrind): the validator's memory checks are
  // its unit tests' job, and valgrind flags reads in PCRE2's JIT-compiled code.
  const file = HERALD_SCHEMA;
  const argv = ['validate', schema, ...instances];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: 120000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number')
        reject(new Error(`cannot run ${file} (${err.code || err.signal}): build the herald-schema target first`));
      else resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

let written = 0;
// Writes text to a fresh file in the temp dir; its name says where it came from.
function writeInstance(label, text) {
  const name = `${String(++written).padStart(3, '0')}-${label.replace(/[^A-Za-z0-9_.-]+/g, '_')}.json`;
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

function schemaPath(rel) {
  return path.join(SCHEMAS, rel);
}

// Asserts that every instance is valid (expect 'valid') or that each one is
// reported invalid (expect 'invalid'), in one run of the validator.
async function expectAll(schemaRel, expect, items) {
  if (items.length === 0) return;
  const files = items.map((it) => it.file);
  const r = await validate(schemaPath(schemaRel), files);
  const out = `${r.stdout}${r.stderr}`;
  const where = items.map((it) => `  ${path.basename(it.file)}  ${it.where}`).join('\n');
  if (expect === 'valid') {
    assert.equal(r.code, 0, `${schemaRel}: expected every instance to be valid:\n${out}\ninstances:\n${where}`);
    return;
  }
  assert.equal(r.code, 1, `${schemaRel}: expected exit 1 (invalid):\n${out}\ninstances:\n${where}`);
  // Each instance must be invalid on its own: the errors name its file, or
  // (should the validator not report every file) a run of its own exits 1.
  const lines = out.split('\n');
  for (const it of items) {
    const base = path.basename(it.file);
    if (lines.some((l) => l.includes(`${base}: `))) continue;
    const one = await validate(schemaPath(schemaRel), [it.file]);
    assert.equal(one.code, 1, `${schemaRel}: ${it.where} should be invalid:\n${one.stdout}${one.stderr}`);
  }
}

// ---- finding the marked examples ------------------------------------------

const MARKER = /^<!--\s*(schema|schema-invalid|schema-lines|schema-spans|schema-columns|schema-none):\s*(.*?)\s*-->\s*$/;
const FENCE = /^(`{3,}|~{3,})\s*([\w-]*)/;

// The code spans of one line of Markdown, without their backticks.
function codeSpans(text) {
  const out = [];
  const re = /(`+)([\s\S]*?[^`])\1(?!`)/g;
  let m;
  while ((m = re.exec(text))) out.push(m[2].replace(/^ (.*) $/, '$1'));
  return out;
}

// The cells of a table row; a `|` inside a code span does not split.
function tableCells(row) {
  const cells = [];
  let cur = '';
  let inCode = false;
  const body = row.trim().replace(/^\|/, '').replace(/\|$/, '');
  for (const ch of body) {
    if (ch === '`') inCode = !inCode;
    if (ch === '|' && !inCode) {
      cells.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

// The fenced block starting at lines[i]: {lang, body, end} or null.
function fencedBlock(lines, i) {
  const m = FENCE.exec(lines[i] || '');
  if (!m) return null;
  const close = new RegExp(`^${m[1][0] === '`' ? '`' : '~'}{${m[1].length},}\\s*$`);
  for (let j = i + 1; j < lines.length; j++) {
    if (close.test(lines[j])) return { lang: m[2], body: lines.slice(i + 1, j), start: i, end: j };
  }
  return null;
}

function checkSchemaName(rel) {
  return /^[\w-]+(?:\/[\w-]+)*\.json$/.test(rel) && fs.existsSync(schemaPath(rel));
}

// Scans one Markdown file. Returns {examples, problems, unmarkedJson}: each
// example {doc, line, schema, expect, text}; problems are misplaced or
// malformed markers.
function scanDoc(doc) {
  const lines = fs.readFileSync(path.join(REPO, doc), 'utf8').split('\n');
  const examples = [];
  const problems = [];
  const markedFences = new Set();
  const add = (line, schema, expect, text) => examples.push({ doc, line: line + 1, schema, expect, text });
  const problem = (line, msg) => problems.push(`${doc}:${line + 1}: ${msg}`);

  for (let i = 0; i < lines.length; i++) {
    const m = MARKER.exec(lines[i]);
    if (!m) continue;
    const [, kind, arg] = m;
    const before = examples.length;
    if (kind === 'schema-columns') {
      const schemas = arg.split('|').map((s) => s.trim());
      for (const s of schemas) if (s !== '-' && !checkSchemaName(s)) problem(i, `no schema schemas/${s}`);
      if (!/^\s*\|/.test(lines[i + 1] || '') || !/^\s*\|[\s|:-]+\|\s*$/.test(lines[i + 2] || '')) {
        problem(i, 'schema-columns must be followed by a table (header row and separator row)');
        continue;
      }
      for (let j = i + 3; j < lines.length && /^\s*\|/.test(lines[j]); j++) {
        const cells = tableCells(lines[j]);
        if (cells.length > schemas.length) problem(j, `row has ${cells.length} cells, the marker names ${schemas.length} columns`);
        cells.forEach((cell, c) => {
          if (!schemas[c] || schemas[c] === '-') return;
          for (const span of codeSpans(cell)) if (span.startsWith('{')) add(j, schemas[c], 'valid', span);
        });
      }
    } else if (kind === 'schema-spans') {
      if (!checkSchemaName(arg)) problem(i, `no schema schemas/${arg}`);
      for (let j = i + 1; j < lines.length && lines[j].trim() !== ''; j++) {
        for (const span of codeSpans(lines[j])) {
          const s = /^(?:[1-5][0-9]{2} )?(\{[\s\S]*\})$/.exec(span);
          if (s) add(j, arg, 'valid', s[1]);
        }
      }
    } else {
      const block = fencedBlock(lines, i + 1);
      if (!block) {
        problem(i, `${kind} must be on the line right before a fenced code block`);
        continue;
      }
      markedFences.add(block.start);
      if (kind === 'schema-none') {
        if (!arg) problem(i, 'schema-none needs a reason');
        continue;
      }
      if (!checkSchemaName(arg)) problem(i, `no schema schemas/${arg}`);
      if (kind === 'schema-lines') {
        block.body.forEach((l, k) => {
          const s = /^\s*(?:#\s*)?(\{.*\})\s*$/.exec(l);
          if (s) add(block.start + 1 + k, arg, 'valid', s[1]);
        });
      } else {
        add(i + 1, arg, kind === 'schema-invalid' ? 'invalid' : 'valid', block.body.join('\n'));
      }
      i = block.end;
    }
    if (examples.length === before) problem(i, `${kind} marks no JSON example`);
  }

  // Every ```json block is marked, so none escapes the check unnoticed.
  const unmarkedJson = [];
  for (let i = 0; i < lines.length; i++) {
    const block = fencedBlock(lines, i);
    if (!block) continue;
    if (block.lang === 'json' && !markedFences.has(i)) unmarkedJson.push(`${doc}:${i + 1}`);
    i = block.end;
  }
  return { examples, problems, unmarkedJson };
}

const scans = DOCS.map(scanDoc);
const docExamples = scans.flatMap((s) => s.examples);

// ---- the tests --------------------------------------------------------------

test('the docs mark their JSON examples, and every marked one is JSON', () => {
  assert.deepEqual(scans.flatMap((s) => s.problems), [], 'malformed or misplaced markers');
  assert.deepEqual(scans.flatMap((s) => s.unmarkedJson), [],
    '```json blocks without a <!-- schema: … -->, <!-- schema-invalid: … --> or <!-- schema-none: reason --> marker');
  assert.ok(docExamples.length >= MIN_DOC_EXAMPLES,
    `found ${docExamples.length} marked examples, expected at least ${MIN_DOC_EXAMPLES}`);
  for (const ex of docExamples) {
    assert.doesNotThrow(() => JSON.parse(ex.text), `${ex.doc}:${ex.line}: not valid JSON: ${ex.text}`);
  }
});

test('every marked example in the docs validates against its schema', async (t) => {
  const groups = new Map();
  for (const ex of docExamples) {
    const key = `${ex.expect} ${ex.schema}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push({ file: writeInstance(`${ex.doc}-L${ex.line}`, ex.text), where: `${ex.doc}:${ex.line}` });
  }
  for (const [key, items] of groups) {
    const [expect, schema] = key.split(' ');
    await t.test(`${items.length} ${expect} for ${schema}`, () => expectAll(schema, expect, items));
  }
});

test('conf/herald.json (the embedded default) is a valid configuration', async () => {
  const r = await validate(schemaPath('herald/config.json'), [path.join(REPO, 'conf/herald.json')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('the example order schema accepts order-valid.json and refuses order-invalid.json', async () => {
  const schema = schemaPath('topics/order.json');
  const ok = await validate(schema, [path.join(SCHEMAS, 'topics/examples/order-valid.json')]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const bad = await validate(schema, [path.join(SCHEMAS, 'topics/examples/order-invalid.json')]);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout + bad.stderr, /order-invalid\.json: /);
});

test('every schema under schemas/herald and schemas/topics is a valid draft-07 schema', async () => {
  const files = ['herald', 'topics'].flatMap((d) =>
    fs.readdirSync(path.join(SCHEMAS, d)).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(SCHEMAS, d, f)));
  assert.ok(files.length >= 8, `found only ${files.length} schemas`);
  const r = await validate(path.join(SCHEMAS, 'meta-draft-07.json'), files);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('Herald\'s schemas accept and refuse what Herald does (lib/schema_cases.js)', async (t) => {
  for (const c of CASES) {
    assert.ok(checkSchemaName(c.schema), c.schema);
    const items = (list, kind) => list.map((v, k) => ({
      file: writeInstance(`${path.basename(c.schema, '.json')}-${kind}-${k}`, JSON.stringify(v)),
      where: `${kind}[${k}] ${JSON.stringify(v).slice(0, 120)}`,
    }));
    for (const kind of ['valid', 'invalid']) {
      if (c[kind].length === 0) continue;
      await t.test(`${c[kind].length} ${kind} for ${c.schema}`, () => expectAll(c.schema, kind, items(c[kind], kind)));
    }
  }
});

// The topic rules and the event id format are written out in several
// documents (each schema stands alone); they must not drift apart.
test('the schemas agree with each other on topics, patterns and event ids', () => {
  const load = (rel) => JSON.parse(fs.readFileSync(schemaPath(rel), 'utf8'));
  const client = load('herald/ws-client-message.json');
  const server = load('herald/ws-server-message.json');
  const response = load('herald/rest-publish-response.json');
  const config = load('herald/config.json');
  const restError = load('herald/rest-error.json');
  const topic = ({ minLength, maxLength, pattern }) => ({ minLength, maxLength, pattern });
  assert.deepEqual(topic(server.definitions.topic), topic(client.definitions.topic));
  assert.deepEqual(topic(response.properties.topic), topic(client.definitions.topic));
  assert.deepEqual(topic(config.definitions.topic_pattern), topic(client.definitions.pattern));
  assert.equal(response.properties.id.pattern, server.definitions.event_id.pattern);
  assert.deepEqual(restError.definitions.violation.properties.instance_path.format,
    server.definitions.violation.properties.instance_path.format);
  assert.deepEqual(restError.definitions.violations.maxItems, server.definitions.violations.maxItems);
});

test('every error code docs/protocol.md lists is in the schemas', () => {
  const text = fs.readFileSync(path.join(REPO, 'docs/protocol.md'), 'utf8');
  const load = (rel) => JSON.parse(fs.readFileSync(schemaPath(rel), 'utf8'));
  const wsCodes = load('herald/ws-server-message.json').definitions.error_code.enum;
  const restCodes = load('herald/rest-error.json').definitions.code.enum;
  // The WebSocket table sits between "### Errors" and "### Close codes".
  const ws = text.slice(text.indexOf('### Errors'), text.indexOf('### Close codes'));
  const documentedWs = [...ws.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
  assert.ok(documentedWs.length >= 10, `found ${documentedWs.length} WebSocket codes`);
  for (const code of documentedWs) assert.ok(wsCodes.includes(code), `WebSocket code ${code} is not in ws-server-message.json`);
  // The REST table: | status | `code` (/ `code`) | when |
  const rest = text.slice(text.indexOf('## REST API'));
  const documentedRest = [...rest.matchAll(/^\| [1-5][0-9]{2} \| ([^|]+) \|/gm)]
    .flatMap((m) => [...m[1].matchAll(/`([a-z0-9_]+)`/g)].map((c) => c[1]));
  assert.ok(documentedRest.length >= 9, `found ${documentedRest.length} REST codes`);
  for (const code of documentedRest) assert.ok(restCodes.includes(code), `REST code ${code} is not in rest-error.json`);
});
