'use strict';
// The server API (README "Server API") on one node: the key, the errors, and every call seen by real clients.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const KEY = 'test-key-0123456789abcdef';

async function client(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
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

test('server API across a 3-node Redis cluster: any node answers', async (t) => {
  const { cluster, teardown, primus: clusterPrimus } = require('../lib/cluster_clients');
  const cl = await cluster(3, { serverApi: { key: KEY } });
  t.after(() => teardown(cl));
  const [n0, n1, n2] = cl.nodes;
  const a = await clusterPrimus(n0);
  const b = await clusterPrimus(n1);
  t.after(() => Promise.all([a.close(), b.close()]));
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  await b.request({ event: 'roomAdd', room: 'defaultRoom' });

  await t.test('members and rooms from a node that holds neither connection', async () => {
    const m = await api(n2, 'members', { room: 'defaultRoom' });
    assert.strictEqual(m.body.count, 2);
    assert.deepStrictEqual(m.body.members.sort(), [a.id, b.id].sort());
    assert.ok((await api(n2, 'rooms', {})).body.rooms.includes('defaultRoom'));
    assert.deepStrictEqual(await api(n2, 'members', { room: 'noRoom' }), { status: 404, body: { error: 'room not found' } });
  });

  await t.test('publish on one node reaches members on the others', async () => {
    assert.strictEqual((await api(n2, 'publish', { room: 'defaultRoom', message: 'cluster-wide' })).status, 200);
    for (const c of [a, b]) assert.strictEqual((await c.next((f) => f.message === 'cluster-wide')).from, '0');
  });

  await t.test('push to a connection held by another node', async () => {
    assert.strictEqual((await api(n2, 'push', { connectionId: a.id, data: { to: 'a' } })).status, 200);
    assert.strictEqual((await a.next((f) => f.to === 'a')).context, 'api');
    assert.strictEqual((await api(n0, 'push', { connectionId: b.id, data: { to: 'b' } })).status, 200);
    await b.next((f) => f.to === 'b');
  });
});
