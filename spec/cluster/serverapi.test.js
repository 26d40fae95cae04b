'use strict';
// The server API across a 3-node Redis cluster (README "Server API"): every call through every node, the target
// connection on another node; a node that the registry lists but that never answers (504); a node killed (its
// connections stop being found, the node list drops it within the registry's TTL).
const test = require('node:test');
const assert = require('node:assert');
const { startBackend } = require('../lib/backend');
const { cluster, teardown, primus, eio, waitFor } = require('../lib/cluster_clients');
const { connect } = require('../lib/wsclient');

const KEY = 'test-key-0123456789abcdef';
const TIMEOUT = 500; // serverApi.timeout: how long a call waits for the other nodes

function api(srv, call, body) {
  return fetch(`${srv.url}/server/${call}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  }).then(async (res) => ({ status: res.status, body: await res.json() }));
}

async function user(srv, name, fp) {
  const c = await connect(`${srv.wsUrl}/primus?user=${name}&sessionID=${fp}`);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  return c;
}

async function eioUser(srv, name, fp) {
  const c = eio(srv.url, { transports: ['polling'], query: { user: name, sessionID: fp } });
  await c.opened;
  await c.next((f) => f.welcome !== undefined);
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  c.close = () => c.socket.close();
  return c;
}

// A push to c alone; once it arrived, anything pushed to c before it has arrived too.
async function marker(srv, c) {
  const tag = Math.random().toString(36).slice(2);
  assert.strictEqual((await api(srv, 'push', { connectionId: c.id, data: { marker: tag } })).status, 200);
  await c.next((f) => f.marker === tag);
}

async function setup(t) {
  const backend = await startBackend({ connect: (p) => ({ data: { user: (p.query || {}).user || 'anonymous' } }) });
  const cl = await cluster(3, {
    serverApi: { key: KEY, timeout: TIMEOUT },
    upstream: { urls: [backend.url] },
    hooks: { connect: 'connect' },
  });
  t.after(async () => {
    await teardown(cl);
    await backend.stop();
  });
  return cl;
}

test('server API across a 3-node Redis cluster: every call through every node', async (t) => {
  const cl = await setup(t);
  const nodes = cl.nodes;
  const [n0, n1, n2] = nodes;
  // ann on node0 and node1, bob on node2; ann's first connection and bob's share a fingerprint
  const a = await user(n0, 'ann', 'fp-shared');
  const b = await user(n1, 'ann', 'fp-b');
  const c = await eioUser(n2, 'bob', 'fp-shared');
  const clients = [a, b, c];
  t.after(() => Promise.all(clients.map((x) => x.close())));
  await a.request({ event: 'roomAdd', room: 'defaultRoom' });
  await b.request({ event: 'roomAdd', room: 'defaultRoom' });

  await t.test('nodes: the three, with their addresses and connection counts, from each', async () => {
    const want = nodes.map((n, i) => ({ id: `node${i}`, connections: 1, address: `127.0.0.1:${n.port}` }));
    for (const n of nodes) {
      const r = await api(n, 'nodes', {});
      assert.strictEqual(r.status, 200);
      assert.deepStrictEqual(r.body.nodes.sort((x, y) => x.id.localeCompare(y.id)), want);
      assert.strictEqual(r.body.connections, 3);
    }
  });

  await t.test('push by id: every node reaches every connection', async () => {
    for (const [i, n] of nodes.entries()) {
      for (const [j, x] of clients.entries()) {
        assert.deepStrictEqual(await api(n, 'push', { connectionId: x.id, data: { hop: `${i}->${j}` } }), { status: 200, body: { ok: true } });
        assert.strictEqual((await x.next((f) => f.hop === `${i}->${j}`)).context, 'api');
      }
    }
  });

  await t.test('an id no node holds: 404 from every node', async () => {
    for (const n of nodes) {
      assert.deepStrictEqual(await api(n, 'push', { connectionId: 'nobody', data: { a: 1 } }), { status: 404, body: { error: 'connection not found' } });
      assert.deepStrictEqual(await api(n, 'disconnect', { connectionId: 'nobody' }), { status: 404, body: { error: 'connection not found' } });
    }
  });

  await t.test('a user push from every node reaches the user on every node, counted', async () => {
    for (const [i, n] of nodes.entries()) {
      assert.deepStrictEqual(await api(n, 'push', { user: 'ann', data: { toAnn: i } }), { status: 200, body: { ok: true, count: 2 } });
      for (const x of [a, b]) await x.next((f) => f.toAnn === i);
    }
    await marker(n0, c);
    assert.ok(!c.frames.some((f) => f.toAnn !== undefined), 'bob heard nothing for ann');
    assert.deepStrictEqual(await api(n1, 'push', { user: 'nobody', data: { a: 1 } }), { status: 200, body: { ok: true, count: 0 } });
  });

  await t.test('a fingerprint push from every node, counted', async () => {
    for (const [i, n] of nodes.entries()) {
      assert.deepStrictEqual(await api(n, 'push', { fingerprint: 'fp-shared', data: { toFp: i } }), { status: 200, body: { ok: true, count: 2 } });
      for (const x of [a, c]) await x.next((f) => f.toFp === i);
    }
    await marker(n2, b);
    assert.ok(!b.frames.some((f) => f.toFp !== undefined));
  });

  await t.test('members, rooms and publish through every node', async () => {
    for (const n of nodes) {
      const m = await api(n, 'members', { room: 'defaultRoom' });
      assert.strictEqual(m.status, 200);
      assert.strictEqual(m.body.count, 2);
      assert.deepStrictEqual(m.body.members.sort(), [a.id, b.id].sort());
      const r = await api(n, 'rooms', {});
      assert.deepStrictEqual(r.body.rooms.sort(), ['defaultRoom', 'otherRoom']);
      assert.strictEqual(r.body.count, 2);
      assert.deepStrictEqual(await api(n, 'members', { room: 'noRoom' }), { status: 404, body: { error: 'room not found' } });
      assert.deepStrictEqual(await api(n, 'publish', { room: 'defaultRoom', message: `from ${n.port}` }), { status: 200, body: { ok: true } });
      for (const x of [a, b]) assert.strictEqual((await x.next((f) => f.message === `from ${n.port}`)).from, '0');
    }
  });

  await t.test('disconnect on another node: for good, then with reconnect; then 404', async () => {
    assert.deepStrictEqual(await api(n2, 'disconnect', { connectionId: a.id }), { status: 200, body: { ok: true } });
    await a.next((f) => f === 'primus::server::close');
    await a.closed;
    assert.deepStrictEqual(await api(n1, 'disconnect', { connectionId: a.id }), { status: 404, body: { error: 'connection not found' } });
    assert.deepStrictEqual(await api(n0, 'disconnect', { connectionId: b.id, reconnect: true }), { status: 200, body: { ok: true } });
    await b.closed;
    assert.ok(!b.frames.includes('primus::server::close'), 'told to come back');
    assert.deepStrictEqual(await api(n2, 'push', { connectionId: b.id, data: { a: 1 } }), { status: 404, body: { error: 'connection not found' } });
    await waitFor(async () => (await api(n2, 'nodes', {})).body.connections === 1, 5000, 'two connections fewer');
    assert.deepStrictEqual(await api(n0, 'push', { user: 'ann', data: { a: 1 } }), { status: 200, body: { ok: true, count: 0 } });
  });

  await t.test('a node the registry lists that does not answer: 504 by the deadline, with what came', async () => {
    // a registered node with a live heartbeat that runs nothing: a node stuck, or cut off from Redis' pub/sub
    // the heartbeat first: a reaper running in between would take a listed node without one for dead
    cl.redis.cli('SET', 'actiongate:node:ghost', 'GhOsTtAg 127.0.0.1:9', 'PX', '60000');
    cl.redis.cli('SADD', 'actiongate:nodes', 'ghost');
    try {
      let r = await api(n0, 'push', { connectionId: 'nobody', data: { a: 1 } });
      assert.deepStrictEqual(r, { status: 504, body: { error: 'connection not found on the nodes that answered: 1 of 4 nodes did not answer in time' } });
      // settled by the node that holds it: no need to wait for the silent one
      r = await api(n0, 'push', { connectionId: c.id, data: { settled: 1 } });
      assert.deepStrictEqual(r, { status: 200, body: { ok: true } });
      await c.next((f) => f.settled === 1);
      r = await api(n1, 'push', { user: 'bob', data: { partial: 1 } });
      assert.deepStrictEqual(r, { status: 504, body: { ok: false, count: 1, error: 'pushed where it could: 1 of 4 nodes did not answer in time' } });
      await c.next((f) => f.partial === 1);
      r = await api(n2, 'nodes', {});
      assert.strictEqual(r.status, 200);
      assert.deepStrictEqual(r.body.nodes.find((x) => x.id === 'ghost'), { id: 'ghost', address: '127.0.0.1:9', connections: null });
      assert.strictEqual(r.body.nodes.length, 4);
      // counted: the calls n0 sent, the ones it ran for the others, and the timeouts
      const m = await (await fetch(`${n0.url}/metrics`)).text();
      const num = (re) => Number((re.exec(m) || [])[1]);
      assert.ok(num(/^actiongate_cluster_calls_total\{direction="out"\} (\d+)$/m) >= 1, m);
      assert.ok(num(/^actiongate_cluster_calls_total\{direction="in"\} (\d+)$/m) >= 1, m);
      assert.ok(num(/^actiongate_cluster_call_timeouts_total (\d+)$/m) >= 1, m);
    } finally {
      cl.redis.cli('DEL', 'actiongate:node:ghost');
    }
    // its heartbeat gone, it is no longer waited for
    await waitFor(async () => (await api(n0, 'push', { connectionId: 'nobody', data: { a: 1 } })).status === 404, 5000, 'ghost dropped');
  });
});

test('a node killed: its connections stop being found, the node list drops it', async (t) => {
  const cl = await setup(t);
  const [n0, n1, n2] = cl.nodes;
  const d = await user(n1, 'dan', 'fp-d');
  const e = await user(n2, 'dan', 'fp-e');
  t.after(() => e.close());
  assert.deepStrictEqual(await api(n0, 'push', { user: 'dan', data: { n: 1 } }), { status: 200, body: { ok: true, count: 2 } });
  await n1.kill();
  // until its heartbeat expires (redis.nodeTtl 1 s) the dead node is waited for (504); then it is not found (404)
  const seen = [];
  await waitFor(async () => {
    const r = await api(n0, 'push', { connectionId: d.id, data: { n: 2 } });
    seen.push(r.status);
    return r.status === 404;
  }, 8000, 'the dead node\'s connection not found');
  assert.ok(seen.every((s) => s === 504 || s === 404), `answers ${seen}`);
  assert.deepStrictEqual(await api(n2, 'push', { connectionId: d.id, data: { n: 3 } }), { status: 404, body: { error: 'connection not found' } });
  const r = await api(n0, 'nodes', {});
  assert.deepStrictEqual(r.body.nodes.map((x) => x.id).sort(), ['node0', 'node2']);
  assert.strictEqual(r.body.connections, 1);
  assert.deepStrictEqual(await api(n2, 'push', { user: 'dan', data: { n: 4 } }), { status: 200, body: { ok: true, count: 1 } });
  await e.next((f) => f.n === 4);
});

test('Redis away: what this node settles is answered, the rest is 503', async (t) => {
  const cl = await setup(t);
  const [n0] = cl.nodes;
  const a = await user(n0, 'amy', 'fp-amy');
  t.after(() => a.close());
  await cl.redis.stop(); // the teardown finds it stopped
  // the connection is here: no need for the registry
  assert.deepStrictEqual(await api(n0, 'push', { connectionId: a.id, data: { still: 1 } }), { status: 200, body: { ok: true } });
  await a.next((f) => f.still === 1);
  for (const [call, body] of [['push', { connectionId: 'nobody', data: { a: 1 } }], ['push', { user: 'amy', data: { a: 1 } }], ['nodes', {}]]) {
    const r = await api(n0, call, body);
    assert.strictEqual(r.status, 503, `${call} ${JSON.stringify(r.body)}`);
    assert.match(r.body.error, /^the other nodes cannot be asked: redis /);
  }
});
