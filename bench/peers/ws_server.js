// Node `ws` peer for bench/compare.sh (issue 6): a single-process broadcast
// server, as a Node service would typically be written with the ws package.
//   node bench/peers/ws_server.js PORT      (PORT 0: any free port)
// Prints "listening PORT" on stdout once it accepts connections.
//   ws://127.0.0.1:PORT/sub/<topic>        WebSocket subscriber of <topic>
//   POST http://127.0.0.1:PORT/publish/<topic>  sends the body, as one text
//                                          message, to every subscriber of
//                                          <topic>; answers 204
// Loopback only; no compression (perMessageDeflate: false).
'use strict';
const http = require('node:http');
const path = require('node:path');
// The ws of the integration tests: one npm tree for the whole project.
const { WebSocketServer } = require(path.join(__dirname, '../../test/integration/node_modules/ws'));

const port = Number(process.argv[2] || 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node ws_server.js PORT');
  process.exit(2);
}

const MAX_BODY = 65536;
const topics = new Map(); // topic -> Set of sockets

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/publish/') || req.url.length === 9) {
    res.writeHead(404).end();
    return;
  }
  const topic = decodeURIComponent(req.url.slice(9));
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      res.writeHead(413).end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    // One buffer for all subscribers, sent as a text frame (no per-socket
    // string conversion).
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const subs = topics.get(topic);
    if (subs) for (const ws of subs) ws.send(body, { binary: false });
    res.writeHead(204).end();
  });
});

server.on('upgrade', (req, socket, head) => {
  if (!req.url.startsWith('/sub/') || req.url.length === 5) {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const topic = decodeURIComponent(req.url.slice(5));
  wss.handleUpgrade(req, socket, head, (ws) => {
    let subs = topics.get(topic);
    if (!subs) topics.set(topic, (subs = new Set()));
    subs.add(ws);
    ws.on('error', () => {});
    ws.on('close', () => {
      subs.delete(ws);
      if (subs.size === 0 && topics.get(topic) === subs) topics.delete(topic);
    });
  });
});

server.keepAliveTimeout = 75000;
server.headersTimeout = 80000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
