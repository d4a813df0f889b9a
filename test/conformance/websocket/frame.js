// RFC 6455 frames, written by hand so that a case can send what no
// WebSocket library would: unmasked client frames, RSV bits, reserved
// opcodes, control frames with FIN clear or 126-byte payloads.
'use strict';
const crypto = require('node:crypto');

const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

// XORs data with the 4-byte key in place (RFC 6455 §5.3).
function applyMask(data, key) {
  const n = data.length;
  let i = 0;
  if (n >= 8) {
    const k = key.readUInt32LE(0);
    for (; i + 4 <= n; i += 4) data.writeUInt32LE((data.readUInt32LE(i) ^ k) >>> 0, i);
  }
  for (; i < n; i++) data[i] ^= key[i & 3];
  return data;
}

// One frame's bytes. fin (default true), rsv (0-7: RSV1 is 4, RSV3 is 1),
// opcode (any 0-15), payload (Buffer or string), mask (default true: a
// client must mask; false sends the frame unmasked).
function encodeFrame({ opcode, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true }) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = body.length;
  const head = [((fin ? 1 : 0) << 7) | ((rsv & 7) << 4) | (opcode & 15)];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len <= 0xffff) head.push(m | 126, len >> 8, len & 255);
  else {
    head.push(m | 127);
    const l = Buffer.alloc(8);
    l.writeBigUInt64BE(BigInt(len));
    head.push(...l);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), body]);
  const key = crypto.randomBytes(4);
  return Buffer.concat([Buffer.from(head), key, applyMask(Buffer.from(body), key)]);
}

// The close frame's payload: a 2-byte code and a reason, or raw bytes.
function closePayload(code, reason = Buffer.alloc(0)) {
  if (code === undefined || code === null) return Buffer.from(reason);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.isBuffer(reason) ? reason : Buffer.from(reason, 'utf8')]);
}

// Parses the server's byte stream into frames. feed() returns the frames
// completed by the chunk; a frame whose length passes maxPayload throws,
// so a broken server cannot make the suite buffer without bound.
class Decoder {
  constructor(maxPayload = 1 << 24) {
    this.buf = Buffer.alloc(0);
    this.maxPayload = maxPayload;
  }

  feed(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames = [];
    for (;;) {
      const f = this.next();
      if (!f) return frames;
      frames.push(f);
    }
  }

  next() {
    const b = this.buf;
    if (b.length < 2) return null;
    const masked = (b[1] & 0x80) !== 0;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(this.maxPayload)) throw new Error(`server frame of ${big} bytes`);
      len = Number(big);
      off = 10;
    }
    if (len > this.maxPayload) throw new Error(`server frame of ${len} bytes`);
    const keyLen = masked ? 4 : 0;
    if (b.length < off + keyLen + len) return null;
    let payload = Buffer.from(b.subarray(off + keyLen, off + keyLen + len));
    if (masked) payload = applyMask(payload, b.subarray(off, off + 4));
    this.buf = b.subarray(off + keyLen + len);
    return {
      fin: (b[0] & 0x80) !== 0,
      rsv: (b[0] >> 4) & 7,
      opcode: b[0] & 15,
      masked,
      payload,
    };
  }
}

// RFC 3629 UTF-8 validity (what RFC 6455 §8.1 asks of text and close reasons).
function utf8Valid(buf) {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

module.exports = { OP, applyMask, encodeFrame, closePayload, Decoder, utf8Valid };
