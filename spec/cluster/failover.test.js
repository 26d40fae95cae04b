'use strict';
// A node killed mid-session (SIGKILL): its members leave the rooms within about nodeTtl (1 s here: heartbeat every
// third of it, reaped by the first live node that finds the key expired), its sessions are unknown elsewhere, and its
// clients come back on another node, re-join and hear later messages.
const test = require('node:test');
const assert = require('node:assert');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { sleep, waitFor, eio, primus, getJson, cluster, teardown } = require('../lib/cluster_clients');

const count = async (c, room = 'defaultRoom') => (await c.request({ event: 'roomView', room })).data.membersCount;

test('SIGKILL a node mid-session', async (t) => {
  const cl = await cluster(3);
  const proxy = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  t.after(() => teardown(cl, proxy));

  // the engine.io client's owner is the node its sid names
  const x = eio(proxy.url, { transports: ['polling', 'websocket'] });
  await x.opened;
  await x.next((f) => f.welcome !== undefined);
  const sid = x.socket.id;
  const ownerAddr = cl.redis.cli('HGET', `actiongate:route:${sid.slice(0, 8)}`, 'address');
  const owner = cl.nodes.find((s) => `127.0.0.1:${s.port}` === ownerAddr);
  assert.ok(owner, `owner of ${sid} at ${ownerAddr}`);
  const survivors = cl.nodes.filter((s) => s !== owner);
  const obs = await primus(survivors[0]);
  const local = await primus(owner); // a plain WebSocket member on the doomed node too
  assert.strictEqual((await x.request({ event: 'roomAdd', room: 'defaultRoom' })).data, true);
  await obs.request({ event: 'roomAdd', room: 'defaultRoom' });
  await local.request({ event: 'roomAdd', room: 'defaultRoom' });
  assert.strictEqual(await count(obs), 3);

  const closed = x.closed;
  await owner.kill();
  await closed; // the client notices (transport error or ping timeout)

  // the dead node's members are gone from the cluster's view within a few heartbeats
  const t0 = Date.now();
  await waitFor(async () => (await count(obs)) === 1, 5000, 'dead members removed');
  t.diagnostic(`members of the dead node removed after ${Date.now() - t0} ms`);
  // its sessions are unknown on the live nodes once its route expired (until then forwarding fails with a 502)
  for (const s of survivors) {
    const url = `${s.url}/primus/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
    const r = await waitFor(async () => {
      const res = await getJson(url);
      return res.status === 502 ? null : res;
    }, 5000, 'route of the dead node expired');
    assert.deepStrictEqual(r, { status: 400, body: { code: 1, message: 'Session ID unknown' } });
  }

  // the client comes back through the proxy, lands on a live node, re-joins, and later messages arrive
  const y = eio(proxy.url, { transports: ['polling', 'websocket'] });
  await y.opened;
  await y.next((f) => f.welcome !== undefined);
  assert.notStrictEqual(y.socket.id.slice(0, 8), sid.slice(0, 8));
  assert.strictEqual((await y.request({ event: 'roomAdd', room: 'defaultRoom' })).data, true);
  assert.strictEqual(await count(obs), 2);
  await obs.request({ event: 'say', room: 'defaultRoom', message: 'after the failover' });
  const m = await y.next((f) => f.context === 'user' && f.message === 'after the failover');
  assert.strictEqual(m.from, obs.id);
  y.socket.close();
  await obs.close();
  await sleep(50);
});
