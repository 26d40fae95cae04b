'use strict';
// The bounds on rooms hold across a cluster: maxRooms counts the rooms in Redis (every node's), names are checked on
// every node, and a connection's joins in flight count against maxRoomsPerConnection.
const test = require('node:test');
const assert = require('node:assert');
const { startServer, Redis } = require('../lib/harness');
const { primus, waitFor } = require('../lib/cluster_clients');

test('room bounds over Redis', async (t) => {
  const redis = await new Redis().start();
  const general = { maxRooms: 4, maxRoomsPerConnection: 3, maxRoomNameLength: 16 }; // defaultRoom, otherRoom count
  const nodes = [];
  t.after(async () => {
    for (const s of nodes) await s.stop();
    await redis.stop();
  });
  for (let i = 0; i < 2; i++) {
    nodes.push(await startServer({ config: { general: { id: `node${i}`, ...general }, redis: { url: redis.url, nodeTtl: 1 } } }));
  }
  await waitFor(() => redis.cli('SCARD', 'actiongate:rooms') === '2', 5000, 'starting rooms written');
  const a = await primus(nodes[0]);
  const b = await primus(nodes[1]);
  const create = (c, name) => c.request({ event: 'action', params: { action: 'createChatRoom', name } });

  await t.test('maxRooms counts the rooms of every node', async () => {
    assert.strictEqual((await create(a, 'ra')).didCreate, true);
    assert.strictEqual((await create(b, 'rb')).didCreate, true);
    assert.strictEqual((await create(a, 'rc')).error, 'too many rooms (at most 4)');
    assert.strictEqual((await create(b, 'rd')).error, 'too many rooms (at most 4)');
    assert.strictEqual((await create(b, 'ra')).didCreate, false); // exists: not an error
    assert.strictEqual(redis.cli('SCARD', 'actiongate:rooms'), '4');
  });

  await t.test('names over maxRoomNameLength are refused on every node', async () => {
    const long = 'n'.repeat(17);
    assert.strictEqual((await create(b, long)).error, 'room name too long (at most 16)');
    assert.strictEqual((await b.request({ event: 'roomAdd', room: long })).error, 'Error: room name too long (at most 16)');
    assert.strictEqual(redis.cli('SISMEMBER', 'actiongate:rooms', long), '0');
  });

  await t.test('joins in flight count against maxRoomsPerConnection', async () => {
    // four joins sent at once: each waits for Redis, so all four are in flight together
    const replies = await Promise.all(['defaultRoom', 'otherRoom', 'ra', 'rb'].map((room) => b.request({ event: 'roomAdd', room })));
    // three fit; the one that finds three joins counted (done or in flight) is refused at once, whichever it is
    const errors = replies.map((r) => r.error).filter((e) => e !== undefined);
    assert.deepStrictEqual(errors, ['Error: connection in too many rooms (at most 3)']);
    assert.strictEqual((await b.request({ event: 'detailsView' })).data.rooms.length, 3);
    // the members are in Redis, and the other node's connection still joins freely
    assert.strictEqual((await a.request({ event: 'roomAdd', room: 'rb' })).data, true);
    assert.strictEqual((await a.request({ event: 'roomView', room: 'rb' })).data.membersCount, 1);
    assert.strictEqual((await b.request({ event: 'roomView', room: 'ra' })).data.membersCount, 1);
    assert.strictEqual((await a.request({ event: 'roomAdd', room: 'ra' })).data, true);
    assert.strictEqual((await b.request({ event: 'roomView', room: 'ra' })).data.membersCount, 2);
  });

  await a.close();
  await b.close();
});
