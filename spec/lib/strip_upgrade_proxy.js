'use strict';
// A small HTTP proxy that strips the hop-by-hop `Upgrade` and `Connection` headers, like the corporate proxies of
// PROTOCOL.md §4: a WebSocket upgrade reaches the server as a plain GET, and its answer goes back to the client as-is
// (engine.io answers 400 code 3, and a client stays on polling). Everything else is forwarded unchanged.
const http = require('node:http');

const HOP = new Set(['upgrade', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

function strip(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP.has(k.toLowerCase())) out[k] = v;
  return out;
}

// Starts the proxy on a free loopback port in front of 127.0.0.1:targetPort. Returns {port, close}.
function startStripProxy(targetPort) {
  const agent = new http.Agent({ keepAlive: true });
  const forward = (req, onResponse, onError) => {
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: strip(req.headers), agent },
      onResponse);
    up.on('error', onError);
    req.pipe(up);
  };
  const server = http.createServer((req, res) => {
    forward(req, (upRes) => {
      res.writeHead(upRes.statusCode, strip(upRes.headers));
      upRes.pipe(res);
    }, () => res.destroy());
  });
  // An upgrade request goes on as a plain GET; the raw answer is written back and the socket ends.
  server.on('upgrade', (req, socket) => {
    socket.on('error', () => {});
    forward(req, (upRes) => {
      const chunks = [];
      upRes.on('data', (c) => chunks.push(c));
      upRes.on('end', () => {
        const body = Buffer.concat(chunks);
        const head = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
        for (const [k, v] of Object.entries(strip(upRes.headers))) if (k !== 'content-length') head.push(`${k}: ${v}`);
        head.push(`content-length: ${body.length}`, 'connection: close', '', '');
        socket.end(Buffer.concat([Buffer.from(head.join('\r\n')), body]));
      });
    }, () => socket.destroy());
  });
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        close: () => new Promise((r) => {
          for (const s of sockets) s.destroy();
          agent.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}

module.exports = { startStripProxy };
