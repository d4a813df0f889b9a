#!/usr/bin/env node
// RFC 6455 conformance of Herald's client port: a port of the Autobahn
// Testsuite's server cases of categories 1-7, 9 and 10, run over raw TCP
// against a real heraldd (its path in HERALDD, as for the integration
// tests). Each case opens its own connection, sends exactly what the
// Autobahn case sends (frames written by ./frame.js: masked or not, RSV
// bits, reserved opcodes, fragments, split writes), and is graded with
// Autobahn's verdicts: OK, NON-STRICT, INFORMATIONAL, FAILED.
//
// Herald is not an echo server, so where Autobahn expects its message
// echoed the case expects herald.v1's documented answer (docs/protocol.md):
//   text message of N bytes   a ping op padded to exactly N bytes with an
//                             ignored "pad" field: its pong op. Under the
//                             smallest op (0, 16 bytes): Autobahn's own
//                             payload, answered with an invalid_json error op
//   binary message            one unsupported_frame error op (no id); the
//                             connection stays open
//   fragmented text           the ping op cut into the case's fragments
//                             (Autobahn's fragment texts inside its id)
//   ping / pong / close       unchanged: RFC 6455 answers them, not herald.v1
//   6.x UTF-8 vectors         Autobahn's exact payload bytes: a valid one
//                             gets an invalid_json error op (valid UTF-8,
//                             not JSON), an invalid one close 1007
//   9.x large messages        the padded ping op at each size; heraldd runs
//                             with client.max_message_bytes at its cap,
//                             16 MiB, so every Autobahn size fits; a message
//                             past it must close 1009 (9.11, Herald's cases)
// Where Autobahn waits a fixed time to see that nothing more comes, a case
// sends a ping op after its frames and waits for its answer (Herald answers
// in order, and not at all once it fails the connection), or a ping frame
// where a message may still be open: outcomes follow from order, and
// timeouts are upper bounds only. The exception is fail-fast (6.4), which
// waits a bounded time for the close after each part, as Autobahn does;
// waiting too little can only turn OK into NON-STRICT.
//
// Verdicts: a close with a code other than the case allows (Autobahn's
// WRONG CODE) and an unclean close where a clean one is required are
// FAILED, since docs/protocol.md promises RFC 6455's codes; so is a frame
// RFC 6455 forbids the server to send (a data frame after its close, a
// masked frame, a close with a 1-byte body or a reason that is not UTF-8).
// A server that leaves the TCP connection open for 1 s after the closing
// handshake (FAILED BY CLIENT) is NON-STRICT, as Autobahn colours it.
// 2.10/2.11 grade fewer pongs, in order, NON-STRICT (RFC 6455 §5.5.3).
//
// The report (HERALD_WSCONF_REPORT, default
// build/test/conformance/websocket-report.txt) has one line per case and a
// table per category; the exit code is 1 when any case FAILED or heraldd
// did not exit 0.
//   HERALD_WSCONF_CASES=6.4,7.3.2   run only the cases with these prefixes
//   HERALD_WSCONF_VERBOSE=1         print every case, not only the FAILED
//   HERALD_WSCONF_TRACE=1           print every frame in and out
//   HERALD_WSCONF_FAILURES=FILE     append a line per FAILED case to FILE
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { startHerald } = require('../../integration/lib/herald');
const { V, runCase } = require('./harness');

const CATEGORY_FILES = [
  './cases/1_framing',
  './cases/2_pings',
  './cases/3_reserved_bits',
  './cases/4_opcodes',
  './cases/5_fragmentation',
  './cases/6_utf8',
  './cases/7_close',
  './cases/9_limits',
  './cases/10_autofragment',
];
const CATEGORIES = CATEGORY_FILES.map((f) => ({ ...require(f), file: require.resolve(f) }));

const MAX_MESSAGE_BYTES = 16 * 1024 * 1024; // client.max_message_bytes' cap (gateway/config.c)

// heraldd as the suite needs it: the largest message size, no rate limit
// (9.7 and 9.8 send 1,000 messages each), no pings of its own (they would
// be events no case expects).
const CONFIG = {
  log_level: 'info', // the harness learns the ports from the 'listening' lines
  client: {
    max_message_bytes: MAX_MESSAGE_BYTES,
    send_queue_bytes: 2 * MAX_MESSAGE_BYTES,
    rate_per_s: 0,
    ping_interval_s: 0,
    idle_timeout_s: 0,
  },
};

function selected(id) {
  const want = (process.env.HERALD_WSCONF_CASES || '').split(',').filter(Boolean);
  return !want.length || want.some((p) => id === p || id.startsWith(p + '.'));
}

function summary(results) {
  const verdicts = [V.OK, V.NON_STRICT, V.INFORMATIONAL, V.FAILED];
  const rows = [['category', ...verdicts, 'total']];
  const total = Object.fromEntries(verdicts.map((v) => [v, 0]));
  for (const cat of CATEGORIES) {
    const mine = results.filter((r) => r.category === cat.category);
    if (!mine.length) continue;
    const n = Object.fromEntries(verdicts.map((v) => [v, mine.filter((r) => r.verdict === v).length]));
    for (const v of verdicts) total[v] += n[v];
    rows.push([`${cat.category} ${cat.title}`, ...verdicts.map((v) => String(n[v])), String(mine.length)]);
  }
  rows.push(['all', ...verdicts.map((v) => String(total[v])), String(results.length)]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ')).join('\n');
}

// A category file's opening comment: how its cases map onto herald.v1.
function categoryMapping(cat) {
  const lines = fs.readFileSync(cat.file, 'utf8').split('\n');
  const end = lines.findIndex((l) => !l.startsWith('//'));
  return lines.slice(0, end).map((l) => l.replace(/^\/\/ ?/, '')).join(' ');
}

function mappingText() {
  const src = fs.readFileSync(__filename, 'utf8').split('\n');
  const start = src.findIndex((l) => l.startsWith('// Herald is not an echo server'));
  const end = src.findIndex((l, i) => i > start && l.startsWith('// The report'));
  return src.slice(start, end).map((l) => l.replace(/^\/\/ ?/, '  ').trimEnd()).filter(Boolean).join('\n');
}

async function main() {
  const reportPath = path.resolve(
    process.env.HERALD_WSCONF_REPORT || path.join(__dirname, '../../../build/test/conformance/websocket-report.txt'),
  );
  const h = await startHerald(CONFIG);
  const results = [];
  const started = Date.now();
  let exit;
  try {
    for (const cat of CATEGORIES) {
      for (const def of cat.cases) {
        if (!selected(def.id)) continue;
        const t0 = Date.now();
        const r = await runCase(def, h.clientAddr);
        results.push({ id: def.id, category: cat.category, def, ms: Date.now() - t0, ...r });
        const line = `${def.id} ${r.verdict} ${r.reason}`;
        if (r.verdict === V.FAILED || process.env.HERALD_WSCONF_VERBOSE) console.log(`${line} (${Date.now() - t0} ms)`);
      }
    }
  } finally {
    exit = await h.stop();
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const table = summary(results);
  const lines = [
    `# Herald RFC 6455 conformance (Autobahn Testsuite server cases, categories 1-7, 9, 10), ${new Date().toISOString()}`,
    `# heraldd: ${h.proc.spawnfile} ${JSON.stringify(CONFIG)}; exit ${JSON.stringify(exit)}; ${secs} s`,
    '# Mapping of Autobahn\'s echo expectations onto herald.v1:',
    ...mappingText().split('\n').map((l) => '#' + l),
    '# Per category:',
    ...CATEGORIES.map((cat) => `#   ${cat.category} ${cat.title}: ${categoryMapping(cat)}`),
    '#',
    '# id verdict reason',
    ...results.map((r) => `${r.id} ${r.verdict} ${r.reason.replace(/\n/g, ' ')}`),
    '',
    table,
    '',
  ];
  fs.mkdirSync(path.dirname(reportPath), { recursive: true });
  fs.writeFileSync(reportPath, lines.join('\n'));
  if (process.env.HERALD_WSCONF_FAILURES) {
    const fails = results.filter((r) => r.verdict === V.FAILED);
    fs.appendFileSync(
      process.env.HERALD_WSCONF_FAILURES,
      fails
        .map((r) => {
          const broke = r.broke && r.broke.length ? `; and the server itself must not send ${r.broke.join('; ')}` : '';
          const required = (r.def.rfc || r.def.expect) + broke;
          return `${r.id} | sent: ${r.def.desc} | Herald: ${r.reason} | RFC 6455: ${required}\n`;
        })
        .join(''),
    );
  }
  console.log(table);
  console.log(`report: ${reportPath} (${results.length} cases, ${secs} s)`);
  const failed = results.filter((r) => r.verdict === V.FAILED).length;
  if (exit.code !== 0) console.log(`heraldd exited with ${JSON.stringify(exit)}`);
  process.exit(failed || exit.code !== 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
