// A WebSocket client on a bare TCP socket, for what real clients never
// send: frames built byte by byte (unmasked, reserved bits, bad close
// payloads, fragments cut anywhere), read back frame by frame.
'use strict';
const net = require('node:net');
const crypto = require('node:crypto');

// A client frame: opcode, payload (Buffer), fin, masked, rsv (bits 4-6 of
// the first byte), len (the length field to claim: 126/127 forms are used
// for longer payloads, or when given).
function frame(opcode, payload = Buffer.alloc(0), { fin = true, masked = true, rsv = 0, longLen = false } = {}) {
  const p = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const m = masked ? 0x80 : 0;
  if (p.length < 126 && !longLen) head.push(m | p.length);
  else if (p.length <= 0xffff) head.push(m | 126, p.length >> 8, p.length & 0xff);
  else throw new Error('payload too long for this helper');
  if (!masked) return Buffer.concat([Buffer.from(head), p]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(p.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, body]);
}

// A close frame's payload: the code (or none) and a reason (string or Buffer).
function closePayload(code, reason = '') {
  if (code === undefined) return Buffer.alloc(0);
  const c = Buffer.alloc(2);
  c.writeUInt16BE(code);
  return Buffer.concat([c, Buffer.from(reason)]);
}

class RawWs {
  // Connects to addr ("host:port") and sends the handshake (extra header
  // lines in `headers`, path with query). Resolves once the answer's head
  // is in: { status, head } are then set.
  static async open(addr, { path = '/ws', headers = [] } = {}) {
    const r = new RawWs(addr);
    await r.handshake(path, headers);
    return r;
  }

  constructor(addr) {
    const [host, port] = addr.split(':');
    this.sock = net.connect({ host, port: Number(port) });
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.ended = new Promise((resolve) => this.sock.on('close', resolve));
    this.sock.on('error', () => {});
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  wake() {
    this.waiters = this.waiters.filter((w) => !w());
  }

  // Resolves when check() returns something other than undefined, or with
  // undefined once the socket is closed (or after timeoutMs).
  until(check, timeoutMs = 5000) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      const w = () => {
        const v = check();
        if (v === undefined && !this.closed) return false;
        clearTimeout(timer);
        resolve(v);
        return true;
      };
      if (!w()) this.waiters.push(w);
    });
  }

  async handshake(path, headers) {
    const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ...headers];
    this.sock.write(lines.join('\r\n') + '\r\n\r\n');
    const head = await this.until(() => {
      const i = this.buf.indexOf('\r\n\r\n');
      if (i < 0) return undefined;
      const h = this.buf.subarray(0, i).toString('latin1');
      this.buf = this.buf.subarray(i + 4);
      return h;
    });
    this.head = head || '';
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(this.head);
    this.status = m ? Number(m[1]) : 0;
  }

  send(...frames) {
    this.sock.write(Buffer.concat(frames));
  }

  // The next whole server frame: { opcode, fin, payload }, or undefined
  // when the socket closed first.
  next(timeoutMs) {
    return this.until(() => {
      if (this.buf.length < 2) return undefined;
      let len = this.buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return undefined;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return undefined;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + len) return undefined;
      const f = { opcode: this.buf[0] & 0x0f, fin: !!(this.buf[0] & 0x80), payload: this.buf.subarray(off, off + len) };
      this.buf = this.buf.subarray(off + len);
      return f;
    }, timeoutMs);
  }

  // Reads frames until a close frame: resolves with { code, reason, before }
  // (the frames before it), code null when the socket closed without one.
  async closeFrame(timeoutMs = 5000) {
    const before = [];
    for (;;) {
      const f = await this.next(timeoutMs);
      if (!f) return { code: null, reason: '', before };
      if (f.opcode !== 8) {
        before.push(f);
        continue;
      }
      return {
        code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined,
        reason: f.payload.subarray(2),
        before,
      };
    }
  }

  destroy() {
    this.sock.destroy();
  }
}

module.exports = { RawWs, frame, closePayload };
