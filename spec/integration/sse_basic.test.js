'use strict';
// The SSE transport (PROTOCOL.md §5) with the npm `eventsource` client plus POSTs, and raw reads for exact bytes:
// headers and prelude, the open event, ping/pong, LF and CR framing, keepalive comments, padding, replay after a cut
// TCP stream (nothing lost, nothing doubled), a newer stream replacing an older one, polling -> sse upgrade, the
// opt-in advertisement, recycling; over HTTP/1.x the stream on its own socket: the head, a close-delimited body, a
// client that sends bytes or closes its side.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { EventSource } = require('eventsource');
const { startServer } = require('../lib/harness');
const { Eio, sseOpen, sleep, request } = require('../lib/eio_raw');
const { metric } = require('../lib/metrics');

const SSE_CACHE = 'no-cache, no-store, no-transform, must-revalidate, max-age=0';

function sseServer(extra = {}, sse = {}) {
  return startServer({
    config: { servers: { websocket: { server: { echo: true, pingInterval: 5000, pingTimeout: 4000, upgradeTimeout: 1000, ...extra, sse: { keepaliveMs: 15000, ...sse } } } } },
  });
}

// A TCP proxy whose connections can be cut on demand (a network blip between client and server).
function cutProxy(targetPort) {
  const socks = new Set();
  const server = net.createServer((c) => {
    const u = net.connect(targetPort, '127.0.0.1');
    c.pipe(u);
    u.pipe(c);
    const pair = { c, u };
    socks.add(pair);
    const end = () => { c.destroy(); u.destroy(); socks.delete(pair); };
    c.on('error', end).on('close', end);
    u.on('error', end).on('close', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: server.address().port,
    cut: () => { for (const p of [...socks]) { p.c.destroy(); p.u.destroy(); } },
    close: () => new Promise((r) => { for (const p of socks) { p.c.destroy(); p.u.destroy(); } server.close(() => r()); }),
  })));
}

// An SSE session: raw handshake to learn the sid, then the stream is left (the session survives it).
async function sseSession(eio) {
  const st = await sseOpen(eio.url('transport=sse'));
  const open = await st.next();
  st.destroy();
  return JSON.parse(open.data.slice(1)).sid;
}

test('sse: exact bytes', async (t) => {
  const srv = await sseServer();
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('handshake over SSE: headers, the retry prelude, then the open event with id 1', async () => {
    const st = await sseOpen(eio.url('transport=sse'));
    assert.strictEqual(st.res.statusCode, 200);
    assert.strictEqual(st.res.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.strictEqual(st.res.headers['cache-control'], SSE_CACHE);
    assert.strictEqual(st.res.headers['x-accel-buffering'], 'no');
    const open = await st.next();
    assert.match(st.raw, /^retry: 2000\n\nid: 1\ndata: 0\{"sid":"[A-Za-z0-9_-]{22}","upgrades":\[\],"pingInterval":5000,"pingTimeout":4000,"maxPayload":1000000\}\n\n/);
    assert.strictEqual(open.id, '1');
    st.destroy();
  });

  await t.test('pad=1 starts with a 2 KiB comment', async () => {
    const st = await sseOpen(eio.url('transport=sse&pad=1'));
    await st.next();
    assert.ok(st.raw.startsWith(':' + ' '.repeat(2048) + '\nretry: '));
    st.destroy();
  });

  await t.test('LF splits into data lines, CR goes as event: j with a JSON string', async () => {
    const st = await sseOpen(eio.url('transport=sse'));
    const open = await st.next();
    const sid = JSON.parse(open.data.slice(1)).sid;
    const before = st.raw.length;
    await eio.post(sid, '4line1\nline2\n', { transport: 'sse' });
    const lf = await st.next((e) => e.id === '2');
    assert.strictEqual(lf.payload, '4line1\nline2\n');
    await eio.post(sid, '4a\rb\r\nc"\\', { transport: 'sse' });
    const cr = await st.next((e) => e.id === '3');
    assert.strictEqual(cr.event, 'j');
    assert.strictEqual(cr.payload, '4a\rb\r\nc"\\');
    assert.strictEqual(st.raw.slice(before),
      'id: 2\ndata: 4line1\ndata: line2\ndata: \n\n' + 'id: 3\nevent: j\ndata: "4a\\rb\\r\\nc\\"\\\\"\n\n');
    st.destroy();
  });

  await t.test('binary as b<base64>, UTF-8 intact, replayed after the open event id', async () => {
    const [resumes, replayed] = [await metric(srv, 'actiongate_sse_resumes_total'), await metric(srv, 'actiongate_sse_replayed_events_total')];
    const sid = await sseSession(eio);
    // written to a stream first (ids 2 and 3), then cut: the reconnect gets them again
    const first = await sseOpen(eio.url(`transport=sse&sid=${sid}`));
    await eio.post(sid, 'bAQID\x1e4😀', { transport: 'sse' });
    assert.deepStrictEqual([await first.next(), await first.next()].map((e) => e.id), ['2', '3']);
    first.destroy();
    const st = await sseOpen(eio.url(`transport=sse&sid=${sid}`), { 'last-event-id': '1' });
    const evs = [await st.next(), await st.next()];
    assert.deepStrictEqual(evs.map((e) => [e.id, e.payload]), [['2', 'bAQID'], ['3', '4😀']]);
    assert.strictEqual(await metric(srv, 'actiongate_sse_resumes_total'), resumes + 1);
    assert.strictEqual(await metric(srv, 'actiongate_sse_replayed_events_total'), replayed + 2);
    await eio.post(sid, 'b/w==', { transport: 'sse' });
    assert.strictEqual((await st.next()).payload, 'b/w==');
    st.destroy();
  });

  await t.test('the open packet is unchanged without sse=1, advertises sse with it', async () => {
    const plain = await request(eio.url('transport=polling'));
    assert.match(plain.text, /"upgrades":\["websocket"\],/);
    const opted = await request(eio.url('transport=polling&sse=1'));
    assert.match(opted.text, /^0\{"sid":"[^"]+","upgrades":\["websocket","sse"\],"pingInterval":5000,"pingTimeout":4000,"maxPayload":1000000\}$/);
  });

  await t.test('polling -> sse upgrade: 2probe by POST, 3probe as an event, noop to the GET, 5, then polling is refused', async () => {
    const { sid } = await eio.handshake('&sse=1');
    const held = eio.poll(sid);
    await sleep(30);
    const st = await sseOpen(eio.url(`transport=sse&sid=${sid}`));
    await eio.post(sid, '2probe', { transport: 'sse' });
    const probe = await st.next();
    assert.strictEqual(probe.payload, '3probe');
    assert.strictEqual((await held).text, '6');
    await eio.post(sid, '4queued', { transport: 'polling' });
    assert.strictEqual((await eio.post(sid, '5', { transport: 'sse' })).text, 'ok');
    assert.strictEqual((await st.next()).payload, '4queued');
    assert.strictEqual((await eio.poll(sid)).text, JSON.stringify({ code: 3, message: 'Bad request' }));
    await eio.post(sid, '4over sse', { transport: 'sse' });
    assert.strictEqual((await st.next()).payload, '4over sse');
    st.destroy();
  });

  await t.test('a newer stream replaces the older one', async () => {
    const sid = await sseSession(eio);
    const a = await sseOpen(eio.url(`transport=sse&sid=${sid}`));
    const b = await sseOpen(eio.url(`transport=sse&sid=${sid}`));
    await a.ended;
    await eio.post(sid, '4to b', { transport: 'sse' });
    assert.strictEqual((await b.next()).payload, '4to b');
    assert.ok(!a.events.some((e) => e.payload === '4to b'));
    b.destroy();
  });
});

test('sse: heartbeat and keepalive', async (t) => {
  const srv = await sseServer({ pingInterval: 300, pingTimeout: 400 }, { keepaliveMs: 100 });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('pings as events, pongs by POST keep the session; keepalive comments in silence', async () => {
    const st = await sseOpen(eio.url('transport=sse'));
    const sid = JSON.parse((await st.next()).data.slice(1)).sid;
    for (let i = 0; i < 3; i++) {
      const ping = await st.next((e) => e.payload === '2');
      assert.match(ping.id, /^\d+$/);
      assert.strictEqual((await eio.post(sid, '3', { transport: 'sse' })).text, 'ok');
    }
    assert.ok(st.comments.length >= 1, 'a ":" comment between pings');
    const close = await st.next((e) => e.payload === '1', 3000);
    assert.ok(close, 'no pong: the close packet');
    await st.ended;
  });
});

test('sse with the eventsource client', async (t) => {
  const srv = await sseServer({}, { recycleBytes: 400 });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);

  await t.test('handshake with EventSource: the open packet is the first message, with id 1', async () => {
    const es = new EventSource(eio.url('transport=sse'));
    const first = await new Promise((resolve, reject) => {
      es.onmessage = resolve;
      es.onerror = reject;
    });
    es.close();
    assert.match(first.data, /^0\{"sid":"[A-Za-z0-9_-]{22}","upgrades":\[\],"pingInterval":5000,"pingTimeout":4000,"maxPayload":1000000\}$/);
    assert.strictEqual(first.lastEventId, '1');
  });

  await t.test('upstream POST over maxHttpBufferSize is 413, as for polling', async () => {
    const sid = await sseSession(eio);
    assert.strictEqual((await eio.post(sid, '4' + 'x'.repeat(1000000), { transport: 'sse' })).status, 413);
  });

  await t.test('open event, messages in order across recycled streams, no duplicates', async () => {
    const sid = await sseSession(eio);
    const got = [];
    const ids = [];
    let opens = 0;
    const es = new EventSource(eio.url(`transport=sse&sid=${sid}`));
    es.onmessage = (e) => { got.push(...e.data.split('\x1e')); ids.push(Number(e.lastEventId)); };
    es.onopen = () => opens++;
    while (opens === 0) await sleep(10);
    for (let i = 0; i < 30; i++) {
      assert.strictEqual((await eio.post(sid, `4message number ${i}`, { transport: 'sse' })).text, 'ok');
      await sleep(10);
    }
    for (let i = 0; i < 200 && got.filter((g) => g.startsWith('4')).length < 30; i++) await sleep(25);
    es.close();
    assert.ok(opens >= 2, `the stream was recycled (${opens} opens)`);
    const msgs = got.filter((g) => g.startsWith('4'));
    assert.deepStrictEqual(msgs, Array.from({ length: 30 }, (_, i) => `4message number ${i}`));
    assert.deepStrictEqual(ids, [...ids].sort((a, b) => a - b));
    assert.strictEqual(new Set(ids).size, ids.length);
  });

  await t.test('Last-Event-ID replay after the TCP stream is cut mid-stream: nothing lost, nothing doubled', async () => {
    const proxy = await cutProxy(srv.port);
    try {
      const sid = await sseSession(eio);
      const got = [];
      let opens = 0;
      const es = new EventSource(`http://127.0.0.1:${proxy.port}/primus/?EIO=4&transport=sse&sid=${sid}`);
      es.onmessage = (e) => got.push(...e.data.split('\x1e'));
      es.onopen = () => opens++;
      while (opens === 0) await sleep(10);
      for (let i = 0; i < 40; i++) {
        await eio.post(sid, `4m${i}`, { transport: 'sse' });
        if (i === 15) proxy.cut();
        await sleep(5);
      }
      for (let i = 0; i < 200 && got.filter((g) => g.startsWith('4')).length < 40; i++) await sleep(25);
      es.close();
      assert.ok(opens >= 2, 'the client reconnected');
      assert.deepStrictEqual(got.filter((g) => g.startsWith('4')), Array.from({ length: 40 }, (_, i) => `4m${i}`));
    } finally {
      await proxy.close();
    }
  });

  await t.test('lastEventId in the query replays too', async () => {
    const sid = await sseSession(eio);
    const first = await sseOpen(eio.url(`transport=sse&sid=${sid}`));
    for (let i = 0; i < 3; i++) await eio.post(sid, `4q${i}`, { transport: 'sse' });
    assert.deepStrictEqual([await first.next(), await first.next(), await first.next()].map((e) => e.id), ['2', '3', '4']);
    first.destroy();
    const st = await sseOpen(eio.url(`transport=sse&sid=${sid}&lastEventId=2`));
    const evs = [await st.next(), await st.next()];
    assert.deepStrictEqual(evs.map((e) => e.payload), ['4q1', '4q2']);
    assert.deepStrictEqual(evs.map((e) => e.id), ['3', '4']);
    st.destroy();
  });
});

// Over HTTP/1.x the stream is taken off h2o's request (h2o_http1_upgrade): the head says "Connection: upgrade" and
// "connection: close", the body is close-delimited, the node reads the socket itself, so a client that goes away or
// sends bytes is seen at once.
test('sse: the HTTP/1.x stream on its own socket', async (t) => {
  const srv = await sseServer();
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const port = Number(new URL(srv.url).port);

  // A raw TCP stream: everything the server writes, and whether it closed the connection.
  function rawStream(path, extra = '') {
    const sock = net.connect(port, '127.0.0.1');
    const st = { text: '', closed: false };
    sock.setEncoding('utf8');
    sock.on('data', (d) => { st.text += d; });
    st.ended = new Promise((r) => sock.on('close', () => { st.closed = true; r(); }));
    sock.on('error', () => {});
    sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n${extra}`);
    st.sock = sock;
    st.waitFor = async (re) => {
      for (let i = 0; i < 200 && !re.test(st.text) && !st.closed; i++) await sleep(10);
      return re.test(st.text);
    };
    return st;
  }
  const path = (q) => `/primus/?EIO=4&transport=sse${q}`;

  await t.test('the head: 200, event-stream, no length and no chunks; the body ends with the connection', async () => {
    const st = rawStream(path(''));
    assert.ok(await st.waitFor(/\r\n\r\nretry: 2000\n\nid: 1\ndata: 0\{/), st.text);
    const head = st.text.slice(0, st.text.indexOf('\r\n\r\n')).split('\r\n');
    assert.strictEqual(head[0], 'HTTP/1.1 200 OK');
    const names = head.slice(1).map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
    assert.ok(!names.includes('content-length') && !names.includes('transfer-encoding'), head.join('\n'));
    const conn = head.slice(1).filter((l) => /^connection:/i.test(l)).map((l) => l.slice(11).trim().toLowerCase());
    assert.deepStrictEqual(conn, ['upgrade', 'close']);
    assert.ok(head.includes('content-type: text/event-stream; charset=utf-8'));
    const sid = JSON.parse(/data: 0(\{.*\})\n/.exec(st.text)[1]).sid;
    // a newer stream ends this one: the server closes the connection, which is the body's end
    const b = await sseOpen(eio.url(`transport=sse&sid=${sid}`));
    await st.ended;
    assert.ok(st.closed);
    b.destroy();
  });

  await t.test('a client that sends bytes on its stream is cut; the session stays for the reconnect', async () => {
    const st = rawStream(path(''));
    assert.ok(await st.waitFor(/id: 1\ndata: 0\{.*\}\n\n/), st.text);
    const sid = JSON.parse(/data: 0(\{.*\})\n/.exec(st.text)[1]).sid;
    st.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(64));
    await Promise.race([st.ended, sleep(3000)]);
    assert.ok(st.closed, 'the server closed the stream');
    const again = await sseOpen(eio.url(`transport=sse&sid=${sid}`), { 'last-event-id': '1' });
    await eio.post(sid, '4still here', { transport: 'sse' });
    assert.strictEqual((await again.next()).payload, '4still here');
    again.destroy();
  });

  await t.test('bytes sent along with the request cut the stream too', async () => {
    const st = rawStream(path(''), 'x'.repeat(100));
    await Promise.race([st.ended, sleep(3000)]);
    assert.ok(st.closed, 'the server closed the stream');
  });

  await t.test('a stream the client closed is seen at once: what follows waits for the reconnect, in one event', async () => {
    const st = rawStream(path(''));
    assert.ok(await st.waitFor(/id: 1\ndata: 0\{.*\}\n\n/), st.text);
    const sid = JSON.parse(/data: 0(\{.*\})\n/.exec(st.text)[1]).sid;
    // the client's FIN: keepaliveMs is 15 s, so no write finds it; the node's read does, and it closes its side
    st.sock.end();
    await Promise.race([st.ended, sleep(3000)]);
    assert.ok(st.closed, 'the server closed the stream the client had closed');
    for (let i = 0; i < 3; i++) await eio.post(sid, `4q${i}`, { transport: 'sse' });
    const again = await sseOpen(eio.url(`transport=sse&sid=${sid}`), { 'last-event-id': '1' });
    const ev = await again.next();
    assert.deepStrictEqual([ev.id, ev.payload], ['2', '4q0\x1e4q1\x1e4q2']);
    again.destroy();
  });
});
