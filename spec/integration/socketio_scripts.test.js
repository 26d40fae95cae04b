'use strict';
// The scripts the socket.io and faye eras' pages include: <servers.socketio.path>/socket.io.js and /faye/client.js.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const acorn = require('acorn');
const { startServer } = require('../lib/harness');

function assertEs5(text) {
  assert.doesNotThrow(() => acorn.parse(text, { ecmaVersion: 5 }), 'the script parses as ES5');
}

test('socket.io.js and faye/client.js are served', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());

  await t.test('GET /socket.io/socket.io.js: the client, ES5, with the default path', async () => {
    const res = await fetch(`${srv.url}/socket.io/socket.io.js`);
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('content-type'), 'application/javascript; charset=utf-8');
    const body = await res.text();
    assertEs5(body);
    assert.match(body, /var DEFAULT_PATH = "\/socket\.io";/);
    assert.match(body, /root\.io = lookup;/);
  });

  await t.test('an If-None-Match with the ETag is answered 304', async () => {
    const first = await fetch(`${srv.url}/socket.io/socket.io.js`);
    const etag = first.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    await first.arrayBuffer();
    const again = await fetch(`${srv.url}/socket.io/socket.io.js`, { headers: { 'if-none-match': etag } });
    assert.strictEqual(again.status, 304);
    assert.strictEqual(await again.text(), '');
  });

  await t.test('GET /faye/client.js: a script that loads and defines nothing', async () => {
    const res = await fetch(`${srv.url}/faye/client.js`);
    assert.strictEqual(res.status, 200);
    assert.strictEqual(res.headers.get('content-type'), 'application/javascript; charset=utf-8');
    const body = await res.text();
    const ast = acorn.parse(body, { ecmaVersion: 5 });
    assert.strictEqual(ast.body.length, 0, 'comments only');
  });

  await t.test('actionHeroWebSocket.js and actionheroClient.js: the rendered client plus the older eras\' wrappers', async () => {
    const client = await (await fetch(`${srv.url}/public/javascript/ActionheroWebsocketClient.js`)).text();
    for (const name of ['actionHeroWebSocket', 'actionheroClient']) {
      const res = await fetch(`${srv.url}/public/javascript/${name}.js`);
      assert.strictEqual(res.status, 200, name);
      assert.strictEqual(res.headers.get('content-type'), 'application/javascript; charset=utf-8');
      const body = await res.text();
      assertEs5(body);
      assert.ok(body.startsWith(client), `${name}.js starts with the rendered ActionheroWebsocketClient.js`);
      assert.match(body.slice(client.length), /root\.actionHeroWebSocket = LegacyClient;\s+root\.actionheroClient = LegacyClient;/);
    }
  });

  await t.test('other names under the path are not the script', async () => {
    const res = await fetch(`${srv.url}/socket.io/socket.io.jsx`);
    assert.notStrictEqual(res.status, 200);
    await res.arrayBuffer();
    const post = await fetch(`${srv.url}/socket.io/socket.io.js`, { method: 'POST', body: 'x' });
    assert.notStrictEqual(post.status, 200);
    await post.arrayBuffer();
  });
});

test('servers.socketio.path moves the script and is baked into it', async (t) => {
  const srv = await startServer({ config: { servers: { socketio: { path: '/realtime' } } } });
  t.after(() => srv.stop());
  const res = await fetch(`${srv.url}/realtime/socket.io.js`);
  assert.strictEqual(res.status, 200);
  const body = await res.text();
  assertEs5(body);
  assert.match(body, /var DEFAULT_PATH = "\/realtime";/);
  const old = await fetch(`${srv.url}/socket.io/socket.io.js`);
  assert.strictEqual(old.status, 404);
  await old.arrayBuffer();
});

test('the older clients follow clientJsPath and carry the configured defaults', async (t) => {
  // a public directory of its own: the server renders ActionheroWebsocketClient.js into it at boot
  const publicDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-public-'));
  const srv = await startServer({
    config: { servers: { web: { publicDir }, websocket: { clientJsPath: 'js/', client: { apiPath: '/api2' } } } },
  });
  t.after(async () => {
    await srv.stop();
    fs.rmSync(publicDir, { recursive: true, force: true });
  });
  const res = await fetch(`${srv.url}/public/js/actionheroClient.js`);
  assert.strictEqual(res.status, 200);
  const body = await res.text();
  assert.match(body, /apiPath: "\/api2"/);
  const old = await fetch(`${srv.url}/public/javascript/actionheroClient.js`);
  assert.strictEqual(old.status, 404);
  await old.arrayBuffer();
});

test('servers.socketio.enabled: false: no socket.io.js; faye-era pages still load', async (t) => {
  const srv = await startServer({ config: { servers: { socketio: { enabled: false } } } });
  t.after(() => srv.stop());
  const res = await fetch(`${srv.url}/socket.io/socket.io.js`);
  assert.strictEqual(res.status, 404);
  await res.arrayBuffer();
  const faye = await fetch(`${srv.url}/faye/client.js`);
  assert.strictEqual(faye.status, 200);
  await faye.arrayBuffer();
});
