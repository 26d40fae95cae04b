'use strict';
// engine.io on a path of its own (servers.engineio.path, default /engine.io) answers everything there the way
// engine.io 6.6 does, a request without EIO included, while /primus keeps actionhero's answers; the socket.io path
// answers a request without EIO as socket.io does; servers.socketio.connectTimeout closes a session without CONNECT.
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { Socket } = require('engine.io-client');
const { startServer } = require('../lib/harness');
const { request } = require('../lib/eio_raw');
const { rawEngine } = require('../lib/sioclient');

const WELCOME = { welcome: 'Welcome to the actiongate api', context: 'api' };
const err = (code, message) => JSON.stringify({ code, message });

// Resolves {status, body} of a refused upgrade, or 'open' (with the first message) when the socket was accepted.
function upgrade(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('upgrade neither refused nor answered'));
    }, 5000);
    ws.on('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() });
      });
    });
    ws.on('error', () => {});
    ws.on('message', (m) => {
      clearTimeout(timer);
      ws.close();
      resolve({ status: 101, first: m.toString() });
    });
  });
}

test('the engine.io path answers as engine.io, /primus as actionhero', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const base = srv.url;
  const ws = base.replace('http', 'ws');

  await t.test('HTTP errors on /engine.io/ are engine.io\'s, a request without EIO included', async () => {
    const cases = [
      ['/engine.io/?transport=polling', {}, 400, err(5, 'Unsupported protocol version')],
      ['/engine.io?transport=polling', {}, 400, err(5, 'Unsupported protocol version')],
      ['/engine.io/?EIO=abc&transport=polling', {}, 400, err(5, 'Unsupported protocol version')],
      ['/engine.io/', {}, 400, err(0, 'Transport unknown')],
      ['/engine.io/?EIO=4', {}, 400, err(0, 'Transport unknown')],
      ['/engine.io/?EIO=4&transport=abc', {}, 400, err(0, 'Transport unknown')],
      ['/engine.io/?EIO=4&transport=polling', { method: 'POST', body: '4x' }, 400, err(2, 'Bad handshake method')],
      ['/engine.io/?transport=polling', { method: 'PUT' }, 400, err(2, 'Bad handshake method')],
      ['/engine.io/?EIO=4&transport=polling&sid=nope', {}, 400, err(1, 'Session ID unknown')],
      ['/engine.io/?transport=websocket', {}, 400, err(3, 'Bad request')],
    ];
    for (const [p, opts, status, body] of cases) {
      const res = await request(`${base}${p}`, opts);
      assert.strictEqual(res.status, status, `${opts.method || 'GET'} ${p}`);
      assert.strictEqual(res.headers['content-type'], 'application/json', p);
      assert.strictEqual(res.text, body, p);
    }
  });

  await t.test('a WebSocket upgrade without EIO on /engine.io/ is refused with engine.io\'s bare message', async () => {
    assert.deepStrictEqual(await upgrade(`${ws}/engine.io/?transport=websocket`), {
      status: 400,
      body: 'Unsupported protocol version',
    });
    assert.deepStrictEqual(await upgrade(`${ws}/engine.io/`), { status: 400, body: 'Transport unknown' });
    assert.deepStrictEqual(await upgrade(`${ws}/engine.io/?EIO=4&transport=abc`), { status: 400, body: 'Transport unknown' });
  });

  await t.test('/primus keeps the 426, the Primus socket and its EIO passthrough', async () => {
    const res = await request(`${base}/primus`);
    assert.strictEqual(res.status, 426);
    assert.strictEqual(res.text, 'Upgrade Required');
    const noEio = await request(`${base}/primus/?transport=polling`);
    assert.strictEqual(noEio.status, 426);
    const primus = await upgrade(`${ws}/primus`);
    assert.strictEqual(primus.status, 101);
    assert.deepStrictEqual(JSON.parse(primus.first), WELCOME);
    const eio = await request(`${base}/primus/?EIO=4&transport=polling`);
    assert.strictEqual(eio.status, 200);
    assert.match(eio.text, /^0\{"sid":/);
  });

  for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
    await t.test(`engine.io-client 6 on /engine.io/ over ${transports.join(' then ')} gets a connection`, async () => {
      const socket = new Socket(base, { path: '/engine.io/', transports });
      const first = new Promise((resolve, reject) => {
        socket.once('message', resolve);
        socket.once('error', reject);
      });
      assert.deepStrictEqual(JSON.parse(await first), WELCOME);
      socket.send(JSON.stringify({ event: 'detailsView', messageId: 1 }));
      const reply = await new Promise((resolve) => socket.once('message', resolve));
      const parsed = JSON.parse(reply);
      assert.strictEqual(parsed.status, 'OK');
      assert.strictEqual(parsed.messageId, 1);
      socket.close();
    });
  }
});

test('servers.engineio.path moves the endpoint; "" turns it off', async (t) => {
  const moved = await startServer({ config: { servers: { engineio: { path: '/eio' } } } });
  const off = await startServer({ config: { servers: { engineio: { path: '' } } } });
  t.after(async () => {
    await moved.stop();
    await off.stop();
  });
  const res = await request(`${moved.url}/eio/?transport=polling`);
  assert.strictEqual(res.text, err(5, 'Unsupported protocol version'));
  const open = await request(`${moved.url}/eio/?EIO=4&transport=polling`);
  assert.match(open.text, /^0\{"sid":/);
  for (const srv of [moved, off]) {
    const gone = await request(`${srv.url}/engine.io/?EIO=4&transport=polling`);
    assert.strictEqual(gone.status, 404);
  }
});

test('the socket.io path answers a request without EIO as socket.io does', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const res = await request(`${srv.url}/socket.io/?transport=polling`);
  assert.strictEqual(res.status, 400);
  assert.strictEqual(res.text, err(5, 'Unsupported protocol version'));
  const refused = await upgrade(`${srv.url.replace('http', 'ws')}/socket.io/?transport=websocket`);
  assert.deepStrictEqual(refused, { status: 400, body: 'Unsupported protocol version' });
  // the client script still answers at its own path under the socket.io path
  const script = await request(`${srv.url}/socket.io/socket.io.js`);
  assert.strictEqual(script.status, 200);
});

test('servers.socketio.connectTimeout closes a session that sends no CONNECT', async (t) => {
  const srv = await startServer({ config: { servers: { socketio: { connectTimeout: 300 } } } });
  t.after(() => srv.stop());
  const idle = await rawEngine(srv);
  const connected = await rawEngine(srv);
  connected.socket.send('0');
  assert.match(await connected.take(), /^0\{"sid":/);
  assert.strictEqual(await idle.closed, 'transport close');
  // the one that connected stays
  connected.socket.send('21["detailsView"]');
  assert.match(await connected.take((m) => m.startsWith('31')), /^31\[\{"status":"OK"/);
  connected.socket.close();
});
