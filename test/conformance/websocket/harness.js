// What every case uses: the context a case runs in (its connection, what it
// expects), the matchers for Herald's answers, the herald.v1 stand-ins for
// Autobahn's echoed messages, and the grading, which follows Autobahn's
// Case.onConnectionLost: the events received are compared with each
// expected outcome (OK, then NON-STRICT), then the closing is judged.
'use strict';
const { OP } = require('./frame');
const { RawClient } = require('./client');

const V = { OK: 'OK', NON_STRICT: 'NON-STRICT', INFORMATIONAL: 'INFORMATIONAL', FAILED: 'FAILED' };
const CLOSE = { NORMAL: 1000, PROTOCOL_ERROR: 1002, INVALID_PAYLOAD: 1007, TOO_BIG: 1009 };

// Upper bounds only: how long to wait for an answer or a close before
// giving up on it. A correct server answers in microseconds on loopback
// (milliseconds for 16 MiB under ASan); the bound never turns a pass into a
// failure unless the server hangs.
const BOUND_MS = Number(process.env.HERALD_WSCONF_BOUND_MS || 10000);
// How long the server has, after the closing handshake, to end the TCP
// connection before the suite cuts it (Autobahn's serverConnectionDropTimeout,
// 1 s): a cut makes the case NON-STRICT (FAILED BY CLIENT), never FAILED.
const DROP_MS = Number(process.env.HERALD_WSCONF_DROP_MS || 1000);
// How long the fail-fast cases (6.4) wait after each part for the close
// before sending the next (Autobahn waits 1 s). Waiting less can only turn
// OK into NON-STRICT, never into FAILED.
const FAIL_FAST_WAIT_MS = Number(process.env.HERALD_WSCONF_FAIL_FAST_MS || 1000);

// --- what a case expects to receive --------------------------------------

function show(buf, max = 60) {
  const s = buf.toString('utf8');
  const printable = /^[\x20-\x7e]*$/.test(s);
  const txt = printable ? JSON.stringify(s) : '0x' + buf.toString('hex');
  return txt.length > max ? txt.slice(0, max) + `…(${buf.length} bytes)` : txt;
}

// Runs of the same description as one "desc ×n" (9.7 gets 1,000 answers).
function summarize(descs) {
  const out = [];
  for (let i = 0; i < descs.length; ) {
    let j = i;
    while (j < descs.length && descs[j] === descs[i]) j++;
    out.push(j - i > 2 ? `${descs[i]} ×${j - i}` : descs.slice(i, j).join(', '));
    i = j;
  }
  return out.length > 12 ? [...out.slice(0, 5), `… ${descs.length} events in all …`, ...out.slice(-5)] : out;
}

function describeEvent(e) {
  if (e.type === 'text') {
    if (e.json && e.json.op === 'error') return `error op ${e.json.code}${'id' in e.json ? ' id=' + e.json.id : ''}`;
    if (e.json && e.json.op) return `${e.json.op} op${'id' in e.json ? ' id=' + show(Buffer.from(String(e.json.id)), 30) : ''}`;
    return `text ${show(e.data)}`;
  }
  if (e.type === 'binary') return `binary (${e.data.length} bytes)`;
  return `${e.type}(${show(e.data)})`;
}

const M = {
  // the pong op herald.v1 answers a ping op with: exactly {"op":"pong","id":id}
  pongOp: (id) => ({
    desc: `pong op id=${show(Buffer.from(id), 30)}`,
    test: (e) =>
      e.type === 'text' && e.json && Object.keys(e.json).length === 2 && e.json.op === 'pong' && e.json.id === id,
  }),
  // an error op with the code; id absent unless given
  errorOp: (code, id) => ({
    desc: `error op ${code}${id === undefined ? '' : ' id=' + id}`,
    test: (e) =>
      e.type === 'text' &&
      e.json &&
      e.json.op === 'error' &&
      e.json.code === code &&
      typeof e.json.message === 'string' &&
      (id === undefined ? !('id' in e.json) : e.json.id === id),
  }),
  // a WebSocket pong with exactly this payload
  wsPong: (payload) => {
    const p = Buffer.from(payload);
    return { desc: `pong(${show(p)})`, test: (e) => e.type === 'pong' && e.data.equals(p) };
  },
};

// --- herald.v1 stand-ins for Autobahn's echoed messages -----------------

const PING_OVERHEAD = (id) => Buffer.byteLength(JSON.stringify({ op: 'ping', id, pad: '' }));

// A text message of exactly `size` bytes that Herald must read whole to
// answer: a ping op with id `id` padded with an ignored "pad" field of the
// repeated pattern; its answer is the pong op. Below the size of the
// smallest such op it is the pattern itself (what Autobahn sends), which
// Herald answers with the error op its protocol names (invalid_json).
function textMessage(id, size, pattern = '*') {
  const overhead = PING_OVERHEAD(id);
  if (size >= overhead) {
    const pad = pattern.repeat(Math.ceil((size - overhead) / pattern.length) + 1).slice(0, size - overhead);
    const payload = Buffer.from(JSON.stringify({ op: 'ping', id, pad }));
    if (payload.length !== size) throw new Error(`padded op of ${payload.length}, not ${size}`);
    return { payload, answer: M.pongOp(id), how: `a ${size}-byte ping op (ignored "pad" field), answered with its pong op` };
  }
  const payload = Buffer.from(pattern.repeat(size + 1).slice(0, size));
  return { payload, answer: answerToText(payload), how: `${size} bytes of ${JSON.stringify(pattern)}, not JSON: answered with an error op` };
}

// The answer herald.v1 gives a valid UTF-8 text message that is not a
// valid op: invalid_json when it is not JSON, invalid_message when it is
// JSON but no object (docs/protocol.md, Errors).
function answerToText(payload) {
  let v;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return M.errorOp('invalid_json');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return M.errorOp('invalid_message');
  throw new Error('answerToText: a JSON object: say which op');
}

// A ping op whose id is `text` (valid UTF-8, at most 128 bytes, no control
// characters): the pong op carries the text back, Herald's nearest thing to
// an echo. Returns the op's bytes split at `cut` offsets of the text.
function wrapInPingOp(text) {
  const prefix = Buffer.from('{"op":"ping","id":"');
  const suffix = Buffer.from('"}');
  const body = Buffer.from(text);
  return { prefix, body, suffix, payload: Buffer.concat([prefix, body, suffix]), answer: M.pongOp(body.toString('utf8')) };
}

// Binary frames: herald.v1 answers each binary message, whole, with one
// unsupported_frame error op without id, and stays open
// (docs/protocol.md, Errors). That answer is the "echo".
const BINARY_ANSWER = M.errorOp('unsupported_frame');

// --- the context a case runs in -------------------------------------------

class CaseContext {
  constructor(def, client) {
    this.def = def;
    this.c = client;
    this.expected = new Map(); // verdict -> [matcher]
    this.expectedClose = null;
    this.notes = [];
    this.post = null; // (grade) => void: a case's own last word
    this.barriers = 0;
  }

  expect(verdict, matchers) {
    this.expected.set(verdict, matchers);
  }

  // closedByMe: we send the first close (Autobahn: the case passed and the
  // fuzzer closes) or the server must fail the connection; codes: close
  // codes the server may answer with (none is fine too, as in Autobahn).
  expectClose({ closedByMe, codes, requireClean, wrongEndpointFatal = false }) {
    this.expectedClose = { closedByMe, codes, requireClean, wrongEndpointFatal };
  }

  note(s) {
    this.notes.push(s);
  }

  send(frame, opts) {
    return this.c.sendFrame(frame, opts);
  }

  text(payload, opts) {
    return this.send({ opcode: OP.TEXT, payload }, opts);
  }

  // Waits until Herald answered everything sent so far (a ping op after
  // it). Returns false when the connection closed first.
  sync() {
    return this.c.opBarrier(`barrier-${this.def.id}-${++this.barriers}`, BOUND_MS);
  }

  // Waits until the server fails the connection. A ping op after the
  // offending frames tells: Herald answers it only if it read past them
  // without failing, and writes no answer once it is failing. A case that
  // may leave a message open (def.open: the ping op would be one more
  // violation) sends a ping frame instead, whose pong libwebsockets may
  // send before a close already decided: then only a bounded wait for the
  // close is left. Returns true when the server closed.
  async awaitFail() {
    const c = this.c;
    if (c.serverClosed()) return true;
    const id = `barrier-${this.def.id}-${++this.barriers}`;
    if (!this.def.open) {
      if (await c.opBarrier(id, BOUND_MS)) this.note('the server answered a ping op sent after the offending frames: it did not fail the connection');
      else if (!c.serverClosed()) this.note(`neither an answer nor a close within ${BOUND_MS} ms`);
    } else if (await c.wsBarrier(id, BOUND_MS)) {
      if (!(await this.waitClose(BOUND_MS))) this.note(`no close within ${BOUND_MS} ms`);
    } else if (!c.serverClosed()) this.note(`neither a pong nor a close within ${BOUND_MS} ms`);
    return c.serverClosed();
  }

  // Waits up to ms for the server to close (fail-fast cases inside a frame).
  waitClose(ms) {
    return this.c.waitFor(() => this.c.serverClosed(), ms);
  }
}

// --- grading ----------------------------------------------------------------

function matches(received, matchers) {
  return received.length === matchers.length && matchers.every((m, i) => m.test(received[i]));
}

function describeClose(c) {
  const parts = [];
  if (c.closeReceived) {
    const { code, reason, payload } = c.closeReceived;
    if (payload.length === 1) parts.push(`server close frame with the 1-byte payload 0x${payload.toString('hex')}`);
    else parts.push(code === null ? 'server close frame without code' : `server close ${code}${reason ? ` ${show(payload.subarray(2))}` : ''}`);
  } else parts.push('no server close frame');
  parts.push(c.firstCloser === 'me' ? 'closed first by the suite' : 'closed first by the server');
  if (c.droppedByMe) parts.push('TCP cut by the suite');
  return parts.join(', ');
}

// Grades one finished case. Returns {verdict, behavior, behaviorClose, reason}.
function grade(t) {
  const c = t.c;
  const received = c.events;
  const ec = t.expectedClose;
  const g = { behavior: V.FAILED, behaviorClose: V.FAILED, reasons: [] };
  for (const [verdict, list] of t.expected) {
    if (matches(received, list)) {
      g.behavior = verdict;
      break;
    }
  }
  const closedByMe = c.firstCloser === 'me';
  const wasClean = Boolean(c.closeSent && c.closeReceived);
  const remoteCode = c.closeReceived ? c.closeReceived.code : null;
  if (ec.closedByMe !== closedByMe) {
    g.behaviorClose = V.FAILED;
    g.closeWhy = ec.closedByMe ? 'the server closed the connection' : 'the server did not fail the connection';
  } else if (ec.requireClean && !wasClean) {
    g.behaviorClose = 'UNCLEAN';
    g.closeWhy = 'no clean closing handshake';
  } else if (remoteCode !== null && !ec.codes.includes(remoteCode)) {
    g.behaviorClose = 'WRONG CODE';
    g.closeWhy = `close code ${remoteCode}, expected ${ec.codes.join(' or ')}`;
  } else if (c.droppedByMe) {
    g.behaviorClose = 'FAILED BY CLIENT';
    g.closeWhy = `the server did not end the TCP connection within ${DROP_MS} ms of the closing handshake (RFC 6455 §7.1.1: the server closes it first)`;
  } else g.behaviorClose = V.OK;
  if (ec.wrongEndpointFatal && closedByMe !== ec.closedByMe) g.behavior = V.FAILED;
  if (c.protocolErrors.length) {
    g.behavior = V.FAILED;
    g.reasons.push('server broke RFC 6455: ' + [...new Set(c.protocolErrors)].join('; '));
  }
  g.received = summarize(received.map(describeEvent));
  g.closeText = describeClose(c);
  if (t.post) t.post(g, t);
  if (c.oddities.length && (g.behavior === V.OK || g.behavior === V.NON_STRICT)) {
    const odd = 'the server sent ' + [...new Set(c.oddities)].join('; ');
    g.nonStrictWhy = g.behavior === V.NON_STRICT && g.nonStrictWhy ? `${g.nonStrictWhy}; ${odd}` : odd;
    g.behavior = V.NON_STRICT;
  }

  let verdict;
  if (g.behavior === V.INFORMATIONAL) verdict = V.INFORMATIONAL;
  else if (g.behavior === V.FAILED || [V.FAILED, 'UNCLEAN', 'WRONG CODE'].includes(g.behaviorClose)) verdict = V.FAILED;
  else if (g.behavior === V.NON_STRICT || g.behaviorClose === 'FAILED BY CLIENT') verdict = V.NON_STRICT;
  else verdict = V.OK;

  const why = [...g.reasons];
  if (g.behavior === V.FAILED && !g.reasons.length) {
    const want = [...t.expected.entries()].map(([v, l]) => `${v}: [${summarize(l.map((m) => m.desc)).join(', ')}]`).join(' | ');
    why.push(`got [${g.received.join(', ')}], expected ${want}`);
  } else if (g.nonStrictWhy && g.behavior === V.NON_STRICT) why.push(g.nonStrictWhy);
  else why.push(`got [${g.received.join(', ')}]`);
  if (g.behaviorClose !== V.OK && g.behaviorClose !== V.INFORMATIONAL) why.push(`${g.behaviorClose}: ${g.closeWhy}`);
  why.push(g.closeText);
  for (const n of t.notes) why.push(n);
  const broke = [...new Set(c.protocolErrors)];
  return { verdict, behavior: g.behavior, behaviorClose: g.behaviorClose, reason: why.join('; '), broke };
}

// --- the two shapes most cases take ----------------------------------------

// Autobahn expects an echo and closes cleanly itself: send() writes the
// case's frames, `answers` are Herald's answers in order (`nonStrict`: the
// answers Autobahn grades NON-STRICT); a ping op after the case marks the
// point by which every answer has arrived.
function answered(def) {
  return {
    ...def,
    async run(t) {
      t.expect(V.OK, def.answers);
      if (def.nonStrict) t.expect(V.NON_STRICT, def.nonStrict);
      t.expectClose({ closedByMe: true, codes: [CLOSE.NORMAL], requireClean: true });
      await def.send(t);
      if (!(await t.sync())) t.note('the connection closed before Herald answered a ping op sent after the case');
      // pongs may come after Herald's own answers: a ping after the ping op
      // is answered once every earlier ping was (or, RFC 6455 §5.5.3,
      // superseded)
      else await t.c.wsBarrier(`barrier-${def.id}-pings`, BOUND_MS);
    },
  };
}

// Autobahn expects the server to fail the connection (close `codes`,
// default 1002, or just drop TCP): `answers` may arrive first (OK),
// `nonStrict` instead of them (NON-STRICT), e.g. none when the server
// failed before answering earlier valid messages.
function failing(def) {
  return {
    ...def,
    async run(t) {
      t.expect(V.OK, def.answers || []);
      if (def.nonStrict) t.expect(V.NON_STRICT, def.nonStrict);
      t.expectClose({
        closedByMe: false,
        codes: def.codes || [CLOSE.PROTOCOL_ERROR],
        requireClean: false,
        wrongEndpointFatal: Boolean(def.fatal),
      });
      if (def.nonStrict) {
        t.post = (g) => {
          if (g.behavior === V.NON_STRICT && !g.nonStrictWhy) {
            g.nonStrictWhy = `the server failed the connection before answering what came before the offending frame (expected first: ${def.answers.map((m) => m.desc).join(', ')})`;
          }
        };
      }
      await def.send(t);
      await t.awaitFail();
    },
  };
}

// Runs one case on a fresh connection to addr and grades it.
async function runCase(def, addr) {
  const client = new RawClient(addr);
  try {
    await client.open();
  } catch (e) {
    client.destroy();
    return { verdict: V.FAILED, reason: 'opening handshake failed: ' + e.message };
  }
  const t = new CaseContext(def, client);
  try {
    await def.run(t);
    await client.finish(BOUND_MS, DROP_MS);
  } catch (e) {
    client.destroy();
    return { verdict: V.FAILED, reason: 'the case broke: ' + (e.stack || e) };
  }
  return grade(t);
}

module.exports = {
  V,
  CLOSE,
  M,
  OP,
  BOUND_MS,
  FAIL_FAST_WAIT_MS,
  textMessage,
  answerToText,
  wrapInPingOp,
  BINARY_ANSWER,
  answered,
  failing,
  runCase,
  show,
};
