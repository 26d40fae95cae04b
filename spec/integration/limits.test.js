'use strict';
// Limits a stranger cannot talk the node out of (README "Limits"): connections per node and per address (503 / 429 at
// accept), running out of descriptors (no busy loop, serving again afterwards), handshakes per address, the message
// rate on every transport (a clear error, then a coded disconnect), rate-limited log lines, and the node-wide budget
// of SSE replay memory.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const { execFileSync } = require('node:child_process');
const WebSocket = require('ws');
const { Socket: EngineSocket } = require('engine.io-client');
const { startServer, cpuTicks } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { Eio, SEP, request, decodePayload, sseOpen, sleep } = require('../lib/eio_raw');
const { connectSio } = require('../lib/sioclient');

const RATE_ERROR = 'you are sending messages too fast';

// A WebSocket attempt at url: {ws} once open, {status} for an HTTP answer instead of the upgrade, {error} when the
// connection failed, {timeout} when nothing happened within ms.
function tryWs(url, ms = 3000, headers = {}, opts = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, ...opts });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ timeout: true });
    }, ms);
    const done = (r) => {
      clearTimeout(timer);
      resolve(r);
    };
    ws.once('open', () => done({ ws }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => done({ status: res.statusCode, body, headers: res.headers }));
      res.on('error', () => done({ status: res.statusCode, body, headers: res.headers }));
    });
    ws.once('error', (e) => done({ error: e.message }));
  });
}

function closeWs(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.close();
  });
}

// Retries an attempt until pred holds for its result, at most n times, 100 ms apart; returns the last result.
async function until(attempt, pred, n = 50) {
  let r;
  for (let i = 0; i < n; i++) {
    r = await attempt();
    if (pred(r)) return r;
    if (r && r.ws) await closeWs(r.ws);
    await sleep(100);
  }
  return r;
}

async function status(srv) {
  const res = await request(`${srv.url}/api/status`);
  assert.strictEqual(res.status, 200, res.text);
  return JSON.parse(res.text).limits;
}

test('maxConnections: connections over the cap are turned away (503), and the node serves again once some close', async (t) => {
  const srv = await startServer({ config: { servers: { web: { maxConnections: 4 } } } });
  t.after(() => srv.stop());
  const open = [];
  for (let i = 0; i < 4; i++) {
    const r = await until(() => tryWs(`${srv.wsUrl}/primus`), (x) => x.ws);
    assert.ok(r.ws, `connection ${i}: ${JSON.stringify(r)}`);
    open.push(r.ws);
  }
  const ws = await tryWs(`${srv.wsUrl}/primus`);
  assert.strictEqual(ws.status, 503, JSON.stringify(ws));
  const http = await request(`${srv.url}/api/status`);
  assert.strictEqual(http.status, 503);
  assert.strictEqual(http.text, 'too many connections');
  assert.strictEqual(http.headers['retry-after'], '1');
  for (const w of open.splice(0, 2)) await closeWs(w);
  const again = await until(() => tryWs(`${srv.wsUrl}/primus`), (x) => x.ws);
  assert.ok(again.ws, JSON.stringify(again));
  open.push(again.ws);
  const limits = await status(srv);
  assert.strictEqual(limits.maxConnections, 4);
  assert.ok(limits.connectionsRefused >= 2, JSON.stringify(limits));
  for (const w of open) await closeWs(w);
});

test('maxConnections 0 (the default): the cap is the descriptor limit minus a reserve', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const soft = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${srv.proc.pid}/limits`, 'utf8'))[1]);
  const limits = await status(srv);
  assert.strictEqual(limits.maxConnections, soft > 128 ? soft - 64 : Math.floor(soft / 2));
  assert.ok(limits.tcpConnections >= 1, JSON.stringify(limits));
});

test('maxConnectionsPerIp: one address over its cap gets 429', async (t) => {
  const srv = await startServer({ config: { general: { trustedProxies: [] }, servers: { web: { maxConnectionsPerIp: 2 } } } });
  t.after(() => srv.stop());
  const a = await until(() => tryWs(`${srv.wsUrl}/primus`), (x) => x.ws);
  const b = await until(() => tryWs(`${srv.wsUrl}/primus`), (x) => x.ws);
  assert.ok(a.ws && b.ws);
  const third = await tryWs(`${srv.wsUrl}/primus`);
  assert.strictEqual(third.status, 429, JSON.stringify(third));
  assert.strictEqual(third.body, 'too many connections from this address');
  const http = await request(`${srv.url}/api/status`);
  assert.strictEqual(http.status, 429);
  await closeWs(a.ws);
  const c = await until(() => tryWs(`${srv.wsUrl}/primus`), (x) => x.ws);
  assert.ok(c.ws, JSON.stringify(c));
  await closeWs(b.ws);
  await closeWs(c.ws);
});

test('maxConnectionsPerIp: trusted proxies (loopback by default) are exempt', async (t) => {
  const trusted = await startServer({ config: { servers: { web: { maxConnectionsPerIp: 2 } } } });
  t.after(() => trusted.stop());
  const many = [];
  for (let i = 0; i < 5; i++) {
    const r = await tryWs(`${trusted.wsUrl}/primus`);
    assert.ok(r.ws, `loopback connection ${i}: ${JSON.stringify(r)}`);
    many.push(r.ws);
  }
  for (const w of many) await closeWs(w);
});

test('maxConnectionsPerIp and the handshake rate: a trusted CIDR range exempts every address in it', async (t) => {
  // 127.0.0.2 and 127.0.0.3 are in 127.0.0.0/8 but not written out in the list
  const srv = await startServer({ config: { general: { trustedProxies: ['127.0.0.0/8'] },
    servers: { web: { maxConnectionsPerIp: 2, handshakeRate: 1, handshakeBurst: 1 } } } });
  t.after(() => srv.stop());
  const many = [];
  for (const localAddress of ['127.0.0.2', '127.0.0.3']) {
    for (let i = 0; i < 4; i++) {
      const r = await tryWs(`${srv.wsUrl}/primus`, 3000, {}, { localAddress });
      assert.ok(r.ws, `${localAddress} connection ${i}: ${JSON.stringify(r)}`);
      many.push(r.ws);
    }
  }
  for (const w of many) await closeWs(w);
  // an address outside the range is still limited
  const strict = await startServer({ config: { general: { trustedProxies: ['10.0.0.0/8'] },
    servers: { web: { maxConnectionsPerIp: 2 } } } });
  t.after(() => strict.stop());
  const a = await until(() => tryWs(`${strict.wsUrl}/primus`), (x) => x.ws);
  const b = await until(() => tryWs(`${strict.wsUrl}/primus`), (x) => x.ws);
  const third = await tryWs(`${strict.wsUrl}/primus`);
  assert.strictEqual(third.status, 429, JSON.stringify(third));
  await closeWs(a.ws);
  await closeWs(b.ws);
});

test('out of descriptors (EMFILE): no busy loop, a clear 503, and the node serves again once descriptors are free', async (t) => {
  const srv = await startServer({ config: { general: { logLevel: 'error' } } });
  t.after(() => srv.stop());
  const pid = srv.proc.pid;
  const base = fs.readdirSync(`/proc/${pid}/fd`).length;
  // Room for a few connections only: the cap (from the descriptor limit at boot) is far away, descriptors run out first.
  const limit = base + 6;
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
  const open = [];
  let refused = null;
  for (let i = 0; i < 20 && !refused; i++) {
    const r = await tryWs(`${srv.wsUrl}/primus`, 3000);
    if (r.ws) open.push(r.ws);
    else refused = r;
  }
  assert.ok(open.length > 0 && open.length < 20, `opened ${open.length}`);
  assert.strictEqual(refused.status, 503, JSON.stringify(refused));
  // Connections keep arriving while the descriptors are gone: the node must not spin on its readable listener.
  const pending = [];
  for (let i = 0; i < 5; i++) {
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    pending.push(s);
  }
  await sleep(200);
  const before = cpuTicks(pid);
  await sleep(2000);
  const spent = cpuTicks(pid) - before;
  // A spinning loop burns ~200 ticks in 2 s; an idle node a handful.
  assert.ok(spent < 20, `the node used ${spent} clock ticks of CPU in 2 s while out of descriptors`);
  for (const s of pending) s.destroy();
  for (const w of open.splice(0, 3)) await closeWs(w);
  const again = await until(() => tryWs(`${srv.wsUrl}/primus`), (x) => x.ws);
  assert.ok(again.ws, JSON.stringify(again));
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const r = await c.request({ event: 'action', params: { action: 'randomNumber' } });
  assert.strictEqual(typeof r.randomNumber, 'number');
  await c.close();
  await closeWs(again.ws);
  for (const w of open) await closeWs(w);
});

test('handshakes per address: a flood is refused with 429 on every endpoint; other addresses and trusted proxies are not', async (t) => {
  // 127.0.0.1 is trusted, so X-Forwarded-For names the client: the test plays many addresses.
  const srv = await startServer({
    config: { general: { trustedProxies: ['127.0.0.1'] }, servers: { web: { handshakeRate: 0.05, handshakeBurst: 3 } } },
  });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const as = (ip) => ({ headers: { 'x-forwarded-for': ip } });
  for (let i = 0; i < 3; i++) {
    const r = await request(eio.url('transport=polling'), as('203.0.113.7'));
    assert.strictEqual(r.status, 200, r.text);
  }
  const over = await request(eio.url('transport=polling'), as('203.0.113.7'));
  assert.strictEqual(over.status, 429);
  assert.strictEqual(over.text, 'too many new connections from this address');
  assert.strictEqual(over.headers['retry-after'], '20');
  assert.strictEqual(over.headers['access-control-allow-origin'], '*');
  const primus = await tryWs(`${srv.wsUrl}/primus`, 3000, { 'x-forwarded-for': '203.0.113.7' });
  assert.strictEqual(primus.status, 429, JSON.stringify(primus));
  const eioWs = await tryWs(eio.url('transport=websocket').replace(/^http/, 'ws'), 3000, { 'x-forwarded-for': '203.0.113.7' });
  assert.strictEqual(eioWs.status, 429, JSON.stringify(eioWs));
  const sio = await request(`${srv.url}/socket.io/?EIO=4&transport=polling`, as('203.0.113.7'));
  assert.strictEqual(sio.status, 429);
  const sse = await request(eio.url('transport=sse'), as('203.0.113.7'));
  assert.strictEqual(sse.status, 429);
  // another address, and the trusted proxy itself, are not affected
  assert.strictEqual((await request(eio.url('transport=polling'), as('203.0.113.8'))).status, 200);
  assert.strictEqual((await request(eio.url('transport=polling'))).status, 200);
  const mine = await tryWs(`${srv.wsUrl}/primus`);
  assert.ok(mine.ws, JSON.stringify(mine));
  await closeWs(mine.ws);
  // IPv6 counts by /64
  for (let i = 1; i <= 3; i++) assert.strictEqual((await request(eio.url('transport=polling'), as(`2001:db8::${i}`))).status, 200);
  assert.strictEqual((await request(eio.url('transport=polling'), as('2001:db8::ffff'))).status, 429);
  assert.strictEqual((await request(eio.url('transport=polling'), as('2001:db8:0:1::1'))).status, 200);
  const limits = await status(srv);
  assert.strictEqual(limits.handshakesRefused, 6, JSON.stringify(limits));
});

// messageRate 0.1/s (no token comes back during a test), burst 5: the first 5 messages pass, the next 4 get the error,
// the 10th the error and the close.
const RATE_CONFIG = { general: { trustedProxies: [] }, servers: { websocket: { server: { messageRate: 0.1, messageBurst: 5 } } } };
const action = (id) => JSON.stringify({ event: 'action', params: { action: 'randomNumber' }, messageId: id });

function checkRateReplies(replies, what) {
  for (let id = 1; id <= 5; id++) {
    const r = replies.find((x) => x.messageId === id);
    assert.ok(r && typeof r.randomNumber === 'number', `${what}: reply ${id}: ${JSON.stringify(replies)}`);
  }
  for (let id = 6; id <= 10; id++) {
    const r = replies.find((x) => x.messageId === id);
    assert.deepStrictEqual(r, { error: RATE_ERROR, context: 'response', messageId: id }, `${what}: reply ${id}`);
  }
  assert.ok(!replies.some((x) => x.messageId > 10), `${what}: nothing after the close: ${JSON.stringify(replies)}`);
}

test('message rate: the clear error, then a coded disconnect, on every transport', async (t) => {
  const srv = await startServer({ config: RATE_CONFIG });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('Primus: actions and verbs over the rate get errors; the 5th refusal closes with 1008', async () => {
    const bystander = await connect(`${srv.wsUrl}/primus`);
    await bystander.welcome();
    const c = await connect(`${srv.wsUrl}/primus`);
    await c.welcome();
    for (let id = 1; id <= 5; id++) c.sendRaw(action(id));
    c.sendRaw(JSON.stringify({ event: 'roomView', room: 'defaultRoom', extra: 'x', messageId: 'v' }));
    for (let id = 7; id <= 12; id++) c.sendRaw(action(id));
    const closed = await c.closed;
    assert.strictEqual(closed.code, 1008);
    assert.strictEqual(closed.reason, 'message rate exceeded');
    const err = `Error: ${RATE_ERROR}`;
    const verb = c.frames.find((f) => f.messageId === 'v');
    assert.deepStrictEqual(verb, { status: err, error: err, context: 'response', data: { extra: 'x' }, messageId: 'v' });
    assert.ok(c.frames.includes('primus::server::close'), JSON.stringify(c.frames));
    const replies = c.frames.filter((f) => f && f.context === 'response' && typeof f.messageId === 'number');
    for (let id = 1; id <= 5; id++) assert.strictEqual(typeof replies.find((x) => x.messageId === id).randomNumber, 'number');
    for (let id = 7; id <= 10; id++)
      assert.deepStrictEqual(replies.find((x) => x.messageId === id), { error: RATE_ERROR, context: 'response', messageId: id });
    assert.ok(!replies.some((x) => x.messageId > 10), JSON.stringify(replies));
    const r = await bystander.request({ event: 'detailsView' });
    assert.strictEqual(r.status, 'OK');
    await bystander.close();
  });

  await t.test('engine.io polling: a burst in one POST, then one message per POST while a GET is held', async () => {
    const { sid } = await eio.handshake();
    await eio.pollUntil(sid, (p) => p.type === 4 && p.data.includes('welcome'));
    const replies = [];
    const collect = (res) => {
      assert.strictEqual(res.status, 200, res.text);
      for (const p of decodePayload(res.text)) if (p.type === 4) replies.push(JSON.parse(p.data));
    };
    assert.strictEqual((await eio.post(sid, [1, 2, 3, 4, 5].map((id) => '4' + action(id)).join(SEP))).status, 200);
    while (replies.length < 5) collect(await eio.poll(sid));
    for (let id = 6; id <= 10; id++) {
      const held = eio.poll(sid);
      await sleep(20);
      assert.strictEqual((await eio.post(sid, '4' + action(id))).status, 200);
      collect(await held);
    }
    checkRateReplies(replies, 'polling');
    // closed with the 10th: a held GET would have taken the close packet; the next request learns the session is gone
    const after = await eio.poll(sid);
    assert.deepStrictEqual(JSON.parse(after.text), { code: 1, message: 'Session ID unknown' });
  });

  await t.test('engine.io websocket (stock engine.io-client)', async () => {
    const socket = new EngineSocket(srv.url, { path: '/primus/', transports: ['websocket'] });
    const replies = [];
    socket.on('message', (m) => {
      const f = JSON.parse(m);
      if (f.context === 'response') replies.push(f);
    });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    for (let id = 1; id <= 14; id++) socket.send(action(id));
    await closed;
    checkRateReplies(replies, 'websocket');
  });

  await t.test('SSE: the flood comes by POST, the answers as events', async () => {
    const st = await sseOpen(eio.url('transport=sse'));
    const open = await st.next();
    const sid = JSON.parse(open.data.slice(1)).sid;
    await st.next((e) => e.data.includes('welcome'));
    const body = Array.from({ length: 14 }, (_, i) => '4' + action(i + 1)).join(SEP);
    assert.strictEqual((await eio.post(sid, body, { transport: 'sse' })).status, 200);
    await st.next((e) => e.data.split(SEP).includes('1'));
    const replies = [];
    for (const e of st.events)
      for (const p of e.data.split(SEP)) if (p[0] === '4' && p.includes('"context":"response"')) replies.push(JSON.parse(p.slice(1)));
    checkRateReplies(replies, 'sse');
    st.destroy();
  });

  await t.test('socket.io: acks carry the error; the client is told not to come back', async () => {
    const c = await connectSio(srv, 'websocket');
    const acks = [];
    for (let id = 1; id <= 12; id++) c.socket.emit('action', { action: 'randomNumber' }, (reply) => acks.push({ id, reply }));
    const [reason] = await c.take('disconnect');
    assert.strictEqual(reason, 'io server disconnect');
    assert.strictEqual(acks.filter((a) => typeof a.reply.randomNumber === 'number').length, 5, JSON.stringify(acks));
    const errors = acks.filter((a) => a.reply.error === RATE_ERROR);
    assert.strictEqual(errors.length, 5, JSON.stringify(acks));
  });

  await t.test('WebSocket PINGs and Primus control strings count too', async () => {
    const c = await connect(`${srv.wsUrl}/primus`);
    await c.welcome();
    for (let i = 0; i < 7; i++) c.ws.ping();
    for (let i = 0; i < 7; i++) c.sendRaw(JSON.stringify('primus::id::'));
    const closed = await c.closed;
    assert.strictEqual(closed.code, 1008);
    const ids = c.frames.filter((f) => typeof f === 'string' && f.startsWith('primus::id::'));
    assert.ok(ids.length < 7, JSON.stringify(c.frames));
  });

  await t.test('the node counted what it refused', async () => {
    const limits = await status(srv);
    assert.ok(limits.messagesRefused >= 25, JSON.stringify(limits));
    assert.ok(limits.rateDisconnects >= 5, JSON.stringify(limits));
  });
});

test('message rate in echo mode (no connection): packets over the rate are dropped, then the session closes', async (t) => {
  const srv = await startServer({ config: { ...RATE_CONFIG, servers: { websocket: { server: { echo: true, messageRate: 0.1, messageBurst: 5 } } } } });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const ws = eio.ws('transport=websocket');
  await ws.opened;
  await ws.next((m) => m.text && m.text[0] === '0');
  for (let i = 1; i <= 14; i++) ws.send(`4m${i}`);
  await ws.closed;
  // five echoes, then the close packet ("do not reconnect"); the nine packets over the rate got nothing
  assert.deepStrictEqual(ws.messages.map((m) => m.text), ['4m1', '4m2', '4m3', '4m4', '4m5', '1']);
  // WebSocket PING frames count as packets
  const pinger = eio.ws('transport=websocket');
  await pinger.opened;
  for (let i = 0; i < 14; i++) pinger.ws.ping();
  await pinger.closed;
  assert.strictEqual(pinger.messages[pinger.messages.length - 1].text, '1');
});

test('log lines a stranger can trigger are rate-limited', async (t) => {
  const srv = await startServer({ config: { general: { logLevel: 'info' } } });
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  for (let i = 0; i < 500; i++) c.sendRaw('not json{');
  await c.request({ event: 'detailsView' });
  const lines = () => srv.stderr.split('\n').filter((l) => l.includes('invalid JSON ignored')).length;
  // stderr arrives on its own pipe: wait for it (bounded), then a little more for any late lines
  for (let i = 0; i < 100 && lines() === 0; i++) await sleep(20);
  await sleep(300);
  assert.ok(lines() > 0 && lines() < 100, `${lines()} lines for 500 invalid frames`);
  await sleep(1100);
  c.sendRaw('not json{');
  await c.request({ event: 'detailsView' });
  const suppressed = /\[session\] - suppressed \d+ similar lines/;
  for (let i = 0; i < 100 && !suppressed.test(srv.stderr); i++) await sleep(20);
  assert.match(srv.stderr, suppressed);
  await c.close();
});

test('SSE replay: a node-wide budget bounds every session\'s ring together', async (t) => {
  const srv = await startServer({
    config: { servers: { websocket: { server: { pingInterval: 20000, pingTimeout: 20000, sse: { replayTotalBytes: 100000 } } } } },
  });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const streams = [];
  for (let i = 0; i < 20; i++) {
    const st = await sseOpen(eio.url('transport=sse&sse=1'));
    const sid = JSON.parse((await st.next()).data.slice(1)).sid;
    assert.strictEqual((await eio.post(sid, '4' + JSON.stringify({ event: 'roomAdd', room: 'defaultRoom', messageId: 1 }), { transport: 'sse' })).status, 200);
    await st.next((e) => e.data.includes('"messageId":1'));
    streams.push({ st, sid });
  }
  const sayer = await connect(`${srv.wsUrl}/primus`);
  await sayer.welcome();
  await sayer.request({ event: 'roomAdd', room: 'defaultRoom' });
  const big = 'x'.repeat(20000);
  for (let i = 0; i < 10; i++) await sayer.request({ event: 'say', room: 'defaultRoom', message: `${i}${big}` });
  // every session got all ten (~4 MB of events together), but the rings keep at most the budget
  for (const { st } of streams) await st.next((e) => e.data.includes(`"message":"9${big}"`), 10000);
  const limits = await status(srv);
  assert.ok(limits.sseReplayBytes > 0 && limits.sseReplayBytes <= 100000, JSON.stringify(limits));

  // The last session written to still replays its last event; one whose ring lost what came after the id is told
  // the session is gone (nothing is skipped silently), and the session ends.
  const last = streams[streams.length - 1];
  const lastId = Number(last.st.events[last.st.events.length - 1].id);
  last.st.destroy();
  const replay = await sseOpen(eio.url(`transport=sse&sid=${last.sid}`), { 'last-event-id': String(lastId - 1) });
  const ev = await replay.next();
  assert.strictEqual(Number(ev.id), lastId);
  assert.ok(ev.data.includes(`"message":"9${big}"`));
  replay.destroy();
  const first = streams[0];
  first.st.destroy();
  const gone = await request(eio.url(`transport=sse&sid=${first.sid}`), { headers: { accept: 'text/event-stream', 'last-event-id': '1' } });
  assert.strictEqual(gone.status, 400);
  assert.deepStrictEqual(JSON.parse(gone.text), { code: 1, message: 'Session ID unknown' });
  const post = await eio.post(first.sid, '4{}', { transport: 'sse' });
  assert.deepStrictEqual(JSON.parse(post.text), { code: 1, message: 'Session ID unknown' });
  for (const { st } of streams) st.destroy();
  await sayer.close();
});
