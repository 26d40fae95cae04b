'use strict';
// Session layer verbs over the plain /primus socket: exact reply shapes and error strings (PROTOCOL.md §2.2-§2.4).
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const verbErr = (text, data, messageId) => ({ status: `Error: ${text}`, error: `Error: ${text}`, context: 'response', data, messageId });

test('verbs', async (t) => {
  const srv = await startServer({ config: { general: { welcomeMessage: 'Hello verbs' } } });
  t.after(() => srv.stop());
  const c = await connect(`${srv.wsUrl}/primus?sessionID=fp-verbs&_primuscb=x`);

  await t.test('welcome first, with the configured text', async () => {
    assert.deepStrictEqual(await c.next(() => true), { welcome: 'Hello verbs', context: 'api' });
  });

  await t.test('detailsView', async () => {
    const r = await c.request({ event: 'detailsView', messageId: 1 });
    assert.deepStrictEqual(Object.keys(r), ['status', 'context', 'data', 'messageId']);
    assert.strictEqual(r.status, 'OK');
    assert.strictEqual(r.messageId, 1);
    const d = r.data;
    assert.deepStrictEqual(Object.keys(d), ['id', 'fingerprint', 'remoteIP', 'remotePort', 'params', 'connectedAt', 'rooms',
      'totalActions', 'pendingActions']);
    assert.match(d.id, UUID);
    assert.strictEqual(d.fingerprint, 'fp-verbs');
    assert.strictEqual(d.remoteIP, '127.0.0.1');
    assert.strictEqual(d.remotePort, c.ws._socket.localPort);
    assert.deepStrictEqual(d.params, {});
    assert.ok(Math.abs(d.connectedAt - Date.now()) < 60000);
    assert.deepStrictEqual(d.rooms, []);
    assert.strictEqual(d.totalActions, 0);
    assert.strictEqual(d.pendingActions, 0);
  });

  await t.test('fingerprint is the id without ?sessionID=', async () => {
    const d = await connect(`${srv.wsUrl}/primus`);
    const r = await d.request({ event: 'detailsView' });
    assert.strictEqual(r.data.fingerprint, r.data.id);
    await d.close();
  });

  await t.test('roomAdd, twice, roomView, roomLeave, twice', async () => {
    assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: 'defaultRoom', messageId: 'a' }),
      { status: 'OK', context: 'response', data: true, messageId: 'a' });
    assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: 'defaultRoom', messageId: 'b' }),
      verbErr('connection already in this room (defaultRoom)', {}, 'b'));
    const v = await c.request({ event: 'roomView', room: 'defaultRoom', messageId: 3 });
    const id = (await c.request({ event: 'detailsView' })).data.id;
    assert.deepStrictEqual(Object.keys(v.data), ['room', 'members', 'membersCount']);
    assert.strictEqual(v.data.room, 'defaultRoom');
    assert.strictEqual(v.data.membersCount, 1);
    assert.deepStrictEqual(Object.keys(v.data.members), [id]);
    assert.deepStrictEqual(Object.keys(v.data.members[id]), ['id', 'joinedAt']);
    assert.strictEqual(v.data.members[id].id, id);
    const det = await c.request({ event: 'detailsView' });
    assert.deepStrictEqual(det.data.rooms, ['defaultRoom']);
    assert.deepStrictEqual(await c.request({ event: 'roomLeave', room: 'defaultRoom', messageId: 4 }),
      { status: 'OK', context: 'response', data: true, messageId: 4 });
    assert.deepStrictEqual(await c.request({ event: 'roomLeave', room: 'defaultRoom', messageId: 5 }),
      verbErr('connection not in this room (defaultRoom)', {}, 5));
    assert.deepStrictEqual(await c.request({ event: 'roomView', room: 'defaultRoom', messageId: 6 }),
      verbErr('connection not in this room (defaultRoom)', {}, 6));
  });

  await t.test('room errors: missing room, no room given', async () => {
    assert.deepStrictEqual(await c.request({ event: 'roomAdd', room: 'nope', messageId: 7 }), verbErr('room does not exist', {}, 7));
    assert.deepStrictEqual(await c.request({ event: 'roomAdd', messageId: 8 }), verbErr('a room is required', {}, 8));
    assert.deepStrictEqual(await c.request({ event: 'roomLeave', messageId: 9 }), verbErr('a room is required', {}, 9));
    assert.deepStrictEqual(await c.request({ event: 'roomView', messageId: 10 }),
      verbErr('connection not in this room (undefined)', {}, 10));
  });

  await t.test('say: errors, extra words joined, sender receives its own message', async () => {
    assert.deepStrictEqual(await c.request({ event: 'say', room: 'otherRoom', message: 'x', messageId: 11 }),
      verbErr('connection not in this room (otherRoom)', { message: 'x' }, 11));
    assert.deepStrictEqual(await c.request({ event: 'say', room: 'otherRoom', messageId: 12 }),
      verbErr('both room and message are required', {}, 12));
    assert.deepStrictEqual(await c.request({ event: 'say', messageId: 13 }), verbErr('both room and message are required', {}, 13));
    await c.request({ event: 'roomAdd', room: 'otherRoom' });
    const id = (await c.request({ event: 'detailsView' })).data.id;
    assert.deepStrictEqual(await c.request({ event: 'say', room: 'otherRoom', message: 'two', extra: 'words', messageId: 14 }),
      { status: 'OK', context: 'response', messageId: 14 });
    const chat = await c.next((f) => f.context === 'user');
    assert.deepStrictEqual(Object.keys(chat), ['message', 'room', 'from', 'context', 'sentAt']);
    assert.strictEqual(chat.message, 'two words');
    assert.strictEqual(chat.room, 'otherRoom');
    assert.strictEqual(chat.from, id);
    assert.ok(Number.isInteger(chat.sentAt));
    await c.request({ event: 'say', room: 'otherRoom', message: { a: 1 } });
    assert.strictEqual((await c.next((f) => f.context === 'user')).message, '[object Object]');
    await c.request({ event: 'roomLeave', room: 'otherRoom' });
  });

  await t.test('unknown and non-websocket verbs', async () => {
    assert.deepStrictEqual(await c.request({ event: 'bogus', messageId: 15 }), verbErr('verb not found or not allowed (bogus)', {}, 15));
    assert.deepStrictEqual(await c.request({ event: 'paramAdd', key: 'k', messageId: 16 }),
      verbErr('verb not found or not allowed (paramAdd)', { key: 'k' }, 16));
  });

  await t.test('messageId: numbers stay numbers, falsy ones get a UUID', async () => {
    c.sendRaw(JSON.stringify({ event: 'detailsView', messageId: 0 }));
    const r = await c.next((f) => f.context === 'response');
    assert.match(r.messageId, UUID);
    c.sendRaw(JSON.stringify({ event: 'detailsView' }));
    assert.match((await c.next((f) => f.context === 'response')).messageId, UUID);
    const n = await c.request({ event: 'detailsView', messageId: 12.5 });
    assert.strictEqual(n.messageId, 12.5);
  });

  await t.test('file verb', async () => {
    const ok = await c.request({ event: 'file', file: 'simple.html', messageId: 20 });
    assert.deepStrictEqual(Object.keys(ok), ['content', 'mime', 'length', 'lastModified', 'context', 'messageId']);
    assert.match(ok.content, /^<h1>actiongate<\/h1>/);
    assert.strictEqual(ok.mime, 'text/html');
    assert.strictEqual(ok.length, Buffer.byteLength(ok.content));
    assert.match(ok.lastModified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const missing = { error: 'that file is not found', content: null, mime: 'text/html', length: 22, context: 'response' };
    for (const [i, file] of ['nope.html', '../CMakeLists.txt', '/etc/passwd', '..', undefined].entries()) {
      assert.deepStrictEqual(await c.request({ event: 'file', file, messageId: 30 + i }), { ...missing, messageId: 30 + i });
    }
  });

  await t.test('documentation verb lists the actions with their inputs', async () => {
    const r = await c.request({ event: 'documentation', messageId: 40 });
    assert.strictEqual(r.status, 'OK');
    for (const name of ['status', 'randomNumber', 'cacheTest', 'sleepTest', 'createChatRoom', 'documentation', 'echo'])
      assert.ok(r.data[name], name);
    assert.deepStrictEqual(r.data.cacheTest['1'].inputs, { key: { required: true }, value: { required: true } });
    assert.deepStrictEqual(r.data.sleepTest['1'].inputs, { sleepDuration: { required: false, default: 1000 } });
  });

  await t.test('quit and exit close the connection without a reply', async () => {
    for (const event of ['quit', 'exit']) {
      const d = await connect(`${srv.wsUrl}/primus`);
      await d.welcome();
      d.sendRaw(JSON.stringify({ event }));
      await d.closed;
      assert.ok(d.frames.includes('primus::server::close'));
      assert.strictEqual(d.frames.filter((f) => f.context === 'response').length, 0);
    }
  });

  await c.close();
});
