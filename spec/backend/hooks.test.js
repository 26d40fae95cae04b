'use strict';
// Hooks answered by a real backend (spec/lib/backend.js) through the upstream: connect, roomAdd, roomLeave, say and
// disconnect, over /primus, engine.io (polling, websocket, SSE) and socket.io; allowing, refusing, rewriting, timing
// out and unreachable.
const test = require('node:test');
const assert = require('node:assert');
const { Socket } = require('engine.io-client');
const { startServer, freePort } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { connectSio } = require('../lib/sioclient');
const { io } = require('socket.io-client');
const { startBackend } = require('../lib/backend');

const TIMEOUT_TEXT = 'the upstream server did not answer in time';
const UNAVAILABLE_TEXT = 'the upstream server is unavailable';

function handlers() {
  return {
    connect: (p) => {
      const q = p.query || {};
      const auth = p.auth || {};
      if (q.hang || auth.hang) return undefined;
      if (q.deny === 'long') return { error: 'é'.repeat(5000) };
      if (q.deny || auth.deny) return { error: `no entry for ${q.deny || auth.deny}` };
      return { data: { user: q.user || auth.user || 'anonymous', via: p.transport } };
    },
    roomAdd: (p) => (p.room === 'otherRoom' ? { error: `${p.data.user} may not join ${p.room}` } : {}),
    roomLeave: (p) => (p.data.user === 'stuck' ? { error: 'you stay' } : {}),
    say: (p) => {
      if (p.message.includes('forbidden')) return { error: 'watch your language' };
      if (p.message.includes('darn')) return { message: p.message.replace('darn', 'd**n') };
      return {};
    },
    disconnect: () => ({}),
    whoami: (p) => ({ connectionData: p.connectionData === undefined ? null : p.connectionData }),
  };
}

async function setup(t, hookCfg = {}, backendUrl) {
  const backend = await startBackend(handlers());
  t.after(() => backend.stop());
  const srv = await startServer({
    config: {
      upstream: { urls: [backendUrl || backend.url], actions: ['whoami'] },
      hooks: { connect: 'connect', disconnect: 'disconnect', roomAdd: 'roomAdd', roomLeave: 'roomLeave', say: 'say', timeout: 1500, ...hookCfg },
    },
  });
  t.after(() => srv.stop());
  return { backend, srv };
}

async function primus(srv, query = '') {
  const c = await connect(`${srv.wsUrl}/primus${query}`);
  return c;
}

test('hooks over /primus', async (t) => {
  const { backend, srv } = await setup(t);

  await t.test('connect: allowed, its data kept, shown by detailsView and sent with upstream actions', async () => {
    const c = await primus(srv, '?user=ann&sessionID=fp-ann');
    await c.welcome();
    const details = await c.request({ event: 'detailsView' });
    assert.deepStrictEqual(details.data.data, { user: 'ann', via: 'websocket' });
    assert.strictEqual(details.data.user, 'ann', 'data.user is the connection\'s user');
    const call = await backend.call((x) => x.action === 'connect' && x.params.query.user === 'ann');
    assert.strictEqual(call.params.connectionId, details.data.id);
    assert.strictEqual(call.params.fingerprint, 'fp-ann');
    assert.strictEqual(call.params.remoteIP, '127.0.0.1');
    assert.strictEqual(call.params.transport, 'websocket');
    assert.strictEqual(typeof call.params.cookies, 'string');
    const who = await c.request({ event: 'action', params: { action: 'whoami', connectionData: 'forged' } });
    assert.deepStrictEqual(who.connectionData, { user: 'ann', via: 'websocket' });
    await c.close();
  });

  await t.test('connect: refused with the backend text, closed for good, and no disconnect hook for it', async () => {
    const c = await primus(srv, '?deny=bob');
    const err = await c.next((f) => f && f.error !== undefined);
    assert.deepStrictEqual(err, { error: 'no entry for bob', context: 'api' });
    await c.next((f) => f === 'primus::server::close');
    await c.closed;
    assert.ok(!c.frames.some((f) => f && f.welcome !== undefined), 'refused connection got a welcome');
    const id = (await backend.call((x) => x.action === 'connect' && x.params.query.deny === 'bob')).params.connectionId;
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!backend.calls.some((x) => x.action === 'disconnect' && x.params.connectionId === id));
  });

  await t.test('connect: a long refusal text is cut to 512 bytes on a character boundary', async () => {
    const c = await primus(srv, '?deny=long');
    const err = await c.next((f) => f && f.error !== undefined);
    assert.strictEqual(err.error, 'é'.repeat(256));
    await c.closed;
  });

  await t.test('connect: a backend that does not answer in time refuses (default policy)', async () => {
    const c = await primus(srv, '?hang=1');
    const err = await c.next((f) => f && f.error !== undefined);
    assert.strictEqual(err.error, TIMEOUT_TEXT);
    await c.closed;
  });

  await t.test('roomAdd, roomLeave, say: allowed, refused, rewritten', async () => {
    const a = await primus(srv, '?user=ann');
    await a.welcome();
    const b = await primus(srv, '?user=stuck');
    await b.welcome();
    const bid = (await b.request({ event: 'detailsView' })).data.id;
    assert.strictEqual((await a.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    assert.strictEqual((await b.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    const refused = await a.request({ event: 'roomAdd', room: 'otherRoom' });
    assert.strictEqual(refused.status, 'Error: ann may not join otherRoom');
    const add = await backend.call((x) => x.action === 'roomAdd' && x.params.room === 'otherRoom');
    assert.deepStrictEqual(add.params.data, { user: 'ann', via: 'websocket' });
    assert.strictEqual(add.params.user, 'ann');
    // the refused join did not happen
    const view = await a.request({ event: 'roomView', room: 'otherRoom' });
    assert.match(view.status, /^Error/);

    assert.strictEqual((await b.request({ event: 'say', room: 'defaultRoom', message: 'oh darn it' })).status, 'OK');
    const heard = await a.next((f) => f.context === 'user' && f.from === bid);
    assert.strictEqual(heard.message, 'oh d**n it');
    const said = await b.request({ event: 'say', room: 'defaultRoom', message: 'something forbidden' });
    assert.strictEqual(said.status, 'Error: watch your language');
    assert.strictEqual((await b.request({ event: 'say', room: 'defaultRoom', message: 'plain' })).status, 'OK');
    const next = await a.next((f) => f.context === 'user' && f.from === bid);
    assert.strictEqual(next.message, 'plain', 'the refused message was delivered');

    const leave = await b.request({ event: 'roomLeave', room: 'defaultRoom' });
    assert.strictEqual(leave.status, 'Error: you stay');
    assert.strictEqual((await a.request({ event: 'roomLeave', room: 'defaultRoom' })).status, 'OK');
    await a.close();
    await b.close();
  });

  await t.test('disconnect: told once with the reason and the data', async () => {
    const c = await primus(srv, '?user=dora');
    await c.welcome();
    const id = (await c.request({ event: 'detailsView' })).data.id;
    await c.close();
    const d = await backend.call((x) => x.action === 'disconnect' && x.params.connectionId === id);
    assert.deepStrictEqual(d.params.data, { user: 'dora', via: 'websocket' });
    assert.strictEqual(d.params.reason, 'transport close');
    assert.strictEqual(d.params.code, 1000);
    const q = await primus(srv, '?user=quitter');
    await q.welcome();
    const qid = (await q.request({ event: 'detailsView' })).data.id;
    q.sendRaw(JSON.stringify({ event: 'quit' }));
    const dq = await backend.call((x) => x.action === 'disconnect' && x.params.connectionId === qid);
    assert.strictEqual(dq.params.reason, 'quit');
    await new Promise((r) => setTimeout(r, 200));
    assert.strictEqual(backend.calls.filter((x) => x.action === 'disconnect' && x.params.connectionId === id).length, 1);
  });
});

test('an unreachable backend: refused by default, allowed with hooks.allowOnFailure', async (t) => {
  const dead = `http://127.0.0.1:${await freePort()}/api`;
  await t.test('refuse', async (tt) => {
    const { srv } = await setup(tt, {}, dead);
    const c = await primus(srv, '?user=x');
    const err = await c.next((f) => f && f.error !== undefined);
    assert.strictEqual(err.error, UNAVAILABLE_TEXT);
    await c.closed;
  });
  await t.test('allow', async (tt) => {
    const { srv } = await setup(tt, { allowOnFailure: true }, dead);
    const c = await primus(srv, '?user=x');
    await c.welcome();
    const details = await c.request({ event: 'detailsView' });
    assert.strictEqual(details.data.data, undefined);
    assert.strictEqual((await c.request({ event: 'roomAdd', room: 'defaultRoom' })).status, 'OK');
    await c.close();
  });
});

function eio(srv, query, transports) {
  const socket = new Socket(srv.url, { path: '/primus/', transports, query, reconnection: false });
  const messages = [];
  socket.on('message', (m) => messages.push(JSON.parse(m)));
  const opened = new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return { socket, messages, opened };
}

test('hooks over engine.io: the handshake waits for the connect hook', async (t) => {
  const { backend, srv } = await setup(t);

  for (const transport of ['polling', 'websocket']) {
    await t.test(`${transport}: allowed, the data on the connection`, async () => {
      const c = eio(srv, { user: `eve-${transport}` }, [transport]);
      await c.opened;
      c.socket.send(JSON.stringify({ event: 'detailsView', messageId: 1 }));
      const deadline = Date.now() + 5000;
      while (!c.messages.some((m) => m.messageId === 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const details = c.messages.find((m) => m.messageId === 1);
      assert.deepStrictEqual(details.data.data, { user: `eve-${transport}`, via: transport });
      assert.strictEqual(c.messages[0].welcome !== undefined, true);
      c.socket.close();
    });
    await t.test(`${transport}: refused, the client gets an error and never opens`, async () => {
      const c = eio(srv, { deny: 'mallory' }, [transport]);
      await assert.rejects(c.opened);
      await backend.call((x) => x.action === 'connect' && x.params.query.deny === 'mallory' && x.params.transport === transport);
    });
  }

  await t.test('polling handshake refused: HTTP 403 with the engine.io error and the backend text', async () => {
    const res = await fetch(`${srv.url}/primus/?EIO=4&transport=polling&deny=raw`);
    assert.strictEqual(res.status, 403);
    assert.deepStrictEqual(await res.json(), { code: 4, message: 'no entry for raw' });
  });

  await t.test('polling handshake timing out: 403 with the timeout text', async () => {
    const res = await fetch(`${srv.url}/primus/?EIO=4&transport=polling&hang=1`);
    assert.strictEqual(res.status, 403);
    assert.deepStrictEqual(await res.json(), { code: 4, message: TIMEOUT_TEXT });
  });

  await t.test('sse handshake: refused with 403, allowed with the open packet', async () => {
    const refused = await fetch(`${srv.url}/primus/?EIO=4&transport=sse&deny=sse`);
    assert.strictEqual(refused.status, 403);
    assert.strictEqual((await refused.json()).message, 'no entry for sse');
    const ac = new AbortController();
    const ok = await fetch(`${srv.url}/primus/?EIO=4&transport=sse&user=sam`, { signal: ac.signal });
    assert.strictEqual(ok.status, 200);
    const reader = ok.body.getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes('"sid"') && Date.now() < deadline) text += Buffer.from((await reader.read()).value || []).toString();
    assert.match(text, /"sid"/);
    ac.abort();
    const call = await backend.call((x) => x.action === 'connect' && x.params.query.user === 'sam');
    assert.strictEqual(call.params.transport, 'sse');
  });

  await t.test('a client that leaves while the hook works costs nothing afterwards', async () => {
    const ac = new AbortController();
    const p = fetch(`${srv.url}/primus/?EIO=4&transport=polling&hang=1`, { signal: ac.signal }).catch(() => 'aborted');
    await backend.call((x) => x.action === 'connect' && x.params.query.hang === '1' && backend.calls.filter((y) => y.params.query && y.params.query.hang).length >= 2);
    ac.abort();
    assert.strictEqual(await p, 'aborted');
    await new Promise((r) => setTimeout(r, 1700)); // past hooks.timeout: the cancelled call must not answer a gone request
    const res = await fetch(`${srv.url}/primus/?EIO=4&transport=polling&user=after`);
    assert.strictEqual(res.status, 200);
  });
});

test('hooks over socket.io: the CONNECT waits, with the auth payload', async (t) => {
  const { backend, srv } = await setup(t);
  for (const mode of ['polling', 'websocket']) {
    await t.test(`${mode}: allowed with auth`, async () => {
      const c = await connectSio(srv, mode, { auth: { user: `sue-${mode}` } });
      const [details] = await c.ack('detailsView');
      assert.deepStrictEqual(details.data.data, { user: `sue-${mode}`, via: mode });
      const call = await backend.call((x) => x.action === 'connect' && x.params.auth && x.params.auth.user === `sue-${mode}`);
      assert.strictEqual(call.params.transport, mode);
      c.socket.disconnect();
      await backend.call((x) => x.action === 'disconnect' && x.params.data && x.params.data.user === `sue-${mode}`);
    });
    await t.test(`${mode}: refused with CONNECT_ERROR and the text`, async () => {
      const socket = io(srv.url, { transports: [mode], reconnection: false, forceNew: true, auth: { deny: 'sid' } });
      const err = await new Promise((resolve, reject) => {
        socket.once('connect_error', resolve);
        socket.once('connect', () => reject(new Error('connected')));
      });
      assert.strictEqual(err.message, 'no entry for sid');
      socket.close();
    });
  }
});
