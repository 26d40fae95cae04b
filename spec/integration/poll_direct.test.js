'use strict';
// A polling session's kept HTTP/1.1 connection read and answered by the node itself (README "Design", engine.io
// long-polling; servers.websocket.server.pollDirect): once a held GET on it is answered, the session's next GETs on the
// same socket are parsed and answered without h2o's request, with the same bytes a client saw before; anything else
// goes back to h2o and is answered exactly as before. Raw HTTP on one socket where bytes matter, the stock clients to
// see that nothing changes for them.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Socket } = require('engine.io-client');
const { io } = require('socket.io-client');
const { startServer } = require('../lib/harness');
const { Eio, decodePayload, request, sleep } = require('../lib/eio_raw');
const { metric, batchMetrics } = require('../lib/metrics');
const { RawConn } = require('../lib/raw_conn');

const ORIGIN = 'http://a.example';

async function until(what, pred, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// A server whose clients (srv.clients: functions that close one) are closed before it stops: a connection still
// open when it stops would keep h2o's context from being freed.
async function tracked(t, config) {
  const srv = await startServer({ config });
  srv.clients = [];
  t.after(async () => {
    for (const close of srv.clients) close();
    await sleep(50);
    await srv.stop();
  });
  return srv;
}

function echoServer(t, server = {}, general = {}) {
  return tracked(t, {
    general,
    servers: { websocket: { server: { echo: true, pingInterval: 60000, pingTimeout: 60000, origins: [ORIGIN], ...server } } },
  });
}

function rawConn(srv) {
  const c = new RawConn(srv.port);
  srv.clients.push(() => c.close());
  return c;
}

const pollPath = (sid) => `/primus/?EIO=4&transport=polling&sid=${sid}`;

// A GET on c for sid with the test's Origin, answered once the echo of body comes.
async function getAnswered(eio, c, sid, body, extra = [`Origin: ${ORIGIN}`]) {
  c.get(pollPath(sid), '1.1', extra);
  await eio.post(sid, body);
  return c.response();
}

// The header lines that do not change from one answer to the next.
function stableFields(r) {
  return r.fields.filter(([n]) => n !== 'date' && n !== 'connection');
}

// A session and a raw connection made direct: its first GET answered (and the connection taken), its second answered
// by the node itself.
async function direct(t, server = {}, general = {}) {
  const srv = await echoServer(t, server, general);
  const eio = new Eio(srv.url);
  const { sid } = await eio.handshake();
  const c = rawConn(srv);
  const first = await getAnswered(eio, c, sid, '4one');
  assert.strictEqual(first.text, '4one');
  const second = await getAnswered(eio, c, sid, '4two');
  assert.strictEqual(second.text, '4two');
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), 1);
  return { srv, eio, sid, c, first, second };
}

test('answers on a direct connection: status, Content-Length and the header lines h2o wrote, the body; the metrics move', async (t) => {
  // what h2o answers today, pollDirect off
  const before = await echoServer(t, { pollDirect: false });
  const eioB = new Eio(before.url);
  const { sid: sidB } = await eioB.handshake();
  const cb = rawConn(before);
  const ref = await getAnswered(eioB, cb, sidB, '4ref');
  const ref2 = await getAnswered(eioB, cb, sidB, '4ref');
  assert.strictEqual(ref.headers.connection, 'keep-alive');
  assert.strictEqual(await metric(before, 'actiongate_polls_direct_total'), 0);
  assert.strictEqual(await metric(before, 'actiongate_poll_connections_direct'), 0);

  const { srv, eio, sid, c, first, second } = await direct(t);
  for (const [r, what] of [[first, 'the answer that made it direct'], [second, 'the first direct answer']]) {
    assert.strictEqual(r.statusLine, 'HTTP/1.1 200 OK', what);
    assert.strictEqual(r.headers['content-length'], String(r.text.length), what);
    assert.deepStrictEqual(stableFields(r).map(([n, v]) => [n, n === 'content-length' ? '' : v]),
      stableFields(ref).map(([n, v]) => [n, n === 'content-length' ? '' : v]), what);
    assert.ok(r.headers.date, what);
  }
  assert.strictEqual(second.headers.connection, 'keep-alive');
  assert.strictEqual(second.headers['access-control-allow-origin'], ORIGIN);
  assert.deepStrictEqual(decodePayload(second.text), [{ type: 4, data: 'two' }]);
  const third = await getAnswered(eio, c, sid, '4three');
  assert.strictEqual(third.text, '4three');
  assert.deepStrictEqual(stableFields(third), stableFields(ref2).map(([n, v]) => [n, n === 'content-length' ? '6' : v]));
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), 2);
  assert.strictEqual(await metric(srv, 'actiongate_poll_connections_direct'), 1);
  // a large answer is gzipped when accepted, as h2o's is
  const big = 'x'.repeat(2000);
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`, 'Accept-Encoding: gzip']);
  await eio.post(sid, `4${big}`);
  const gz = await c.response();
  assert.strictEqual(gz.headers['content-encoding'], 'gzip');
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), 3);
  c.close();
  await until('the connection gone', async () => (await metric(srv, 'actiongate_poll_connections_direct')) === 0);
});

test('the stock engine.io-client over polling: 50 messages each way, once, in order, pings going on, answered directly', async (t) => {
  const srv = await echoServer(t, { pingInterval: 300, pingTimeout: 2000, origins: ['*'] });
  // a browser keeps its connections; node's XMLHttpRequest does so with a keep-alive agent
  const agent = new http.Agent({ keepAlive: true });
  const socket = new Socket(srv.url, { path: '/primus/', transports: ['polling'], agent });
  srv.clients.push(() => { socket.close(); agent.destroy(); });
  const got = [];
  socket.on('message', (m) => got.push(m));
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
  const sent = [];
  for (let i = 0; i < 50; i++) {
    sent.push(`m${i}`);
    socket.send(`m${i}`);
    if (i % 5 === 0) await sleep(30);
  }
  await until('every echo', () => got.length >= sent.length);
  assert.deepStrictEqual(got, sent);
  await sleep(700); // pings every 300 ms, answered through direct GETs
  socket.send('last');
  await until('the last echo', () => got.includes('last'));
  assert.ok((await metric(srv, 'actiongate_polls_direct_total')) >= 5);
  assert.strictEqual(socket.transport.name, 'polling');
});

test('the stock socket.io-client over polling: 50 lines each way between two clients, in order, answered directly', async (t) => {
  const srv = await tracked(t, { servers: { websocket: { server: { pingInterval: 300, pingTimeout: 2000 } } } });
  const agent = new http.Agent({ keepAlive: true });
  const a = io(srv.url, { transports: ['polling'], reconnection: false, forceNew: true, agent });
  const b = io(srv.url, { transports: ['polling'], reconnection: false, forceNew: true, agent });
  srv.clients.push(() => { a.close(); b.close(); agent.destroy(); });
  await Promise.all([a, b].map((s) => new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); })));
  const heardA = [];
  const heardB = [];
  a.on('say', (m) => heardA.push(m.message));
  b.on('say', (m) => heardB.push(m.message));
  for (const s of [a, b]) assert.strictEqual((await s.emitWithAck('roomAdd', { room: 'defaultRoom' })).status, 'OK');
  const want = [];
  for (let i = 0; i < 50; i++) {
    want.push(`a${i}`);
    await a.emitWithAck('say', { room: 'defaultRoom', message: `a${i}` });
    await b.emitWithAck('say', { room: 'defaultRoom', message: `b${i}` });
  }
  await until('every line', () => heardB.filter((m) => m[0] === 'a').length >= 50 && heardA.filter((m) => m[0] === 'b').length >= 50);
  assert.deepStrictEqual(heardB.filter((m) => m[0] === 'a'), want);
  assert.deepStrictEqual(heardA.filter((m) => m[0] === 'b'), want.map((m) => `b${m.slice(1)}`));
  await sleep(700);
  assert.ok(a.connected && b.connected);
  assert.ok((await metric(srv, 'actiongate_polls_direct_total')) >= 10);
});

test('what is not the happy case goes back to h2o on the same socket and is answered as before', async (t) => {
  const { srv, eio, sid, c } = await direct(t);
  // a POST with a body: its message reaches the session
  c.send(`POST ${pollPath(sid)} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 7\r\n\r\n4posted`);
  const posted = await c.response();
  assert.strictEqual(posted.status, 200);
  assert.strictEqual(posted.text, 'ok');
  assert.strictEqual((await eio.poll(sid)).text, '4posted');
  // a GET for another session: answered for that session
  const other = (await eio.handshake()).sid;
  await eio.post(other, '4other');
  c.get(pollPath(other), '1.1', [`Origin: ${ORIGIN}`]);
  assert.strictEqual((await c.response()).text, '4other');
  // an unknown sid: engine.io's 400, code 1
  c.get(pollPath('nope'), '1.1', [`Origin: ${ORIGIN}`]);
  const unknown = await c.response();
  assert.strictEqual(unknown.status, 400);
  assert.deepStrictEqual(JSON.parse(unknown.text), { code: 1, message: 'Session ID unknown' });
  assert.strictEqual(c.closed, false);
  // another Origin: refused as on a fresh connection
  const fresh = await request(`${srv.url}${pollPath(sid)}`, { headers: { origin: 'http://b.example' } });
  c.get(pollPath(sid), '1.1', ['Origin: http://b.example']);
  const foreign = await c.response();
  assert.strictEqual(foreign.status, fresh.status);
  assert.strictEqual(foreign.text, fresh.text);
  assert.strictEqual(foreign.status, 403);
  // a GET with a 9 KiB header line: h2o reads it and holds the GET as before
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`, `X-Pad: ${'p'.repeat(9 * 1024)}`]);
  await eio.post(sid, '4padded');
  assert.strictEqual((await c.response()).text, '4padded');
  // Connection: close: answered, then the socket closes
  const directBefore = await metric(srv, 'actiongate_polls_direct_total');
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`, 'Connection: close']);
  await eio.post(sid, '4bye');
  const bye = await c.response();
  assert.strictEqual(bye.text, '4bye');
  assert.strictEqual(bye.headers.connection, 'close');
  await until('the socket closed', () => c.closed, 5000);
  // none of these was served directly
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), directBefore);
});

test('garbage on a direct connection: h2o\'s 400, and the connection closes', async (t) => {
  const { srv, c } = await direct(t);
  c.send('this is not HTTP at all\r\n\r\n');
  const r = await c.response();
  assert.strictEqual(r.status, 400);
  assert.strictEqual(r.text, 'Bad Request');
  await until('the socket closed', () => c.closed, 5000);
  await until('the count', async () => (await metric(srv, 'actiongate_poll_connections_direct')) === 0);
});

test('a GET with two Content-Length headers, both 0, on a direct connection: h2o\'s guard refuses it as before', async (t) => {
  const { srv, sid, c } = await direct(t);
  const before = await metric(srv, 'actiongate_polls_direct_total');
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`, 'Content-Length: 0', 'Content-Length: 0']);
  const r = await c.response();
  assert.strictEqual(r.status, 400, 'an ambiguous body length is never served');
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), before);
});

test('a GET carrying the cluster\'s forwarded header, forged by a client, on a direct connection: h2o\'s, as before', async (t) => {
  const { srv, eio, sid, c } = await direct(t);
  const before = await metric(srv, 'actiongate_polls_direct_total');
  // h2o's path drops a forwarded header without this node's token and serves the GET as the client's own
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`, 'X-Actiongate-Forwarded: forged']);
  await eio.post(sid, '4forged');
  const r = await c.response();
  assert.strictEqual(r.status, 200);
  assert.strictEqual(r.text, '4forged');
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), before, 'never read by the node itself');
  // the connection goes on: the next plain GET is answered
  assert.strictEqual((await getAnswered(eio, c, sid, '4after')).text, '4after');
});

test('an answer the client does not read is given up after sse.keepaliveMs: the connection closes, the rest is not sent', async (t) => {
  const MB = 1000000;
  const { srv, eio, sid, c } = await direct(t, { queueMaxBytes: 64 * MB, sse: { keepaliveMs: 500 } });
  // an answer far larger than both sockets' buffers: 12 messages of ~1 MB waiting for the GET
  const msg = `4${'x'.repeat(MB - 100)}`;
  for (let i = 0; i < 12; i++) assert.strictEqual((await eio.post(sid, msg)).text, 'ok');
  c.sock.pause();
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`]);
  await until('the direct connection given up', async () => (await metric(srv, 'actiongate_poll_connections_direct')) === 0, 10000);
  // what the kernel had taken still arrives, then the end: never the whole answer
  c.sock.resume();
  await until('the socket closed', () => c.closed, 10000);
  assert.ok(c.buf.length < 12 * (MB - 100), `${c.buf.length} bytes arrived`);
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), 2);
});

test('two GETs in one write: the second waits for the first answer, as h2o does, direct or not', async (t) => {
  for (const pollDirect of [false, true]) {
    const srv = await echoServer(t, { pollDirect });
    const eio = new Eio(srv.url);
    const { sid } = await eio.handshake();
    const c = rawConn(srv);
    assert.strictEqual((await getAnswered(eio, c, sid, '4one')).text, '4one');
    assert.strictEqual((await getAnswered(eio, c, sid, '4two')).text, '4two');
    const get = `GET ${pollPath(sid)} HTTP/1.1\r\nHost: x\r\nOrigin: ${ORIGIN}\r\n\r\n`;
    c.send(get + get);
    await sleep(100);
    await eio.post(sid, '4a');
    const a = await c.response();
    assert.strictEqual(a.status, 200, `pollDirect ${pollDirect}`);
    assert.strictEqual(a.text, '4a', `pollDirect ${pollDirect}`);
    await eio.post(sid, '4b');
    const b = await c.response();
    assert.strictEqual(b.status, 200, `pollDirect ${pollDirect}`);
    assert.strictEqual(b.text, '4b', `pollDirect ${pollDirect}`);
    assert.strictEqual((await eio.post(sid, '4alive')).status, 200, `pollDirect ${pollDirect}: the session goes on`);
    assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), pollDirect ? 3 : 0);
  }
});

test('a client that drops its held direct GET ends the session', async (t) => {
  const { srv, eio, sid, c } = await direct(t);
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`]);
  await until('the GET held', async () => (await metric(srv, 'actiongate_polls_direct_total')) === 2);
  c.close();
  await until('the session gone', async () => (await eio.poll(sid, { timeout: 2000 })).status === 400);
  await until('the connection gone', async () => (await metric(srv, 'actiongate_poll_connections_direct')) === 0);
});

test('the upgrade to WebSocket while a direct GET is held: the GET gets a noop, the session goes on over WebSocket', async (t) => {
  const { srv, eio, sid, c } = await direct(t);
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`]);
  await until('the GET held', async () => (await metric(srv, 'actiongate_polls_direct_total')) === 2);
  const ws = eio.ws(`transport=websocket&sid=${sid}`);
  srv.clients.push(() => ws.close());
  await ws.opened;
  ws.send('2probe');
  assert.strictEqual((await ws.next()).text, '3probe');
  const noop = await c.response();
  assert.strictEqual(noop.status, 200);
  assert.strictEqual(noop.text, '6');
  ws.send('5');
  ws.send('4over websocket');
  assert.strictEqual((await ws.next((m) => m.text === '4over websocket')).text, '4over websocket');
  // the polling transport is gone: a GET on the kept socket gets h2o's 400
  c.get(pollPath(sid), '1.1', [`Origin: ${ORIGIN}`]);
  const late = await c.response();
  assert.strictEqual(late.status, 400);
});

test('a GET that trickles in, a few bytes at a time, is read and answered directly once whole', async (t) => {
  const { srv, eio, sid, c } = await direct(t);
  const get = `GET ${pollPath(sid)} HTTP/1.1\r\nHost: x\r\nOrigin: ${ORIGIN}\r\n\r\n`;
  for (let at = 0; at < get.length; at += 7) {
    c.send(get.slice(at, at + 7));
    await sleep(5);
  }
  await until('the GET held', async () => (await metric(srv, 'actiongate_polls_direct_total')) === 2);
  await eio.post(sid, '4slow');
  assert.strictEqual((await c.response()).text, '4slow');
});

test('a partial request on a direct connection, then silence: the server closes it (h2o\'s request timeout)', async (t) => {
  const { srv, c } = await direct(t);
  c.send('GET /primus/?EIO=4&transport=polling');
  await until('the socket closed', () => c.closed, 20000); // h2o's http1.req_timeout is 10 s
  await until('the count', async () => (await metric(srv, 'actiongate_poll_connections_direct')) === 0);
});

test('pollDirect false: no GET is read by the node, the connection stays h2o\'s', async (t) => {
  const srv = await echoServer(t, { pollDirect: false });
  const eio = new Eio(srv.url);
  const { sid } = await eio.handshake();
  const c = rawConn(srv);
  for (let i = 0; i < 4; i++) assert.strictEqual((await getAnswered(eio, c, sid, `4m${i}`)).text, `4m${i}`);
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), 0);
  assert.strictEqual(await metric(srv, 'actiongate_poll_connections_direct'), 0);
});

test('general.accessLog: a direct GET writes its access line as h2o\'s logger does', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-direct-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'access.log');
  const { srv, eio, sid, c } = await direct(t, {}, { accessLog: file });
  assert.strictEqual((await getAnswered(eio, c, sid, '4three', [`Origin: ${ORIGIN}`, 'User-Agent: direct-test'])).text, '4three');
  assert.strictEqual(await metric(srv, 'actiongate_polls_direct_total'), 2);
  const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n')
    .filter((l) => l.includes(`GET ${pollPath(sid)} HTTP/1.1`));
  await until('three GET lines', () => lines().length >= 3);
  const l = lines();
  assert.strictEqual(l.length, 3);
  // the one h2o logged, then the two read here: status, body bytes, the user agent
  assert.match(l[0], / access 127\.0\.0\.1 "GET \/primus\/\?EIO=4&transport=polling&sid=[^ ]+ HTTP\/1\.1" 200 4 \d+ms ""$/);
  assert.match(l[1], / access 127\.0\.0\.1 "GET \/primus\/\?EIO=4&transport=polling&sid=[^ ]+ HTTP\/1\.1" 200 4 \d+ms ""$/);
  assert.match(l[2], / access 127\.0\.0\.1 "GET \/primus\/\?EIO=4&transport=polling&sid=[^ ]+ HTTP\/1\.1" 200 6 \d+ms "direct-test"$/);
});

// A room's lines to direct polling members go out in io_uring submits shared with SSE streams (general.ioUring); with
// "off" (or AG_IO_URING=off, the harness's plain pass) nothing is batched and every line still arrives.
const BATCHING = (process.env.AG_IO_URING || 'auto') !== 'off';

async function roomFanout(t, general) {
  const srv = await tracked(t, { general: { workers: 1, ...general }, servers: { websocket: { server: { pingInterval: 60000, pingTimeout: 60000 } } } });
  const members = [];
  for (let i = 0; i < 12; i++) {
    const agent = new http.Agent({ keepAlive: true });
    const socket = new Socket(srv.url, { path: '/primus/', transports: ['polling'], agent });
    srv.clients.push(() => { socket.close(); agent.destroy(); });
    const m = { socket, lines: [], answers: [] };
    socket.on('message', (raw) => {
      const f = JSON.parse(raw);
      if (f.context === 'user') m.lines.push(f.message);
      else m.answers.push(f);
    });
    await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
    socket.send(JSON.stringify({ event: 'roomAdd', room: 'defaultRoom', messageId: `j${i}` }));
    await until('the roomAdd answer', () => m.answers.some((a) => a.messageId === `j${i}`));
    members.push(m);
  }
  const talker = members[0].socket;
  const N = 40;
  for (let i = 0; i < N; i++) {
    talker.send(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `line ${i}` }));
    if (i % 10 === 9) await sleep(50);
  }
  const want = Array.from({ length: N }, (_, i) => `line ${i}`);
  for (const m of members) await until('every line', () => m.lines.length >= N);
  for (const m of members) assert.deepStrictEqual(m.lines, want);
  assert.ok((await metric(srv, 'actiongate_polls_direct_total')) > N);
  return batchMetrics(srv, 'poll');
}

test('a room fan-out to direct polling members: every line once, in order, the answers written in batches', async (t) => {
  const b = await roomFanout(t, {});
  if (BATCHING) {
    assert.strictEqual(b.ring, 1);
    assert.ok(b.submits > 0, `submits ${b.submits}`);
    assert.ok(b.whole > 0, `whole ${b.whole}`);
  } else {
    assert.deepStrictEqual(b, { ring: 0, submits: 0, whole: 0, rest: 0 });
  }
});

test('general.ioUring off: direct polling answers are not batched, every line still arrives', async (t) => {
  const b = await roomFanout(t, { ioUring: 'off' });
  assert.deepStrictEqual(b, { ring: 0, submits: 0, whole: 0, rest: 0 });
});
