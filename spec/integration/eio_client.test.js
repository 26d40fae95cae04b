'use strict';
// The stock engine.io-client 6.x against the engine.io endpoint (PROTOCOL.md §4): polling only, websocket only, the
// polling -> websocket upgrade with traffic in flight, the welcome frame first, and a proxy that strips Upgrade.
const test = require('node:test');
const assert = require('node:assert');
const { Socket } = require('engine.io-client');
const { startServer } = require('../lib/harness');
const { startStripProxy } = require('../lib/strip_upgrade_proxy');

const WELCOME = { welcome: 'Welcome to the actiongate api', context: 'api' };

function open(url, opts) {
  const socket = new Socket(url, { path: '/primus/', ...opts });
  const messages = [];
  const waiters = [];
  socket.on('message', (m) => {
    messages.push(m);
    for (const w of waiters.splice(0)) if (!w(m)) waiters.push(w);
  });
  const opened = new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const until = (n, timeoutMs = 10000) =>
    new Promise((resolve, reject) => {
      if (messages.length >= n) return resolve(messages.slice(0, n));
      const t = setTimeout(() => reject(new Error(`got ${messages.length} of ${n} messages`)), timeoutMs);
      waiters.push(() => {
        if (messages.length < n) return false;
        clearTimeout(t);
        resolve(messages.slice(0, n));
        return true;
      });
    });
  const closed = new Promise((resolve) => socket.once('close', (reason, desc) => resolve({ reason, desc })));
  return { socket, messages, opened, until, closed };
}

test('engine.io-client, session mode', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());

  // The replies' content is the session layer's (eio_session.test.js); here: the welcome first, and a round trip.
  const ROUND = (id) => `{"event":"detailsView","messageId":${id}}`;
  const replyTo = (m, id) => JSON.parse(m).messageId === id;

  await t.test('polling only: the welcome frame first, then a round trip', async () => {
    const c = open(srv.url, { transports: ['polling'] });
    await c.opened;
    assert.strictEqual(c.socket.transport.name, 'polling');
    const [w] = await c.until(1);
    assert.deepStrictEqual(JSON.parse(w), WELCOME);
    c.socket.send(ROUND(11));
    assert.ok(replyTo((await c.until(2))[1], 11));
    c.socket.close();
    assert.strictEqual((await c.closed).reason, 'forced close');
  });

  await t.test('websocket only: the welcome frame first', async () => {
    const c = open(srv.url, { transports: ['websocket'] });
    await c.opened;
    assert.strictEqual(c.socket.transport.name, 'websocket');
    const [w] = await c.until(1);
    assert.deepStrictEqual(JSON.parse(w), WELCOME);
    c.socket.send(ROUND(12));
    assert.ok(replyTo((await c.until(2))[1], 12));
    c.socket.close();
  });

  await t.test('polling -> websocket upgrade keeps the welcome first', async () => {
    const c = open(srv.url, { transports: ['polling', 'websocket'] });
    await c.opened;
    const upgraded = new Promise((r) => c.socket.once('upgrade', r));
    const [w] = await c.until(1);
    assert.deepStrictEqual(JSON.parse(w), WELCOME);
    await upgraded;
    assert.strictEqual(c.socket.transport.name, 'websocket');
    c.socket.send(ROUND(13));
    assert.ok(replyTo((await c.until(2))[1], 13));
    c.socket.close();
  });
});

test('engine.io-client, echo mode: 50 messages each way across the upgrade', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true } } } } });
  t.after(() => srv.stop());
  const c = open(srv.url, { transports: ['polling', 'websocket'] });
  await c.opened;
  const upgraded = new Promise((r) => c.socket.once('upgrade', r));
  // sent while polling, during the probe and after the upgrade: the echo must keep every one, in order
  const sent = [];
  for (let i = 0; i < 50; i++) {
    const m = i % 7 === 3 ? Buffer.from([i, 0, 255, 0x1e]) : `m${i} ü😀`;
    sent.push(m);
    c.socket.send(m);
    if (i % 5 === 0) await new Promise((r) => setImmediate(r));
    if (i === 25) await upgraded;
  }
  await upgraded;
  assert.strictEqual(c.socket.transport.name, 'websocket');
  const got = await c.until(50);
  assert.strictEqual(got.length, 50);
  for (let i = 0; i < 50; i++) {
    if (Buffer.isBuffer(sent[i])) assert.deepStrictEqual(Buffer.from(got[i]), sent[i], `message ${i}`);
    else assert.strictEqual(got[i], sent[i], `message ${i}`);
  }
  c.socket.close();
});

test('behind a proxy that strips Upgrade, engine.io-client stays on polling and works', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { echo: true } } } } });
  const proxy = await startStripProxy(srv.port);
  t.after(async () => {
    await proxy.close();
    await srv.stop();
  });
  const c = open(`http://127.0.0.1:${proxy.port}`, { transports: ['polling', 'websocket'] });
  await c.opened;
  let upgradeError = null;
  c.socket.on('upgradeError', (e) => (upgradeError = e));
  for (let i = 0; i < 10; i++) c.socket.send(`p${i}`);
  const got = await c.until(10);
  assert.deepStrictEqual(got, Array.from({ length: 10 }, (_, i) => `p${i}`));
  await new Promise((r) => setTimeout(r, 300));
  assert.strictEqual(c.socket.transport.name, 'polling');
  assert.ok(upgradeError, 'the websocket probe failed');
  c.socket.send('still');
  assert.strictEqual((await c.until(11))[10], 'still');
  c.socket.close();
});
