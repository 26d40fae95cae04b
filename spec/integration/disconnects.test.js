'use strict';
// Why a connection ended reaches its consumer (the session layer; the binary logs it at debug level as
// "[conn] <id> closed: <reason>"), whichever transport carried it: the client leaving, quit, a message over the limit,
// a heartbeat timeout, and the one slow-consumer rule over /primus, engine.io's websocket and SSE.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { Eio, RawWs, sseOpen, sleep } = require('../lib/eio_raw');

function debugServer(server = {}) {
  return startServer({ config: { general: { logLevel: 'debug' }, servers: { websocket: { server } } } });
}

// Waits (bounded) until the server logged that connection id closed; returns the reason it gave.
async function closedReason(srv, id, timeoutMs = 8000) {
  const re = new RegExp(`\\[conn\\] ${id} closed: ([^\\n]*)`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(srv.stderr);
    if (m) return m[1];
    if (Date.now() > deadline) throw new Error(`no close logged for ${id}`);
    await sleep(50);
  }
}

async function primus(srv, opts) {
  const c = await connect(`${srv.wsUrl}/primus`, opts);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  return c;
}

// A flood in defaultRoom from a /primus talker: enough to fill the socket buffers of a reader that stopped and pass
// the queue bound (bursts stay under it, so only that reader falls behind).
async function flood(talker, until) {
  const chunk = 'x'.repeat(8000);
  for (let round = 0; round < 200 && !until(); round++) {
    for (let i = 0; i < 10; i++) talker.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: chunk }));
    await talker.request({ event: 'detailsView' }, 10000);
    talker.frames.length = 0;
  }
}

test('disconnect reasons over /primus', async (t) => {
  const srv = await debugServer({ maxLength: 1000 });
  t.after(() => srv.stop());

  await t.test('the client closing its socket', async () => {
    const c = await primus(srv);
    await c.close();
    assert.strictEqual(await closedReason(srv, c.id), 'transport close');
  });

  await t.test('quit', async () => {
    const c = await primus(srv);
    c.sendRaw(JSON.stringify({ event: 'quit' }));
    await c.closed;
    assert.strictEqual(await closedReason(srv, c.id), 'quit');
  });

  await t.test('a message over maxLength', async () => {
    const c = await primus(srv);
    c.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: 'y'.repeat(2000) }));
    assert.strictEqual((await c.closed).code, 1009);
    assert.strictEqual(await closedReason(srv, c.id), 'message too big');
  });
});

test('a heartbeat timeout over /primus', async (t) => {
  const srv = await startServer({ config: { general: { logLevel: 'debug' }, servers: { websocket: { server: { primusPingInterval: 200 } } } } });
  t.after(() => srv.stop());
  const c = await primus(srv, { noPong: true });
  await c.closed;
  assert.strictEqual(await closedReason(srv, c.id), 'heartbeat timeout');
});

test('slow consumers end as slow consumers on every transport', async (t) => {
  const srv = await debugServer({ queueMaxBytes: 262144, maxLength: 131072, maxHttpBufferSize: 131072 });
  t.after(() => srv.stop());
  const talker = await primus(srv);
  await talker.request({ event: 'roomAdd', room: 'defaultRoom' });

  await t.test('/primus', async () => {
    const slow = await primus(srv);
    await slow.request({ event: 'roomAdd', room: 'defaultRoom' });
    slow.ws._socket.pause();
    await flood(talker, () => /closed: slow consumer/.test(srv.stderr));
    assert.strictEqual(await closedReason(srv, slow.id), 'slow consumer');
    slow.ws._socket.resume();
    await slow.closed;
  });

  await t.test('engine.io over websocket', async () => {
    const eio = new Eio(srv.url);
    const ws = new RawWs(eio.url('transport=websocket').replace(/^http/, 'ws'));
    await ws.opened;
    await ws.next((m) => m.text[0] === '0');
    await ws.next((m) => m.text.startsWith('4{"welcome"'));
    ws.send(`4${JSON.stringify({ event: 'detailsView', messageId: 'd' })}`);
    const id = JSON.parse((await ws.next((m) => m.text.includes('"messageId":"d"'))).text.slice(1)).data.id;
    ws.send(`4${JSON.stringify({ event: 'roomAdd', room: 'defaultRoom', messageId: 'j' })}`);
    await ws.next((m) => m.text.includes('"messageId":"j"'));
    ws.ws._socket.pause();
    const re = new RegExp(`${id} closed:`);
    await flood(talker, () => re.test(srv.stderr));
    assert.strictEqual(await closedReason(srv, id), 'slow consumer');
    ws.ws._socket.resume();
    await ws.closed;
  });

  await t.test('engine.io over SSE', async () => {
    const eio = new Eio(srv.url);
    const st = await sseOpen(eio.url('transport=sse'));
    const sid = JSON.parse((await st.next()).data.slice(1)).sid;
    await st.next((e) => e.data.startsWith('4{"welcome"'));
    await eio.post(sid, `4${JSON.stringify({ event: 'detailsView', messageId: 'd' })}`, { transport: 'sse' });
    const id = JSON.parse((await st.next((e) => e.data.includes('"messageId":"d"'))).data.slice(1)).data.id;
    await eio.post(sid, `4${JSON.stringify({ event: 'roomAdd', room: 'defaultRoom', messageId: 'j' })}`, { transport: 'sse' });
    await st.next((e) => e.data.includes('"messageId":"j"'));
    st.res.pause();
    const re = new RegExp(`${id} closed:`);
    await flood(talker, () => re.test(srv.stderr));
    assert.strictEqual(await closedReason(srv, id), 'slow consumer');
    st.destroy();
  });

  await talker.close();
});
