'use strict';
// Cluster security over real nodes and a real redis-server.
//  - No open proxy: a request for a sid owned elsewhere only ever goes to an address read from the node registry, never
//    to one taken from the request (its Host header). A "canary" listener on 127.0.0.1 stands for any address an
//    attacker would name; it must see no connection, whatever the path (polling GET/POST, SSE stream and POST,
//    WebSocket upgrade, socket.io), with Redis up or down, for a registered owner and an unknown one.
//  - A stranger's x-actiongate-* headers do not change where a request goes.
//  - The cache never runs KEYS (one call of it blocks Redis for the whole keyspace).
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { request, sseOpen, decodePayload } = require('../lib/eio_raw');
const { waitFor, getJson, cluster, teardown } = require('../lib/cluster_clients');

const UNKNOWN = { code: 1, message: 'Session ID unknown' };
const PATHS = ['/primus/', '/socket.io/'];

// A listener that counts connections and answers each with a recognisable response.
function startCanary() {
  return new Promise((resolve) => {
    const canary = { connections: 0, sockets: new Set() };
    const srv = net.createServer((sock) => {
      canary.connections++;
      canary.sockets.add(sock);
      sock.on('close', () => canary.sockets.delete(sock));
      sock.on('error', () => {});
      sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ncanary'));
    });
    srv.listen(0, '127.0.0.1', () => {
      canary.port = srv.address().port;
      canary.close = () => {
        for (const s of canary.sockets) s.destroy();
        return new Promise((r) => srv.close(r));
      };
      resolve(canary);
    });
  });
}

// A WebSocket upgrade over a raw socket, so that the Host header is exactly what the test says.
// Resolves {status, text}: the status line's code and everything read until the server ended or 101 arrived.
function rawUpgrade(port, path, headers) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let raw = '';
    const lines = [`GET ${path} HTTP/1.1`, 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`upgrade ${path}: no answer; have ${JSON.stringify(raw)}`));
    }, 8000);
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ status: Number((/^HTTP\/1\.1 (\d{3})/.exec(raw) || [])[1]), text: raw });
    };
    sock.on('connect', () => sock.write(`${lines.join('\r\n')}\r\n\r\n`));
    sock.on('data', (d) => {
      raw += d.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (/^HTTP\/1\.1 101/.test(raw)) return done();
      const len = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end));
      if (len && raw.length >= end + 4 + Number(len[1])) done();
    });
    sock.on('end', done);
    sock.on('error', () => done());
  });
}

const body = (text) => text.slice(text.indexOf('\r\n\r\n') + 4);
const q = (path, transport, sid) => `${path}?EIO=4&transport=${transport}&sid=${encodeURIComponent(sid)}`;

// Every engine.io entry point for sid on node port, with the given extra headers; returns what each answered.
async function everyPath(port, path, sid, headers) {
  const base = `http://127.0.0.1:${port}`;
  const out = {};
  out.get = await request(`${base}${q(path, 'polling', sid)}`, { headers, timeout: 8000 });
  out.post = await request(`${base}${q(path, 'polling', sid)}`,
    { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers }, body: '6', timeout: 8000 });
  out.ssePost = await request(`${base}${q(path, 'sse', sid)}`,
    { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers }, body: '6', timeout: 8000 });
  out.sse = await request(`${base}${q(path, 'sse', sid)}`, { headers: { accept: 'text/event-stream', ...headers }, timeout: 8000 });
  const ws = await rawUpgrade(port, q(path, 'websocket', sid), headers);
  out.ws = { status: ws.status, text: body(ws.text) };
  return out;
}

// engine.io answers a failed WebSocket upgrade with the bare message, everything else with the JSON error
function assertAllUnknown(answers, what) {
  for (const [name, r] of Object.entries(answers)) {
    assert.strictEqual(r.status, 400, `${what} ${name}: ${r.status} ${r.text}`);
    assert.strictEqual(r.text, name === 'ws' ? UNKNOWN.message : JSON.stringify(UNKNOWN), `${what} ${name}`);
  }
}

async function handshake(port, path) {
  const r = await request(`http://127.0.0.1:${port}${path}?EIO=4&transport=polling`);
  assert.strictEqual(r.status, 200, r.text);
  return JSON.parse(r.text.slice(1)).sid;
}

// A foreign sid with a tag no node registered: the tag is valid base64url, nothing else about it is special.
const strangerSid = (i) => `ZZZZZZZZ${String(i).padStart(14, 'q')}`;

test('no request reaches an address taken from the request', async (t) => {
  const canary = await startCanary();
  const cl = await cluster(2);
  t.after(async () => {
    await canary.close();
    await teardown(cl);
  });
  const [n0, n1] = cl.nodes;
  const hostile = { host: `127.0.0.1:${canary.port}` };
  let seq = 0;
  // each subtest counts the canary's connections on its own
  t.beforeEach(() => {
    canary.connections = 0;
  });

  await t.test('an owner nobody registered: Session ID unknown on every path', async () => {
    for (const path of PATHS) {
      for (const node of cl.nodes) assertAllUnknown(await everyPath(node.port, path, strangerSid(seq++), hostile), `${path} on ${node.port}`);
    }
    assert.strictEqual(canary.connections, 0);
  });

  await t.test('a registered owner: forwarded to the address it registered, whatever Host says', async () => {
    // an engine.io session on n1, every request through n0
    const sid = await handshake(n1.port, '/primus/');
    const get = await request(`${n0.url}${q('/primus/', 'polling', sid)}`, { headers: hostile });
    assert.strictEqual(get.status, 200, get.text);
    const welcome = decodePayload(get.text).find((p) => p.type === 4);
    assert.ok(welcome && JSON.parse(welcome.data).welcome, get.text);
    const post = await request(`${n0.url}${q('/primus/', 'polling', sid)}`,
      { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...hostile }, body: '4{"event":"detailsView","messageId":1}' });
    assert.deepStrictEqual([post.status, post.text], [200, 'ok']);
    const reply = await request(`${n0.url}${q('/primus/', 'polling', sid)}`, { headers: hostile });
    const details = decodePayload(reply.text).map((p) => p.type === 4 && JSON.parse(p.data)).find((f) => f && f.messageId === 1);
    assert.strictEqual(details.status, 'OK', reply.text);

    // the upgrade of that session to WebSocket, through n0
    const ws = await rawUpgrade(n0.port, q('/primus/', 'websocket', sid), hostile);
    assert.strictEqual(ws.status, 101, ws.text);

    // an SSE session on n1: its stream re-opened and a POST, through n0
    const first = await sseOpen(`${n1.url}/primus/?EIO=4&transport=sse`);
    const open = await first.next((e) => e.data[0] === '0');
    const sseSid = JSON.parse(open.data.slice(1)).sid;
    first.destroy();
    const again = await sseOpen(`${n0.url}${q('/primus/', 'sse', sseSid)}`, hostile);
    assert.strictEqual(again.res.statusCode, 200);
    assert.match(again.res.headers['content-type'], /^text\/event-stream/);
    const ssePost = await request(`${n0.url}${q('/primus/', 'sse', sseSid)}`,
      { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...hostile }, body: '4{"event":"detailsView","messageId":7}' });
    assert.deepStrictEqual([ssePost.status, ssePost.text], [200, 'ok']);
    const ev = await again.next((e) => e.data[0] === '4' && JSON.parse(e.data.slice(1)).messageId === 7);
    assert.strictEqual(JSON.parse(ev.data.slice(1)).status, 'OK');
    again.destroy();

    // socket.io: CONNECT and the answer, through n0
    const sioSid = await handshake(n1.port, '/socket.io/');
    const connect = await request(`${n0.url}${q('/socket.io/', 'polling', sioSid)}`,
      { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...hostile }, body: '40' });
    assert.deepStrictEqual([connect.status, connect.text], [200, 'ok']);
    const connected = await request(`${n0.url}${q('/socket.io/', 'polling', sioSid)}`, { headers: hostile });
    assert.strictEqual(connected.status, 200);
    assert.match(connected.text, /^40\{"sid":/);

    assert.strictEqual(canary.connections, 0);
  });

  await t.test('a stranger\'s x-actiongate-* headers change nothing', async () => {
    const forged = { 'x-actiongate-forwarded': 'node0', 'x-actiongate-route-local': '1' };
    // a foreign session is still forwarded to its owner (the headers do not pin it here)...
    const sid = await handshake(n1.port, '/primus/');
    const get = await request(`${n0.url}${q('/primus/', 'polling', sid)}`, { headers: { ...forged, ...hostile } });
    assert.strictEqual(get.status, 200, get.text);
    assert.ok(decodePayload(get.text).some((p) => p.type === 4 && JSON.parse(p.data).welcome), get.text);
    // ...and one whose owner is unknown is still unknown, not proxied anywhere
    assertAllUnknown(await everyPath(n0.port, '/primus/', strangerSid(seq++), { ...forged, ...hostile }), 'forged headers');
    assert.strictEqual(canary.connections, 0);
  });

  await t.test('a node recognises a forward by its own token from the registry', async () => {
    // a session on n0, asked of n1 directly: with n1's registered token the request counts as forwarded by a node, so
    // n1 does not forward it again (and does not know the session); with any other value it is routed to n0 as usual
    const sid = await handshake(n0.port, '/primus/');
    const routes = cl.redis.cli('--scan', '--pattern', 'actiongate:route:*').split('\n').filter(Boolean);
    const n1Route = routes.find((k) => cl.redis.cli('HGET', k, 'address') === `127.0.0.1:${n1.port}`);
    const n1Token = cl.redis.cli('HGET', n1Route, 'token');
    const asNode = await request(`${n1.url}${q('/primus/', 'polling', sid)}`, { headers: { 'x-actiongate-forwarded': n1Token } });
    assert.deepStrictEqual([asNode.status, asNode.text], [400, JSON.stringify(UNKNOWN)]);
    for (const wrong of [`${n1Token}x`, n1Token.slice(1), 'node0', '']) {
      const r = await request(`${n1.url}${q('/primus/', 'polling', sid)}`,
        { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', 'x-actiongate-forwarded': wrong }, body: '6' });
      assert.deepStrictEqual([r.status, r.text], [200, 'ok'], `token ${JSON.stringify(wrong)}`);
    }
  });

  await t.test('Redis down: sids owned elsewhere are unknown, nothing is proxied', async () => {
    const sids = [await handshake(n1.port, '/primus/'), await handshake(n1.port, '/socket.io/')];
    await cl.redis.stop();
    for (const path of PATHS) assertAllUnknown(await everyPath(n0.port, path, strangerSid(seq++), hostile), `redis down ${path}`);
    // a route n0 learnt before may serve a little longer; once it is stale, the owner cannot be confirmed: unknown
    for (const [i, sid] of sids.entries()) {
      await waitFor(async () => {
        const r = await request(`${n0.url}${q(PATHS[i], 'polling', sid)}`,
          { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8', ...hostile }, body: '6' });
        assert.notStrictEqual(r.text, 'canary');
        return r.status === 400 && JSON.stringify(JSON.parse(r.text)) === JSON.stringify(UNKNOWN);
      }, 5000, 'owner unknown while Redis is down');
      for (const path of PATHS) assertAllUnknown(await everyPath(n0.port, path, sid, hostile), `redis down, ${path} sid of n1`);
    }
    assert.strictEqual(canary.connections, 0);
    await cl.redis.start(cl.redis.port);
  });
});

test('cacheTest never runs KEYS and counts only the cache', async (t) => {
  const cl = await cluster(1);
  t.after(() => teardown(cl));
  const [n0] = cl.nodes;
  // other data in the same Redis: KEYS would have walked it all
  for (let i = 0; i < 50; i += 10) cl.redis.cli('MSET', ...Array.from({ length: 10 }, (_, j) => [`other:${i + j}`, 'x']).flat());
  cl.redis.cli('CONFIG', 'RESETSTAT');
  const first = await getJson(`${n0.url}/api/cacheTest?key=one&value=first%20value`);
  assert.strictEqual(first.status, 200, JSON.stringify(first.body));
  assert.strictEqual(first.body.cacheTestResults.saveResp, true);
  assert.strictEqual(first.body.cacheTestResults.sizeResp, 1);
  assert.strictEqual(first.body.cacheTestResults.deleteResp, true);
  const again = await getJson(`${n0.url}/api/cacheTest?key=two&value=second%20value`);
  assert.strictEqual(again.body.cacheTestResults.sizeResp, 1); // the first entry was deleted: not counted
  const stats = cl.redis.cli('INFO', 'commandstats');
  assert.doesNotMatch(stats, /^cmdstat_keys:/m);
  assert.doesNotMatch(stats, /^cmdstat_scan:/m);
  assert.match(stats, /^cmdstat_eval:/m); // the cache was used through the store's scripts
});
