'use strict';
// What an idle connection costs the server (README "Benchmarks", the idle job): the slope of the server's resident
// memory between a few hundred and a couple of thousand quiet connections. RSS says nothing under AddressSanitizer
// (its allocator keeps freed memory in quarantine), so a sanitized binary skips these.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const WebSocket = require('ws');
const { startServer, BIN } = require('../lib/harness');

const bin = process.env.AG_BIN || BIN;
const sanitized = fs.readFileSync(bin).includes('__asan_init');

const rssKb = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// opens n sockets and resolves once each has its first frame (the greeting), 200 at a time
async function openQuiet(url, n, into) {
  for (let done = 0; done < n; ) {
    const batch = Math.min(200, n - done);
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

// bytes of server RSS per connection between n1 and n2 quiet sockets; the settle lets quiet sockets sleep and the
// heap be trimmed (both happen within two seconds of the last traffic)
async function slope(srv, url, n1, n2) {
  const socks = [];
  try {
    await openQuiet(url, n1, socks);
    await sleep(2500);
    const r1 = rssKb(srv.proc.pid);
    await openQuiet(url, n2 - n1, socks);
    await sleep(2500);
    const r2 = rssKb(srv.proc.pid);
    return ((r2 - r1) * 1024) / (n2 - n1);
  } finally {
    for (const ws of socks) ws.terminate();
  }
}

for (const [name, path] of [
  ['/primus', '/primus'],
  ['engine.io websocket', '/primus/?EIO=4&transport=websocket'],
]) {
  test(`an idle ${name} socket costs the server under 2,500 bytes`, { skip: sanitized && 'RSS means nothing under ASan' }, async (t) => {
    const srv = await startServer();
    t.after(() => srv.stop());
    const perConn = await slope(srv, srv.wsUrl + path, 300, 2300);
    assert.ok(perConn < 2500, `${Math.round(perConn)} B of server RSS per idle socket`);
    // and the sockets that slept still answer
    const c = new WebSocket(srv.wsUrl + '/primus');
    await new Promise((r) => c.once('message', r));
    await sleep(1200);
    c.send(JSON.stringify('primus::id::'));
    const [reply] = await Promise.race([
      new Promise((r) => c.once('message', (d) => r([d.toString()]))),
      sleep(5000).then(() => ['(no reply)']),
    ]);
    assert.match(reply, /^"primus::id::[0-9a-f-]{36}"$/);
    c.terminate();
  });
}

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
