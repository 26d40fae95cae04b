'use strict';
// A held polling GET that stays quiet for servers.websocket.server.pollSleepMs leaves h2o's request (README "Design",
// engine.io long-polling): its head (200, chunked) goes at once, the answer later as one chunk, and the connection then
// carries the client's next request (keep-alive). Raw HTTP on one socket to see the bytes; the stock engine.io-client
// and socket.io-client to see that nothing changes for a client.
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { Socket } = require('engine.io-client');
const { io } = require('socket.io-client');
const { startServer } = require('../lib/harness');
const { Eio, decodePayload, sleep } = require('../lib/eio_raw');
const { metric } = require('../lib/metrics');
const { RawConn } = require('../lib/raw_conn');


async function until(what, pred, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function echoServer(server = {}) {
  return startServer({ config: { servers: { websocket: { server: { echo: true, pingInterval: 60000, pingTimeout: 60000, ...server } } } } });
}

// An echo server, one session and a raw connection holding a GET (HTTP/version).
async function heldGet(t, server, version = '1.1') {
  const srv = await echoServer(server);
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const { sid } = await eio.handshake();
  const c = new RawConn(srv.port);
  t.after(() => c.close());
  c.get(`/primus/?EIO=4&transport=polling&sid=${sid}`, version);
  return { srv, eio, sid, c };
}

// The same, once the GET went to sleep.
async function asleep(t, server) {
  const held = await heldGet(t, server);
  await until('the GET asleep', async () => (await metric(held.srv, 'actiongate_polls_asleep')) === 1);
  return held;
}

test('a quiet held GET leaves its request: the head at once, the answer as one chunk, then the next request on the same connection', async (t) => {
  // pollDirect off: the connection goes back to h2o after the answer (poll_direct.test.js: it stays the node's)
  const { srv, eio, sid, c } = await asleep(t, { pollSleepMs: 100, pollDirect: false });
  const path = `/primus/?EIO=4&transport=polling&sid=${sid}`;
  const head = await c.head();
  assert.strictEqual(head.status, 200);
  assert.strictEqual(head.headers['transfer-encoding'], 'chunked');
  assert.strictEqual(head.headers['content-type'], 'text/plain; charset=UTF-8');
  assert.strictEqual(head.headers['cache-control'], 'no-store');
  assert.strictEqual(head.headers['access-control-allow-origin'], '*');
  assert.strictEqual(head.headers['content-length'], undefined);
  assert.strictEqual((await eio.post(sid, '4hello')).status, 200);
  const first = await c.response();
  assert.deepStrictEqual(first.chunks, ['4hello']);
  assert.deepStrictEqual(decodePayload(first.text), [{ type: 4, data: 'hello' }]);
  assert.strictEqual(await metric(srv, 'actiongate_polls_asleep'), 0);
  assert.strictEqual(await metric(srv, 'actiongate_polls_slept_total'), 1);

  // the connection is h2o's again: a GET answered before it sleeps is an ordinary response on the same socket
  await eio.post(sid, '4ready');
  c.get(path);
  const second = await c.response();
  assert.strictEqual(second.status, 200);
  assert.strictEqual(second.headers['content-length'], String('4ready'.length));
  assert.strictEqual(second.text, '4ready');
  // and the next one sleeps again, and is answered again
  c.get(path);
  await until('the second sleep', async () => (await metric(srv, 'actiongate_polls_slept_total')) === 2);
  await eio.post(sid, '4again');
  assert.strictEqual((await c.response()).text, '4again');
  assert.strictEqual(c.closed, false);
  assert.strictEqual(await metric(srv, 'actiongate_polls_asleep'), 0);
});

test('a request the client sends on a sleeping GET\'s connection waits, and is answered once the GET is', async (t) => {
  const { srv, eio, sid, c } = await asleep(t, { pollSleepMs: 50 });
  // pipelined: the next GET comes before the sleeping one is answered (its bytes wait in the socket's buffer)
  c.get(`/primus/?EIO=4&transport=polling&sid=${sid}`);
  await sleep(100);
  await eio.post(sid, '4one');
  const first = await c.response();
  assert.deepStrictEqual(first.chunks, ['4one']);
  await eio.post(sid, '4two');
  const second = await c.response();
  assert.strictEqual(second.status, 200);
  assert.strictEqual(second.text, '4two');
  assert.strictEqual(c.closed, false);
  assert.strictEqual(await metric(srv, 'actiongate_polls_asleep'), 0);
});

test('a client that closes its sleeping GET ends the session, as one that drops a held GET', async (t) => {
  const { srv, eio, sid, c } = await asleep(t, { pollSleepMs: 50 });
  c.close();
  await until('the session gone', async () => (await eio.poll(sid, { timeout: 2000 })).status === 400);
  assert.strictEqual(await metric(srv, 'actiongate_polls_asleep'), 0);
});

test('an overlapping GET while one sleeps: 400 for it, the sleeping one answered, the session ended', async (t) => {
  const { srv, eio, sid, c } = await asleep(t, { pollSleepMs: 50 });
  assert.strictEqual((await eio.poll(sid)).status, 400);
  const r = await c.response();
  assert.strictEqual(r.status, 200);
  assert.ok(['1', '6'].includes(r.text), r.text);
  assert.strictEqual((await eio.poll(sid)).status, 400);
});

test('the upgrade while the GET sleeps: the probe releases it with a noop chunk, the session goes on over WebSocket', async (t) => {
  const { srv, eio, sid, c } = await asleep(t, { pollSleepMs: 50 });
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/primus/?EIO=4&transport=websocket&sid=${sid}`);
  t.after(() => ws.close());
  const got = [];
  ws.on('message', (d) => got.push(d.toString()));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send('2probe');
  await until('3probe', () => got.includes('3probe'));
  const r = await c.response();
  assert.deepStrictEqual(r.chunks, ['6']);
  ws.send('5');
  ws.send('4over websocket');
  await until('the echo', () => got.includes('4over websocket'));
  assert.strictEqual(await metric(srv, 'actiongate_polls_asleep'), 0);
});

test('the stock engine.io-client over polling, its GETs going to sleep: every message both ways, once, in order', async (t) => {
  const srv = await echoServer({ pollSleepMs: 20, pingInterval: 300, pingTimeout: 2000 });
  t.after(() => srv.stop());
  const socket = new Socket(srv.url, { path: '/primus/', transports: ['polling'] });
  t.after(() => socket.close());
  const got = [];
  socket.on('message', (m) => got.push(m));
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
  const sent = [];
  for (let i = 0; i < 40; i++) {
    sent.push(`m${i}`);
    socket.send(`m${i}`);
    if (i % 4 === 0) await sleep(60); // longer than pollSleepMs: the held GET sleeps between bursts
  }
  await until('every echo', () => got.length >= sent.length);
  assert.deepStrictEqual(got, sent);
  await sleep(700); // pings (every 300 ms) answered through sleeping GETs keep the session
  socket.send('last');
  await until('the last echo', () => got.includes('last'));
  assert.ok((await metric(srv, 'actiongate_polls_slept_total')) >= 3);
  assert.strictEqual(socket.transport.name, 'polling');
});

test('the stock socket.io-client over polling, with sleeping GETs: requests answered, chat between two clients', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { pollSleepMs: 20 } } } } });
  t.after(() => srv.stop());
  const a = io(srv.url, { transports: ['polling'], reconnection: false, forceNew: true });
  const b = io(srv.url, { transports: ['polling'], reconnection: false, forceNew: true });
  t.after(() => { a.close(); b.close(); });
  await Promise.all([a, b].map((s) => new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); })));
  const heard = [];
  b.on('say', (m) => heard.push(m.message));
  for (const s of [a, b]) assert.strictEqual((await s.emitWithAck('roomAdd', { room: 'defaultRoom' })).status, 'OK');
  for (let i = 0; i < 5; i++) {
    await sleep(80); // every GET sleeps before the line comes
    await a.emitWithAck('say', { room: 'defaultRoom', message: `line ${i}` });
  }
  await until('every line', () => heard.length >= 5);
  assert.deepStrictEqual(heard, ['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  assert.ok((await metric(srv, 'actiongate_polls_slept_total')) >= 5);
});

test('pollSleepMs 0 and HTTP/1.0: a held GET stays on its request, answered with a length', async (t) => {
  for (const [server, version, why] of [[{ pollSleepMs: 0 }, '1.1', 'pollSleepMs 0'], [{ pollSleepMs: 20 }, '1.0', 'HTTP/1.0 has no chunks']]) {
    const { srv, eio, sid, c } = await heldGet(t, server, version);
    await sleep(300);
    assert.strictEqual(c.buf.length, 0, `${why}: nothing written before the answer`);
    await eio.post(sid, '4x');
    const r = await c.response();
    assert.strictEqual(r.headers['content-length'], '2', why);
    assert.strictEqual(r.text, '4x', why);
    assert.strictEqual(await metric(srv, 'actiongate_polls_slept_total'), 0, why);
  }
});

test('servers.websocket.server.pollSleepMs must be a whole number of ms up to a day', async () => {
  await assert.rejects(startServer({ config: { servers: { websocket: { server: { pollSleepMs: -1 } } } } }),
    /pollSleepMs: expected a whole number/);
  await assert.rejects(startServer({ config: { servers: { websocket: { server: { pollSleepMs: 86400001 } } } } }),
    /pollSleepMs must be at most 86400000 ms/);
});
