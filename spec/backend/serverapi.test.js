'use strict';
// The server API (README "Server API") on one node: the key, the errors, and every call seen by real clients. spec/run
// runs this file on both stores (AG_STORE=redis: the node answers through the registry of its own Redis, as a cluster
// of one); spec/cluster/serverapi.test.js runs the calls across three nodes.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { startBackend } = require('../lib/backend');
const { eio } = require('../lib/cluster_clients');

const STORE = process.env.AG_STORE || 'memory';

const KEY = 'test-key-0123456789abcdef';

async function client(srv, query = '') {
  const c = await connect(`${srv.wsUrl}/primus${query}`);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  return c;
}

function api(srv, call, body, headers = { authorization: `Bearer ${KEY}` }) {
  return fetch(`${srv.url}/server/${call}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));
}

test('server API off without a key', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const res = await fetch(`${srv.url}/server/rooms`, { method: 'POST', headers: { authorization: 'Bearer ' } });
  assert.strictEqual(res.status, 404);
});

test('server API on one node', async (t) => {
  const srv = await startServer({ config: { serverApi: { key: KEY } } });
  t.after(() => srv.stop());

  await t.test('401 without the key, with a wrong key, with a prefix of it', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { 'x-api-key': KEY.slice(0, -1) }, { authorization: KEY }]) {
      const r = await api(srv, 'rooms', {}, headers);
      assert.strictEqual(r.status, 401, JSON.stringify(headers));
      assert.deepStrictEqual(r.body, { error: 'a valid API key is required' });
    }
    assert.strictEqual((await api(srv, 'rooms', {}, { 'x-api-key': KEY })).status, 200);
  });

  await t.test('400 for bad JSON and bad fields, 404 for an unknown call', async () => {
    let r = await api(srv, 'publish', '{not json');
    assert.strictEqual(r.status, 400);
    assert.match(r.body.error, /^the body must be a JSON object: /);
    r = await api(srv, 'publish', '[1]');
    assert.deepStrictEqual(r, { status: 400, body: { error: 'the body must be a JSON object' } });
    r = await api(srv, 'publish', { room: 'defaultRoom' });
    assert.strictEqual(r.status, 400);
    assert.match(r.body.error, /either "message"/);
    r = await api(srv, 'publish', { room: 'defaultRoom', message: 'x', data: {} });
    assert.strictEqual(r.status, 400);
    r = await api(srv, 'push', { connectionId: 7, data: {} });
    assert.deepStrictEqual(r, { status: 400, body: { error: '"connectionId" must be a non-empty string' } });
    r = await api(srv, 'push', { connectionId: 'x', data: 'text' });
    assert.deepStrictEqual(r, { status: 400, body: { error: '"data" must be an object' } });
    r = await api(srv, 'disconnect', { connectionId: 'x', reconnect: 'yes' });
    assert.deepStrictEqual(r, { status: 400, body: { error: '"reconnect" must be a boolean' } });
    const oneOf = { status: 400, body: { error: 'give one of "connectionId", "user" or "fingerprint"' } };
    assert.deepStrictEqual(await api(srv, 'push', { data: {} }), oneOf);
    assert.deepStrictEqual(await api(srv, 'push', { connectionId: 'x', user: 'ann', data: {} }), oneOf);
    assert.deepStrictEqual(await api(srv, 'push', { user: 'ann', fingerprint: 'f', data: {} }), oneOf);
    r = await api(srv, 'push', { user: '', data: {} });
    assert.deepStrictEqual(r, { status: 400, body: { error: '"user" must be a non-empty string' } });
    r = await api(srv, 'push', { fingerprint: ['f'], data: {} });
    assert.deepStrictEqual(r, { status: 400, body: { error: '"fingerprint" must be a non-empty string' } });
    r = await api(srv, 'push', { user: 'ann', data: [] });
    assert.deepStrictEqual(r, { status: 400, body: { error: '"data" must be an object' } });
    // larger than a connection may queue: refused before it goes anywhere
    r = await api(srv, 'push', { user: 'ann', data: { big: 'x'.repeat(2100 * 1024) } });
    assert.strictEqual(r.status, 400);
    assert.deepStrictEqual(r.body, { error: 'too big' });
    r = await api(srv, 'nothing', {});
    assert.strictEqual(r.status, 404);
  });

  await t.test('404 for an unknown room or connection', async () => {
    assert.deepStrictEqual(await api(srv, 'publish', { room: 'noRoom', message: 'hi' }), { status: 404, body: { error: 'room not found' } });
    assert.deepStrictEqual(await api(srv, 'members', { room: 'noRoom' }), { status: 404, body: { error: 'room not found' } });
    assert.deepStrictEqual(await api(srv, 'push', { connectionId: 'nobody', data: { a: 1 } }), { status: 404, body: { error: 'connection not found' } });
    assert.deepStrictEqual(await api(srv, 'disconnect', { connectionId: 'nobody' }), { status: 404, body: { error: 'connection not found' } });
  });

  await t.test('publish (chat from "0" and a message object), members, rooms, push', async () => {
    const a = await client(srv);
    const b = await client(srv);
    await a.request({ event: 'roomAdd', room: 'defaultRoom' });
    await b.request({ event: 'roomAdd', room: 'defaultRoom' });
    const members = await api(srv, 'members', { room: 'defaultRoom' });
    assert.strictEqual(members.status, 200);
    assert.strictEqual(members.body.count, 2);
    assert.deepStrictEqual(members.body.members.sort(), [a.id, b.id].sort());
    const rooms = await api(srv, 'rooms', {});
    assert.deepStrictEqual(rooms.body.rooms.sort(), ['defaultRoom', 'otherRoom']);
    assert.strictEqual(rooms.body.count, 2);

    assert.deepStrictEqual(await api(srv, 'publish', { room: 'defaultRoom', message: 'from the backend' }), { status: 200, body: { ok: true } });
    for (const c of [a, b]) {
      const m = await c.next((f) => f.context === 'user' && f.message === 'from the backend');
      assert.strictEqual(m.from, '0');
      assert.strictEqual(m.room, 'defaultRoom');
    }
    assert.strictEqual((await api(srv, 'publish', { room: 'defaultRoom', data: { kind: 'score', value: 3 } })).status, 200);
    for (const c of [a, b]) {
      const m = await c.next((f) => f.kind === 'score');
      assert.strictEqual(m.value, 3);
    }
    assert.strictEqual((await api(srv, 'push', { connectionId: a.id, data: { only: 'a' } })).status, 200);
    const m = await a.next((f) => f.only === 'a');
    assert.strictEqual(m.context, 'api');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!b.frames.some((f) => f.only === 'a'));
    await a.close();
    await b.close();
  });

  await t.test('disconnect: for good, or asking the client to come back', async () => {
    const a = await client(srv);
    assert.strictEqual((await api(srv, 'disconnect', { connectionId: a.id })).status, 200);
    await a.next((f) => f === 'primus::server::close');
    await a.closed;
    const b = await client(srv);
    assert.strictEqual((await api(srv, 'disconnect', { connectionId: b.id, reconnect: true })).status, 200);
    await b.closed;
    assert.ok(!b.frames.includes('primus::server::close'));
    assert.deepStrictEqual(await api(srv, 'disconnect', { connectionId: b.id }), { status: 404, body: { error: 'connection not found' } });
  });
});

// The connect hook names each connection's user (data.user), as a backend does.
async function withUsers(t, serverApi = {}) {
  const backend = await startBackend({ connect: (p) => ({ data: { user: (p.query || {}).user || 'anonymous' } }) });
  t.after(() => backend.stop());
  const srv = await startServer({
    config: {
      general: { id: 'solo' },
      serverApi: { key: KEY, ...serverApi },
      upstream: { urls: [backend.url] },
      hooks: { connect: 'connect' },
    },
  });
  t.after(() => srv.stop());
  return srv;
}

async function eioClient(srv, query) {
  const c = eio(srv.url, { transports: ['polling'], query });
  await c.opened;
  await c.next((f) => f.welcome !== undefined);
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  return c;
}

test('push to every connection of a user or a fingerprint; the node list', async (t) => {
  const srv = await withUsers(t);
  const a1 = await client(srv, '?user=ann&sessionID=fp-1');
  const a2 = await eioClient(srv, { user: 'ann', sessionID: 'fp-2' });
  const b = await client(srv, '?user=bob&sessionID=fp-1');
  t.after(() => Promise.all([a1.close(), b.close(), a2.socket.close()]));

  await t.test('a user: every connection of theirs, whatever carries it, and no other', async () => {
    assert.deepStrictEqual(await api(srv, 'push', { user: 'ann', data: { hello: 'ann' } }), { status: 200, body: { ok: true, count: 2 } });
    for (const c of [a1, a2]) assert.strictEqual((await c.next((f) => f.hello === 'ann')).context, 'api');
    // a push to b alone afterwards arrives: had the user push reached b, it would have come first
    assert.strictEqual((await api(srv, 'push', { connectionId: b.id, data: { marker: 1 } })).status, 200);
    await b.next((f) => f.marker === 1);
    assert.ok(!b.frames.some((f) => f.hello === 'ann'));
  });

  await t.test('a fingerprint: every connection under it', async () => {
    const r = await api(srv, 'push', { fingerprint: 'fp-1', data: { kind: 'fp', context: 'alert' } });
    assert.deepStrictEqual(r, { status: 200, body: { ok: true, count: 2 } });
    for (const c of [a1, b]) assert.strictEqual((await c.next((f) => f.kind === 'fp')).context, 'alert');
    assert.strictEqual((await api(srv, 'push', { connectionId: a2.id, data: { marker: 2 } })).status, 200);
    await a2.next((f) => f.marker === 2);
    assert.ok(!a2.frames.some((f) => f.kind === 'fp'));
  });

  await t.test('nobody under that name: 200 with count 0', async () => {
    assert.deepStrictEqual(await api(srv, 'push', { user: 'nobody', data: { a: 1 } }), { status: 200, body: { ok: true, count: 0 } });
    assert.deepStrictEqual(await api(srv, 'push', { fingerprint: 'fp-none', data: { a: 1 } }), { status: 200, body: { ok: true, count: 0 } });
  });

  await t.test('nodes: this node and its connections', async () => {
    const node = { id: 'solo', connections: 3 };
    // on Redis the node is registered with its address, as in a cluster
    if (STORE === 'redis') node.address = `127.0.0.1:${srv.port}`;
    assert.deepStrictEqual(await api(srv, 'nodes', {}), { status: 200, body: { nodes: [node], connections: 3 } });
    await b.close();
    for (let i = 0; i < 100 && (await api(srv, 'nodes', {})).body.connections !== 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.strictEqual((await api(srv, 'nodes', {})).body.nodes[0].connections, 2);
  });
});

test('a user push reaches at most serverApi.maxFanout connections per node and counts the others', async (t) => {
  const srv = await withUsers(t, { maxFanout: 2 });
  const cs = [];
  for (let i = 0; i < 3; i++) cs.push(await client(srv, '?user=many'));
  t.after(() => Promise.all(cs.map((c) => c.close())));
  const r = await api(srv, 'push', { user: 'many', data: { n: 1 } });
  assert.deepStrictEqual(r, { status: 200, body: { ok: true, count: 2, skipped: 1 } });
  // two of the three got it, one did not: a marker to each arrives after the push would have
  let got = 0;
  for (const c of cs) {
    assert.strictEqual((await api(srv, 'push', { connectionId: c.id, data: { marker: 3 } })).status, 200);
    await c.next((f) => f.marker === 3);
    got += c.frames.some((f) => f.n === 1) ? 1 : 0;
  }
  assert.strictEqual(got, 2);
});
