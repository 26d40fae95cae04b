'use strict';
// Chat and RPC shared with an actionhero 29 cluster (redis.compat: actionhero): two real actionhero 29.3.5 nodes of the
// fixture app and two actiongate nodes on one real redis-server. actiongate clients over WebSocket (/primus and
// engine.io), polling, SSE and the socket.io era; the app's own clients are `ws` sockets speaking Primus framing to the
// app's /primus. App code (spec/actionhero/app/actions/chat.js) broadcasts, adds and removes members and sends messages
// to connections held by actiongate.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, Redis } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { eio, sse, waitFor, primus } = require('../lib/cluster_clients');
const { connectSio } = require('../lib/sioclient');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { startApp } = require('./lib');

const TOKEN = 'ahfixture-token'; // the fixture app's general.serverToken
const CHAT_KEYS = ['message', 'room', 'from', 'context', 'sentAt'];

let redis;
const apps = [];
const ags = [];

function agConfig(i, extra = {}) {
  return {
    general: { id: `ag${i}`, serverToken: TOKEN, startingChatRooms: ['defaultRoom', 'otherRoom', 'agStartRoom'] },
    redis: { url: redis.url, compat: 'actionhero', nodeTtl: 1 },
    upstream: { urls: [`${apps[i % apps.length].url}/api`] },
    ...extra,
  };
}

test.before(async () => {
  redis = await new Redis().start();
  apps.push(await startApp(redis), await startApp(redis));
  for (let i = 0; i < 2; i++) ags.push(await startServer({ config: agConfig(i) }));
  await waitFor(() => redis.cli('--scan', '--pattern', 'actiongate:route:*').split('\n').filter(Boolean).length === 2, 5000,
    'routes registered');
});

test.after(async () => {
  for (const s of ags) await s.stop(s.exited && s.exited.signal === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
  for (const a of apps) await a.stop();
  if (redis) await redis.stop();
});

// --- one interface over every kind of client ---

// A session-layer client with request()/next() (WsClient or Frames).
function framesClient(name, c, close) {
  return {
    name,
    request: (obj) => c.request(obj),
    join: (room) => c.request({ event: 'roomAdd', room }),
    leave: (room) => c.request({ event: 'roomLeave', room }),
    say: (room, message) => c.request({ event: 'say', room, message }),
    view: (room) => c.request({ event: 'roomView', room }),
    details: () => c.request({ event: 'detailsView' }),
    action: (params) => c.request({ event: 'action', params }),
    chat: (pred) => c.next((f) => f && f.context === 'user' && pred(f), 10000),
    next: (pred) => c.next(pred, 10000),
    close,
  };
}

function sioClient(name, s) {
  const verb = async (ev, obj) => (await s.ack(ev, obj))[0];
  return {
    name,
    join: (room) => verb('roomAdd', { room }),
    leave: (room) => verb('roomLeave', { room }),
    say: (room, message) => verb('say', { room, message }),
    view: (room) => verb('roomView', { room }),
    details: () => verb('detailsView', {}),
    action: (params) => verb('action', params),
    chat: async (pred) => (await s.take('say', pred))[0],
    next: async (pred) => (await s.take('alert', pred))[0],
    close: () => s.socket.close(),
  };
}

async function withId(c) {
  c.id = (await c.details()).data.id;
  return c;
}

// The app's own Primus client on actionhero node i.
async function ahClient(i) {
  const c = await connect(`${apps[i].wsUrl}/primus`);
  await c.welcome();
  return withId(framesClient(`actionhero${i}`, c, () => c.close()));
}

async function agPrimus(i) {
  const c = await connect(`${ags[i].wsUrl}/primus`);
  await c.welcome();
  return withId(framesClient(`ag${i} /primus`, c, () => c.close()));
}

async function agEio(i, transport) {
  const c = eio(ags[i].url, { transports: [transport], upgrade: false });
  await c.opened;
  await c.next((f) => f.welcome !== undefined);
  return withId(framesClient(`ag${i} ${transport}`, c, () => c.socket.close()));
}

async function agSse(i) {
  const c = sse(ags[i].url);
  await c.opened;
  await c.next((f) => f.welcome !== undefined);
  // an engine.io close packet ends the session at once (a dropped stream alone waits for a reconnect)
  const close = async () => {
    await c.post('1').catch(() => {});
    c.close();
  };
  return withId(framesClient(`ag${i} sse`, c, close));
}

async function agSocketIo(i) {
  return withId(sioClient(`ag${i} socket.io`, await connectSio(ags[i], 'websocket')));
}

// Every kind of client, on both sides and on both nodes of each.
async function everyone() {
  return [
    await ahClient(0), await ahClient(1), await agPrimus(0), await agEio(1, 'polling'), await agEio(0, 'websocket'),
    await agSse(1), await agSocketIo(0),
  ];
}

const closeAll = async (clients) => {
  for (const c of clients) await c.close();
};

async function createRoomOnApp(name) {
  const c = await ahClient(0);
  const r = await c.action({ action: 'createChatRoom', name });
  await c.close();
  assert.equal(r.didCreate, true, JSON.stringify(r));
}

// --- chat ---

test('a say from any client on either side reaches every member on both sides, with from, room and sentAt', async () => {
  await createRoomOnApp('shared1');
  const clients = await everyone();
  for (const c of clients) assert.equal((await c.join('shared1')).status, 'OK', c.name);
  for (const sender of clients) {
    const text = `hello from ${sender.name}`;
    const before = Date.now();
    const reply = await sender.say('shared1', text);
    assert.equal(reply.status, 'OK', sender.name);
    for (const c of clients) {
      const m = await c.chat((f) => f.message === text);
      assert.deepEqual(Object.keys(m), CHAT_KEYS, `${c.name} <- ${sender.name}`);
      assert.equal(m.from, sender.id, `${c.name} <- ${sender.name}`);
      assert.equal(m.room, 'shared1');
      assert.equal(m.context, 'user');
      assert.ok(Number.isInteger(m.sentAt) && m.sentAt >= before - 1000 && m.sentAt <= Date.now() + 1000, `${m.sentAt}`);
    }
  }
  await closeAll(clients);
});

test('roomView on either side counts the members of both; member details are actionhero\'s', async () => {
  await createRoomOnApp('shared2');
  const clients = await everyone();
  for (const c of clients) await c.join('shared2');
  const ids = clients.map((c) => c.id).sort();
  for (const c of clients) {
    const v = await c.view('shared2');
    assert.equal(v.status, 'OK', c.name);
    assert.equal(v.data.room, 'shared2');
    assert.equal(v.data.membersCount, clients.length, c.name);
    assert.deepEqual(Object.keys(v.data.members).sort(), ids, c.name);
    for (const m of Object.values(v.data.members)) assert.deepEqual(Object.keys(m), ['id', 'joinedAt'], c.name);
  }
  // what actiongate wrote is what actionhero writes: {id, joinedAt, host}
  const agMember = JSON.parse(redis.cli('HGET', 'actionhero:chatRoom:members:shared2', clients[2].id));
  assert.deepEqual(Object.keys(agMember), ['id', 'joinedAt', 'host']);
  assert.equal(agMember.host, 'ag0');
  const ahMember = JSON.parse(redis.cli('HGET', 'actionhero:chatRoom:members:shared2', clients[0].id));
  assert.deepEqual(Object.keys(ahMember), Object.keys(agMember));
  // the app's own view from app code counts them too
  const status = await clients[0].action({ action: 'chatRoomStatus', room: 'shared2' });
  assert.equal(status.membersCount, clients.length);
  // leaving on either side is seen on the other
  await clients[3].leave('shared2');
  await clients[1].leave('shared2');
  assert.equal((await clients[0].view('shared2')).data.membersCount, clients.length - 2);
  assert.equal((await clients[5].view('shared2')).data.membersCount, clients.length - 2);
  await closeAll(clients);
  // closed connections left the room on both sides
  const gone = () => redis.cli('HLEN', 'actionhero:chatRoom:members:shared2') === '0';
  await waitFor(gone, 5000, 'members gone').catch((e) => {
    const left = redis.cli('HKEYS', 'actionhero:chatRoom:members:shared2').split('\n');
    throw new Error(`${e.message}: ${clients.filter((c) => left.includes(c.id)).map((c) => c.name)}`);
  });
});

test('rooms created on either side, by createChatRoom or at boot, are joinable from the other', async () => {
  const ah = await ahClient(1);
  const ag = await agEio(0, 'polling');
  // created on actiongate (its built-in createChatRoom) -> joined on actionhero
  const made = await ag.action({ action: 'createChatRoom', name: 'madeOnAg' });
  assert.equal(made.didCreate, true);
  assert.equal((await ah.join('madeOnAg')).status, 'OK');
  // created on actionhero -> joined on actiongate
  const made2 = await ah.action({ action: 'createChatRoom', name: 'madeOnAh' });
  assert.equal(made2.didCreate, true);
  assert.equal((await ag.join('madeOnAh')).status, 'OK');
  // the same room created twice, once on each side
  assert.equal((await ah.action({ action: 'createChatRoom', name: 'madeOnAg' })).didCreate, false);
  assert.equal((await ag.action({ action: 'createChatRoom', name: 'madeOnAh' })).didCreate, false);
  // startingChatRooms of each side
  assert.equal((await ah.join('agStartRoom')).status, 'OK');
  assert.equal((await ag.join('ahStartRoom')).status, 'OK');
  const rooms = redis.cli('SMEMBERS', 'actionhero:chatRoom:rooms').split('\n');
  for (const r of ['defaultRoom', 'otherRoom', 'agStartRoom', 'ahStartRoom', 'madeOnAg', 'madeOnAh']) assert.ok(rooms.includes(r), r);
  // a room neither side created
  assert.equal((await ag.join('noSuchRoom')).error, 'Error: room does not exist');
  await ah.close();
  await ag.close();
});

test('api.chatRoom.broadcast() in an actionhero action reaches actiongate\'s members, from "0"', async () => {
  await createRoomOnApp('bcast');
  const clients = await everyone();
  for (const c of clients) await c.join('bcast');
  // called by the app's own client on actionhero, and through actiongate (upstream) from an actiongate client
  for (const [caller, text] of [[clients[1], 'from the app'], [clients[3], 'through actiongate']]) {
    const r = await caller.action({ action: 'chatBroadcast', room: 'bcast', message: text });
    assert.equal(r.broadcast, true, JSON.stringify(r));
    for (const c of clients) {
      const m = await c.chat((f) => f.message === text);
      assert.equal(m.from, '0', c.name);
      assert.equal(m.room, 'bcast');
      assert.deepEqual(Object.keys(m), CHAT_KEYS);
    }
  }
  // a message that is not a string travels as it is
  await clients[0].action({ action: 'chatBroadcast', room: 'bcast', message: { hello: ['a', 1] } });
  for (const c of clients.slice(2)) assert.deepEqual((await c.chat((f) => typeof f.message === 'object')).message, { hello: ['a', 1] });
  await closeAll(clients);
});

// --- cluster RPC ---

test('api.chatRoom.addMember / removeMember from app code reach a connection held by actiongate and answer', async () => {
  await createRoomOnApp('rpcRoom');
  const ah = await ahClient(0);
  const targets = [await agPrimus(1), await agEio(0, 'polling'), await agSse(1), await agSocketIo(0)];
  for (const t of targets) {
    const added = await ah.action({ action: 'chatAddMember', id: t.id, room: 'rpcRoom' });
    assert.deepEqual(added, { result: true, context: 'response', messageId: added.messageId }, t.name);
    assert.ok((await t.details()).data.rooms.includes('rpcRoom'), t.name);
  }
  // members now: they hear the room and are counted on both sides
  await ah.join('rpcRoom');
  await ah.say('rpcRoom', 'welcome aboard');
  for (const t of targets) assert.equal((await t.chat((f) => f.message === 'welcome aboard')).from, ah.id, t.name);
  assert.equal((await ah.view('rpcRoom')).data.membersCount, targets.length + 1);
  // where actionhero's own method throws (and its remote caller would wait for the RPC timeout), the error comes back
  const again = await ah.action({ action: 'chatAddMember', id: targets[0].id, room: 'rpcRoom' });
  assert.deepEqual(again.result, { error: 'connection already in this room (rpcRoom)' });
  const missing = await ah.action({ action: 'chatAddMember', id: targets[0].id, room: 'noSuchRoom' });
  assert.deepEqual(missing.result, { error: 'room does not exist' });
  for (const t of targets) {
    const removed = await ah.action({ action: 'chatRemoveMember', id: t.id, room: 'rpcRoom' });
    assert.equal(removed.result, true, t.name);
    assert.ok(!(await t.details()).data.rooms.includes('rpcRoom'), t.name);
  }
  assert.equal((await ah.view('rpcRoom')).data.membersCount, 1);
  const notIn = await ah.action({ action: 'chatRemoveMember', id: targets[0].id, room: 'rpcRoom' });
  assert.deepEqual(notIn.result, { error: 'connection not in this room (rpcRoom)' });
  // and from an actiongate client, through the app (upstream) and back over RPC
  const self = targets[1];
  const viaAg = await self.action({ action: 'chatAddMember', id: self.id, room: 'rpcRoom' });
  assert.equal(viaAg.result, true);
  assert.ok((await self.details()).data.rooms.includes('rpcRoom'));
  await ah.close();
  await closeAll(targets);
});

test('api.connections.apply(id, "sendMessage", msg) reaches a connection held by actiongate and answers with it', async () => {
  const ah = await ahClient(1);
  const targets = [await agPrimus(0), await agEio(1, 'websocket'), await agSse(0), await agSocketIo(1)];
  for (const [i, t] of targets.entries()) {
    const msg = { context: 'alert', text: `psst ${i}` };
    const r = await ah.action({ action: 'connectionApply', id: t.id, method: 'sendMessage', message: msg });
    assert.equal(r.result.id, t.id, t.name);
    assert.ok(Array.isArray(r.result.rooms), t.name);
    assert.deepEqual(await t.next((f) => f && f.text === `psst ${i}`), msg, t.name);
  }
  // no method: the connection's description only
  const d = await ah.action({ action: 'connectionApply', id: targets[0].id });
  assert.equal(d.result.id, targets[0].id);
  assert.equal(d.result.type, 'websocket');
  await ah.close();
  await closeAll(targets);
});

test('an RPC actiongate does not serve is answered at once instead of timing out', async () => {
  const ah = await ahClient(0);
  const t = await agPrimus(1);
  const r = await ah.action({ action: 'clusterRpc', id: t.id, method: 'api.specHelper.runAction' });
  assert.deepEqual(r.result, { error: 'RPC method `api.specHelper.runAction` is not served by actiongate' });
  const m = await ah.action({ action: 'connectionApply', id: t.id, method: 'sendFile', message: 'x.html' });
  assert.deepEqual(m.result, { error: 'connection method `sendFile` is not served by actiongate' });
  // the connection is fine
  assert.equal((await t.details()).data.id, t.id);
  await ah.close();
  await t.close();
});

test('api.chatRoom.destroy() on actionhero removes actiongate\'s members and tells them', async () => {
  await createRoomOnApp('doomed');
  const ah = await ahClient(1);
  const targets = [await agPrimus(0), await agEio(1, 'polling')];
  for (const t of [ah, ...targets]) await t.join('doomed');
  const r = await ah.action({ action: 'chatDestroyRoom', room: 'doomed' });
  assert.equal(r.destroyed, true, JSON.stringify(r));
  for (const t of targets) {
    assert.equal((await t.chat((f) => f.room === 'doomed')).message, 'this room has been deleted');
    await waitFor(async () => !(await t.details()).data.rooms.includes('doomed'), 5000, `${t.name} left`);
  }
  assert.equal((await targets[0].join('doomed')).error, 'Error: room does not exist');
  await ah.close();
  await closeAll(targets);
});

test('messages on the app\'s channel without its serverToken are ignored', async () => {
  await createRoomOnApp('tokenRoom');
  const t = await agPrimus(0);
  await t.join('tokenRoom');
  const forged = (text) => JSON.stringify({ messageType: 'chat', serverToken: 'wrong', serverId: 'x', message: text, sentAt: 1,
    connection: { id: 'intruder', room: 'tokenRoom' } });
  redis.cli('PUBLISH', 'actionhero', forged('forged'));
  redis.cli('PUBLISH', 'actionhero', 'not json');
  redis.cli('PUBLISH', 'actionhero', JSON.stringify({ messageType: 'do', serverToken: 'wrong', method: 'api.connections.applyResponder',
    connectionId: t.id, args: [t.id, 'destroy', []], messageId: 'm' }));
  // the right token afterwards: it arrives, and nothing came before it
  redis.cli('PUBLISH', 'actionhero', forged('genuine').replace('"wrong"', `"${TOKEN}"`));
  const m = await t.chat(() => true);
  assert.equal(m.message, 'genuine');
  assert.equal(m.from, 'intruder');
  assert.equal((await t.details()).data.id, t.id);
  await t.close();
});

// --- actiongate's own cluster, in this mode ---

test('no sticky sessions: one engine.io session whose requests alternate between the actiongate nodes chats with actionhero',
  async () => {
    const proxy = await startRoundRobinProxy(ags.map((s) => s.port));
    try {
      const c = eio(`http://127.0.0.1:${proxy.port}`, { transports: ['polling'], upgrade: false });
      await c.opened;
      await c.next((f) => f.welcome !== undefined);
      const me = await withId(framesClient('rr polling', c, () => c.socket.close()));
      const ah = await ahClient(0);
      await me.join('defaultRoom');
      await ah.join('defaultRoom');
      for (let i = 0; i < 4; i++) {
        await ah.say('defaultRoom', `rr ${i}`);
        assert.equal((await me.chat((f) => f.message === `rr ${i}`)).from, ah.id);
        await me.say('defaultRoom', `back ${i}`);
        assert.equal((await ah.chat((f) => f.message === `back ${i}`)).from, me.id);
      }
      assert.ok(proxy.hits.every((h) => h > 2), JSON.stringify(proxy.hits));
      await ah.close();
      await me.close();
    } finally {
      await proxy.close();
    }
  });

test('a dead actiongate node: its members leave the shared rooms, as actionhero\'s own views show', async () => {
  await createRoomOnApp('deadRoom');
  const ah = await ahClient(0);
  await ah.join('deadRoom');
  const doomed = [await agPrimus(1), await agEio(1, 'polling')];
  const survivor = await agPrimus(0);
  for (const c of [...doomed, survivor]) await c.join('deadRoom');
  assert.equal((await ah.view('deadRoom')).data.membersCount, 4);
  await ags[1].kill();
  await waitFor(async () => (await ah.view('deadRoom')).data.membersCount === 2, 10000, 'the dead node\'s members removed');
  const left = Object.keys((await ah.view('deadRoom')).data.members).sort();
  assert.deepEqual(left, [ah.id, survivor.id].sort());
  // the rest still talk
  await ah.say('deadRoom', 'still here');
  assert.equal((await survivor.chat((f) => f.message === 'still here')).from, ah.id);
  await ah.close();
  await survivor.close();
});

test('the mode needs Redis: without redis.url the node refuses to start with one clear line', async () => {
  const { Server } = require('../lib/harness');
  const s = new Server({ config: { redis: { compat: 'actionhero' } } });
  await assert.rejects(s.start(), /redis\.compat: actionhero shares the app's Redis: set redis\.url \(or env REDIS_URL\)/);
  assert.equal(s.exited.code, 1);
});
