'use strict';
// Bounds on rooms (general.maxRoomNameLength, maxRooms, maxRoomsPerConnection): what a client gets when it hits one,
// and that the server keeps serving everyone else. Also a connection in very many rooms closing.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

async function client(srv) {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  return c;
}

function postJson(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(b) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

// Sends every request at once and waits for every reply (replies are matched by messageId).
// The replies to reqs, in order, with at most general.simultaneousActions (5) in flight: on Redis an action is pending
// until the store answers, and a sixth one would be refused ("you have too many pending requests"), as in actionhero.
async function all(c, reqs, timeoutMs = 20000) {
  const out = new Array(reqs.length);
  let next = 0;
  const worker = async () => {
    while (next < reqs.length) {
      const i = next++;
      out[i] = await c.request(reqs[i], timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: 5 }, worker));
  return out;
}

test('room names are at most maxRoomNameLength bytes', async (t) => {
  const srv = await startServer({ config: { general: { maxRoomNameLength: 32 } } });
  t.after(() => srv.stop());
  const c = await client(srv);
  const ok = 'r'.repeat(32);
  const long = 'r'.repeat(33);
  assert.deepStrictEqual(await c.request({ event: 'action', params: { action: 'createChatRoom', name: ok }, messageId: 1 }),
    { name: ok, didCreate: true, context: 'response', messageId: 1 });
  assert.deepStrictEqual(await c.request({ event: 'action', params: { action: 'createChatRoom', name: long }, messageId: 2 }),
    { error: 'room name too long (at most 32)', context: 'response', messageId: 2 });
  // a name of a megabyte is refused the same way and kept nowhere
  const huge = 'h'.repeat(1e6);
  const r = await c.request({ event: 'action', params: { action: 'createChatRoom', name: huge } });
  assert.strictEqual(r.error, 'room name too long (at most 32)');
  // over HTTP: 422 with the same text
  const web = await postJson(`${srv.url}/api/createChatRoom`, { name: long });
  assert.strictEqual(web.status, 422);
  assert.strictEqual(web.body.error, 'room name too long (at most 32)');
  // verbs: the verb error shape
  assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: long, messageId: 3 }), {
    status: 'Error: room name too long (at most 32)', error: 'Error: room name too long (at most 32)', context: 'response',
    data: {}, messageId: 3,
  });
  assert.strictEqual((await c.request({ event: 'roomAdd', room: ok })).data, true);
  const details = await c.request({ event: 'detailsView' });
  assert.deepStrictEqual(details.data.rooms, [ok]);
  await c.close();
});

test('the store holds at most maxRooms rooms', async (t) => {
  const srv = await startServer({ config: { general: { maxRooms: 5 } } }); // defaultRoom and otherRoom count
  t.after(() => srv.stop());
  const c = await client(srv);
  const create = (name) => c.request({ event: 'action', params: { action: 'createChatRoom', name } });
  for (const name of ['a', 'b', 'c']) assert.strictEqual((await create(name)).didCreate, true);
  const full = await create('d');
  assert.strictEqual(full.error, 'too many rooms (at most 5)');
  assert.strictEqual(full.didCreate, undefined);
  // an existing room is still "not created", not an error
  assert.deepStrictEqual([(await create('a')).didCreate, (await create('a')).error], [false, undefined]);
  const web = await postJson(`${srv.url}/api/createChatRoom`, { name: 'e' });
  assert.strictEqual(web.status, 409);
  assert.strictEqual(web.body.error, 'too many rooms (at most 5)');
  // the refused room does not exist; the others work
  assert.strictEqual((await c.request({ event: 'roomAdd', room: 'd' })).error, 'Error: room does not exist');
  for (const name of ['a', 'b', 'c', 'defaultRoom']) assert.strictEqual((await c.request({ event: 'roomAdd', room: name })).data, true);
  await c.close();
});

test('a connection is in at most maxRoomsPerConnection rooms (default 100)', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const c = await client(srv);
  const other = await client(srv);
  const names = Array.from({ length: 150 }, (_, i) => `room${i}`);
  for (const r of await all(c, names.map((name) => ({ event: 'action', params: { action: 'createChatRoom', name } })))) {
    assert.strictEqual(r.didCreate, true);
  }
  const replies = await all(c, names.map((room) => ({ event: 'roomAdd', room })));
  assert.strictEqual(replies.filter((r) => r.status === 'OK').length, 100);
  const refused = replies.filter((r) => r.status !== 'OK');
  assert.strictEqual(refused.length, 50);
  for (const r of refused) {
    assert.deepStrictEqual([r.status, r.error, r.data],
      ['Error: connection in too many rooms (at most 100)', 'Error: connection in too many rooms (at most 100)', {}]);
  }
  assert.strictEqual((await c.request({ event: 'detailsView' })).data.rooms.length, 100);
  // leaving one makes room for another; the bound is per connection
  assert.strictEqual((await c.request({ event: 'roomLeave', room: 'room0' })).data, true);
  assert.strictEqual((await c.request({ event: 'roomAdd', room: 'room149' })).data, true);
  assert.strictEqual((await c.request({ event: 'roomAdd', room: 'room0' })).status, 'Error: connection in too many rooms (at most 100)');
  assert.strictEqual((await other.request({ event: 'roomAdd', room: 'room0' })).data, true);
  // chat still reaches the members of a room joined before the bound
  await c.request({ event: 'say', room: 'room1', message: 'still chatting' });
  await c.next((f) => f.context === 'user' && f.message === 'still chatting');
  await c.close();
  await other.close();
});

// Sends many requests at once and resolves with the replies in request order, without the client's per-frame waiter
// scan (thousands of waiters would make the test, not the server, the slow part). Callers send at most 500 at a time:
// more, read by the server in one go, would queue more replies than queueMaxFrames before the first write (the
// slow-consumer rule, not what these tests are about).
function bulk(c, reqs, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const want = new Map();
    const replies = new Array(reqs.length);
    let left = reqs.length;
    const onMessage = (data) => {
      const f = JSON.parse(data.toString());
      if (f && f.context === 'response' && want.has(f.messageId)) {
        replies[want.get(f.messageId)] = f;
        want.delete(f.messageId);
        if (--left === 0) done(null);
      }
    };
    const timer = setTimeout(() => done(new Error(`${left} of ${reqs.length} replies missing`)), timeoutMs);
    const done = (err) => {
      clearTimeout(timer);
      c.ws.off('message', onMessage);
      c.frames.length = 0; // the client kept them too
      if (err) reject(err);
      else resolve(replies);
    };
    c.ws.on('message', onMessage);
    reqs.forEach((r, i) => {
      const messageId = `bulk-${c.nextId++}`;
      want.set(messageId, i);
      c.ws.send(JSON.stringify({ ...r, messageId }));
    });
  });
}

// Leaving every room on close is linear in the connection's rooms (it was quadratic in them, with a string comparison
// per pair: with these long names that froze the loop for many seconds).
test('a connection in 20,000 rooms closes and the server goes on answering', { skip: process.env.AG_STORE === 'redis' && 'the local room index is what this measures: the memory-store pass runs it' }, async (t) => {
  // (the configuration file that creates them stays under the loader's 1 MiB bound)
  const N = 20000;
  const prefix = 'x'.repeat(20);
  const names = Array.from({ length: N }, (_, i) => `${prefix}${i}`);
  const srv = await startServer({
    config: { general: { startingChatRooms: names, maxRoomsPerConnection: N, maxRooms: N } },
  });
  t.after(() => srv.stop());
  const big = await client(srv);
  const watcher = await client(srv);
  for (let i = 0; i < N; i += 500) {
    const joined = await bulk(big, names.slice(i, i + 500).map((room) => ({ event: 'roomAdd', room })));
    assert.ok(joined.every((r) => r.data === true));
  }
  const [first, middle, last] = [names[0], names[N / 2], names[N - 1]];
  for (const room of [first, middle, last]) assert.strictEqual((await watcher.request({ event: 'roomAdd', room })).data, true);
  assert.strictEqual((await watcher.request({ event: 'roomView', room: last })).data.membersCount, 2);
  // leaving one room in the middle
  assert.strictEqual((await big.request({ event: 'roomLeave', room: middle })).data, true);
  assert.strictEqual((await watcher.request({ event: 'roomView', room: middle })).data.membersCount, 1);
  big.ws.terminate();
  await big.closed;
  // the next requests are answered, and the closed connection has left every room. (The reply wait is a safety bound
  // of 10 s, room for a sanitizer build on a busy machine; leaving these rooms one by one with a scan of the
  // connection's rooms each, as before, kept the loop busy for 12.5 s in a release build.)
  for (const room of [first, last]) {
    let count = 2;
    for (let i = 0; i < 50 && count === 2; i++) {
      count = (await watcher.request({ event: 'roomView', room }, 10000)).data.membersCount;
      if (count === 2) await new Promise((r) => setTimeout(r, 20));
    }
    assert.strictEqual(count, 1);
  }
  assert.strictEqual(typeof (await watcher.request({ event: 'action', params: { action: 'randomNumber' } })).randomNumber, 'number');
  await watcher.close();
});
