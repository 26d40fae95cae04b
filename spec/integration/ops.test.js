'use strict';
// Operations (README "Operations"): /metrics in the Prometheus text format (checked by promtool, the Prometheus
// project's own parser and linter, and by the exposition grammar below), /healthz and /readyz (stopping, Redis down
// in cluster mode, the connection cap), JSON-lines logs, the access log, SIGHUP reopening log files, and the drain
// (readiness first, then reconnects spread over ops.drainWindow).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const { startServer, Redis, ROOT } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { Socket: EngineSocket } = require('engine.io-client');
const { connectSio } = require('../lib/sioclient');
const { sleep } = require('../lib/eio_raw');

const PROMTOOL = [path.join(ROOT, 'tools', '.bin', 'promtool'), '/usr/bin/promtool'].find((p) => fs.existsSync(p));

// One request on its own connection (no keep-alive: the connection-cap test counts connections).
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: { get: (k) => res.headers[k] } }));
    });
    req.on('error', reject);
  });
}

// The exposition grammar, strictly: every sample belongs to a family announced by HELP and TYPE before it; counters
// end in _total; a histogram's buckets are cumulative and end with +Inf equal to _count. Returns {family: samples}.
function parseExposition(text) {
  const fams = {};
  let cur = null;
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/;
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  for (const line of text.slice(0, -1).split('\n')) {
    let m;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line))) {
      assert.ok(!fams[m[1]], `one HELP per family: ${m[1]}`);
      cur = fams[m[1]] = { help: m[2], samples: [] };
    } else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line))) {
      assert.ok(cur && m[1] in fams && fams[m[1]] === cur && !cur.type, `TYPE after HELP: ${line}`);
      cur.type = m[2];
      cur.name = m[1];
    } else {
      m = sampleRe.exec(line);
      assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
      assert.ok(cur && cur.type, `a sample after its HELP and TYPE: ${line}`);
      const suffix = m[1].slice(cur.name.length);
      const allowed = cur.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
      assert.ok(m[1].startsWith(cur.name) && allowed.includes(suffix), `${m[1]} belongs to ${cur.name}`);
      if (cur.type === 'counter') assert.match(cur.name, /_total$/);
      const labels = {};
      for (const [, k, v] of (m[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[k] = v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      const value = Number(m[4] === '+Inf' ? Infinity : m[4]);
      assert.ok(!Number.isNaN(value), `a number: ${line}`);
      cur.samples.push({ name: m[1], labels, value });
    }
  }
  for (const [name, f] of Object.entries(fams)) {
    if (f.type !== 'histogram') continue;
    const series = {};
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series[key] = series[key] || { buckets: [] };
      if (s.name.endsWith('_bucket')) series[key].buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
      else series[key][s.name.slice(name.length + 1)] = s.value;
    }
    for (const [key, s] of Object.entries(series)) {
      for (let i = 1; i < s.buckets.length; i++) {
        assert.ok(s.buckets[i][0] > s.buckets[i - 1][0], `${name}${key}: le ascending`);
        assert.ok(s.buckets[i][1] >= s.buckets[i - 1][1], `${name}${key}: cumulative`);
      }
      assert.strictEqual(s.buckets.at(-1)[0], Infinity, `${name}${key}: ends with +Inf`);
      assert.strictEqual(s.buckets.at(-1)[1], s.count, `${name}${key}: +Inf is the count`);
    }
  }
  return fams;
}

function value(fams, name, labels = {}) {
  const f = fams[name] || fams[name.replace(/_(bucket|sum|count)$/, '')];
  assert.ok(f, `family ${name}`);
  const s = f.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : undefined;
}

function promtoolCheck(text) {
  assert.ok(PROMTOOL, 'promtool is installed (tools/setup --test)');
  // promtool exits non-zero on a parse error or a lint problem, and prints what it found
  return execFileSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

async function until(fn, pred, n = 100) {
  let r;
  for (let i = 0; i < n; i++) {
    r = await fn();
    if (pred(r)) return r;
    await sleep(100);
  }
  return r;
}

test('/metrics: the Prometheus text format, parsed by promtool, counting connections per protocol and actions', async () => {
  const srv = await startServer();
  const clients = [];
  try {
    const p = await connect(`${srv.wsUrl}/primus`);
    clients.push(() => p.close());
    await p.welcome();
    const r = await p.request({ event: 'action', params: { action: 'status' } });
    assert.ok(r.id, 'status answered');
    await p.request({ event: 'action', params: { action: 'no such action "\n' } });
    const eio = new EngineSocket(srv.url, { path: '/primus', transports: ['polling'] });
    await new Promise((resolve, reject) => {
      eio.once('open', resolve);
      eio.once('error', reject);
    });
    clients.push(() => eio.close());
    const sio = await connectSio(srv, 'websocket');
    clients.push(() => sio.socket.disconnect());
    await get(`${srv.url}/api/randomNumber`);

    const res = await get(`${srv.url}/metrics`);
    assert.strictEqual(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    promtoolCheck(res.body);
    const fams = parseExposition(res.body);
    assert.strictEqual(value(fams, 'actiongate_connections', { protocol: 'primus', transport: 'websocket' }), 1);
    assert.strictEqual(value(fams, 'actiongate_connections', { protocol: 'engine.io', transport: 'polling' }), 1);
    assert.strictEqual(value(fams, 'actiongate_connections', { protocol: 'socket.io', transport: 'websocket' }), 1);
    assert.strictEqual(value(fams, 'actiongate_actions_total', { action: 'status', outcome: 'ok' }), 1);
    assert.strictEqual(value(fams, 'actiongate_actions_total', { action: 'randomNumber', outcome: 'ok' }), 1);
    // a name a client made up is no label of its own
    assert.strictEqual(value(fams, 'actiongate_actions_total', { action: '(other)', outcome: 'error' }), 1);
    assert.ok(!res.body.includes('no such action'), 'the made-up name is not in the scrape');
    assert.strictEqual(value(fams, 'actiongate_action_duration_seconds_count', { action: 'status' }), 1);
    assert.strictEqual(value(fams, 'actiongate_action_duration_seconds_bucket', { action: 'status', le: '+Inf' }), 1);
    assert.ok(value(fams, 'actiongate_messages_received_total') >= 2);
    assert.ok(value(fams, 'actiongate_received_bytes_total') > 0);
    assert.ok(value(fams, 'actiongate_connections_opened_total') >= 3);
    assert.ok(value(fams, 'process_resident_memory_bytes') > 0);
    assert.ok(value(fams, 'process_open_fds') > 0);
    assert.strictEqual(value(fams, 'actiongate_ready'), 1);
    assert.strictEqual(value(fams, 'actiongate_store_up'), 1);

    // closing counts a disconnect by its reason
    await p.close();
    await p.closed;
    const after = await until(
      async () => parseExposition((await get(`${srv.url}/metrics`)).body),
      (f) => value(f, 'actiongate_disconnects_total', { reason: 'peer_closed' }) >= 1
    );
    assert.ok(value(after, 'actiongate_disconnects_total', { reason: 'peer_closed' }) >= 1);
  } finally {
    for (const c of clients) c();
    await srv.stop();
  }
});

test('/metrics behind ops.metricsKey: 401 without the bearer key, 200 with it; a POST is refused', async () => {
  const srv = await startServer({ config: { ops: { metricsKey: 's3cret' } } });
  try {
    const none = await get(`${srv.url}/metrics`);
    assert.strictEqual(none.status, 401);
    assert.strictEqual(none.headers.get('www-authenticate'), 'Bearer');
    assert.ok(!none.body.includes('actiongate_'), 'nothing leaks');
    assert.strictEqual((await get(`${srv.url}/metrics`, { authorization: 'Bearer s3creT' })).status, 401);
    assert.strictEqual((await get(`${srv.url}/metrics`, { authorization: 'Bearer s3cret!' })).status, 401);
    const ok = await get(`${srv.url}/metrics`, { authorization: 'Bearer s3cret' });
    assert.strictEqual(ok.status, 200);
    promtoolCheck(ok.body);
    const post = await fetch(`${srv.url}/metrics`, { method: 'POST', headers: { authorization: 'Bearer s3cret' }, body: 'x' });
    assert.strictEqual(post.status, 405);
  } finally {
    await srv.stop();
  }
});

test('/healthz and /readyz: ready, then not ready at the connection cap', async () => {
  const srv = await startServer({ config: { servers: { web: { maxConnections: 2 } } } });
  try {
    assert.deepStrictEqual(await get(`${srv.url}/healthz`).then((r) => [r.status, r.body]), [200, 'ok\n']);
    assert.deepStrictEqual(await get(`${srv.url}/readyz`).then((r) => [r.status, r.body]), [200, 'ready\n']);
    // one connection held: the probe's own is the second, which reaches the cap
    const hold = net.connect(srv.port, '127.0.0.1');
    await new Promise((r) => hold.once('connect', r));
    const r = await until(
      () => get(`${srv.url}/readyz`),
      (x) => x.status === 503
    );
    assert.deepStrictEqual([r.status, r.body], [503, 'not ready: at the connection cap\n']);
    hold.destroy();
    const back = await until(
      () => get(`${srv.url}/readyz`),
      (x) => x.status === 200
    );
    assert.strictEqual(back.status, 200);
  } finally {
    await srv.stop();
  }
});

test('/readyz in cluster mode: 503 while Redis is down, 200 again when it is back', async () => {
  const redis = await new Redis().start();
  const srv = await startServer({ env: { REDIS_URL: redis.url }, config: { redis: { connectTimeout: 500 } } });
  try {
    const up = await until(
      () => get(`${srv.url}/readyz`),
      (x) => x.status === 200
    );
    assert.strictEqual(up.status, 200);
    // the store's command round trips: a histogram promtool accepts, counting what was answered
    const seen = await until(
      async () => (await get(`${srv.url}/metrics`)).body,
      (t) => {
        const f = parseExposition(t).actiongate_store_command_duration_seconds;
        return f !== undefined && f.samples.some((x) => x.name.endsWith('_count') && x.value > 0);
      }
    );
    promtoolCheck(seen);
    const sf = parseExposition(seen);
    assert.ok(value(sf, 'actiongate_store_commands_total') >= value(sf, 'actiongate_store_command_duration_seconds_count'));
    assert.ok(value(sf, 'actiongate_store_command_duration_seconds_count') > 0);
    assert.strictEqual(value(sf, 'actiongate_store_command_duration_seconds_bucket', { le: '+Inf' }),
      value(sf, 'actiongate_store_command_duration_seconds_count'));
    const port = redis.port;
    await redis.stop();
    const down = await until(
      () => get(`${srv.url}/readyz`),
      (x) => x.status === 503
    );
    assert.deepStrictEqual([down.status, down.body], [503, 'not ready: redis unavailable\n']);
    const m = parseExposition((await get(`${srv.url}/metrics`)).body);
    assert.strictEqual(value(m, 'actiongate_store_up'), 0);
    await redis.start(port);
    const again = await until(
      () => get(`${srv.url}/readyz`),
      (x) => x.status === 200
    );
    assert.strictEqual(again.status, 200);
  } finally {
    await srv.stop();
    await redis.stop();
  }
});

test('drain: /readyz says 503 first, then the connections are told to reconnect over ops.drainWindow', async () => {
  const window = 1500;
  const srv = await startServer({ config: { ops: { drainDelay: 1000, drainWindow: window } } });
  const clients = [];
  for (let i = 0; i < 20; i++) {
    const c = await connect(`${srv.wsUrl}/primus`);
    await c.welcome();
    clients.push(c);
  }
  const closedAt = clients.map(() => null);
  clients.forEach((c, i) => c.closed.then((x) => (closedAt[i] = { at: Date.now(), code: x.code })));
  srv.proc.kill('SIGTERM');
  const r = await until(
    () => get(`${srv.url}/readyz`).catch((e) => ({ status: 0 })),
    (x) => x.status === 503,
    20
  );
  assert.deepStrictEqual([r.status, r.body], [503, 'not ready: stopping\n']);
  assert.ok(closedAt.every((x) => x === null), 'nobody told to go while the node says not ready');
  const res = await srv.stop('SIGTERM', 15000);
  assert.strictEqual(res.code, 0);
  await until(
    async () => closedAt,
    (a) => a.every((x) => x !== null),
    50
  );
  assert.ok(
    closedAt.every((x) => x && x.code === 1005),
    `every connection got Primus's close without a status: ${JSON.stringify(closedAt)}`
  );
  // told to come back: no "primus::server::close", which would stop the client from reconnecting
  assert.ok(clients.every((c) => !c.frames.includes('primus::server::close')));
  const times = closedAt.map((x) => x.at).sort((a, b) => a - b);
  // spread, not a herd: the server cannot tell the last one sooner than half the window after the first
  assert.ok(times.at(-1) - times[0] >= window / 2, `closes spread over the window: ${times.at(-1) - times[0]} ms`);
});

test('logs: JSON lines with node, subsystem and connection; an access log; SIGHUP opens both files again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-ops-'));
  const logFile = path.join(dir, 'actiongate.log');
  const accessFile = path.join(dir, 'access.log');
  const srv = await startServer({
    config: { general: { id: 'node-a', logLevel: 'debug', logFormat: 'json', logFile, accessLog: accessFile } },
  });
  try {
    const c = await connect(`${srv.wsUrl}/primus`);
    await c.welcome();
    // hostile text reaches the log (a parse error quotes the input): each line stays one valid JSON object
    c.sendRaw('{"bad\u0001\u2028"\n\\');
    await get(`${srv.url}/api/status?x=%22%0a`);
    await c.close();
    const lines = await until(
      async () => fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean),
      (l) => l.some((x) => x.includes('"conn":"') && JSON.parse(x).conn !== null)
    );
    assert.ok(lines.length > 0);
    for (const l of lines) {
      const o = JSON.parse(l);
      assert.deepStrictEqual(Object.keys(o), ['ts', 'level', 'subsystem', 'node', 'conn', 'msg']);
      assert.strictEqual(o.node, 'node-a');
      assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level));
    }
    assert.ok(lines.some((l) => JSON.parse(l).conn !== null), 'a line names its connection');
    const access = await until(
      async () => (fs.existsSync(accessFile) ? fs.readFileSync(accessFile, 'utf8').split('\n').filter(Boolean) : []),
      (l) => l.some((x) => x.includes('/api/status'))
    );
    const entry = access.map((l) => JSON.parse(l)).find((o) => o.path.startsWith('/api/status'));
    assert.strictEqual(entry.method, 'GET');
    assert.strictEqual(entry.status, 200);
    assert.strictEqual(entry.type, 'access');
    assert.strictEqual(entry.path, '/api/status?x=%22%0a');

    // rotation: the files are moved away; SIGHUP makes the node write to new ones at the old paths
    fs.renameSync(logFile, logFile + '.1');
    fs.renameSync(accessFile, accessFile + '.1');
    srv.proc.kill('SIGHUP');
    await until(
      async () => fs.existsSync(logFile) && fs.existsSync(accessFile),
      (x) => x
    );
    await get(`${srv.url}/healthz`);
    const fresh = await until(
      async () => (fs.existsSync(accessFile) ? fs.readFileSync(accessFile, 'utf8') : ''),
      (t) => t.includes('/healthz')
    );
    assert.ok(fresh.includes('/healthz'), 'the access log is written at its path again');
    assert.ok(!fs.readFileSync(accessFile + '.1', 'utf8').includes('/healthz'), 'not to the rotated file');
    assert.match(fs.readFileSync(logFile, 'utf8'), /log files opened again/);
    assert.strictEqual(srv.exited, null, 'SIGHUP does not stop the node');
  } finally {
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('config: a bad log format or probe path is refused at start with a clear line', async () => {
  for (const [config, msg] of [
    [{ general: { logFormat: 'xml' } }, /general\.logFormat must be "text" or "json"/],
    [{ ops: { metricsPath: 'metrics' } }, /ops paths must be/],
    [{ ops: { drainWindow: 86400001 } }, /ops\.drainDelay and ops\.drainWindow/],
  ]) {
    await assert.rejects(startServer({ config }), msg);
  }
});
