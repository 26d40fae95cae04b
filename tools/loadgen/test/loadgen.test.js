'use strict';
// The load generator end to end: against the real actiongate binary (/primus actions, idle connections) and against
// small in-test servers that speak the peer protocols (raw WebSocket echo and "B" broadcast; an nchan-like publish
// endpoint with long-poll and event-stream subscribers). Faulty servers prove that loss, duplicates and order are
// checked from the payload markers, not assumed.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const path = require('node:path');
const fs = require('node:fs');
const { execFile } = require('node:child_process');
const WebSocket = require('ws');
const { startServer, ROOT } = require('../../../spec/lib/harness');

const BIN = process.env.AG_LOADGEN || path.join(path.dirname(process.env.AG_BIN ? path.resolve(process.env.AG_BIN) : path.join(ROOT, 'build', 'actiongate')), 'loadgen');

function loadgen(args) {
  return new Promise((resolve, reject) => {
    execFile(BIN, ['--json', '--timeout', '5', ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      if (err && err.code === undefined) return reject(err);
      const line = stdout.trim().split('\n').pop();
      let report;
      try {
        report = JSON.parse(line);
      } catch (e) {
        return reject(new Error(`loadgen printed no report (exit ${err && err.code}):\n${stdout}\n${stderr}`));
      }
      resolve({ code: err ? err.code : 0, report, stderr });
    });
  });
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// A ws server: echo, or a "B..." broadcast to every client. `mangle(i, data)` may drop (return []) or repeat frames of
// the i-th broadcast.
async function wsPeer(mangle = (i, d) => [d]) {
  const server = http.createServer();
  const wss = new WebSocket.Server({ server });
  let n = 0;
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      if (text[0] !== 'B') return ws.send(data, { binary: isBinary });
      const out = mangle(n++, text);
      for (const c of wss.clients) for (const d of out) c.send(d);
    });
  });
  const port = await listen(server);
  return { port, close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(r); }) };
}

// nchan's shape: POST /pub stores a message; GET /lp long-polls with If-None-Match = index of the last one seen;
// GET /sse streams (chunked) every message as an event.
async function pubsubPeer() {
  const msgs = [];
  const waiting = new Set();
  const streams = new Set();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'POST' && url.pathname === '/pub') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        msgs.push(body);
        for (const s of streams) s.write(`id: ${msgs.length}\ndata: ${body}\n\n`);
        for (const w of [...waiting]) w();
        res.writeHead(202, { 'content-type': 'text/plain' });
        res.end('queued');
      });
    } else if (url.pathname === '/lp') {
      const seen = Number(req.headers['if-none-match'] || 0);
      const answer = () => {
        waiting.delete(answer);
        res.writeHead(200, { etag: String(seen + 1), 'content-type': 'text/plain' });
        res.end(msgs[seen]);
      };
      if (msgs.length > seen) answer();
      else waiting.add(answer);
    } else if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': hello\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  server.keepAliveTimeout = 60000;
  const port = await listen(server);
  return { port, close: () => new Promise((r) => { for (const s of streams) s.destroy(); server.closeAllConnections(); server.close(r); }) };
}

test('loadgen binary exists', () => {
  assert.ok(fs.existsSync(BIN), `${BIN} missing: build the loadgen target`);
});

test('action mode against actiongate /primus: every reply matched, none lost or repeated', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const { code, report } = await loadgen(['--mode', 'action', '--port', String(srv.port), '--conns', '4', '--window', '4',
    '--count', '2000', '--server-pid', String(srv.proc.pid)]);
  assert.strictEqual(code, 0);
  assert.strictEqual(report.conns_ok, 4);
  assert.strictEqual(report.sent, 2000);
  assert.strictEqual(report.received, 2000);
  assert.strictEqual(report.lost + report.dup + report.errors, 0);
  assert.ok(report.lat_p50_us > 0 && report.lat_p50_us <= report.lat_p99_us && report.lat_p99_us <= report.lat_max_us);
  assert.ok(report.server_cpu_s >= 0);
});

test('idle mode holds two steps of connections and reads the server RSS', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const { code, report } = await loadgen(['--mode', 'idle', '--port', String(srv.port), '--conns', '50', '--conns2', '150',
    '--procs', '2', '--settle', '100', '--server-pid', String(srv.proc.pid)]);
  assert.strictEqual(code, 0);
  assert.strictEqual(report.n1, 50);
  assert.strictEqual(report.n2, 150);
  assert.strictEqual(report.conns_failed, 0);
  assert.ok(report.rss1_kb > 0 && report.rss2_kb > 0);
});

test('raw WebSocket echo (the uWS job) with two worker processes', async (t) => {
  const peer = await wsPeer();
  t.after(() => peer.close());
  const { code, report } = await loadgen(['--mode', 'action', '--transport', 'raw-ws', '--peer', '--port', String(peer.port),
    '--conns', '6', '--procs', '2', '--window', '8', '--count', '600']);
  assert.strictEqual(code, 0);
  assert.strictEqual(report.procs, 2);
  assert.strictEqual(report.sent, 1200);
  assert.strictEqual(report.received, 1200);
});

test('fan-out over raw WebSocket: every member gets every publish once, in order', async (t) => {
  const peer = await wsPeer();
  t.after(() => peer.close());
  const { code, report } = await loadgen(['--mode', 'fanout', '--transport', 'raw-ws', '--peer', '--port', String(peer.port),
    '--conns', '20', '--procs', '2', '--count', '30', '--warmup-msgs', '5', '--rate', '500']);
  assert.strictEqual(code, 0);
  assert.strictEqual(report.sent, 30);
  assert.strictEqual(report.expected, 600);
  assert.strictEqual(report.received, 600);
  assert.strictEqual(report.deliveries, 630, 'the publisher\'s own copies are deliveries too');
  assert.strictEqual(report.last_missing, 0);
  assert.ok(report.last_p50_us > 0);
});

test('fan-out checks are real: a dropped, a repeated and a reordered broadcast are reported', async (t) => {
  let held = null;
  const peer = await wsPeer((i, d) => {
    if (i === 7) return []; // lost
    if (i === 9) return [d, d]; // duplicated
    if (i === 11) { held = d; return []; } // delivered after the next one
    if (i === 12) return [d, held];
    return [d];
  });
  t.after(() => peer.close());
  const { code, report } = await loadgen(['--mode', 'fanout', '--transport', 'raw-ws', '--peer', '--port', String(peer.port),
    '--conns', '3', '--count', '20', '--rate', '1000', '--timeout', '1']);
  assert.strictEqual(code, 3, 'a lossy run fails');
  assert.strictEqual(report.lost, 3);
  assert.strictEqual(report.dup, 3);
  assert.strictEqual(report.reorder, 3);
  assert.strictEqual(report.received, 57);
});

test('long-poll and event-stream subscribers (the nchan jobs) over HTTP publishes', async (t) => {
  const peer = await pubsubPeer();
  t.after(() => peer.close());
  for (const mode of ['longpoll', 'sse']) {
    const { code, report } = await loadgen(['--mode', mode, '--transport', mode === 'sse' ? 'nchan-sse' : 'nchan-lp',
      '--port', String(peer.port), '--path', `/${mode === 'sse' ? 'sse' : 'lp'}?id=x`, '--pub-path', '/pub?id=x',
      '--conns', '10', '--count', '40', '--rate', '400']);
    assert.strictEqual(code, 0, mode);
    assert.strictEqual(report.received, 400, mode);
    assert.strictEqual(report.lost + report.dup + report.reorder, 0, mode);
    if (mode === 'longpoll') {
      // every answered GET carried at least one message, and no more GETs were counted than messages arrived
      assert.ok(report.polls > 0 && report.polls <= report.received, `polls ${report.polls}`);
    } else {
      assert.strictEqual(report.polls, 0, 'an event stream answers no GET');
    }
  }
});

test('room fan-out against actiongate over /primus, engine.io polling and SSE: every say reaches every member once', async (t) => {
  const srv = await startServer({ config: { general: { startingChatRooms: ['defaultRoom', 'bench'] } } });
  t.after(() => srv.stop());
  for (const [mode, transport] of [['fanout', 'primus'], ['fanout', 'eio-ws'], ['longpoll', 'polling'], ['sse', 'sse']]) {
    const { code, report, stderr } = await loadgen(['--mode', mode, '--transport', transport, '--port', String(srv.port),
      '--room', 'bench', '--conns', '12', '--procs', '2', '--count', '25', '--warmup-msgs', '3', '--rate', '200',
      '--server-pid', String(srv.proc.pid)]);
    assert.strictEqual(code, 0, `${mode}/${transport}: ${stderr}`);
    assert.strictEqual(report.conns_ok, 13, `${mode}/${transport}: 12 members and the publisher`);
    assert.strictEqual(report.received, 12 * 25, `${mode}/${transport}`);
    assert.strictEqual(report.lost + report.dup + report.reorder, 0, `${mode}/${transport}`);
    assert.strictEqual(report.last_missing, 0, `${mode}/${transport}`);
    // answered GETs are counted for long-polling members only (12 of them, each answered at least once while measured)
    if (mode === 'longpoll') assert.ok(report.polls >= 12, `${transport}: polls ${report.polls}`);
    else assert.strictEqual(report.polls, 0, `${mode}/${transport}`);
  }
});

test('randomNumber actions over engine.io websocket: replies matched by messageId', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const { code, report } = await loadgen(['--mode', 'action', '--transport', 'eio-ws', '--action', 'randomNumber',
    '--port', String(srv.port), '--conns', '3', '--window', '4', '--count', '600']);
  assert.strictEqual(code, 0);
  assert.strictEqual(report.received, 600);
  assert.strictEqual(report.lost + report.dup, 0);
});

// A raw WebSocket server that remembers the source address of every connection.
async function recordingPeer() {
  const server = http.createServer();
  const wss = new WebSocket.Server({ server });
  const sources = [];
  wss.on('connection', (ws, req) => sources.push(req.socket.remoteAddress));
  const port = await listen(server);
  return { port, sources, close: () => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(r); }) };
}

test('several targets and source addresses: clients spread evenly over both, each target sees every source', async (t) => {
  const a = await recordingPeer();
  const b = await recordingPeer();
  t.after(() => Promise.all([a.close(), b.close()]));
  const { code, report } = await loadgen(['--mode', 'idle', '--transport', 'raw-ws', '--peer', '--conns', '24', '--procs', '2',
    '--targets', `127.0.0.1:${a.port},127.0.0.1:${b.port}`, '--sources', '3', '--settle', '50']);
  assert.strictEqual(code, 0);
  assert.strictEqual(report.conns_ok, 24);
  assert.strictEqual(report.targets, 2);
  assert.strictEqual(report.sources, 3);
  for (const peer of [a, b]) {
    assert.strictEqual(peer.sources.length, 12);
    const seen = [...new Set(peer.sources.map((s) => s.replace(/^::ffff:/, '')))].sort();
    assert.deepStrictEqual(seen, ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    for (const s of seen) assert.strictEqual(peer.sources.filter((x) => x.endsWith(s)).length, 4, s);
  }
});

test('a source address that is not this host\'s fails the connections, it is not silently replaced', async (t) => {
  const a = await recordingPeer();
  t.after(() => a.close());
  const { code, report } = await loadgen(['--mode', 'idle', '--transport', 'raw-ws', '--peer', '--conns', '3',
    '--port', String(a.port), '--sources', '1', '--source-base', '192.0.2.1', '--settle', '0']);
  assert.strictEqual(code, 3);
  assert.strictEqual(report.conns_ok, 0);
  assert.strictEqual(report.conns_failed, 3);
  assert.strictEqual(a.sources.length, 0);
});

test('without --procs, the descriptor limit decides how many workers share the connections', async (t) => {
  const a = await recordingPeer();
  t.after(() => a.close());
  const args = ['--json', '--timeout', '5', '--mode', 'idle', '--transport', 'raw-ws', '--peer', '--conns', '300',
    '--port', String(a.port), '--settle', '0'];
  const run = (cmd, argv) => new Promise((resolve) => execFile(cmd, argv, { timeout: 60000 }, (err, stdout, stderr) =>
    resolve({ code: err ? err.code : 0, report: JSON.parse(stdout.trim().split('\n').pop() || 'null'), stderr })));
  const limited = await run('prlimit', ['--nofile=200:200', BIN, ...args]);
  assert.strictEqual(limited.code, 0, limited.stderr);
  assert.ok(limited.report.procs >= 3, `300 sockets under a limit of 200: ${limited.report.procs} worker(s)`);
  assert.strictEqual(limited.report.conns_ok, 300);
  const free = await run(BIN, args);
  assert.strictEqual(free.code, 0, free.stderr);
  assert.strictEqual(free.report.procs, 1);
  assert.strictEqual(a.sources.length, 600);
});

test('--mix: one room over /primus, long-polling and SSE members in the given proportions, nothing lost', async (t) => {
  const srv = await startServer({ config: { general: { startingChatRooms: ['defaultRoom', 'bench'] } } });
  t.after(() => srv.stop());
  const { code, report, stderr } = await loadgen(['--mode', 'fanout', '--mix', 'primus:2,polling:1,sse:1', '--port',
    String(srv.port), '--room', 'bench', '--conns', '16', '--procs', '2', '--count', '20', '--warmup-msgs', '2', '--rate', '200',
    '--server-pid', String(srv.proc.pid)]);
  assert.strictEqual(code, 0, stderr);
  assert.deepStrictEqual(report.by_transport, { primus: 8, polling: 4, sse: 4 });
  assert.strictEqual(report.received, 16 * 20);
  assert.strictEqual(report.lost + report.dup + report.reorder, 0);
  assert.strictEqual(report.last_missing, 0);
  assert.strictEqual(report.server_cpu_each_s.length, 1);
});

test('--hold keeps idle connections until stdin closes, then reports the ones that did not survive', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const { spawn } = require('node:child_process');
  const child = spawn(BIN, ['--json', '--timeout', '5', '--mode', 'idle', '--mix', 'primus:1,sse:1', '--port', String(srv.port),
    '--conns', '10', '--settle', '0', '--hold', '--server-pid', `${srv.proc.pid},${srv.proc.pid}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.on('exit', (c) => r(c)));
  const deadline = Date.now() + 20000;
  while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const held = JSON.parse(out.split('\n')[0]);
  assert.strictEqual(held.held, true);
  assert.strictEqual(held.conns_ok, 10);
  assert.deepStrictEqual(held.by_transport, { primus: 5, sse: 5 });
  assert.ok(held.rss_kb > 0);
  // the connections are still open on the server while held
  const status = await fetch(`http://127.0.0.1:${srv.port}/api/status`).then((r) => r.json());
  assert.ok(status.limits.tcpConnections >= 10, JSON.stringify(status.limits));
  child.stdin.end();
  assert.strictEqual(await exited, 0);
  const final = JSON.parse(out.trim().split('\n').pop());
  assert.strictEqual(final.conns_ok, 10);
  assert.strictEqual(final.errors, 0);
});
