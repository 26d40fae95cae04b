'use strict';
// The stock socket.io-client 4.x against the socket.io endpoint (/socket.io/): CONNECT, EVENT, ACK, DISCONNECT over
// polling, websocket and the upgrade, with the session layer's replies (PROTOCOL.md §2) carried byte for byte.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connectSio, rawEngine } = require('../lib/sioclient');
const { Eio } = require('../lib/eio_raw');

const WELCOME = { welcome: 'Welcome to the actiongate api', context: 'api' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function verbError(text, data, messageId) {
  return { status: `Error: ${text}`, error: `Error: ${text}`, context: 'response', data, messageId };
}

async function createRoom(c, name) {
  const [reply] = await c.ack('action', { action: 'createChatRoom', name });
  assert.deepStrictEqual(reply, { name, didCreate: true, context: 'response', messageId: reply.messageId });
}

for (const mode of ['polling', 'websocket', 'upgrade']) {
  test(`socket.io-client over ${mode}`, async (t) => {
    const srv = await startServer();
    t.after(() => srv.stop());
    const c = await connectSio(srv, mode);
    t.after(() => c.socket.disconnect());

    await t.test('CONNECT is answered with the connection id, then the welcome event', async () => {
      assert.match(c.socket.id, UUID);
      const [welcome] = await c.take('welcome');
      assert.deepStrictEqual(welcome, WELCOME);
      assert.deepStrictEqual(c.rec.names().slice(0, 2), ['connect', 'welcome']);
      const [details] = await c.ack('detailsView');
      assert.strictEqual(details.data.id, c.socket.id);
      assert.strictEqual(details.data.fingerprint, c.socket.id);
      assert.deepStrictEqual(Object.keys(details), ['status', 'context', 'data', 'messageId']);
    });

    if (mode === 'upgrade') {
      await t.test('the session upgrades from polling to websocket and keeps working', async () => {
        assert.strictEqual(await c.upgraded, 'websocket');
        assert.strictEqual(c.socket.io.engine.transport.name, 'websocket');
        const [reply] = await c.ack('action', { action: 'randomNumber' });
        assert.strictEqual(typeof reply.randomNumber, 'number');
      });
    } else {
      await t.test(`the session stays on ${mode}`, async () => {
        assert.strictEqual(c.socket.io.engine.transport.name, mode);
      });
    }

    await t.test('action without a callback: a "response" event with the reply', async () => {
      c.socket.emit('action', { action: 'randomNumber' });
      const [reply] = await c.take('response', (r) => 'randomNumber' in r);
      assert.deepStrictEqual(Object.keys(reply), ['randomNumber', 'stringRandomNumber', 'context', 'messageId']);
      assert.strictEqual(reply.stringRandomNumber, `Your random number is ${reply.randomNumber}`);
      assert.strictEqual(reply.context, 'response');
      assert.strictEqual(typeof reply.messageId, 'number');
    });

    await t.test('action with a callback: the ACK carries the reply, and no "response" event does', async () => {
      const [reply] = await c.ack('action', { action: 'cacheTest', key: 'sio-key', value: 'sio-value' });
      assert.deepStrictEqual(Object.keys(reply), ['cacheTestResults', 'context', 'messageId']);
      assert.strictEqual(reply.cacheTestResults.saveResp, true);
      assert.strictEqual(reply.cacheTestResults.loadResp.value, 'sio-value');
      // a later round trip without a callback: the ack'ed reply never showed up as an event before it
      c.socket.emit('detailsView');
      await c.take('response', (r) => r.status === 'OK' && r.data && r.data.id === c.socket.id);
      assert.ok(!c.rec.events.some((e) => e.name === 'response' && e.args[0].messageId === reply.messageId));
    });

    await t.test('action errors are the session layer\'s, exactly', async () => {
      let [reply] = await c.ack('action', { action: 'cacheTest', value: 'abc' });
      assert.deepStrictEqual(reply, { error: 'key is a required parameter for this action', context: 'response', messageId: reply.messageId });
      [reply] = await c.ack('action', { action: 'noSuchAction' });
      assert.deepStrictEqual(reply, { error: 'unknown action or invalid apiVersion', context: 'response', messageId: reply.messageId });
      c.socket.emit('action', 'randomNumber'); // params that are not an object
      [reply] = await c.take('response', (r) => r.error !== undefined);
      assert.deepStrictEqual(reply, { error: 'unknown action or invalid apiVersion', context: 'response', messageId: reply.messageId });
    });

    await t.test('roomChange, say and roomView follow the current room', async () => {
      const roomA = `sio-${mode}-a`, roomB = `sio-${mode}-b`;
      await createRoom(c, roomA);
      await createRoom(c, roomB);
      let [reply] = await c.ack('roomChange', { room: roomA });
      assert.deepStrictEqual(reply, { status: 'OK', context: 'response', data: true, messageId: reply.messageId });

      [reply] = await c.ack('say', { message: 'hello from socket.io' });
      assert.deepStrictEqual(reply, { status: 'OK', context: 'response', messageId: reply.messageId });
      const [chat] = await c.take('say', (m) => m.room === roomA);
      assert.deepStrictEqual(Object.keys(chat), ['message', 'room', 'from', 'context', 'sentAt']);
      assert.deepStrictEqual({ ...chat, sentAt: 0 }, { message: 'hello from socket.io', room: roomA, from: c.socket.id, context: 'user', sentAt: 0 });
      assert.strictEqual(typeof chat.sentAt, 'number');

      [reply] = await c.ack('roomView');
      assert.strictEqual(reply.status, 'OK');
      assert.strictEqual(reply.data.room, roomA);
      assert.deepStrictEqual(Object.keys(reply.data.members), [c.socket.id]);
      assert.strictEqual(reply.data.membersCount, 1);

      // a bare room name works too; the previous room is left
      [reply] = await c.ack('roomChange', roomB);
      assert.strictEqual(reply.status, 'OK');
      let [details] = await c.ack('detailsView');
      assert.deepStrictEqual(details.data.rooms, [roomB]);

      // saying to a room it is not in
      [reply] = await c.ack('say', { room: roomA, message: 'x' });
      assert.deepStrictEqual(reply, verbError(`connection not in this room (${roomA})`, { message: 'x' }, reply.messageId));

      // roomView of another room by name: not a member
      [reply] = await c.ack('roomView', { room: roomA });
      assert.deepStrictEqual(reply, verbError(`connection not in this room (${roomA})`, {}, reply.messageId));

      // a room that does not exist: the old room is left, the join fails
      [reply] = await c.ack('roomChange', { room: 'no-such-room' });
      assert.deepStrictEqual(reply, verbError('room does not exist', {}, reply.messageId));
      [details] = await c.ack('detailsView');
      assert.deepStrictEqual(details.data.rooms, []);
    });

    await t.test('say and roomView without a current room are answered with errors', async () => {
      let [reply] = await c.ack('say', { message: 'nobody hears this' });
      assert.strictEqual(reply.context, 'response');
      assert.match(reply.error, /^Error: /);
      [reply] = await c.ack('roomView');
      assert.deepStrictEqual(reply, verbError('connection not in this room (undefined)', {}, reply.messageId));
    });

    await t.test('other verbs by name: roomAdd and roomLeave, with and without a callback', async () => {
      let [reply] = await c.ack('roomAdd', { room: 'defaultRoom' });
      assert.deepStrictEqual(reply, { status: 'OK', context: 'response', data: true, messageId: reply.messageId });
      c.socket.emit('roomLeave', 'defaultRoom');
      [reply] = await c.take('response', (r) => r.data === true);
      assert.deepStrictEqual(reply, { status: 'OK', context: 'response', data: true, messageId: reply.messageId });
    });

    await t.test('unknown events are answered with the verb error', async () => {
      c.socket.emit('bogus', { a: 1 });
      const [reply] = await c.take('response', (r) => r.error !== undefined);
      assert.deepStrictEqual(reply, verbError('verb not found or not allowed (bogus)', { a: 1 }, reply.messageId));
      const [acked] = await c.ack('paramAdd', { key: 'k' });
      assert.deepStrictEqual(acked, verbError('verb not found or not allowed (paramAdd)', { key: 'k' }, acked.messageId));
    });

    await t.test('quit: the server disconnects the socket ("io server disconnect")', async () => {
      const q = await connectSio(srv, mode);
      await q.take('welcome');
      q.socket.emit('quit');
      const [reason] = await q.take('disconnect');
      assert.strictEqual(reason, 'io server disconnect');
      // the other client is untouched
      const [reply] = await c.ack('detailsView');
      assert.strictEqual(reply.data.id, c.socket.id);
    });
  });
}

test('two clients on different transports chat in one room', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const a = await connectSio(srv, 'polling');
  const b = await connectSio(srv, 'websocket');
  t.after(() => {
    a.socket.disconnect();
    b.socket.disconnect();
  });
  await a.ack('roomChange', { room: 'defaultRoom' });
  await b.ack('roomChange', { room: 'defaultRoom' });

  a.socket.emit('say', { message: 'hi b' });
  const [atB] = await b.take('say', (m) => m.message === 'hi b');
  assert.deepStrictEqual({ ...atB, sentAt: 0 }, { message: 'hi b', room: 'defaultRoom', from: a.socket.id, context: 'user', sentAt: 0 });
  const [echo] = await a.take('say', (m) => m.message === 'hi b');
  assert.strictEqual(echo.from, a.socket.id);

  const [ok] = await b.ack('say', { room: 'defaultRoom', message: 'hi a' });
  assert.strictEqual(ok.status, 'OK');
  const [atA] = await a.take('say', (m) => m.message === 'hi a');
  assert.strictEqual(atA.from, b.socket.id);

  const [view] = await a.ack('roomView');
  assert.deepStrictEqual(Object.keys(view.data.members).sort(), [a.socket.id, b.socket.id].sort());

  // b leaves by DISCONNECT: a's room loses it
  b.socket.disconnect();
  for (let i = 0; i < 50; i++) {
    const [v] = await a.ack('roomView');
    if (v.data.membersCount === 1) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('the disconnected client is still a member');
});

test('the fingerprint comes from ?sessionID= or from the CONNECT auth payload', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const q = await connectSio(srv, 'websocket', { query: { sessionID: 'fp-from-query' } });
  const a = await connectSio(srv, 'polling', { auth: { sessionID: 'fp-from-auth' } });
  t.after(() => {
    q.socket.disconnect();
    a.socket.disconnect();
  });
  assert.strictEqual((await q.ack('detailsView'))[0].data.fingerprint, 'fp-from-query');
  assert.strictEqual((await a.ack('detailsView'))[0].data.fingerprint, 'fp-from-auth');
});

test('socket.io packets on a raw engine.io session', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const witness = await connectSio(srv, 'websocket');
  t.after(() => witness.socket.disconnect());

  await t.test('CONNECT to another namespace: CONNECT_ERROR, and the session stays for "/"', async () => {
    const e = await rawEngine(srv);
    e.socket.send('0/admin,{"token":"x"}');
    assert.strictEqual(await e.take(), '4/admin,{"message":"Invalid namespace"}');
    e.socket.send('0');
    const connected = await e.take();
    assert.match(connected, /^0\{"sid":"[0-9a-f-]{36}"\}$/);
    assert.strictEqual(await e.take(), `2["welcome",${JSON.stringify(WELCOME)}]`);
    const sid = JSON.parse(connected.slice(1)).sid;
    // an ack id on the EVENT: the reply comes back as ACK <id> [reply]
    e.socket.send('27["detailsView"]');
    const ack = await e.take();
    assert.match(ack, /^37\[\{"status":"OK","context":"response","data":\{"id":"/);
    assert.strictEqual(JSON.parse(ack.slice(2))[0].data.id, sid);

    // DISCONNECT, then CONNECT again on the same engine.io session: a new connection
    e.socket.send('1');
    e.socket.send('0');
    const again = await e.take((m) => m.startsWith('0'));
    assert.notStrictEqual(JSON.parse(again.slice(1)).sid, sid);
    e.socket.close();
  });

  const closes = {
    'an EVENT before CONNECT': ['2["detailsView"]'],
    'a packet that does not decode': ['0', '2["detailsView"'],
    'an EVENT with a reserved name': ['0', '2["disconnect"]'],
    'a binary EVENT announcing more than 16 attachments': ['0', '517-["action",{"_placeholder":true,"num":0}]'],
    'text while the attachments of a binary EVENT are due': ['0', '51-["action",{"_placeholder":true,"num":0}]', '2["detailsView"]'],
    'a binary EVENT before CONNECT': ['51-["action",{"_placeholder":true,"num":0}]'],
    'a second CONNECT': ['0', '0'],
    'an unknown packet type': ['0', '9'],
  };
  for (const [what, packets] of Object.entries(closes)) {
    await t.test(`${what} closes that session only`, async () => {
      const e = await rawEngine(srv);
      for (const p of packets) e.socket.send(p);
      await e.closed;
      const [reply] = await witness.ack('detailsView');
      assert.strictEqual(reply.data.id, witness.socket.id);
    });
  }

  for (const [what, packets] of Object.entries(closes)) {
    await t.test(`${what}: the WebSocket just closes, no engine.io close packet (socket.io 4.8)`, async () => {
      const ws = new Eio(srv.url, '/socket.io/').ws('transport=websocket');
      await ws.opened;
      assert.match((await ws.next()).text, /^0\{"sid":/);
      for (const p of packets) ws.send(`4${p}`);
      await ws.closed;
      assert.deepStrictEqual(
        ws.messages.map((m) => m.text).filter((m) => !m.startsWith('40') && !m.startsWith('42["welcome"')),
        []
      );
    });
  }

  const REFUSAL = { error: 'binary events are not served', context: 'response' };
  for (const mode of ['polling', 'websocket']) {
    await t.test(`a binary emit from socket.io-client over ${mode} is refused; the client stays and can act`, async () => {
      const b = await connectSio(srv, mode);
      await b.take('welcome');
      b.socket.emit('action', Buffer.from('binary'));
      assert.deepStrictEqual(await b.take('response', (r) => 'error' in r), [REFUSAL]);
      // with an ack callback the refusal is the ACK; several attachments are all read and dropped
      const [acked] = await b.ack('say', { message: Buffer.from('one'), more: [Buffer.from('two'), Buffer.alloc(3000, 7)] });
      assert.deepStrictEqual(acked, REFUSAL);
      assert.strictEqual(b.socket.connected, true);
      const [reply] = await b.ack('detailsView');
      assert.strictEqual(reply.data.id, b.socket.id);
      b.socket.emit('action', { action: 'randomNumber' });
      const [rnd] = await b.take('response', (r) => 'randomNumber' in r);
      assert.strictEqual(typeof rnd.randomNumber, 'number');
      assert.ok(!b.rec.names().includes('disconnect'));
      b.socket.disconnect();
      const [wreply] = await witness.ack('detailsView');
      assert.strictEqual(wreply.data.id, witness.socket.id);
    });
  }

  await t.test('a raw binary EVENT and BINARY_ACK: attachments dropped, refusals as ACK or "response"', async () => {
    const ws = new Eio(srv.url, '/socket.io/').ws('transport=websocket');
    await ws.opened;
    assert.match((await ws.next()).text, /^0\{"sid":/);
    ws.send('40');
    assert.match((await ws.next()).text, /^40\{"sid":/);
    assert.match((await ws.next()).text, /^42\["welcome",/);
    ws.send('452-9["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    ws.send(Buffer.from([4, 1, 2]));
    ws.send(Buffer.from([4, 3]));
    assert.strictEqual((await ws.next()).text, `439[${JSON.stringify(REFUSAL)}]`);
    ws.send('461-3[{"_placeholder":true,"num":0}]');
    ws.send(Buffer.from([4, 9]));
    assert.strictEqual((await ws.next()).text, `42["response",${JSON.stringify(REFUSAL)}]`);
    ws.send('421["detailsView"]');
    assert.match((await ws.next()).text, /^431\[\{"status":"OK"/);
    // a binary frame no packet announced closes the session, as a packet that does not decode does
    ws.send(Buffer.from([4, 0]));
    await ws.closed;
  });
});

for (const destroy of [true, false]) {
  test(`shutdown with destroyClientsOnShutdown ${destroy}`, async () => {
    const srv = await startServer({ config: { servers: { websocket: { destroyClientsOnShutdown: destroy } } } });
    const c = await connectSio(srv, 'websocket');
    await c.take('welcome');
    const stopped = srv.stop();
    const [reason] = await c.take('disconnect');
    // a DISCONNECT tells socket.io-client not to come back; a plain close lets it reconnect
    assert.strictEqual(reason, destroy ? 'io server disconnect' : 'transport close');
    assert.strictEqual((await stopped).code, 0);
  });
}

test('servers.socketio.path moves the endpoint; enabled: false turns it off', async (t) => {
  const moved = await startServer({ config: { servers: { socketio: { path: '/realtime' } } } });
  const off = await startServer({ config: { servers: { socketio: { enabled: false } } } });
  t.after(async () => {
    await moved.stop();
    await off.stop();
  });
  const c = await connectSio(moved, 'upgrade', { path: '/realtime/' });
  const [reply] = await c.ack('detailsView');
  assert.strictEqual(reply.data.id, c.socket.id);
  c.socket.disconnect();
  for (const [srv, p] of [[moved, '/socket.io/'], [off, '/socket.io/']]) {
    const res = await fetch(`${srv.url}${p}?EIO=4&transport=polling`);
    assert.strictEqual(res.status, 404, `${p} on ${srv.url}`);
    await res.arrayBuffer();
  }
  // the engine.io endpoint of the plain client is not a socket.io one: no CONNECT reply, the welcome frame as is
  const e = await rawEngine(moved, { path: '/primus/' });
  assert.strictEqual(await e.take(), JSON.stringify(WELCOME));
  e.socket.close();
});

test('servers.socketio.conformance: binary attachments on a custom namespace, acks with any arguments', async (t) => {
  const srv = await startServer({ config: { servers: { socketio: { conformance: true } } } });
  t.after(() => srv.stop());
  const ws = new Eio(srv.url, '/socket.io/').ws('transport=websocket');
  await ws.opened;
  assert.match((await ws.next()).text, /^0\{"sid":/);
  ws.send('40/custom,{"k":[1,null]}');
  assert.match((await ws.next()).text, /^40\/custom,\{"sid":"[A-Za-z0-9_-]{22}"\}$/);
  assert.strictEqual((await ws.next()).text, '42/custom,["auth",{"k":[1,null]}]');
  ws.send('451-/custom,7["message-with-ack",{"_placeholder":true,"num":0},"x",[2.5,false]]');
  // the namespace must survive the message it came in
  ws.send(Buffer.from('padding that reuses the buffer of the previous message'));
  assert.strictEqual((await ws.next()).text, '461-/custom,7[{"_placeholder":true,"num":0},"x",[2.5,false]]');
  assert.deepStrictEqual((await ws.next()).binary, Buffer.from('padding that reuses the buffer of the previous message'));
  ws.send('42/custom,9["message-with-ack"]');
  assert.strictEqual((await ws.next()).text, '43/custom,9[]');
  // an event for a namespace not connected closes the session
  ws.send('42/other,["message"]');
  await ws.closed;
  assert.deepStrictEqual(ws.messages, []);
});
