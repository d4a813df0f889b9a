// A WebSocket client over a raw TCP socket (node:net), for the conformance
// cases: it does the opening handshake itself, writes whatever bytes a case
// builds (whole, in chops, frame by frame), and records what the server
// does: each message and pong in order, its close frame, who closed first,
// and whether the TCP connection was ended by the server or by us.
'use strict';
const crypto = require('node:crypto');
const net = require('node:net');
const { OP, encodeFrame, closePayload, Decoder, utf8Valid } = require('./frame');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const tick = () => new Promise((r) => setImmediate(r));
const TRACE = Boolean(process.env.HERALD_WSCONF_TRACE); // every frame in and out, on stderr

class RawClient {
  constructor(addr) {
    const i = addr.lastIndexOf(':');
    this.host = addr.slice(0, i);
    this.port = Number(addr.slice(i + 1));
    this.events = []; // {type: 'text'|'binary'|'pong'|'ping', data, json}
    this.barrierReplies = new Set(); // ids / payloads of barrier answers seen
    this.protocolErrors = []; // what the server sent that RFC 6455 forbids
    this.oddities = []; // what it sent that no MUST forbids but no server should
    this.closeSent = null; // {code, payload} of our first close frame
    this.closeReceived = null; // {code, reason, payload}
    this.firstCloser = null; // 'me' | 'server': who sent the first close (or cut TCP)
    this.ended = false; // the TCP connection is gone
    this.endedBy = null; // 'server' | 'me'
    this.waiters = [];
    this.frag = null; // a server message in fragments
  }

  // Connects and does the opening handshake (RFC 6455 §4.1), checking the
  // 101 answer and Sec-WebSocket-Accept. Throws when it fails.
  async open({ path = '/ws', protocol = 'herald.v1', timeoutMs = 5000 } = {}) {
    this.sock = net.connect({ host: this.host, port: this.port });
    this.sock.setNoDelay(true);
    const key = crypto.randomBytes(16).toString('base64');
    const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('handshake timed out')), timeoutMs);
      let head = Buffer.alloc(0);
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        this.sock.off('data', onData);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const headers = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        if (!/^HTTP\/1\.1 101 /.test(lines[0])) return reject(new Error('handshake: ' + lines[0]));
        if (headers['sec-websocket-accept'] !== accept) return reject(new Error('bad Sec-WebSocket-Accept'));
        this.attach(head.subarray(end + 4));
        resolve();
      };
      this.sock.on('data', onData);
      this.sock.once('error', (e) => reject(e));
      this.sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
          (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') + '\r\n',
      );
    });
  }

  attach(rest) {
    this.decoder = new Decoder();
    this.sock.on('data', (chunk) => this.onData(chunk));
    this.sock.on('error', () => {}); // ECONNRESET, EPIPE: 'close' follows
    this.sock.on('close', () => this.onEnd(this.destroying ? 'me' : 'server'));
    if (rest.length) this.onData(rest);
  }

  onData(chunk) {
    let frames;
    try {
      frames = this.decoder.feed(chunk);
    } catch (e) {
      this.protocolErrors.push(e.message);
      this.destroy();
      return;
    }
    for (const f of frames) this.onFrame(f);
    this.notify();
  }

  onFrame(f) {
    if (TRACE) console.error(`  < fin=${f.fin} rsv=${f.rsv} op=${f.opcode} ${f.payload.length}B ${f.payload.subarray(0, 40).toString('latin1')}`);
    if (this.closeReceived) {
      // §5.5.1 forbids data frames after a close frame; a pong (answering
      // a ping read before the close went out) is allowed; a second close
      // frame breaks no MUST but is odd
      if (f.opcode < 8) this.protocolErrors.push(`a data frame (opcode ${f.opcode}) after its close frame (§5.5.1: no data frames after a Close frame)`);
      else if (f.opcode === OP.CLOSE) this.oddities.push('a second close frame');
      return;
    }
    if (f.masked) this.protocolErrors.push('a masked server frame (§5.1: a server must not mask)');
    if (f.rsv) this.protocolErrors.push(`RSV bits ${f.rsv} set (no extension negotiated)`);
    if (f.opcode >= 8 && (!f.fin || f.payload.length > 125)) {
      this.protocolErrors.push(`a control frame (opcode ${f.opcode}) fragmented or over 125 bytes (§5.5)`);
    }
    switch (f.opcode) {
      case OP.CLOSE: return this.onClose(f.payload);
      case OP.PING:
        this.events.push({ type: 'ping', data: f.payload });
        this.write(encodeFrame({ opcode: OP.PONG, payload: f.payload }));
        return;
      case OP.PONG:
        if (this.barrierReplies.has('ws:' + f.payload.toString('latin1'))) {
          this.barrierReplies.add('got:ws:' + f.payload.toString('latin1'));
          return;
        }
        this.events.push({ type: 'pong', data: f.payload });
        return;
      case OP.TEXT:
      case OP.BINARY:
        if (this.frag) this.protocolErrors.push('a new data frame inside a fragmented message');
        if (f.fin) return this.onMessage(f.opcode, f.payload);
        this.frag = { opcode: f.opcode, parts: [f.payload] };
        return;
      case OP.CONT:
        if (!this.frag) return this.protocolErrors.push('a continuation frame with nothing to continue');
        this.frag.parts.push(f.payload);
        if (f.fin) {
          const { opcode, parts } = this.frag;
          this.frag = null;
          this.onMessage(opcode, Buffer.concat(parts));
        }
        return;
      default:
        this.protocolErrors.push(`reserved opcode ${f.opcode}`);
    }
  }

  onMessage(opcode, data) {
    if (opcode === OP.BINARY) {
      this.events.push({ type: 'binary', data });
      return;
    }
    if (!utf8Valid(data)) this.protocolErrors.push('a text message that is not UTF-8 (§8.1)');
    let json = null;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      json = null;
    }
    if (json && typeof json.id === 'string' && this.barrierReplies.has('op:' + json.id)) {
      this.barrierReplies.add('got:op:' + json.id);
      return;
    }
    this.events.push({ type: 'text', data, json });
  }

  onClose(payload) {
    let code = null;
    let reason = '';
    if (payload.length === 1) this.protocolErrors.push('a close frame with a 1-byte payload (§5.5.1: empty, or a 2-byte code first)');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      const r = payload.subarray(2);
      if (!utf8Valid(r)) this.protocolErrors.push('a close reason that is not UTF-8 (§5.5.1)');
      reason = r.toString('utf8');
    }
    this.closeReceived = { code, reason, payload };
    if (!this.firstCloser) this.firstCloser = 'server';
    // the answer a client owes (RFC 6455 §5.5.1): the same code back, once
    // the frame being written (if a case is inside one) is complete
    if (this.closeSent) return;
    this.closeReply = code === null ? undefined : code;
    if (!this.midFrame) this.sendClose(this.closeReply);
  }

  // A case writing one frame in slices marks the stretch in between: a
  // close frame sent there would be read as the frame's payload.
  setMidFrame(on) {
    this.midFrame = on;
    if (!on && this.closeReceived && !this.closeSent) this.sendClose(this.closeReply);
  }

  onEnd(by) {
    if (this.ended) return;
    if (TRACE) console.error(`  TCP closed by ${by}`);
    this.ended = true;
    this.endedBy = by;
    if (!this.firstCloser) this.firstCloser = by;
    this.notify();
  }

  notify() {
    this.waiters = this.waiters.filter((w) => !w());
  }

  // Resolves true once pred() holds (checked after every event), false
  // after timeoutMs: the bound only ends a wait, it never decides a case.
  waitFor(pred, timeoutMs) {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
      const w = () => {
        if (!pred()) return false;
        clearTimeout(timer);
        resolve(true);
        return true;
      };
      this.waiters.push(w);
    });
  }

  // Writes bytes, whole or in chops of `chop` bytes, each chop its own
  // write() (TCP_NODELAY: its own segment) after the event loop turned.
  // sync: wait until the kernel took the bytes before returning.
  // Once the server's close frame is in and answered, nothing more goes
  // out: RFC 6455 §5.5.1 forbids data after our close frame.
  async write(buf, { chop = 0, sync = false } = {}) {
    if (this.ended || this.sock.destroyed) return;
    if (!chop) {
      await this.writeOne(buf, sync);
      return;
    }
    for (let i = 0; i < buf.length && !this.ended && !this.closeReceived; i += chop) {
      await this.writeOne(buf.subarray(i, i + chop), true);
      await tick();
    }
  }

  writeOne(buf, sync) {
    return new Promise((resolve) => {
      if (this.ended || this.sock.destroyed) return resolve();
      const more = this.sock.write(buf, () => resolve());
      if (!sync && more) resolve();
    });
  }

  // Sends one frame (see encodeFrame) with the write options. A close frame
  // sent this way is just bytes (Autobahn's sendFrame(opcode = 8)): it does
  // not start our closing handshake; sendClose does.
  sendFrame(frame, opts) {
    if (this.closeReceived && this.closeSent) return Promise.resolve();
    if (TRACE) {
      const p = Buffer.from(frame.payload || '');
      console.error(`  > fin=${frame.fin !== false} rsv=${frame.rsv || 0} op=${frame.opcode} ${p.length}B ${p.subarray(0, 40).toString('latin1')}`);
    }
    return this.write(encodeFrame(frame), opts);
  }

  // Starts (or answers) the closing handshake with this close payload.
  sendClosePayload(payload, opts) {
    if (!this.closeSent) {
      this.closeSent = { payload };
      if (!this.firstCloser) this.firstCloser = 'me';
    }
    return this.write(encodeFrame({ opcode: OP.CLOSE, payload }), opts);
  }

  sendClose(code, reason, opts) {
    return this.sendClosePayload(closePayload(code, reason), opts);
  }

  // Sends a herald.v1 ping op and waits for its pong op: every answer to
  // what was sent before it has then arrived (Herald answers in order).
  // Returns true when the pong came, false when the connection closed or
  // the bound passed.
  async opBarrier(id, timeoutMs) {
    this.barrierReplies.add('op:' + id);
    await this.sendFrame({ opcode: OP.TEXT, payload: JSON.stringify({ op: 'ping', id }) });
    return (
      (await this.waitFor(() => this.barrierReplies.has('got:op:' + id) || this.closeReceived || this.ended, timeoutMs)) &&
      this.barrierReplies.has('got:op:' + id)
    );
  }

  // Sends a WebSocket ping (legal between any two frames, inside a
  // fragmented message too) and waits for its pong or the close.
  async wsBarrier(payload, timeoutMs) {
    this.barrierReplies.add('ws:' + payload);
    await this.sendFrame({ opcode: OP.PING, payload });
    return (
      (await this.waitFor(() => this.barrierReplies.has('got:ws:' + payload) || this.closeReceived || this.ended, timeoutMs)) &&
      this.barrierReplies.has('got:ws:' + payload)
    );
  }

  // True once the server sent its close frame or ended the connection.
  serverClosed() {
    return Boolean(this.closeReceived) || this.ended;
  }

  destroy() {
    if (this.ended) return;
    this.destroying = true;
    if (!this.firstCloser) this.firstCloser = 'me';
    this.sock.destroy();
  }

  // Ends the case: starts the closing handshake unless it is under way,
  // waits up to timeoutMs for it, then up to dropMs for the server to end
  // the TCP connection (RFC 6455 §5.5.1, §7.1.1: the server closes it
  // first), or cuts it.
  async finish(timeoutMs, dropMs) {
    if (!this.ended && !this.closeSent && !this.closeReceived) await this.sendClose(1000);
    await this.waitFor(() => this.ended || (this.closeSent && this.closeReceived), timeoutMs);
    await this.waitFor(() => this.ended, dropMs);
    this.droppedByMe = !this.ended;
    this.destroy();
  }
}

module.exports = { RawClient };
