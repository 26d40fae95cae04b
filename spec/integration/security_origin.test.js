'use strict';
// The origins list (servers.websocket.server.origins) on every endpoint a browser can reach with its cookies: the plain
// /primus WebSocket, every engine.io request (with or without a sid, every transport), socket.io, and /api (CORS that
// reflects only listed origins, with Vary: Origin). Requests without an Origin header (non-browser clients) pass.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startServer, BIN } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { Eio, request, sseOpen } = require('../lib/eio_raw');

const GOOD = 'https://good.example';
const EVIL = 'https://evil.example';
const FORBIDDEN = JSON.stringify({ code: 4, message: 'Forbidden' });

// Resolves with the HTTP status a refused WebSocket handshake got, or 101 when it opened (then closes it).
function wsStatus(url, headers) {
  const WebSocket = require('ws');
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      resolve(res.statusCode);
    });
    ws.once('error', reject);
  });
}

test('origins listed: every endpoint refuses a foreign Origin', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { origins: [GOOD] } } } } });
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const sio = new Eio(srv.url, '/socket.io/');

  await t.test('/primus WebSocket: evil Origin refused with 403; listed Origin and no Origin accepted', async () => {
    assert.strictEqual(await wsStatus(`${srv.wsUrl}/primus`, { origin: EVIL }), 403);
    assert.strictEqual(await wsStatus(`${srv.wsUrl}/primus`, { origin: 'null' }), 403);
    const good = await connect(`${srv.wsUrl}/primus`, { headers: { origin: GOOD } });
    assert.strictEqual((await good.welcome()).context, 'api');
    await good.close();
    const plain = await connect(`${srv.wsUrl}/primus`);
    assert.strictEqual((await plain.welcome()).context, 'api');
    await plain.close();
  });

  await t.test('engine.io: a request carrying an existing sid is checked too (GET, POST, SSE, WebSocket)', async () => {
    const hs = await request(eio.url('transport=polling'), { headers: { origin: GOOD } });
    assert.strictEqual(hs.status, 200);
    assert.strictEqual(hs.headers['access-control-allow-origin'], GOOD);
    assert.match(hs.headers.vary, /Origin/);
    const sid = JSON.parse(hs.text.slice(1)).sid;
    const q = `sid=${encodeURIComponent(sid)}`;

    let res = await request(eio.url(`transport=polling&${q}`), { headers: { origin: EVIL } });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.text, FORBIDDEN);
    assert.strictEqual(res.headers['access-control-allow-origin'], undefined);
    res = await request(eio.url(`transport=polling&${q}`), {
      method: 'POST', headers: { origin: EVIL, 'content-type': 'text/plain' }, body: '4{"event":"say","room":"defaultRoom","message":"x"}',
    });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.text, FORBIDDEN);
    res = await request(eio.url(`transport=sse&${q}`), { headers: { origin: EVIL, accept: 'text/event-stream' } });
    assert.strictEqual(res.status, 403);
    assert.notStrictEqual(await wsStatus(eio.url(`transport=websocket&${q}`).replace(/^http/, 'ws'), { origin: EVIL }), 101);
    res = await request(eio.url(`transport=polling&${q}`), { method: 'OPTIONS', headers: { origin: EVIL, 'access-control-request-method': 'POST' } });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.headers['access-control-allow-origin'], undefined);

    // the session itself is untouched: the listed origin still polls it (the welcome is waiting)
    res = await request(eio.url(`transport=polling&${q}`), { headers: { origin: GOOD } });
    assert.strictEqual(res.status, 200);
    assert.match(res.text, /^4\{"welcome"/);
    // and a client without an Origin header (not a browser) is not a browser attack
    res = await request(eio.url(`transport=polling&${q}`), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '1' });
    assert.strictEqual(res.status, 200);
  });

  await t.test('engine.io handshakes over SSE and WebSocket refuse the evil Origin', async () => {
    const res = await request(eio.url('transport=sse'), { headers: { origin: EVIL, accept: 'text/event-stream' } });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.text, FORBIDDEN);
    assert.notStrictEqual(await wsStatus(eio.url('transport=websocket').replace(/^http/, 'ws'), { origin: EVIL }), 101);
    assert.strictEqual(await wsStatus(eio.url('transport=websocket').replace(/^http/, 'ws'), { origin: GOOD }), 101);
    const st = await sseOpen(eio.url('transport=sse'), { origin: GOOD });
    assert.strictEqual(st.res.statusCode, 200);
    st.destroy();
  });

  await t.test('socket.io: handshake and requests with a sid refuse the evil Origin', async () => {
    let res = await request(sio.url('transport=polling'), { headers: { origin: EVIL } });
    assert.strictEqual(res.status, 403);
    const hs = await request(sio.url('transport=polling'), { headers: { origin: GOOD } });
    assert.strictEqual(hs.status, 200);
    const sid = JSON.parse(hs.text.slice(1)).sid;
    res = await request(sio.url(`transport=polling&sid=${encodeURIComponent(sid)}`), {
      method: 'POST', headers: { origin: EVIL, 'content-type': 'text/plain' }, body: '40',
    });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.text, FORBIDDEN);
    assert.notStrictEqual(await wsStatus(sio.url(`transport=websocket&sid=${encodeURIComponent(sid)}`).replace(/^http/, 'ws'), { origin: EVIL }), 101);
  });

  await t.test('/api: a listed Origin is reflected with Vary: Origin; a foreign one is refused and never reflected', async () => {
    let res = await fetch(`${srv.url}/api/randomNumber`, { headers: { origin: GOOD } });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), GOOD);
    assert.match(res.headers.get('vary'), /Origin/);
    assert.strictEqual(res.headers.get('access-control-allow-credentials'), null);
    await res.arrayBuffer();

    res = await fetch(`${srv.url}/api/randomNumber`, { headers: { origin: EVIL } });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), null);
    assert.match(res.headers.get('vary'), /Origin/);
    assert.deepStrictEqual(await res.json(), { error: 'origin not allowed' });
    res = await fetch(`${srv.url}/api/randomNumber`, { method: 'POST', headers: { origin: 'null', 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
    assert.strictEqual(res.status, 403);
    await res.arrayBuffer();
    res = await fetch(`${srv.url}/api/randomNumber`, { method: 'OPTIONS', headers: { origin: EVIL, 'access-control-request-method': 'POST' } });
    assert.strictEqual(res.status, 403);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), null);
    await res.arrayBuffer();
    res = await fetch(`${srv.url}/api/randomNumber`, { method: 'OPTIONS', headers: { origin: GOOD, 'access-control-request-method': 'POST' } });
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), GOOD);
    await res.arrayBuffer();

    // no Origin: a non-browser client, served; no CORS grant to anyone
    res = await fetch(`${srv.url}/api/randomNumber`);
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), null);
    assert.strictEqual(typeof (await res.json()).randomNumber, 'number');
  });
});

test('credentials with a list: only listed origins are reflected, "null" never unless listed', async (t) => {
  const srv = await startServer({ config: { servers: { websocket: { server: { origins: [GOOD], credentials: true } } } } });
  t.after(() => srv.stop());
  let res = await fetch(`${srv.url}/api/randomNumber`, { headers: { origin: GOOD } });
  assert.strictEqual(res.headers.get('access-control-allow-origin'), GOOD);
  assert.strictEqual(res.headers.get('access-control-allow-credentials'), 'true');
  await res.arrayBuffer();
  for (const origin of ['null', EVIL, `${GOOD}.evil.example`, 'https://good.example:8443']) {
    res = await fetch(`${srv.url}/api/randomNumber`, { headers: { origin } });
    assert.strictEqual(res.status, 403, origin);
    assert.strictEqual(res.headers.get('access-control-allow-origin'), null, origin);
    assert.strictEqual(res.headers.get('access-control-allow-credentials'), null, origin);
    await res.arrayBuffer();
    const eres = await request(`${srv.url}/primus/?EIO=4&transport=polling`, { headers: { origin } });
    assert.strictEqual(eres.status, 403, origin);
    assert.strictEqual(eres.headers['access-control-allow-origin'], undefined, origin);
  }
});

test('origins "*" with credentials true is refused at config load', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-cfg-'));
  try {
    const file = path.join(dir, 'c.yaml');
    fs.writeFileSync(file, 'servers:\n  websocket:\n    server:\n      origins: ["*"]\n      credentials: true\n');
    const r = spawnSync(BIN, ['--check-config', '--config', file], { encoding: 'utf8' });
    assert.strictEqual(r.status, 2, r.stderr);
    assert.match(r.stderr, /credentials: true needs a list of origins/);
    fs.writeFileSync(file, 'servers:\n  websocket:\n    server:\n      origins: ["https://a.example/"]\n');
    const r2 = spawnSync(BIN, ['--check-config', '--config', file], { encoding: 'utf8' });
    assert.strictEqual(r2.status, 2, r2.stderr);
    assert.match(r2.stderr, /origins: "https:\/\/a\.example\/" is not an origin/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('default origins ("*"): any Origin is served, /api answers Access-Control-Allow-Origin: *', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const res = await fetch(`${srv.url}/api/randomNumber`, { headers: { origin: EVIL } });
  assert.strictEqual(res.status, 200);
  assert.strictEqual(res.headers.get('access-control-allow-origin'), '*');
  await res.arrayBuffer();
  const c = await connect(`${srv.wsUrl}/primus`, { headers: { origin: EVIL } });
  await c.welcome();
  await c.close();
});
