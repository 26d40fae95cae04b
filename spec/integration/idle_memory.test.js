'use strict';
// Idle connections: a socket that only got its greeting sleeps at once (its WebSocket context and input buffer are
// freed, README "Design"), and wakes on the client's first byte. What that saves is measured by the idle jobs of
// tools/bench/compare, not here: these tests check that sleeping changes nothing a client can see.
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const { startServer } = require('../lib/harness');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// opens n sockets and resolves once each has its first frame (the greeting), 100 at a time
async function openQuiet(url, n, into) {
  for (let done = 0; done < n; ) {
    const batch = Math.min(100, n - done);
    await Promise.all(
      Array.from({ length: batch }, () => new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        into.push(ws);
        ws.once('message', () => resolve());
        ws.once('error', reject);
        ws.once('close', () => reject(new Error('closed before its greeting')));
      }))
    );
    done += batch;
  }
}

test('quiet /primus sockets that slept after their greeting all answer their first message', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const socks = [];
  try {
    await openQuiet(srv.wsUrl + '/primus', 300, socks);
    await sleep(1500); // past the one-second rule too: every one of them is asleep
    const replies = await Promise.all(
      socks.map((ws) => new Promise((resolve) => {
        ws.once('message', (d) => resolve(d.toString()));
        ws.send(JSON.stringify('primus::id::'));
      }))
    );
    for (const r of replies) assert.match(r, /^"primus::id::[0-9a-f-]{36}"$/);
    // and one that speaks at once, before it could sleep, is answered too
    const c = new WebSocket(srv.wsUrl + '/primus');
    await new Promise((r) => c.once('open', r));
    c.send(JSON.stringify({ event: 'detailsView', messageId: 'early' }));
    const early = await new Promise((r) => c.on('message', (m) => JSON.parse(m).messageId === 'early' && r(JSON.parse(m))));
    assert.strictEqual(early.status, 'OK');
    c.terminate();
  } finally {
    for (const ws of socks) ws.terminate();
  }
});

// An idle connection no longer holds an empty "data" object from its handshake: it is made when first shown, so
// detailsView and the connection's data still read as before.
test('an engine.io connection without a connect hook still shows data {} in detailsView; a /primus one shows none', async (t) => {
  const { Eio, RawWs } = require('../lib/eio_raw');
  const srv = await startServer();
  t.after(() => srv.stop());
  const eio = new Eio(srv.url);
  const ws = new RawWs(eio.url('transport=websocket').replace(/^http/, 'ws'));
  await ws.opened;
  await ws.next((m) => m.text.startsWith('4{"welcome"'));
  for (const id of ['a', 'b']) {
    ws.send(`4${JSON.stringify({ event: 'detailsView', messageId: id })}`);
    const d = JSON.parse((await ws.next((m) => m.text.includes(`"messageId":"${id}"`))).text.slice(1)).data;
    assert.deepStrictEqual(d.data, {});
  }
  ws.ws.terminate();
  const c = new WebSocket(srv.wsUrl + '/primus');
  await new Promise((r) => c.once('message', r));
  c.send(JSON.stringify({ event: 'detailsView', messageId: 1 }));
  const reply = await new Promise((r) => c.on('message', (m) => JSON.parse(m).messageId === 1 && r(JSON.parse(m))));
  assert.strictEqual(reply.data.data, undefined);
  assert.strictEqual(typeof reply.data.id, 'string');
  c.terminate();
});
