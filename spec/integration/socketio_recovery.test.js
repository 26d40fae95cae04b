'use strict';
// socket.io-client's connection state recovery (README "Resume", socket.io; servers.socketio.connectionStateRecovery):
// the stock socket.io-client 4.x from node_modules keeps the CONNECT answer's pid and the offset every event carries
// last, and presents both in its next CONNECT; the server answers with the same pid (socket.recovered === true), the
// same socket.id, and sends what the client missed, in order, once. A proxy resets the TCP connections mid-stream while
// chat flows both ways and requests are in flight; the client uses socket.io's own `retries` (each request is emitted
// again after a drop until it is acknowledged), and the server answers such a request once. The memory store. The
// recovery tests pin one worker; the last one runs two, where a recovery reaching the other worker has the connection
// handed over.
const test = require('node:test');
const assert = require('node:assert');
const { startServer } = require('../lib/harness');
const { connect } = require('../lib/wsclient');
const { startCutProxy } = require('../lib/cut_proxy');
const { rawEngine, recoveringSio } = require('../lib/sioclient');

const RECOVERY = { redis: { url: '' }, general: { workers: 1 }, servers: { socketio: { connectionStateRecovery: true } } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ROOM = 'defaultRoom';
const PID = /^([0-9a-f-]{36})\.([0-9a-f]{64})$/;

// Waits (bounded in count and time) until cond() holds; fails with what() otherwise.
async function until(cond, what, tries = 1000) {
  for (let i = 0; i < tries && !cond(); i++) await sleep(10);
  assert.ok(cond(), typeof what === 'function' ? what() : what);
}

async function stockMember(srv) {
  const b = await connect(`${srv.wsUrl}/primus`);
  await b.welcome();
  assert.strictEqual((await b.request({ event: 'roomAdd', room: ROOM })).status, 'OK');
  return b;
}

for (const kind of ['websocket', 'polling']) {
  test(`${kind}: cuts mid-stream, recovered each time: nothing lost, doubled or reordered, each request run once`, async (t) => {
    const srv = await startServer({ config: RECOVERY });
    t.after(() => srv.stop());
    const proxy = await startCutProxy(srv.port);
    t.after(() => proxy.close());
    const b = await stockMember(srv);
    t.after(() => b.close());

    const a = recoveringSio(proxy.port, kind);
    t.after(() => a.socket.disconnect());
    await a.connected();
    assert.strictEqual(a.connects[0].recovered, false);
    const firstId = a.socket.id;
    assert.strictEqual(PID.exec(a.connects[0].pid)[1], firstId, 'the pid names the connection');
    // every event carries the offset last; the welcome: nothing numbered yet, no room
    await until(() => a.events.length >= 1, 'welcome');
    assert.deepStrictEqual(a.events[0].args, [{ welcome: 'Welcome to the actiongate api', context: 'api' }, '0']);
    const join = await a.socket.emitWithAck('roomAdd', { room: ROOM });
    assert.deepStrictEqual(join, { status: 'OK', context: 'response', data: true, messageId: join.messageId });

    const N = 60;
    const replies = [];
    let cutsDue = 0; // a cut when nothing is open through the proxy (between two polls) waits for the next step
    for (let i = 0; i < N; i++) {
      b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: `b-${i}` }));
      replies.push(a.socket.emitWithAck('say', { room: ROOM, message: `a-${i}` }));
      replies.push(a.socket.emitWithAck('action', { action: 'echo', payload: i }));
      if (i % 10 === 5) cutsDue++;
      if (cutsDue > 0 && proxy.cut() > 0) cutsDue--;
      await sleep(10);
    }
    const answers = await Promise.all(replies);
    for (let i = 0; i < N; i++) {
      assert.deepStrictEqual(answers[2 * i], { status: 'OK', context: 'response', messageId: answers[2 * i].messageId });
      assert.strictEqual(answers[2 * i + 1].payload, i);
    }
    const want = (prefix) => Array.from({ length: N }, (_, i) => `${prefix}-${i}`);
    await until(() => a.said('b-').length >= N && a.said('a-').length >= N, () => `A got ${a.said('').length} lines`);
    // the stock member saw every line of A once: each say ran once, whatever was emitted again
    const bSaid = () => b.frames.filter((f) => f.context === 'user' && f.message.startsWith('a-')).map((f) => f.message);
    await until(() => bSaid().length >= N, 'B got the lines of A');
    await b.request({ event: 'detailsView' }); // a round trip later: nothing more
    assert.deepStrictEqual(bSaid(), want('a'));
    assert.deepStrictEqual(a.said('b-'), want('b'));
    assert.deepStrictEqual(a.said('a-'), want('a'));
    // every event of A carried its offset, a string, last; no event came twice
    for (const e of a.events) assert.strictEqual(typeof e.args[e.args.length - 1], 'string', JSON.stringify(e));
    assert.ok(proxy.cuts >= 3, `cuts: ${proxy.cuts}`);
    assert.ok(a.connects.length >= 2, `reconnects: ${a.connects.length - 1}`);
    for (const c of a.connects.slice(1)) {
      assert.strictEqual(c.recovered, true, JSON.stringify(a.connects));
      assert.strictEqual(c.id, firstId);
      assert.strictEqual(c.pid, a.connects[0].pid);
    }
    // the same connection on the server: in its room, and each echo ran once (actions are counted per connection)
    const details = await a.socket.emitWithAck('detailsView');
    assert.strictEqual(details.data.id, firstId);
    assert.deepStrictEqual(details.data.rooms, [ROOM]);
    assert.strictEqual(details.data.totalActions, N);
    const v = await b.request({ event: 'roomView', room: ROOM });
    assert.strictEqual(v.data.membersCount, 2);
    assert.ok(Object.keys(v.data.members).includes(firstId));
  });
}

test('a request answered while the client was away: its emit again gets the stored answer, and it runs once', async (t) => {
  const srv = await startServer({ config: RECOVERY });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const a = recoveringSio(proxy.port, 'websocket', { reconnectionDelay: 700, reconnectionDelayMax: 700 });
  t.after(() => a.socket.disconnect());
  await a.connected();
  // an action that answers after the cut, while the client is away
  const slow = a.socket.emitWithAck('action', { action: 'sleepTest', sleepDuration: 300 });
  await sleep(50);
  proxy.cut();
  const answer = await slow;
  assert.strictEqual(answer.sleepDuration, 300);
  await a.connected(2);
  assert.strictEqual(a.connects[1].recovered, true);
  const details = await a.socket.emitWithAck('detailsView');
  assert.strictEqual(details.data.totalActions, 1, 'the action ran once');
  // the answer came once, as the ack of the emit again (a "response" event would be a second copy)
  assert.deepStrictEqual(a.events.filter((e) => e.name === 'response'), []);
});

test('an answer replayed to an ack id the client forgot does not count as delivered: its emit again, two recoveries later, runs once', async (t) => {
  const srv = await startServer({ config: RECOVERY });
  t.after(() => srv.stop());
  const b = await stockMember(srv);
  t.after(() => b.close());
  const open = async () => {
    const e = await rawEngine(srv);
    t.after(() => e.socket.close());
    return e;
  };
  const offsetOf = (m) => {
    const args = JSON.parse(m.slice(1));
    return args[args.length - 1];
  };
  let e = await open();
  e.socket.send('0');
  const { pid } = JSON.parse((await e.take((m) => m.startsWith('0'))).slice(1));
  e.socket.send(`20["roomAdd",${JSON.stringify({ room: ROOM })}]`);
  await e.take((m) => m.startsWith('30'));
  const slow = '["action",{"action":"sleepTest","sleepDuration":300}]';
  e.socket.send(`21${slow}`);
  await sleep(50);
  e.socket.close(); // a drop (an engine.io close): away, the action still running
  await sleep(500); // answered meanwhile, into the outbox
  // recovery 1 from the welcome's offset: the answer is replayed as the ACK of id 1, which the client forgot; a line
  // after it moves the offset past it
  e = await open();
  e.socket.send(`0${JSON.stringify({ pid, offset: '0' })}`);
  assert.strictEqual(JSON.parse((await e.take((m) => m.startsWith('0'))).slice(1)).pid, pid);
  await e.take((m) => m.startsWith('31'));
  b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: 'after the replay' }));
  const line = await e.take((m) => m.startsWith('2') && m.includes('after the replay'));
  e.socket.close(); // dropped again before the client emitted the request again
  await sleep(100);
  // recovery 2: the request emitted again under the next ack id gets the stored answer and does not run again
  e = await open();
  e.socket.send(`0${JSON.stringify({ pid, offset: offsetOf(line) })}`);
  assert.strictEqual(JSON.parse((await e.take((m) => m.startsWith('0'))).slice(1)).pid, pid);
  e.socket.send(`22${slow}`);
  const again = JSON.parse((await e.take((m) => m.startsWith('32'))).slice(2))[0];
  assert.strictEqual(again.sleepDuration, 300);
  e.socket.send('23["detailsView"]');
  const details = JSON.parse((await e.take((m) => m.startsWith('33'))).slice(2))[0];
  assert.strictEqual(details.data.totalActions, 1, 'the action ran once');
});

test('after a recovery, requests with the text of earlier ones run again: only the first event can be the one emitted again', async (t) => {
  const srv = await startServer({ config: RECOVERY });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const b = await stockMember(srv);
  t.after(() => b.close());
  const a = recoveringSio(proxy.port, 'websocket');
  t.after(() => a.socket.disconnect());
  await a.connected();
  // the last two answers are ACKs, which move no offset: the client's offset says it has neither
  assert.deepStrictEqual((await a.socket.emitWithAck('detailsView')).data.rooms, []);
  assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
  proxy.cut();
  await a.connected(2);
  assert.strictEqual(a.connects[1].recovered, true);
  assert.deepStrictEqual((await a.socket.emitWithAck('detailsView')).data.rooms, [ROOM], 'a new detailsView, not the old answer');
  // the same text again, but not as the first event after the recovery: a new request
  for (let i = 0; i < 2; i++) {
    assert.strictEqual((await a.socket.emitWithAck('say', { room: ROOM, message: 'same' })).status, 'OK');
    proxy.cut();
    await a.connected(3 + i);
    assert.strictEqual(a.connects[2 + i].recovered, true);
    assert.strictEqual((await a.socket.emitWithAck('roomView', { room: ROOM })).status, 'OK');
  }
  assert.strictEqual((await a.socket.emitWithAck('say', { room: ROOM, message: 'same' })).status, 'OK');
  const bSame = () => b.frames.filter((f) => f.context === 'user' && f.message === 'same').length;
  await until(() => bSame() >= 3, () => `B got ${bSame()} of 3`);
  await b.request({ event: 'detailsView' });
  assert.strictEqual(bSame(), 3);
});

test('outside the window: not recovered, a new connection that works, the old one gone from its room', async (t) => {
  const srv = await startServer({ config: { ...RECOVERY, general: { workers: 1, resumeWindow: 300 } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const b = await stockMember(srv);
  t.after(() => b.close());
  const a = recoveringSio(proxy.port, 'websocket', { reconnectionDelay: 1500, reconnectionDelayMax: 1500 });
  t.after(() => a.socket.disconnect());
  await a.connected();
  const first = a.socket.id;
  assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
  proxy.cut();
  await a.connected(2);
  assert.strictEqual(a.connects[1].recovered, false);
  assert.notStrictEqual(a.connects[1].id, first);
  assert.notStrictEqual(a.connects[1].pid, a.connects[0].pid);
  assert.strictEqual(PID.exec(a.connects[1].pid)[1], a.connects[1].id);
  const details = await a.socket.emitWithAck('detailsView');
  assert.strictEqual(details.data.id, a.socket.id);
  assert.deepStrictEqual(details.data.rooms, []);
  const v = await b.request({ event: 'roomView', room: ROOM });
  assert.ok(!Object.keys(v.data.members).includes(first), JSON.stringify(v.data));
  assert.strictEqual(v.data.membersCount, 1);
});

test('a forged or garbled pid or offset: a fresh session, nothing of the other connection; the owner still recovers', async (t) => {
  const srv = await startServer({ config: RECOVERY });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const b = await stockMember(srv);
  t.after(() => b.close());
  const v = recoveringSio(proxy.port, 'websocket');
  t.after(() => v.socket.disconnect());
  await v.connected();
  assert.strictEqual((await v.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
  b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: 'before' }));
  await until(() => v.said('before').length === 1, 'the line before');
  const [, id, token] = PID.exec(v.socket._pid);
  const offset = v.socket._lastOffset;
  assert.match(offset, /^\d+(:\d+)?\.[0-9a-f]{8}-1$/);
  // the victim goes away and stays away while the others try
  v.socket.io.reconnection(false);
  proxy.cut();
  await until(() => !v.socket.connected, 'the victim dropped');
  b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: 'while away' }));

  const wrong = token.slice(0, 63) + (token[63] === '0' ? '1' : '0');
  const tries = [
    { pid: `${id}.${wrong}`, offset },
    { pid: `${id}.${'0'.repeat(64)}`, offset },
    { pid: `${id}.${token.toUpperCase()}`, offset },
    { pid: `${id}.${token}0`, offset },
    { pid: id, offset },
    { pid: `${id}.`, offset },
    { pid: `.${token}`, offset },
    { pid: `${'a'.repeat(5000)}.${token}`, offset },
    { pid: `${id}.${wrong}`, offset: '0' },
    { pid: `${id}.${wrong}`, offset: 'x'.repeat(100000) },
    { pid: 12, offset: {} },
    { pid: `${id}.${token}`, offset: ['0'] }, // not a string: no recovery is even tried
  ];
  for (const tr of tries) {
    const e = await rawEngine(srv);
    t.after(() => e.socket.close());
    e.socket.send(`0${JSON.stringify(tr)}`);
    const answer = await e.take((m) => m.startsWith('0') || m.startsWith('4'));
    const data = JSON.parse(answer.slice(1));
    assert.notStrictEqual(data.sid, id, JSON.stringify(tr).slice(0, 200));
    assert.strictEqual(PID.exec(data.pid)[1], data.sid, 'a pid of its own');
    // a fresh session: the welcome, and nothing of the victim's room
    assert.strictEqual(await e.take(), `2["welcome",{"welcome":"Welcome to the actiongate api","context":"api"},"0"]`);
    e.socket.send('21["detailsView"]');
    const details = JSON.parse((await e.take((m) => m.startsWith('31'))).slice(2))[0];
    assert.strictEqual(details.data.id, data.sid);
    assert.deepStrictEqual(details.data.rooms, []);
    assert.ok(!e.rec.events.some((ev) => ev.args[0].includes('while away')));
  }
  // garbled offsets with the right pid: the owner's own client sent them; it gets a fresh session, never a wrong replay
  for (const bad of ['garbage', '', '01', '-1', '1.deadbeef-1', `0.${offset.split('.')[1]}.${offset.split('.')[1]}`,
    '1.zzzzzzzz-1', `${'9'.repeat(30)}`, `0.${offset.split('.')[1].split('-')[0]}-0`, 'x', '99999999']) {
    const e = await rawEngine(srv);
    t.after(() => e.socket.close());
    e.socket.send(`0${JSON.stringify({ pid: `${id}.${token}`, offset: bad })}`);
    const data = JSON.parse((await e.take((m) => m.startsWith('0'))).slice(1));
    assert.notStrictEqual(data.sid, id, bad);
    assert.strictEqual(await e.take(), `2["welcome",{"welcome":"Welcome to the actiongate api","context":"api"},"0"]`, bad);
  }
  // the seq beyond what was sent ended it: the owner gets a fresh session too, never a wrong replay
  v.socket.io.reconnection(true);
  v.socket.connect();
  await v.connected(2);
  assert.strictEqual(v.connects[1].recovered, false);
  assert.notStrictEqual(v.socket.id, id);
  assert.deepStrictEqual(v.said('while away'), []);
});

test('the owner recovers after others tried its id with wrong tokens', async (t) => {
  const srv = await startServer({ config: RECOVERY });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const b = await stockMember(srv);
  t.after(() => b.close());
  const v = recoveringSio(proxy.port, 'polling');
  t.after(() => v.socket.disconnect());
  await v.connected();
  assert.strictEqual((await v.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
  const [, id, token] = PID.exec(v.socket._pid);
  v.socket.io.reconnection(false);
  v.socket.io.engine.close(); // as a drop: the engine.io session ends without a DISCONNECT
  await until(() => !v.socket.connected, 'the victim dropped');
  b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: 'while away' }));
  for (const pid of [`${id}.${'f'.repeat(64)}`, `${id}.${token.slice(1)}0`]) {
    const e = await rawEngine(srv);
    t.after(() => e.socket.close());
    e.socket.send(`0${JSON.stringify({ pid, offset: v.socket._lastOffset })}`);
    const data = JSON.parse((await e.take((m) => m.startsWith('0'))).slice(1));
    assert.notStrictEqual(data.sid, id);
  }
  v.socket.io.reconnection(true);
  v.socket.connect();
  await v.connected(2);
  assert.strictEqual(v.connects[1].recovered, true);
  assert.strictEqual(v.socket.id, id);
  await until(() => v.said('while away').length === 1, 'the line sent while away');
  const details = await v.socket.emitWithAck('detailsView');
  assert.deepStrictEqual(details.data.rooms, [ROOM]);
});

test('two workers: every recovery is recovered, also one that reaches the other worker (handed over)', async (t) => {
  const srv = await startServer({ config: { ...RECOVERY, general: { workers: 2, logLevel: 'info' } } });
  t.after(() => srv.stop());
  const proxy = await startCutProxy(srv.port);
  t.after(() => proxy.close());
  const b = await stockMember(srv);
  t.after(() => b.close());
  const a = recoveringSio(proxy.port, 'websocket');
  t.after(() => a.socket.disconnect());
  await a.connected();
  const firstId = a.socket.id;
  assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
  // each worker logs its sid tag at start; a handshake naming a tag (`resume`, as the generated client sends it) is
  // made on that worker, whichever loop accepted it: the recoveries alternate between the two workers
  const tags = [...srv.stderr.matchAll(/\(sid tag ([A-Za-z0-9_-]{8})\)/g)].map((m) => m[1]);
  assert.strictEqual(new Set(tags).size, 2, srv.stderr);
  const tagOf = (c) => c.sid.slice(0, 8);
  const N = 12;
  for (let i = 1; i <= N; i++) {
    const before = tagOf(a.connects[i - 1]);
    a.socket.io.opts.query = { resume: tags.find((x) => x !== before) };
    proxy.cut();
    // a line while it is away (or already back): the recovered connection gets it once, in order
    await b.request({ event: 'say', room: ROOM, message: `w-${i}` });
    await a.connected(i + 1);
    const c = a.connects[i];
    assert.notStrictEqual(tagOf(c), before, 'the recovery reached the other worker');
    assert.strictEqual(c.recovered, true, JSON.stringify(a.connects));
    assert.strictEqual(c.id, firstId);
    assert.strictEqual(c.pid, a.connects[0].pid);
    const details = await a.socket.emitWithAck('detailsView');
    assert.strictEqual(details.data.id, firstId);
    assert.deepStrictEqual(details.data.rooms, [ROOM]);
  }
  const want = Array.from({ length: N }, (_, i) => `w-${i + 1}`);
  await until(() => a.said('w-').length >= N, () => `A got ${a.said('w-')}`);
  await b.request({ event: 'detailsView' });
  assert.deepStrictEqual(a.said('w-'), want);
  const v = await b.request({ event: 'roomView', room: ROOM });
  assert.strictEqual(v.data.membersCount, 2);
  assert.ok(Object.keys(v.data.members).includes(firstId));
  // each recovery was a hand-over (the holder logs it)
  assert.strictEqual((srv.stderr.match(/ handed over$/gm) || []).length, N, srv.stderr);
});
