'use strict';
// A round-robin HTTP proxy in front of several actiongate nodes, as a load balancer without sticky sessions: every
// request, and every WebSocket connection, goes to the next node in turn over a fresh upstream connection (no
// keep-alive upstream, so two requests of one client never share a node by accident). Keep-alive towards the client
// is allowed, as browsers do it.
//   const p = await startRoundRobinProxy([port1, port2], { stripUpgrade: false });  ... p.port, p.hits, await p.close()
// stripUpgrade: a WebSocket upgrade reaches the node as a plain GET without `Upgrade`/`Connection` (a proxy that does
// not know WebSocket); the node's answer goes back as-is and the socket ends.
const http = require('node:http');
const net = require('node:net');

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const WS = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

function forwardHeaders(headers, stripWs) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) {
    const lk = k.toLowerCase();
    if (HOP.has(lk) || (stripWs && WS.has(lk))) continue;
    out[k] = v;
  }
  out.connection = 'close';
  return out;
}

function startRoundRobinProxy(upstreamPorts, opts = {}) {
  const ports = upstreamPorts.slice();
  let turn = 0;
  const hits = ports.map(() => 0);
  const next = () => {
    const i = turn++ % ports.length;
    hits[i]++;
    return ports[i];
  };
  const sockets = new Set();
  const track = (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };

  // A node that refuses connections (killed) is skipped, as a load balancer's health check would: the request is
  // buffered so it can be sent to the next node instead.
  const forward = (req, stripWs, onResponse, onError) => {
    const chunks = [];
    const ctl = { up: null, destroyed: false, destroy() { this.destroyed = true; if (this.up) this.up.destroy(); } };
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const attempt = (left) => {
        if (ctl.destroyed) return;
        const up = http.request({ host: '127.0.0.1', port: next(), method: req.method, path: req.url,
          headers: forwardHeaders(req.headers, stripWs), agent: false }, onResponse);
        ctl.up = up;
        up.on('socket', track);
        up.on('error', (e) => (e.code === 'ECONNREFUSED' && left > 1 ? attempt(left - 1) : onError(e)));
        up.end(body);
      };
      attempt(ports.length);
    });
    return ctl;
  };

  const server = http.createServer((req, res) => {
    const up = forward(req, false, (upRes) => {
      const headers = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (!HOP.has(k.toLowerCase())) headers[k] = v;
      res.writeHead(upRes.statusCode, upRes.statusMessage, headers);
      // SSE and held GETs stream: no buffering on the way back
      res.flushHeaders();
      upRes.pipe(res);
    }, () => res.destroy());
    // the client went away (a dropped GET, a closed EventSource): so does the upstream request
    res.on('close', () => up.destroy());
  });

  server.on('upgrade', (req, socket, head) => {
    track(socket);
    if (opts.stripUpgrade) {
      forward(req, true, (upRes) => {
        const chunks = [];
        upRes.on('data', (c) => chunks.push(c));
        upRes.on('end', () => {
          const body = Buffer.concat(chunks);
          const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
          for (const [k, v] of Object.entries(upRes.headers)) {
            if (!HOP.has(k.toLowerCase()) && k.toLowerCase() !== 'content-length') lines.push(`${k}: ${v}`);
          }
          lines.push(`content-length: ${body.length}`, 'connection: close', '', '');
          socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), body]));
        });
      }, () => socket.destroy());
      return;
    }
    // WebSocket: a raw byte splice to the next node (skipping refused ones), the request head replayed as received
    const attempt = (left) => {
      const upstream = net.connect(next(), '127.0.0.1');
      track(upstream);
      upstream.on('error', (e) => {
        if (e.code === 'ECONNREFUSED' && left > 1 && !socket.destroyed) attempt(left - 1);
        else socket.destroy();
      });
      upstream.on('connect', () => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        lines.push('', '');
        upstream.write(lines.join('\r\n'));
        if (head && head.length) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
        upstream.on('close', () => socket.destroy());
        socket.on('close', () => upstream.destroy());
      });
    };
    attempt(ports.length);
  });

  server.on('connection', track);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        url: `http://127.0.0.1:${server.address().port}`,
        wsUrl: `ws://127.0.0.1:${server.address().port}`,
        hits,
        close: () => new Promise((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}

module.exports = { startRoundRobinProxy };
