'use strict';
// The session layer over every engine.io transport (PROTOCOL.md §2, §4, §5): the same frames give the same replies
// over polling, websocket and sse, and chat crosses transports. Needs the session layer (server/actions.c).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { Socket } = require('engine.io-client');
const { startServer } = require('../lib/harness');
const { Eio, sseOpen } = require('../lib/eio_raw');

const HAS_SESSION = fs.existsSync(path.join(__dirname, '..', '..', 'server', 'actions.c'));
const ACTION = '{"event":"action","params":{"action":"randomNumber"},"messageId":1}';
const ROOM_ADD = '{"event":"roomAdd","room":"defaultRoom","messageId":2}';
const say = (m) => `{"event":"say","room":"defaultRoom","message":"${m}","messageId":3}`;

// A client over one transport with a uniform face: send(frame), next(pred) -> parsed frame, close().
async function client(srv, kind) {
  const frames = [];
  const waiters = [];
  const push = (text) => {
    const f = JSON.parse(text);
    frames.push(f);
    for (const w of waiters.splice(0)) if (!w(f)) waiters.push(w);
  };
  const next = (pred, timeoutMs = 5000) => new Promise((resolve, reject) => {
    const i = frames.findIndex(pred);
    if (i >= 0) return resolve(frames.splice(i, 1)[0]);
    const t = setTimeout(() => reject(new Error(`${kind}: no matching frame in ${JSON.stringify(frames)}`)), timeoutMs);
    waiters.push((f) => {
      if (!pred(f)) return false;
      clearTimeout(t);
      frames.splice(frames.indexOf(f), 1);
      resolve(f);
      return true;
    });
  });
  if (kind === 'sse') {
    const eio = new Eio(srv.url);
    const st = await sseOpen(eio.url('transport=sse'));
    const sid = JSON.parse((await st.next()).payload.slice(1)).sid;
    const pump = async () => {
      for (;;) {
        let ev;
        try {
          ev = await st.next(() => true, 60000);
        } catch (e) {
          return;
        }
        for (const p of ev.payload.split('\x1e')) if (p[0] === '4') push(p.slice(1));
      }
    };
    pump();
    return { next, send: (f) => eio.post(sid, `4${f}`, { transport: 'sse' }), close: () => eio.post(sid, '1', { transport: 'sse' }).then(() => st.destroy()) };
  }
  const socket = new Socket(srv.url, { path: '/primus/', transports: [kind] });
  socket.on('message', push);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return { next, send: (f) => socket.send(f), close: () => socket.close() };
}

test('session layer over polling, websocket and sse', { skip: !HAS_SESSION && 'the session layer is not on this branch' }, async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());

  for (const kind of ['polling', 'websocket', 'sse']) {
    await t.test(`${kind}: welcome, an action, roomAdd, say`, async () => {
      const c = await client(srv, kind);
      assert.deepStrictEqual(await c.next(() => true), { welcome: 'Welcome to the actiongate api', context: 'api' });
      await c.send(ACTION);
      const r = await c.next((f) => f.messageId === 1);
      assert.deepStrictEqual(Object.keys(r), ['randomNumber', 'stringRandomNumber', 'context', 'messageId']);
      assert.strictEqual(r.context, 'response');
      assert.ok(r.randomNumber >= 0 && r.randomNumber < 1);
      await c.send(ROOM_ADD);
      assert.deepStrictEqual(await c.next((f) => f.messageId === 2), { status: 'OK', context: 'response', data: true, messageId: 2 });
      await c.send(say(`hi from ${kind}`));
      const chat = await c.next((f) => f.context === 'user');
      assert.strictEqual(chat.message, `hi from ${kind}`);
      assert.strictEqual(chat.room, 'defaultRoom');
      assert.deepStrictEqual(await c.next((f) => f.messageId === 3), { status: 'OK', context: 'response', messageId: 3 });
      await c.close();
    });
  }

  await t.test('chat crosses transports: one room, three carriers', async () => {
    const cs = {};
    for (const kind of ['polling', 'websocket', 'sse']) {
      cs[kind] = await client(srv, kind);
      await cs[kind].next((f) => f.welcome !== undefined);
      await cs[kind].send(ROOM_ADD);
      await cs[kind].next((f) => f.messageId === 2);
    }
    await cs.sse.send(say('to everyone'));
    for (const kind of ['polling', 'websocket', 'sse']) {
      const m = await cs[kind].next((f) => f.context === 'user' && f.message === 'to everyone');
      assert.strictEqual(m.room, 'defaultRoom');
    }
    for (const c of Object.values(cs)) await c.close();
  });
});
