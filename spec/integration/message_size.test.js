'use strict';
// One large message must not cost anyone but its sender: a say, a reply or a socket.io event that no outbound queue
// could hold is refused to whoever caused it, and every other member stays connected and keeps receiving. The limits
// are coherent: an inbound message is at most half of queueMaxBytes (the largest frame a connection queues).
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, BIN } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { connectSio } = require('../lib/sioclient');

// queueMaxBytes 256 KiB: the largest frame is 128 KiB, the inbound limits are at most that
const SMALL = {
  general: { maxRoomsPerConnection: 1000 },
  servers: { websocket: { server: { queueMaxBytes: 262144, maxLength: 131072, maxHttpBufferSize: 131072 } } },
};
const MAX_FRAME = 131072;

async function member(srv, room = 'defaultRoom') {
  const c = await connect(`${srv.wsUrl}/primus`);
  await c.welcome();
  c.id = (await c.request({ event: 'detailsView' })).data.id;
  c.gone = null;
  c.closed.then((how) => (c.gone = how));
  assert.strictEqual((await c.request({ event: 'roomAdd', room })).data, true);
  return c;
}

// Every member hears line (said by speaker) and is still connected.
// The replies to reqs, in order, with at most general.simultaneousActions (5) in flight: on Redis an action is pending
// until the store answers, and a sixth one would be refused ("you have too many pending requests"), as in actionhero.
async function inFlight5(c, reqs) {
  const out = new Array(reqs.length);
  let next = 0;
  const worker = async () => {
    while (next < reqs.length) {
      const i = next++;
      out[i] = await c.request(reqs[i]);
    }
  };
  await Promise.all(Array.from({ length: 5 }, worker));
  return out;
}

async function allHear(speaker, members, line) {
  assert.strictEqual((await speaker.request({ event: 'say', room: 'defaultRoom', message: line })).status, 'OK');
  for (const m of members) {
    await m.next((f) => f.context === 'user' && f.message === line);
    assert.strictEqual(m.gone, null);
  }
}

test('a say larger than a queue can hold is refused to its sender; the room keeps chatting', async (t) => {
  const srv = await startServer({ config: SMALL });
  t.after(() => srv.stop());
  const [sender, a, b] = [await member(srv), await member(srv), await member(srv)];

  // a message that passes the inbound limit, whose chat frame (message, room, sender id) does not fit
  const plain = 'x'.repeat(MAX_FRAME - 100);
  assert.deepStrictEqual(await sender.request({ event: 'say', room: 'defaultRoom', message: plain, messageId: 7 }), {
    status: `Error: message too big (at most ${MAX_FRAME} bytes)`, error: `Error: message too big (at most ${MAX_FRAME} bytes)`,
    context: 'response', messageId: 7,
  }); // the error's data (the request) would not fit either: it is left out

  // 90 kB in, 480 kB out: say renders each {} as "[object Object]", as actionhero does. Before, a frame this large
  // closed every member of the room, the sender included, as "slow consumers".
  const objects = Array.from({ length: 30000 }, () => ({}));
  const r = await sender.request({ event: 'say', room: 'defaultRoom', message: objects, messageId: 8 });
  assert.deepStrictEqual([r.status, r.error, r.context, r.messageId],
    [`Error: message too big (at most ${MAX_FRAME} bytes)`, `Error: message too big (at most ${MAX_FRAME} bytes)`, 'response', 8]);
  assert.strictEqual(r.data.message.length, 30000); // this error's data fits: it is the request, as for any verb error

  // nobody got a chat frame of either, everybody is still here and chatting
  await allHear(a, [sender, a, b], 'after the big ones');
  for (const c of [sender, a, b]) assert.strictEqual(c.frames.filter((f) => f.context === 'user').length, 0);
  assert.strictEqual((await a.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount, 3);
  for (const c of [sender, a, b]) await c.close();
});

test('the 4.2 MB say of the report, default limits: only its sender is closed (1009)', async (t) => {
  const srv = await startServer();
  t.after(() => srv.stop());
  const [sender, a, b] = [await member(srv), await member(srv), await member(srv)];
  sender.sendRaw(JSON.stringify({ event: 'say', room: 'defaultRoom', message: 'x'.repeat(4.2e6) }));
  const closed = await sender.closed;
  // 1009, or 1006 when the server closed while the client was still writing the message
  assert.ok([1009, 1006].includes(closed.code), `close code ${closed.code}`);
  await allHear(a, [a, b], 'still chatting');
  assert.strictEqual((await b.request({ event: 'roomView', room: 'defaultRoom' })).data.membersCount, 2);
  await a.close();
  await b.close();
});

test('a reply larger than a queue can hold becomes an error; the connection stays', async (t) => {
  const srv = await startServer({ config: SMALL });
  t.after(() => srv.stop());
  const c = await member(srv);
  const other = await member(srv);
  // 80 kB in: each 0.1 comes back as 0.10000000000000001, so the echo is about 400 kB
  const payload = Array.from({ length: 20000 }, () => 0.1);
  assert.deepStrictEqual(await c.request({ event: 'action', params: { action: 'echo', payload }, messageId: 'big' }),
    { error: `response too big (at most ${MAX_FRAME} bytes)`, context: 'response', messageId: 'big' });
  // a verb whose successful answer is too big gets the verb error: detailsView lists the connection's rooms
  const many = await member(srv);
  const names = Array.from({ length: 700 }, (_, i) => `${'n'.repeat(200)}${i}`);
  const made = await inFlight5(many, names.map((name) => ({ event: 'action', params: { action: 'createChatRoom', name } })));
  assert.ok(made.every((m) => m.didCreate === true));
  const joined = await inFlight5(many, names.map((room) => ({ event: 'roomAdd', room })));
  assert.ok(joined.every((j) => j.data === true));
  assert.deepStrictEqual(await many.request({ event: 'detailsView', messageId: 9 }), {
    status: `Error: response too big (at most ${MAX_FRAME} bytes)`, error: `Error: response too big (at most ${MAX_FRAME} bytes)`,
    context: 'response', messageId: 9,
  });
  // a smaller echo still works, on the same connection
  assert.deepStrictEqual((await c.request({ event: 'action', params: { action: 'echo', payload: [0.1] } })).payload, [0.1]);
  await allHear(other, [c, other, many], 'replies did not close anyone');
  for (const x of [c, other, many]) await x.close();
});

test('socket.io: a say too big for a queue is refused to the emitter; the others keep receiving', async (t) => {
  const srv = await startServer({ config: SMALL });
  t.after(() => srv.stop());
  const s = await connectSio(srv, 'websocket');
  t.after(() => s.socket.disconnect());
  const [a] = [await member(srv)];
  await s.ack('roomChange', { room: 'defaultRoom' });
  const [reply] = await s.ack('say', { room: 'defaultRoom', message: Array.from({ length: 30000 }, () => ({})) });
  assert.deepStrictEqual([reply.status, reply.error],
    [`Error: message too big (at most ${MAX_FRAME} bytes)`, `Error: message too big (at most ${MAX_FRAME} bytes)`]);
  assert.strictEqual(s.socket.connected, true);
  await allHear(a, [a], 'after the socket.io one');
  await s.take('say', (m) => m.message === 'after the socket.io one');
  assert.strictEqual(s.rec.names().filter((n) => n === 'say').length, 1);
  await a.close();
});

test('a configuration where one inbound message could exceed the queue bound is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ag-size-'));
  const check = (yaml) => {
    const file = path.join(dir, 'c.yaml');
    fs.writeFileSync(file, yaml);
    try {
      execFileSync(BIN, ['--config', file, '--check-config'], { stdio: 'pipe' });
      return { status: 0, err: '' };
    } catch (e) {
      return { status: e.status, err: e.stderr.toString() };
    }
  };
  try {
    // the combination of the report: maxLength 10 MiB over a 4 MiB queue
    let r = check('servers:\n  websocket:\n    server:\n      maxLength: 10485760\n');
    assert.strictEqual(r.status, 2);
    assert.match(r.err, /c\.yaml:1: servers\.websocket\.server\.maxLength \(10485760\) must be at most half of queueMaxBytes \(4194304\)/);
    r = check('servers:\n  websocket:\n    server:\n      queueMaxBytes: 262144\n'); // engine.io's 1e6 would not fit
    assert.strictEqual(r.status, 2);
    assert.match(r.err, /must be at most half of queueMaxBytes \(262144\)/);
    assert.strictEqual(check('servers:\n  websocket:\n    server:\n      queueMaxBytes: 262144\n      maxLength: 131072\n' +
      '      maxHttpBufferSize: 131072\n').status, 0);
    assert.strictEqual(check('general:\n  id: x\n').status, 0); // the defaults are coherent
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
