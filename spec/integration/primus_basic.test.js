'use strict';
// The plain /primus endpoint's HTTP side and Primus control frames (PROTOCOL.md §1, §3).
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

test('primus endpoint', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());

  await t.test('GET /primus without Upgrade is 426 Upgrade Required', async () => {
    const res = await fetch(`${srv.url}/primus`);
    assert.strictEqual(res.status, 426);
    assert.strictEqual(res.headers.get('content-type'), 'text/plain');
    assert.strictEqual(await res.text(), 'Upgrade Required');
  });

  await t.test('GET /primus/spec describes the endpoint', async () => {
    const res = await fetch(`${srv.url}/primus/spec`);
    assert.strictEqual(res.status, 200);
    const spec = await res.json();
    assert.deepStrictEqual(Object.keys(spec), ['pingInterval', 'pathname', 'version', 'parser', 'transformer']);
    assert.strictEqual(spec.pathname, '/primus');
    assert.strictEqual(spec.parser, 'json');
    assert.strictEqual(spec.pingInterval, 30000);
  });

  await t.test('the welcome frame comes first, exactly', async () => {
    const c = await connect(`${srv.wsUrl}/primus?sessionID=abc&_primuscb=x`);
    const first = await c.next(() => true);
    assert.deepStrictEqual(first, { welcome: 'Welcome to the actiongate api', context: 'api' });
    await c.close();
  });

  await t.test('"primus::id::" is answered with the connection id', async () => {
    const c = await connect(`${srv.wsUrl}/primus`);
    await c.welcome();
    c.sendRaw(JSON.stringify('primus::id::'));
    const f = await c.next((x) => typeof x === 'string' && x.startsWith('primus::id::'));
    assert.match(f, /^primus::id::[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await c.close();
  });
});

test('primus heartbeat drops a peer that does not pong, keeps one that does', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { primusPingInterval: 200 } } } } });
  t.after(() => srv.stop());
  const silent = await connect(`${srv.wsUrl}/primus`, { noPong: true });
  const live = await connect(`${srv.wsUrl}/primus`);
  const ping = await live.next((f) => typeof f === 'string' && f.startsWith('primus::ping::'), 2000);
  assert.match(ping, /^primus::ping::\d{13}$/);
  const closed = await silent.closed;
  // closed without "primus::server::close", so the client reconnects
  assert.ok(!silent.frames.includes('primus::server::close'));
  assert.strictEqual(closed.code, 1005);
  await new Promise((r) => setTimeout(r, 600));
  assert.strictEqual(live.ws.readyState, 1, 'a ponging client stays connected');
  await live.close();
});

test('frames over maxLength close the socket with 1009', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { maxLength: 1024 } } } } });
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  c.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: 'x'.repeat(2000) }));
  const closed = await c.closed;
  assert.strictEqual(closed.code, 1009);
  // the server is still fine
  const d = await connect(`${srv.wsUrl}/primus`);
  await d.welcome();
  await d.close();
});

test('SIGTERM with destroyClientsOnShutdown sends primus::server::close and exits 0', async () => {
  const srv = await startServer({ config: { servers: { websocket: { destroyClientsOnShutdown: true } } } });
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const stopped = srv.stop();
  await c.next((f) => f === 'primus::server::close');
  await c.closed;
  const res = await stopped;
  assert.strictEqual(res.code, 0);
});

test('SIGTERM without destroyClientsOnShutdown closes without primus::server::close', async () => {
  const srv = await startServer();
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const stopped = srv.stop();
  await c.closed;
  assert.ok(!c.frames.includes('primus::server::close'));
  assert.strictEqual((await stopped).code, 0);
});

test('a quiet socket sleeps and wakes transparently (heartbeats, big frames, fragments)', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { primusPingInterval: 600 } } } } });
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  const idRe = /^primus::id::[0-9a-f-]{36}$/;
  // heartbeats keep flowing while the socket sleeps between them (pings written directly, pongs wake it)
  await new Promise((r) => setTimeout(r, 2600));
  const pings = c.frames.filter((f) => typeof f === 'string' && f.startsWith('primus::ping::'));
  assert.ok(pings.length >= 3, `pings while idle: ${pings.length}`);
  assert.strictEqual(c.ws.readyState, 1);
  // a frame larger than any read buffer, then a request: answered in order
  c.sendRaw(JSON.stringify({ event: 'noSuchVerb', pad: 'x'.repeat(100000) }));
  c.sendRaw(JSON.stringify('primus::id::'));
  assert.match(await c.next((f) => typeof f === 'string' && f.startsWith('primus::id::')), idRe);
  await c.close();
});

test('a message split in fragments around a quiet period is reassembled, not lost', async (t) => {
  // default heartbeat: a pong in the middle of a fragmented message would be an interleaved data frame
  const srv = await startServer();
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  await new Promise((r) => setTimeout(r, 1500));
  c.ws.send('"primus::', { fin: false });
  await new Promise((r) => setTimeout(r, 2500));
  c.ws.send('id::"', { fin: true });
  assert.match(await c.next((f) => typeof f === 'string' && f.startsWith('primus::id::')), /^primus::id::[0-9a-f-]{36}$/);
  await c.close();
});
