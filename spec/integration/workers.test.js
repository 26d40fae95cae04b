'use strict';
// One process, two event loops (general.workers 2, README "Workers"), real clients: chat, roomView, push and the server
// API across the loops; the requests of one engine.io session on fresh TCP connections (polling GET and POST, SSE and its
// POSTs, a WebSocket upgrade) that land on either loop and are carried to the session's own; the stock engine.io and
// socket.io clients; a graceful stop of both loops. Every test checks that its clients or requests really reached both
// loops (the status action names the worker that answered, and /metrics, which sums the workers, names the one that
// answered first).
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { startServer, cpuTicks } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { request, SEP } = require('../lib/eio_raw');
const { eio, sse } = require('../lib/cluster_clients');
const { connectSio } = require('../lib/sioclient');

const KEY = 'workers-key-0123456789abcdef';
// Whichever loop wakes first takes a fresh connection, and on a loaded machine the same loop can win many times in a
// row: tries go on for this long, spread out in time, a loop that has what it needs kept busy meanwhile
const BOTH_MS = 20000;
const jitter = () => new Promise((r) => setTimeout(r, Math.floor(Math.random() * 30)));

function start(extra = {}) {
  return startServer({ config: { general: { workers: 2, logLevel: 'warn' }, serverApi: { key: KEY }, ...extra } });
}

// The worker a session-layer client's connection lives on, by the status action's node id ("<id>-w<index>").
async function workerOf(c) {
  const r = await c.request({ event: 'action', params: { action: 'status' } });
  const m = /-w(\d+)$/.exec(r.id);
  assert.ok(m, `status id names a worker: ${r.id}`);
  return Number(m[1]);
}

async function primusClient(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  c.worker = await workerOf(c);
  return c;
}

// Opens /primus clients on fresh connections until `perWorker` sit on each of the two loops; the others are closed.
async function clientsOnBoth(srv, perWorker) {
  const kept = [[], []];
  const deadline = Date.now() + BOTH_MS;
  let tries = 0;
  for (; Date.now() < deadline && (kept[0].length < perWorker || kept[1].length < perWorker); tries++) {
    const full = kept.findIndex((k) => k.length >= perWorker);
    const busy = full >= 0 ? Array.from({ length: 10 }, () => kept[full][0].request({ event: 'detailsView' })) : [];
    const c = await primusClient(srv);
    await Promise.all(busy);
    if (kept[c.worker].length < perWorker) {
      kept[c.worker].push(c);
    } else {
      await c.close();
      await jitter();
    }
  }
  assert.ok(kept[0].length === perWorker && kept[1].length === perWorker,
    `clients on both loops after ${tries} connections: ${kept[0].length} + ${kept[1].length}`);
  return kept;
}

// GET on a fresh connection each time, until both workers answered: their /metrics, by worker index.
async function metricsOfBoth(srv) {
  const seen = {};
  const deadline = Date.now() + BOTH_MS;
  while (Date.now() < deadline && Object.keys(seen).length < 2) {
    const res = await request(`${srv.url}/metrics`, { headers: { connection: 'close' } });
    assert.strictEqual(res.status, 200);
    const m = /actiongate_info\{node="[^"]*-w(\d+)"/.exec(res.text);
    assert.ok(m, 'metrics name the worker');
    seen[m[1]] = res.text;
    await jitter();
  }
  assert.strictEqual(Object.keys(seen).length, 2, 'both workers answered /metrics');
  return seen;
}

function counter(text, name) {
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function forwardedHttp(srv) {
  const both = await metricsOfBoth(srv);
  return Object.values(both).reduce((n, t) => n + counter(t, 'actiongate_cluster_forwarded_total{kind="http"}'), 0);
}

function api(srv, call, body) {
  return request(`${srv.url}/server/${call}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, connection: 'close' },
    body: JSON.stringify(body),
  }).then((res) => ({ status: res.status, body: JSON.parse(res.text) }));
}

test('chat across two loops: every member gets every line, in one order for everyone', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  const [w0, w1] = await clientsOnBoth(srv, 2);
  const all = [...w0, ...w1];
  for (const c of all) assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');

  // roomView counts the members of both loops, from either loop
  for (const c of [w0[0], w1[0]]) {
    const v = await c.request({ event: 'roomView', room: 'defaultRoom' });
    assert.strictEqual(v.data.membersCount, 4);
    assert.deepStrictEqual(Object.keys(v.data.members).sort(), all.map((x) => x.id).sort());
  }

  // two senders, one per loop, saying at once
  const N = 25;
  const sends = [];
  for (let i = 0; i < N; i++) {
    sends.push(w0[0].request({ event: 'say', room: 'defaultRoom', message: `a${i}` }));
    sends.push(w1[0].request({ event: 'say', room: 'defaultRoom', message: `b${i}` }));
  }
  for (const r of await Promise.all(sends)) assert.strictEqual(r.status, 'OK');
  const orders = [];
  for (const c of all) {
    const got = [];
    for (let i = 0; i < 2 * N; i++) got.push((await c.next((f) => f.context === 'user')).message);
    // each sender's lines in its order, and the interleaving the same on every loop
    assert.deepStrictEqual(got.filter((m) => m[0] === 'a'), Array.from({ length: N }, (_, i) => `a${i}`));
    assert.deepStrictEqual(got.filter((m) => m[0] === 'b'), Array.from({ length: N }, (_, i) => `b${i}`));
    orders.push(got.join(','));
  }
  for (const o of orders) assert.strictEqual(o, orders[0]);

  // a member on the other loop that left gets nothing more, and the count follows
  assert.strictEqual((await w1[1].request({ event: 'roomLeave', room: 'defaultRoom' })).status, 'OK');
  assert.strictEqual((await w0[0].request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount, 3);
  // a room made on one loop is joined from the other
  assert.strictEqual((await w0[1].request({ event: 'action', params: { action: 'createChatRoom', name: 'made-on-0' } })).error, undefined);
  assert.strictEqual((await w1[0].request({ event: 'roomAdd', room: 'made-on-0' })).status, 'OK');
  for (const c of all) await c.close();
});

test('fresh connections go round the loops in turn, whichever loop accepts them', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  // the first ones may come before both loops read the listener
  for (let i = 0; i < 2; i++) await (await primusClient(srv)).close();
  const seen = [];
  for (let i = 0; i < 20; i++) {
    const c = await primusClient(srv);
    seen.push(c.worker);
    await c.close();
  }
  for (let i = 1; i < seen.length; i++) assert.notStrictEqual(seen[i], seen[i - 1], `one after the other: ${seen}`);
  assert.deepStrictEqual([...new Set(seen)].sort(), [0, 1]);
});

test('the loops wake each other (a /metrics scrape, connections handed round), then sleep: no busy loop', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  await metricsOfBoth(srv);
  for (let i = 0; i < 6; i++) await (await primusClient(srv)).close();
  await new Promise((r) => setTimeout(r, 200));
  const before = cpuTicks(srv.proc.pid);
  await new Promise((r) => setTimeout(r, 2000));
  const spent = cpuTicks(srv.proc.pid) - before;
  // a loop that spins burns ~200 ticks in 2 s; two idle loops a handful
  assert.ok(spent < 20, `the process used ${spent} clock ticks of CPU in 2 s, idle`);
});

test('server API and push by id reach connections on both loops, from either', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  const [w0, w1] = await clientsOnBoth(srv, 1);
  // every call is a fresh connection, so calls are answered by both loops; each pushes to both targets
  for (let i = 0; i < 12; i++) {
    for (const c of [w0[0], w1[0]]) {
      const tag = `p${i}-${c.worker}`;
      const r = await api(srv, 'push', { connectionId: c.id, data: { tag } });
      assert.strictEqual(r.status, 200, JSON.stringify(r.body));
      await c.next((f) => f.tag === tag);
    }
    const nodes = await api(srv, 'nodes', {});
    assert.strictEqual(nodes.status, 200);
    assert.strictEqual(nodes.body.nodes.length, 2, JSON.stringify(nodes.body));
  }
  // the calls ran on both loops: each loop answered calls the other one made (the scrape sums the workers' counters)
  const both = await metricsOfBoth(srv);
  for (const text of Object.values(both)) {
    assert.ok(counter(text, 'actiongate_cluster_calls_total{direction="in"}') >= 12, text);
    // the process's figures, whichever worker answers: both workers named, the connections of both counted
    assert.strictEqual((text.match(/^actiongate_info\{/gm) || []).length, 2);
    assert.strictEqual(counter(text, 'actiongate_connections{protocol="primus",transport="websocket"}'), 2);
    assert.strictEqual(counter(text, 'actiongate_ready'), 1);
  }
  assert.strictEqual((await api(srv, 'push', { connectionId: 'no-such-connection', data: {} })).status, 404);
  for (const c of [...w0, ...w1]) await c.close();
});

test('polling: a session\'s GETs and POSTs on fresh connections, landing on either loop, never "unknown"', async (t) => {
  const srv = await start({ servers: { websocket: { server: { pingInterval: 25000, pingTimeout: 20000 } } } });
  t.after(() => srv.stop());
  const base = `${srv.url}/primus/?EIO=4&transport=polling`;
  const hs = await request(base, { headers: { connection: 'close' } });
  assert.strictEqual(hs.status, 200);
  const sid = JSON.parse(hs.text.slice(1)).sid;
  const url = `${base}&sid=${encodeURIComponent(sid)}`;
  const welcome = await request(url, { headers: { connection: 'close' } });
  assert.match(welcome.text, /welcome/);
  for (let i = 0; i < 20; i++) {
    const post = await request(url, {
      method: 'POST',
      headers: { connection: 'close', 'content-type': 'text/plain;charset=UTF-8' },
      body: `4${JSON.stringify({ event: 'detailsView', messageId: i + 1 })}`,
    });
    assert.strictEqual(post.status, 200, post.text);
    assert.strictEqual(post.text, 'ok');
    const get = await request(url, { headers: { connection: 'close' } });
    assert.strictEqual(get.status, 200, get.text);
    const reply = JSON.parse(get.text.split(SEP).find((p) => p[0] === '4').slice(1));
    assert.strictEqual(reply.messageId, i + 1);
    assert.strictEqual(reply.status, 'OK');
  }
  assert.ok((await forwardedHttp(srv)) > 0, 'requests reached the loop that does not own the session and were carried');
});

test('SSE: the stream on one loop, its POSTs on fresh connections to either', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  for (let k = 0; k < 3; k++) {
    const c = sse(srv.url);
    await c.opened;
    await c.next((f) => f.welcome !== undefined);
    for (let i = 0; i < 10; i++) assert.strictEqual((await c.request({ event: 'detailsView' })).status, 'OK');
    assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    assert.strictEqual((await c.request({ event: 'say', room: 'defaultRoom', message: `sse${k}` })).status, 'OK');
    await c.next((f) => f.context === 'user' && f.message === `sse${k}`);
    c.close();
  }
  assert.ok((await forwardedHttp(srv)) > 0, 'POSTs were carried to the stream\'s loop');
});

test('stock engine.io-client: polling, then the WebSocket upgrade landing on either loop', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  const workers = new Set();
  for (let i = 0; i < 8; i++) {
    // a fresh agent per client: its requests open new connections
    const c = eio(srv.url, { transports: ['polling', 'websocket'], agent: new http.Agent({ keepAlive: false }) });
    await c.opened;
    const upgraded = new Promise((r) => c.socket.once('upgrade', r));
    await c.next((f) => f.welcome !== undefined);
    workers.add(await workerOf(c));
    assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    await upgraded;
    assert.strictEqual(c.socket.transport.name, 'websocket');
    assert.strictEqual((await c.request({ event: 'detailsView' })).status, 'OK');
    c.socket.close();
  }
  const both = await metricsOfBoth(srv);
  const ws = Object.values(both).reduce((n, t) => n + counter(t, 'actiongate_cluster_forwarded_total{kind="websocket"}'), 0);
  const polled = Object.values(both).reduce((n, t) => n + counter(t, 'actiongate_cluster_forwarded_total{kind="http"}'), 0);
  assert.ok(ws + polled > 0, 'requests of the sessions were carried between the loops');
  assert.ok(workers.size >= 1);
});

test('stock socket.io-client: polling then the upgrade, over both loops', async (t) => {
  const srv = await start();
  t.after(() => srv.stop());
  const workers = new Set();
  for (let i = 0; i < 6; i++) {
    const c = await connectSio(srv, 'upgrade', { agent: new http.Agent({ keepAlive: false }) });
    await c.take('welcome');
    const [status] = await c.ack('action', { action: 'status' });
    workers.add(status.id);
    assert.strictEqual(await c.upgraded, 'websocket');
    const [details] = await c.ack('detailsView');
    assert.strictEqual(details.data.id, c.socket.id);
    c.socket.close();
  }
  assert.ok(workers.size >= 1);
});

test('graceful stop with two loops: clients on both see the restart, the process exits 0', async (t) => {
  const srv = await start();
  const [w0, w1] = await clientsOnBoth(srv, 1);
  const exit = await srv.stop();
  assert.deepStrictEqual(exit, { code: 0, signal: null });
  for (const c of [w0[0], w1[0]]) {
    const closed = await c.closed;
    assert.ok(closed.code > 0, `closed by the server: ${JSON.stringify(closed)}`);
    // a graceful restart lets Primus clients come back: no "primus::server::close"
    assert.ok(!c.frames.some((f) => f === 'primus::server::close'), 'no final close');
  }
});

test('workers: bad values are refused before anything starts', () => {
  const { spawnSync } = require('node:child_process');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { BIN } = require('../lib/harness');
  for (const arg of ['abc', '-1', '65', '']) {
    const r = spawnSync(BIN, ['--workers', arg, '--port', '0', '--host', '127.0.0.1'], { encoding: 'utf8', timeout: 10000 });
    assert.strictEqual(r.status, 2, `--workers ${JSON.stringify(arg)}: ${r.stderr}`);
    assert.match(r.stderr, /--workers: a number from 0/);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-workers-'));
  const file = path.join(dir, 'c.yaml');
  for (const [v, why] of [['65', /general\.workers must be between 0 \(the cores this process may run on\) and 64/], ['-1', /general\.workers: expected a whole number/]]) {
    fs.writeFileSync(file, `general:\n  workers: ${v}\n`);
    const r = spawnSync(BIN, ['--config', file, '--check-config'], { encoding: 'utf8' });
    assert.strictEqual(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, why);
  }
  fs.writeFileSync(file, 'general:\n  workers: 2\n');
  assert.strictEqual(spawnSync(BIN, ['--config', file, '--check-config'], { encoding: 'utf8' }).status, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
