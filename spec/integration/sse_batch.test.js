'use strict';
// A room's lines to HTTP/1.x SSE members written in io_uring batches (general.ioUring, README "Design"): members on
// the stock `eventsource` client get every line once and in order and the batches show in /metrics; a member whose
// socket is full (a raw client that stops reading) gets the rest through the normal write with its byte stream
// intact; the slow-consumer rule still drops a member over the bound; with general.ioUring "off" nothing is batched.
// Under AG_IO_URING=off (the harness) the whole suite takes the plain path.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { EventSource } = require('eventsource');
const { startServer } = require('../lib/harness');
const { batchMetrics } = require('../lib/metrics');
const { connect } = require('../lib/wsclient');
const { Eio, sleep } = require('../lib/eio_raw');

const BATCHING = (process.env.AG_IO_URING || 'auto') !== 'off';

const metrics = (srv) => batchMetrics(srv, 'sse');

async function until(cond, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// Takes an SSE event's data (one or more engine.io packets, separated by \x1e) into m: chat lines in m.lines (a long
// one as "<its prefix before ':'>:<length>", so a flood keeps little), the rest in m.packets.
function take(m, data) {
  for (const p of data.split('\x1e')) {
    const f = p[0] === '4' ? JSON.parse(p.slice(1)) : null;
    if (f === null || f.context !== 'user') m.packets.push(p);
    else m.lines.push(f.message.length > 100 ? `${f.message.slice(0, f.message.indexOf(':'))}:${f.message.length}` : f.message);
  }
}

// One server, one loop: the members share their worker's batches (and /metrics speaks for that worker). Its clients
// are closed before it stops, whatever the test did (an EventSource left open would reconnect for ever).
async function batchServer(t, server = {}, general = {}) {
  const srv = await startServer({ config: { general: { workers: 1, ...general }, servers: { websocket: { server } } } });
  srv.clients = [];
  t.after(async () => {
    for (const close of srv.clients) close();
    await srv.stop();
  });
  return srv;
}

async function primus(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  srv.clients.push(() => c.close());
  await c.welcome();
  assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
  return c;
}

// Has the session sid join defaultRoom with a POST (the SSE stream's upstream) and waits for the answer on the stream.
async function joinRoom(eio, m) {
  const id = `join-${m.sid}`;
  const r = await eio.post(m.sid, `4${JSON.stringify({ event: 'roomAdd', room: 'defaultRoom', messageId: id })}`, { transport: 'sse' });
  assert.strictEqual(r.text, 'ok');
  const answer = () => m.packets.find((p) => p.includes(`"messageId":"${id}"`));
  await until(() => answer() !== undefined, 'the roomAdd answer');
  assert.strictEqual(JSON.parse(answer().slice(1)).status, 'OK');
}

// A member on the `eventsource` client, in defaultRoom.
async function sseMember(srv) {
  const eio = new Eio(srv.url);
  const m = { es: new EventSource(eio.url('transport=sse')), packets: [], lines: [] };
  srv.clients.push(() => m.es.close());
  m.es.onmessage = (e) => take(m, e.data);
  await until(() => m.packets.length > 0, 'the open packet');
  m.sid = JSON.parse(m.packets[0].slice(1)).sid;
  await joinRoom(eio, m);
  return m;
}

// A member reading its stream over a raw socket it can stop reading: every byte the server wrote, in order.
async function rawMember(srv) {
  const eio = new Eio(srv.url);
  const sock = net.connect(srv.port, '127.0.0.1');
  srv.clients.push(() => sock.destroy());
  const m = { sock, closed: false, packets: [], lines: [] };
  // the events, parsed from the exact bytes as they come (a byte lost, doubled or moved breaks the framing or the
  // JSON): the head, then "id: N\ndata: ...\n\n" events and comments
  let buf = '';
  let head = true;
  sock.setEncoding('latin1');
  sock.on('data', (d) => {
    buf += d;
    if (head) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(buf, /^HTTP\/1\.1 200 OK\r\n/);
      buf = buf.slice(end + 4);
      head = false;
    }
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, end).split('\n');
      buf = buf.slice(end + 2);
      const bad = ev.filter((l) => !/^(id: \d+|data: .*|retry: \d+|:.*)$/.test(l));
      assert.deepStrictEqual(bad, [], 'SSE framing');
      const data = ev.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      if (data.length) take(m, Buffer.from(data.join('\n'), 'latin1').toString('utf8'));
    }
  });
  sock.on('error', () => {});
  m.ended = new Promise((r) => sock.on('close', () => r((m.closed = true))));
  sock.write('GET /primus/?EIO=4&transport=sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
  await until(() => m.packets.length > 0, 'the open packet');
  m.sid = JSON.parse(m.packets[0].slice(1)).sid;
  await joinRoom(eio, m);
  return m;
}

test('a room of SSE members: every line once, in order, written in batches', async (t) => {
  const srv = await batchServer(t);
  const talker = await primus(srv);
  const members = [];
  for (let i = 0; i < 8; i++) members.push(await sseMember(srv));
  const before = await metrics(srv);
  const N = 60;
  for (let i = 0; i < N; i++) talker.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `line ${i}` }));
  const want = Array.from({ length: N }, (_, i) => `line ${i}`);
  for (const m of members) await until(() => m.lines.length >= N, 'the lines on SSE');
  await talker.request({ event: 'detailsView' }); // a round trip later: nothing more came
  for (const m of members) assert.deepStrictEqual(m.lines, want);
  const after = await metrics(srv);
  if (BATCHING) {
    assert.strictEqual(after.ring, 1, 'the ring is up');
    assert.ok(after.submits > before.submits, 'lines went out in submits');
    // each line reaches the eight members in one loop iteration: its writes share a submit
    assert.ok(after.whole - before.whole >= 8, `batched writes: ${after.whole - before.whole}`);
  } else {
    assert.deepStrictEqual(after, { ring: 0, submits: 0, whole: 0, rest: 0 });
  }
});

test('a member whose socket is full gets the rest through the normal write, every byte in order', async (t) => {
  // queues large enough that the member who stops reading is not disconnected as slow while its socket fills
  const srv = await batchServer(t, { queueMaxBytes: 67108864, queueMaxFrames: 100000, maxLength: 131072, maxHttpBufferSize: 131072 });
  const stalled = await rawMember(srv);
  const observer = await sseMember(srv);
  const talker = await primus(srv);
  stalled.sock.pause();
  const chunk = 'y'.repeat(30000);
  const base = await metrics(srv);
  let sent = 0;
  let rest = 0;
  // Rounds of 300 kB until a batched send to the stalled member came back short or refused (the kernel's buffers
  // absorb several MB first), then two rounds more: those wait in the server's buffer and go through h2o's write.
  const deadline = Date.now() + 60000;
  let extra = -1;
  for (let round = 0; round < 200 && Date.now() < deadline && extra !== 0; round++) {
    for (let i = 0; i < 10; i++, sent++)
      talker.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `${sent}:${chunk}` }));
    await until(() => observer.lines.length >= sent, 'the observer', 10000);
    talker.frames.length = 0;
    if (extra > 0) extra--;
    else if (extra < 0 && BATCHING && (rest = (await metrics(srv)).rest - base.rest) > 0) extra = 2;
    else if (extra < 0 && !BATCHING && round === 20) extra = 0; // no batches to wait for: the plain path fills it
  }
  if (BATCHING) assert.ok(rest > 0, 'a batched send to the stalled member left a rest for the normal write');
  assert.ok(!stalled.closed, 'the stalled member is still connected');
  // it reads again: every line arrives once, in order, whole
  stalled.sock.resume();
  await until(() => stalled.lines.length >= sent, 'the stalled member catching up', 30000);
  await talker.request({ event: 'detailsView' }, 10000);
  await sleep(100); // a round trip and a moment later: nothing more came
  const want = Array.from({ length: sent }, (_, i) => `${i}:${String(i).length + 1 + chunk.length}`);
  assert.deepStrictEqual(stalled.lines, want);
  assert.deepStrictEqual(observer.lines, want);
});

test('a stalled SSE member over the queue bound is dropped as a slow consumer; the others get every line', async (t) => {
  const srv = await batchServer(t, { queueMaxBytes: 262144, maxLength: 131072, maxHttpBufferSize: 131072 }, { logLevel: 'debug' });
  const stalled = await rawMember(srv);
  const observer = await sseMember(srv);
  const talker = await primus(srv);
  stalled.sock.pause();
  const chunk = 'x'.repeat(8000);
  let sent = 0;
  const slow = () => /closed: slow consumer/.test(srv.stderr);
  for (let round = 0; round < 200 && !slow(); round++) {
    for (let i = 0; i < 10; i++, sent++)
      talker.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `${sent}:${chunk}` }));
    await talker.request({ event: 'detailsView' }, 10000);
    talker.frames.length = 0;
  }
  assert.ok(slow(), 'a member was closed as a slow consumer');
  assert.strictEqual((srv.stderr.match(/closed: slow consumer/g) || []).length, 1, 'only the stalled member');
  const want = Array.from({ length: sent }, (_, i) => `${i}:${String(i).length + 1 + chunk.length}`);
  await until(() => observer.lines.length >= sent, 'the observer', 20000);
  assert.deepStrictEqual(observer.lines, want);
  // the stalled member's stream ends once the server gave up on it (its socket is closed after what it holds)
  stalled.sock.resume();
  await Promise.race([stalled.ended, sleep(10000)]);
  assert.ok(stalled.closed, 'the stalled member was cut');
  const got = stalled.lines;
  assert.ok(got.length < sent, 'the stalled member did not get everything');
  assert.deepStrictEqual(got, want.slice(0, got.length), 'what it got is in order');
});

test('general.ioUring "off": nothing is batched', async (t) => {
  const srv = await batchServer(t, {}, { ioUring: 'off' });
  const talker = await primus(srv);
  const members = [];
  for (let i = 0; i < 4; i++) members.push(await sseMember(srv));
  for (let i = 0; i < 5; i++) talker.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: `plain ${i}` }));
  for (const m of members) await until(() => m.lines.length >= 5, 'the lines');
  for (const m of members) assert.deepStrictEqual(m.lines, ['plain 0', 'plain 1', 'plain 2', 'plain 3', 'plain 4']);
  assert.deepStrictEqual(await metrics(srv), { ring: 0, submits: 0, whole: 0, rest: 0 });
});
