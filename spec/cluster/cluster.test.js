'use strict';
// Several real nodes over a real redis-server, behind a round-robin proxy without sticky sessions (and its variant that
// strips Upgrade): stock engine.io-client over polling, websocket and the upgrade, SSE with its POSTs spread over the
// nodes, chat and actions across nodes, push to a connection on another node.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { connectSio } = require('../lib/sioclient');
const { WELCOME, sleep, waitFor, eio, sse, primus, getJson, cluster, teardown } = require('../lib/cluster_clients');
const { metric } = require('../lib/metrics');

// The session works as on one node: welcome first, a verb, an action, chat to itself, replies in order.
async function exercise(c, tag) {
  assert.deepStrictEqual(await c.next((f) => f.welcome !== undefined), WELCOME);
  const d = await c.request({ event: 'detailsView' });
  assert.strictEqual(d.status, 'OK');
  assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).data, true);
  const act = await c.request({ event: 'action', params: { action: 'randomNumber' } });
  assert.strictEqual(typeof act.randomNumber, 'number');
  for (let i = 0; i < 5; i++) await c.request({ event: 'say', room: 'defaultRoom', message: `${tag} ${i}` });
  for (let i = 0; i < 5; i++) {
    const m = await c.next((f) => f.context === 'user' && f.message.startsWith(tag));
    assert.strictEqual(m.message, `${tag} ${i}`); // in order
    assert.strictEqual(m.from, d.data.id);
  }
  return d.data.id;
}

test('engine.io over three nodes behind a round-robin proxy', async (t) => {
  const cl = await cluster(3);
  const proxy = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  const strip = await startRoundRobinProxy(cl.nodes.map((s) => s.port), { stripUpgrade: true });
  t.after(() => teardown(cl, proxy, strip));

  await t.test('polling only: every request of the session on the next node', async () => {
    const c = eio(proxy.url, { transports: ['polling'] });
    await c.opened;
    await exercise(c, 'poll');
    assert.strictEqual(c.socket.transport.name, 'polling');
    c.socket.close();
    assert.ok(proxy.hits.every((h) => h > 3), `requests spread: ${proxy.hits}`);
  });

  await t.test('websocket only', async () => {
    const c = eio(proxy.url, { transports: ['websocket'] });
    await c.opened;
    await exercise(c, 'ws');
    c.socket.close();
  });

  await t.test('polling then the upgrade, probe and polling on other nodes', async () => {
    for (let i = 0; i < 3; i++) {
      const c = eio(proxy.url, { transports: ['polling', 'websocket'] });
      await c.opened;
      const upgraded = new Promise((r) => c.socket.once('upgrade', r));
      await exercise(c, `up${i}`);
      await upgraded;
      assert.strictEqual(c.socket.transport.name, 'websocket');
      assert.strictEqual((await c.request({ event: 'roomLeave', room: 'defaultRoom' })).data, true);
      c.socket.close();
    }
  });

  await t.test('a proxy that strips Upgrade: the session stays on polling', async () => {
    const c = eio(strip.url, { transports: ['polling', 'websocket'] });
    await c.opened;
    await exercise(c, 'strip');
    await sleep(300);
    assert.strictEqual(c.socket.transport.name, 'polling');
    assert.strictEqual((await c.request({ event: 'roomView', room: 'defaultRoom' })).status, 'OK');
    c.socket.close();
  });

  await t.test('SSE, with its POSTs spread over the nodes', async () => {
    const c = sse(proxy.url);
    await c.opened;
    await exercise(c, 'sse');
    c.close();
  });

  await t.test('socket.io-client over polling and the upgrade (engine.io at the socket.io path)', async () => {
    for (const mode of ['polling', 'upgrade']) {
      const c = await connectSio({ url: proxy.url }, mode);
      const [welcome] = await c.take('welcome');
      assert.deepStrictEqual(welcome, WELCOME);
      if (mode === 'upgrade') assert.strictEqual(await c.upgraded, 'websocket');
      for (let i = 0; i < 6; i++) {
        const [reply] = await c.ack('action', { action: 'randomNumber' });
        assert.strictEqual(typeof reply.randomNumber, 'number');
      }
      c.socket.disconnect();
    }
  });

  await t.test('an unknown sid is unknown on every node', async () => {
    for (const s of cl.nodes) {
      const r = await getJson(`${s.url}/primus/?EIO=4&transport=polling&sid=zzzzzzzzzzzzzzzzzzzzzz`);
      assert.deepStrictEqual(r, { status: 400, body: { code: 1, message: 'Session ID unknown' } });
    }
  });
});

test('chat, rooms, actions and push across nodes', async (t) => {
  const cl = await cluster(2);
  const proxy = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  t.after(() => teardown(cl, proxy));
  const [n0, n1] = cl.nodes;

  await t.test('a say is delivered on every node, roomView counts the cluster', async () => {
    const a = await primus(n0);
    const b = await primus(n1);
    const c = eio(proxy.url, { transports: ['polling'] });
    await c.opened;
    await c.next((f) => f.welcome !== undefined);
    const cid = (await c.request({ event: 'detailsView' })).data.id;
    for (const x of [a, b, c]) assert.strictEqual((await x.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    const v = await a.request({ event: 'roomView', room: 'defaultRoom' });
    assert.strictEqual(v.data.membersCount, 3);
    assert.deepStrictEqual(Object.keys(v.data.members).sort(), [a.id, b.id, cid].sort());
    assert.deepStrictEqual(Object.keys(v.data.members[b.id]).sort(), ['id', 'joinedAt']);
    await b.request({ event: 'say', room: 'defaultRoom', message: 'from node1' });
    for (const x of [a, b, c]) {
      const m = await x.next((f) => f.context === 'user' && f.message === 'from node1');
      assert.deepStrictEqual([m.room, m.from], ['defaultRoom', b.id]);
    }
    // leaving on one node is seen from the other
    await b.request({ event: 'roomLeave', room: 'defaultRoom' });
    assert.strictEqual((await a.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount, 2);
    await b.close();
    c.socket.close();
    await waitFor(async () => (await a.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount === 1, 3000,
      'members gone');
    await a.close();
  });

  await t.test('createChatRoom on one node, join on the other', async () => {
    const r = await getJson(`${n0.url}/api/createChatRoom?name=clusterRoom`);
    assert.strictEqual(r.body.didCreate, true);
    const again = await getJson(`${n1.url}/api/createChatRoom?name=clusterRoom`);
    assert.strictEqual(again.body.didCreate, false);
    const b = await primus(n1);
    assert.strictEqual((await b.request({ event: 'roomAdd', room: 'clusterRoom' })).data, true);
    await b.close();
  });

  await t.test('cache actions see one cache', async () => {
    const a = await primus(n0);
    const b = await primus(n1);
    const save = await a.request({ event: 'action', params: { action: 'cacheTest', key: 'clusterKey', value: 'shared value' } });
    assert.strictEqual(save.cacheTestResults.saveResp, true);
    const web = await getJson(`${n1.url}/api/cacheTest?key=clusterKey&value=other`);
    assert.strictEqual(web.status, 200);
    assert.strictEqual(typeof b.id, 'string');
    await a.close();
    await b.close();
  });
});

test('restart Redis mid-session: no crash, chat works again afterwards', async (t) => {
  const cl = await cluster(2);
  t.after(() => teardown(cl));
  const [n0, n1] = cl.nodes;
  const a = await primus(n0);
  const a2 = await primus(n0);
  const b = await primus(n1);
  for (const x of [a, a2, b]) await x.request({ event: 'roomAdd', room: 'defaultRoom' });

  await cl.redis.stop();
  await sleep(300);
  // local connections are still served, and members on the same node still hear each other
  assert.strictEqual((await a.request({ event: 'detailsView' })).status, 'OK');
  await a.request({ event: 'say', room: 'defaultRoom', message: 'during the outage' });
  await a2.next((f) => f.context === 'user' && f.message === 'during the outage');

  await cl.redis.start(cl.redis.port);
  // subscriptions and membership come back by themselves
  await waitFor(async () => (await b.request({ event: 'roomView', room: 'defaultRoom' })).data?.membersCount === 3, 10000,
    'membership written again');
  await waitFor(async () => {
    await a.request({ event: 'say', room: 'defaultRoom', message: 'after the restart' });
    return b.frames.some((f) => f.message === 'after the restart');
  }, 10000, 'chat across nodes again');
  for (const x of [a, a2, b]) await x.close();
  for (const s of cl.nodes) assert.strictEqual(s.exited, null);
});

test('polling GETs that go to sleep (pollSleepMs), forwarded to the node of their session: pings and chat go on', async (t) => {
  const cl = await cluster(2, { servers: { websocket: { server: { pingInterval: 200, pingTimeout: 400, pollSleepMs: 30 } } } });
  const proxy = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  t.after(() => teardown(cl, proxy));
  const c = eio(proxy.url, { transports: ['polling'] });
  await c.opened;
  let closed = null;
  c.closed.then((r) => (closed = r));
  await sleep(1500); // every GET sleeps before its ping comes, half of them forwarded from the other node
  assert.strictEqual(closed, null);
  await exercise(c, 'slept');
  c.socket.close();
  const slept = (await Promise.all(cl.nodes.map((s) => metric(s, 'actiongate_polls_slept_total')))).reduce((a, b) => a + b);
  assert.ok(slept >= 3, `GETs went to sleep: ${slept}`);
  assert.ok(proxy.hits.every((h) => h > 3), `requests spread: ${proxy.hits}`);
});

test('heartbeats and the single-GET rule hold across nodes', async (t) => {
  const cl = await cluster(2, { servers: { websocket: { server: { pingInterval: 200, pingTimeout: 400 } } } });
  const proxy = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  t.after(() => teardown(cl, proxy));

  await t.test('a polling session lives through many ping cycles, its GETs and pongs on both nodes', async () => {
    const c = eio(proxy.url, { transports: ['polling'] });
    await c.opened;
    let closed = null;
    c.closed.then((r) => (closed = r));
    await sleep(2000); // ten ping intervals
    assert.strictEqual(closed, null);
    await exercise(c, 'beat');
    c.socket.close();
  });

  await t.test('a second GET while one is held, on the other node: 400 and the session closes', async () => {
    const base = proxy.url;
    const get = (path) => new Promise((resolve, reject) => {
      http.get(`${base}${path}`, { agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode, body: b }));
      }).on('error', reject);
    });
    const open = await get('/primus/?EIO=4&transport=polling');
    const sid = JSON.parse(open.body.slice(1)).sid;
    const q = `/primus/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
    const first = await get(q); // the welcome frame is waiting: answered at once
    assert.strictEqual(first.status, 200);
    const held = get(q); // nothing to send: held by the owner
    await sleep(50);
    const second = await get(q);
    assert.strictEqual(second.status, 400);
    assert.deepStrictEqual(JSON.parse(second.body), { code: 3, message: 'Bad request' });
    const r = await held; // the held GET is released with a close packet
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.body, '1');
    const after = await get(q);
    assert.deepStrictEqual(JSON.parse(after.body), { code: 1, message: 'Session ID unknown' });
  });
});
