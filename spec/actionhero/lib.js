'use strict';
// What the actionhero suites share: the fixture actionhero app (spec/actionhero/app) on a real redis-server, a small
// misbehaving HTTP server standing in for a broken upstream, and the session-layer clients of every transport.
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { freePort } = require('../lib/harness');

const APP = path.join(__dirname, 'app', 'server.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The fixture app: PORT, REDIS_PORT, AUTOMATIC_ROUTES=post. Resolves once it printed "ready".
async function startApp(redis, extraEnv = {}) {
  const port = await freePort();
  const env = { ...process.env, PORT: String(port), REDIS_PORT: String(redis.port), REDIS_HOST: '127.0.0.1', ...extraEnv };
  delete env.REDIS_URL;
  const proc = spawn(process.execPath, [APP], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the fixture app did not start:\n${out}`)), 30000);
    const onData = (d) => {
      out += d;
      if (out.includes(`ready ${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (d) => (out += d));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the fixture app exited (${code}):\n${out}`));
    });
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    },
  };
}

// A stand-in for a broken upstream: POST /api/<what> answers per <what>. It counts requests and the most it held
// at once, and keeps the headers it saw.
async function startBadUpstream(port) {
  const stats = { requests: 0, connections: 0, inFlight: 0, maxInFlight: 0, seen: [] };
  const sockets = new Set();
  const held = new Set();
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      stats.requests++;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      stats.seen.push({ url: req.url, headers: req.headers, body });
      res.on('close', () => stats.inFlight--);
      const what = req.url.replace(/^\/api\//, '');
      const json = (status, obj) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      switch (what) {
        case 'ok':
          return json(200, { ok: true, got: body ? JSON.parse(body) : null });
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html' });
          return res.end('<html><body>not json</body></html>');
        case 'e503':
          res.writeHead(503, { 'content-type': 'text/plain' });
          return res.end('Service Unavailable');
        case 'e500json':
          return json(500, { error: 'the app failed' });
        case 'array':
          return json(200, [1, 2, 3]);
        case 'big':
          return json(200, { big: 'x'.repeat(256 * 1024) });
        case 'hang':
          held.add(res);
          return undefined; // never answers
        default:
          return json(404, { error: 'unknown action or invalid apiVersion' });
      }
    });
  });
  srv.on('connection', (s) => {
    stats.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  port = port || (await freePort());
  await new Promise((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return {
    port,
    url: `http://127.0.0.1:${port}/api`,
    stats,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}

// POST /api/<action> with a JSON body: {status, headers, body}.
function postJson(base, action, params = {}, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(params);
    const req = http.request(`${base}/api/${action}`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers },
    }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => {
        let body = b;
        try {
          body = JSON.parse(b);
        } catch (e) {
          // left as text
        }
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

// Counts lines of text that match re.
const countLines = (text, re) => text.split('\n').filter((l) => re.test(l)).length;

// The number of lines of the server's log that match re, once it reached n or 3 s passed. A line the node wrote before
// an answer can reach this process after that answer: its log is a pipe, the answer a socket.
async function logLines(srv, re, n) {
  for (let waited = 0; countLines(srv.stderr, re) < n && waited < 3000; waited += 20) await sleep(20);
  return countLines(srv.stderr, re);
}

module.exports = { startApp, startBadUpstream, postJson, countLines, logLines, sleep };
