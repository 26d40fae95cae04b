'use strict';
// socket.io over a cluster without sticky sessions: two nodes on one redis-server behind a round-robin proxy, so the
// requests of one polling socket.io client land on both nodes in turn and are routed to the node that owns its sid.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, Redis } = require('../lib/harness');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { connectSio } = require('../lib/sioclient');

test('a polling socket.io client through a round-robin proxy chats with a client on another node', async (t) => {
  const redis = await new Redis().start();
  const a = await startServer({ config: { general: { id: 'sio-a' }, redis: { url: redis.url } } });
  const b = await startServer({ config: { general: { id: 'sio-b' }, redis: { url: redis.url } } });
  const proxy = await startRoundRobinProxy([a.port, b.port]);
  t.after(async () => {
    await proxy.close();
    await a.stop();
    await b.stop();
    await redis.stop();
  });

  const viaProxy = await connectSio({ url: `http://127.0.0.1:${proxy.port}` }, 'polling');
  const onB = await connectSio(b, 'websocket');
  t.after(() => {
    viaProxy.socket.disconnect();
    onB.socket.disconnect();
  });
  await viaProxy.take('welcome');
  for (let i = 0; i < 4; i++) {
    const [reply] = await viaProxy.ack('action', { action: 'randomNumber' });
    assert.strictEqual(typeof reply.randomNumber, 'number');
  }
  assert.ok(proxy.hits[0] > 2 && proxy.hits[1] > 2, `both nodes saw requests: ${proxy.hits}`);

  await viaProxy.ack('roomChange', { room: 'defaultRoom' });
  await onB.ack('roomChange', { room: 'defaultRoom' });
  viaProxy.socket.emit('say', { message: 'across nodes' });
  const [heard] = await onB.take('say', (m) => m.message === 'across nodes');
  assert.strictEqual(heard.from, viaProxy.socket.id);
  onB.socket.emit('say', { message: 'and back' });
  const [back] = await viaProxy.take('say', (m) => m.message === 'and back');
  assert.strictEqual(back.from, onB.socket.id);
});
