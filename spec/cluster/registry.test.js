'use strict';
// Node registry over a real redis-server: nodes register (heartbeat key, sid route), leave at once on SIGTERM, are
// reaped by the live nodes after SIGKILL, and survive Redis restarts.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, Redis } = require('../lib/harness');
const { sleep, waitFor } = require('../lib/cluster_clients');

const members = (redis, key) => redis.cli('SMEMBERS', key).split('\n').filter(Boolean).sort();
const keys = (redis, pattern) => redis.cli('--scan', '--pattern', pattern).split('\n').filter(Boolean).sort();

function node(redis, id) {
  return startServer({ config: { general: { id }, redis: { url: redis.url, nodeTtl: 1 } } });
}

test('nodes register, leave cleanly on SIGTERM and are reaped after SIGKILL', async () => {
  const redis = await new Redis().start();
  const a = await node(redis, 'node-a');
  const b = await node(redis, 'node-b');
  const c = await node(redis, 'node-c');
  try {
    await waitFor(() => members(redis, 'actiongate:nodes').length === 3, 5000, 'three nodes registered');
    assert.deepStrictEqual(members(redis, 'actiongate:nodes'), ['node-a', 'node-b', 'node-c']);
    const routes = keys(redis, 'actiongate:route:*');
    assert.strictEqual(routes.length, 3);
    const addrs = routes.map((k) => redis.cli('HGET', k, 'address')).sort();
    assert.deepStrictEqual(addrs, [a, b, c].map((s) => `127.0.0.1:${s.port}`).sort());
    // each route carries its node's own token (22 URL-safe characters), and expires with the heartbeat
    const tokens = routes.map((k) => redis.cli('HGET', k, 'token'));
    for (const tok of tokens) assert.match(tok, /^[A-Za-z0-9_-]{22}$/);
    assert.strictEqual(new Set(tokens).size, 3);
    const routeTtl = Number(redis.cli('PTTL', routes[0]));
    assert.ok(routeTtl > 0 && routeTtl <= 1000, `route pttl ${routeTtl}`);
    // the heartbeat key expires by itself (PX nodeTtl)
    const pttl = Number(redis.cli('PTTL', 'actiongate:node:node-a'));
    assert.ok(pttl > 0 && pttl <= 1000, `pttl ${pttl}`);

    await b.stop();
    assert.deepStrictEqual(members(redis, 'actiongate:nodes'), ['node-a', 'node-c']);
    assert.strictEqual(redis.cli('EXISTS', 'actiongate:node:node-b'), '0');
    assert.strictEqual(keys(redis, 'actiongate:route:*').length, 2);

    await c.kill();
    await waitFor(() => members(redis, 'actiongate:nodes').length === 1, 5000, 'node-c reaped');
    assert.deepStrictEqual(members(redis, 'actiongate:nodes'), ['node-a']);
    // the reaper says so (its log line may trail the Redis change a little)
    await waitFor(() => /node node-c missed its heartbeat/.test(a.stderr), 2000, 'reaper log line');
    await waitFor(() => keys(redis, 'actiongate:route:*').length === 1, 3000, 'node-c route expired');
  } finally {
    await a.stop();
    await b.stop().catch(() => {});
    await c.stop('SIGKILL').catch(() => {});
    await redis.stop();
  }
});

test('a node outlives a Redis restart and registers again', async () => {
  const redis = await new Redis().start();
  const a = await node(redis, 'node-r');
  try {
    await waitFor(() => members(redis, 'actiongate:nodes').length === 1, 5000, 'registered');
    await redis.stop();
    await sleep(500);
    assert.strictEqual(a.exited, null);
    await redis.start(redis.port);
    await waitFor(() => members(redis, 'actiongate:nodes').length === 1, 8000, 'registered again');
    await waitFor(() => keys(redis, 'actiongate:route:*').length === 1, 3000, 'route again');
    // one line when Redis went away, one when it came back
    assert.strictEqual(a.stderr.match(/connection to redis lost/g).length, 1);
    await waitFor(() => /store available again/.test(a.stderr), 2000, 'log line');
  } finally {
    await a.stop();
    await redis.stop();
  }
});

test('a bad redis.url is a startup error', async () => {
  await assert.rejects(startServer({ config: { redis: { url: 'http://nope' } } }), /redis\.url/);
});
