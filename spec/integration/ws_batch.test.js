'use strict';
// A room's lines to WebSocket members written in io_uring batches (general.ioUring, README "Design"): /primus and
// engine.io WebSocket members get every line once and in order, the batches show in /metrics, a member whose socket
// is full gets the rest of a short send through the normal write with its byte stream intact, and with
// general.ioUring "off" nothing is batched. Under AG_IO_URING=off (the harness) the whole suite takes the plain path.
const test = require('node:test');
const assert = require('node:assert');
const { Socket } = require('engine.io-client');
const { startServer } = require('../lib/harness');
const { batchMetrics } = require('../lib/metrics');
const { connect } = require('../lib/wsclient');

const BATCHING = (process.env.AG_IO_URING || 'auto') !== 'off';

async function primus(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
  return c;
}

// An engine.io WebSocket member (the stock client), collecting its chat lines.
async function eioMember(srv) {
  const socket = new Socket(srv.url, { path: '/primus/', transports: ['websocket'] });
  const lines = [];
  let joined;
  const ok = new Promise((resolve) => (joined = resolve));
  socket.on('message', (m) => {
    const f = JSON.parse(m);
    if (f.messageId === 1) joined(f);
    if (f.context === 'user') lines.push(f.message);
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ event: 'roomAdd', room: 'defaultRoom', messageId: 1 }));
  assert.strictEqual((await ok).status, 'OK');
  return { socket, lines };
}

const metrics = (srv) => batchMetrics(srv, 'ws');

async function until(cond, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a room of /primus and engine.io WebSocket members: every line once, in order, written in batches', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const ps = [];
  for (let i = 0; i < 8; i++) ps.push(await primus(srv));
  const es = [];
  for (let i = 0; i < 4; i++) es.push(await eioMember(srv));
  const before = await metrics(srv);
  const N = 60;
  for (let i = 0; i < N; i++) ps[0].sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `line ${i}` }));
  const want = Array.from({ length: N }, (_, i) => `line ${i}`);
  const got = (c) => c.frames.filter((f) => f.context === 'user').map((f) => f.message);
  for (const c of ps) await until(() => got(c).length >= N, 'the lines on /primus');
  for (const e of es) await until(() => e.lines.length >= N, 'the lines on engine.io');
  await ps[0].request({ event: 'detailsView' }); // a round trip later: nothing more came
  for (const c of ps) assert.deepStrictEqual(got(c), want);
  for (const e of es) assert.deepStrictEqual(e.lines, want);
  const after = await metrics(srv);
  if (BATCHING) {
    assert.ok(after.ring >= 1, 'the ring is up');
    assert.ok(after.submits > before.submits, 'lines went out in submits');
    // how many lines share a write depends on how they arrive; each line reaches a worker's members in one iteration,
    // so at least one submit carried two or more whole writes
    assert.ok(after.whole - before.whole >= 2, `batched writes: ${after.whole - before.whole}`);
  } else {
    assert.deepStrictEqual(after, { ring: 0, submits: 0, whole: 0, rest: 0 });
  }
  for (const c of ps) await c.close();
  for (const e of es) e.socket.close();
});

test('a member whose socket is full gets the rest of a short send through the normal write, every byte in order', async (t) => {
  // queues large enough that the member who stops reading is not disconnected as slow while its socket fills; one
  // worker, so the stalled member shares its loop (and its batches) with the others whatever AG_WORKERS says
  const srv = await startServer({
    config: {
      general: { workers: 1 },
      servers: { websocket: { server: { queueMaxBytes: 67108864, queueMaxFrames: 100000, maxLength: 131072, maxHttpBufferSize: 131072 } } },
    },
  });
  t.after(() => srv.stop());
  const stalled = await primus(srv);
  const talker = await primus(srv);
  const observer = await primus(srv);
  stalled.ws._socket.pause();
  const chunk = 'y'.repeat(30000);
  const base = await metrics(srv);
  let sent = 0;
  let rest = 0;
  // Rounds of 300 kB until a batched send to the stalled member came back short or refused (the kernel's buffers
  // absorb several MB first, depending on autotuning), then two rounds more: those wait in the server's queue.
  const deadline = Date.now() + 60000;
  let extra = -1;
  for (let round = 0; round < 200 && Date.now() < deadline && extra !== 0; round++) {
    for (let i = 0; i < 10; i++, sent++)
      talker.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `${sent}:${chunk}` }));
    const mark = `${sent - 1}:${chunk}`;
    await observer.next((f) => f.context === 'user' && f.message === mark, 10000);
    talker.frames.length = 0;
    observer.frames.length = 0;
    if (extra > 0) extra--;
    else if (extra < 0 && BATCHING && (rest = (await metrics(srv)).rest - base.rest) > 0) extra = 2;
    else if (extra < 0 && !BATCHING && round === 20) extra = 0; // no batches to wait for: the plain path fills it
  }
  if (BATCHING) assert.ok(rest > 0, 'a batched send to the stalled member left a rest for the normal write');
  // it reads again: every line arrives once, in order, whole (a rest written from the wrong place would break the
  // WebSocket framing or the order)
  stalled.ws._socket.resume();
  const userLines = () => stalled.frames.filter((f) => f.context === 'user');
  await until(() => userLines().length >= sent, 'the stalled member catching up', 30000);
  await stalled.request({ event: 'detailsView' }, 10000); // a round trip later: nothing more came
  const all = stalled.frames.filter((f) => f.context === 'user').map((f) => f.message);
  assert.strictEqual(all.length, sent);
  for (let i = 0; i < sent; i++) {
    if (all[i] !== `${i}:${chunk}`) assert.fail(`line ${i} is ${String(all[i]).slice(0, 20)}…`);
  }
  await stalled.close();
  await talker.close();
  await observer.close();
});

test('general.ioUring "off": nothing is batched', async (t) => {
  const srv = await startServer({ config: { general: { ioUring: 'off' } } });
  t.after(() => srv.stop());
  const a = await primus(srv);
  const b = await primus(srv);
  const c = await primus(srv);
  await a.request({ event: 'say', room: 'defaultRoom', message: 'plain' });
  await b.next((f) => f.context === 'user' && f.message === 'plain');
  await c.next((f) => f.context === 'user' && f.message === 'plain');
  assert.deepStrictEqual(await metrics(srv), { ring: 0, submits: 0, whole: 0, rest: 0 });
  for (const x of [a, b, c]) await x.close();
});

test('general.ioUring must be "auto" or "off"', async () => {
  const srv = startServer({ config: { general: { ioUring: 'sometimes' } } });
  await assert.rejects(srv, /general\.ioUring must be "auto" or "off"/);
});
