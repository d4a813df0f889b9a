// A real HTTP webhook receiver for the integration tests: a Node http
// server on a loopback address and a free port (port 0). It records every
// request (method, path, headers, raw body bytes, arrival time) and answers
// what the test scripts for it.
//
//   const r = await Receiver.start();            // 127.0.0.1:<free port>
//   const r2 = await Receiver.start({ host: '127.0.0.2' });
//   r.url('/hook')                                // http://127.0.0.1:<port>/hook
//   r.respond = (req, i) => ({ status: 500 });    // per request; i counts from 0
//   r.respond = () => ({ status: 200, delayMs: 500, headers: {...}, body: '...' });
//   r.respond = () => ({ hang: true });           // never answers
//   await r.waitForCount(3);                      // requests fully received
//   r.requests[0].body (Buffer), .headers (lower-case names), .at (ms)
//   r.maxInFlight                                 // most requests open at once
//   await r.close();                              // also drops hanging requests
'use strict';
const http = require('node:http');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Receiver {
  constructor(host) {
    this.host = host;
    this.requests = [];
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.waiters = [];
    // Default: 200 with a small body. Tests replace this.
    this.respond = () => ({ status: 200, body: 'ok' });
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  static async start({ host = '127.0.0.1' } = {}) {
    const r = new Receiver(host);
    await new Promise((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(0, host, () => {
        r.server.off('error', reject);
        resolve();
      });
    });
    r.port = r.server.address().port;
    return r;
  }

  url(path = '/hook') {
    return `http://${this.host}:${this.port}${path}`;
  }

  onRequest(req, res) {
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        this.inFlight--;
      }
    };
    res.on('finish', finish);
    res.on('close', finish);
    const chunks = [];
    const started = Date.now();
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const index = this.requests.length;
      const entry = {
        index,
        method: req.method,
        path: req.url,
        headers: { ...req.headers },
        body: Buffer.concat(chunks),
        started,
        at: Date.now(),
      };
      try {
        entry.json = JSON.parse(entry.body.toString('utf8'));
      } catch {
        entry.json = undefined;
      }
      this.requests.push(entry);
      this.waiters = this.waiters.filter((w) => !w());
      let spec;
      try {
        spec = (await this.respond(entry, index)) || {};
      } catch (e) {
        spec = { status: 500, body: String(e) };
      }
      entry.answered = spec;
      if (spec.hang) return; // never answered; close() drops it
      if (spec.delayMs) await sleep(spec.delayMs);
      if (res.destroyed) return;
      const body = spec.body === undefined ? '' : spec.body;
      res.writeHead(spec.status || 200, { 'Content-Length': Buffer.byteLength(body), ...(spec.headers || {}) });
      res.end(body);
    });
  }

  // Resolves once pred(requests) is true; rejects after timeoutMs.
  waitFor(pred, { timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!pred(this.requests)) return false;
        clearTimeout(timer);
        resolve(this.requests);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`receiver: condition not met in ${timeoutMs} ms; ${this.requests.length} requests: ` +
          JSON.stringify(this.requests.map((r) => r.json && { type: r.json.type, seq: r.json.seq })).slice(0, 600)));
      }, timeoutMs);
      if (check()) return;
      this.waiters.push(check);
    });
  }

  waitForCount(n, opts) {
    return this.waitFor((reqs) => reqs.length >= n, opts);
  }

  async close() {
    this.waiters = [];
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

module.exports = { Receiver };
