'use strict';
// socket.io-client's own connection state recovery across a cluster over Redis (README "Resume", socket.io): three real
// nodes on a real redis-server behind the round-robin proxy (every new TCP connection goes to the next node), a cut
// proxy in front that resets every connection through it. The stock socket.io-client presents its pid only in the
// CONNECT, on an engine.io session already made on whichever node took the handshake: that node has the connection
// handed over by the node holding it (live), or claims its record (the holder was killed). Chat and requests are
// checked by sequence numbers: nothing lost, doubled or reordered, `socket.recovered` true every time.
const test = require('node:test');
const assert = require('node:assert');
const { io } = require('socket.io-client');
const { startRoundRobinProxy } = require('../lib/rr_proxy');
const { startCutProxy } = require('../lib/cut_proxy');
const { recoveringSio } = require('../lib/sioclient');
const { sleep, waitFor, primus, cluster, teardown } = require('../lib/cluster_clients');

const ROOM = 'defaultRoom';
const SIO = { servers: { socketio: { connectionStateRecovery: true } } };
const want = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function until(cond, what, ms = 20000) {
  for (let i = 0; i < ms / 10 && !cond(); i++) await sleep(10);
  assert.ok(cond(), typeof what === 'function' ? what() : what);
}

// The node that holds a resumable connection now: its record in Redis names it.
function holderOf(cl, id) {
  const node = cl.redis.cli('HGET', `actiongate:rconn:${id}`, 'node');
  return cl.nodes.findIndex((_, i) => node === `node${i}`);
}

const lines = (b, prefix) => b.frames.filter((f) => f.context === 'user' && f.message.startsWith(prefix)).map((f) => f.message);

// n nodes on Redis behind the round-robin proxy, the cut proxy in front, and a recovering client connected through both.
async function behindCuts(t, n) {
  const cl = await cluster(n, SIO);
  const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
  const cut = await startCutProxy(rr.port);
  t.after(() => teardown(cl, cut, rr));
  const a = recoveringSio(cut.port);
  t.after(() => a.socket.disconnect());
  await a.connected();
  return { cl, cut, a };
}

test('socket.io: cuts mid-stream behind a round-robin proxy; every recovery lands on another live node and is recovered',
  async (t) => {
    const { cl, cut, a } = await behindCuts(t, 3);
    const b = await primus(cl.nodes[2]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: ROOM })).status, 'OK');
    const firstId = a.socket.id;
    assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
    const holders = new Set([holderOf(cl, firstId)]);

    const N = 60;
    const replies = [];
    let cutsDue = 0;
    for (let i = 0; i < N; i++) {
      b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: `b-${i}` }));
      replies.push(a.socket.emitWithAck('say', { room: ROOM, message: `a-${i}` }));
      replies.push(a.socket.emitWithAck('action', { action: 'echo', payload: i }));
      if (i % 10 === 5) cutsDue++;
      if (cutsDue > 0 && cut.cut() > 0) {
        cutsDue--;
        const n = a.connects.length;
        await until(() => a.connects.length > n, 'reconnected');
        holders.add(holderOf(cl, firstId));
      }
      await sleep(5);
    }
    const answers = await Promise.all(replies);
    for (let i = 0; i < N; i++) {
      assert.strictEqual(answers[2 * i].status, 'OK');
      assert.strictEqual(answers[2 * i + 1].payload, i);
    }
    await until(() => a.said('b-').length >= N && a.said('a-').length >= N, () => `A got ${a.said('').length} lines`);
    await until(() => lines(b, 'a-').length >= N, 'B got the lines of A');
    await b.request({ event: 'detailsView' });
    assert.deepStrictEqual(lines(b, 'a-'), want('a', N), 'each say ran once');
    assert.deepStrictEqual(a.said('b-'), want('b', N));
    assert.deepStrictEqual(a.said('a-'), want('a', N));
    assert.ok(cut.cuts >= 3, `cuts: ${cut.cuts}`);
    for (const c of a.connects.slice(1)) {
      assert.strictEqual(c.recovered, true, JSON.stringify(a.connects));
      assert.strictEqual(c.id, firstId);
      assert.strictEqual(c.pid, a.connects[0].pid);
    }
    // the connection moved between nodes (the round-robin proxy sends each new carrier to the next one)
    assert.ok(holders.size >= 2, `holders: ${[...holders]}`);
    const details = await a.socket.emitWithAck('detailsView');
    assert.strictEqual(details.data.id, firstId);
    assert.deepStrictEqual(details.data.rooms, [ROOM]);
    const v = await b.request({ event: 'roomView', room: ROOM });
    assert.strictEqual(v.data.membersCount, 2);
    assert.ok(Object.keys(v.data.members).includes(firstId));
  });

test('socket.io: SIGKILL of the node holding the socket while chat flows both ways: recovered on another node',
  async (t) => {
    const cl = await cluster(3, { ...SIO, general: { resumeHistoryLines: 2000, resumeHistoryBytes: 1048576 } });
    const rr = await startRoundRobinProxy(cl.nodes.map((s) => s.port));
    t.after(() => teardown(cl, rr));
    const a = recoveringSio(rr.port);
    t.after(() => a.socket.disconnect());
    await a.connected();
    const firstId = a.socket.id;
    assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
    const victim = holderOf(cl, firstId);
    assert.ok(victim >= 0, 'the record names its node');
    const b = await primus(cl.nodes[(victim + 1) % 3]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: ROOM })).status, 'OK');

    const N = 40;
    const replies = [];
    for (let i = 0; i < N; i++) {
      b.sendRaw(JSON.stringify({ event: 'say', room: ROOM, message: `b-${i}` }));
      replies.push(a.socket.emitWithAck('say', { room: ROOM, message: `a-${i}` }));
      replies.push(a.socket.emitWithAck('action', { action: 'echo', payload: i }));
      if (i === N / 2) cl.nodes[victim].kill('SIGKILL');
      await sleep(10);
    }
    const answers = await Promise.all(replies);
    for (let i = 0; i < N; i++) {
      assert.strictEqual(answers[2 * i].status, 'OK');
      assert.strictEqual(answers[2 * i + 1].payload, i);
    }
    await until(() => a.said('b-').length >= N && a.said('a-').length >= N, () => `A got ${a.said('').length} lines`, 30000);
    await until(() => lines(b, 'a-').length >= N, 'B got the lines of A', 30000);
    await b.request({ event: 'detailsView' });
    assert.deepStrictEqual(a.said('b-'), want('b', N), 'the lines of B: none lost, doubled or reordered');
    assert.deepStrictEqual(a.said('a-'), want('a', N));
    assert.deepStrictEqual(lines(b, 'a-'), want('a', N), 'each say ran once');
    assert.ok(a.connects.length >= 2);
    for (const c of a.connects.slice(1)) {
      assert.strictEqual(c.recovered, true, JSON.stringify(a.connects));
      assert.strictEqual(c.id, firstId);
    }
    assert.notStrictEqual(holderOf(cl, firstId), victim, 'it lives on a live node now');
    await waitFor(async () => {
      const v = await b.request({ event: 'roomView', room: ROOM });
      return v.data.membersCount === 2 && Object.keys(v.data.members).includes(firstId);
    }, 10000, 'members after the reaper');
  });

test('socket.io: a forged pid (wrong token) reaching another node is not recovered; the real connection stays resumable',
  async (t) => {
    const cl = await cluster(3, SIO);
    const cut = await startCutProxy(cl.nodes[0].port);
    t.after(() => teardown(cl, cut));
    const a = recoveringSio(cut.port);
    t.after(() => a.socket.disconnect());
    await a.connected();
    const id = a.socket.id;
    const pid = a.connects[0].pid;
    assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
    a.socket.io.reconnection(false);
    cut.cut();
    await until(() => !a.socket.connected, 'dropped');
    // the forger knows the id (roomView shows it) but not the token; it asks a node that does not hold the connection
    const forged = `${id}.${'0'.repeat(64)}`;
    const f = io(`http://127.0.0.1:${cl.nodes[1].port}`, { transports: ['websocket'], forceNew: true, reconnection: false,
      auth: { pid: forged, offset: a.socket._lastOffset || '0' } });
    t.after(() => f.disconnect());
    await new Promise((resolve) => f.on('connect', resolve));
    assert.strictEqual(f.recovered, false);
    assert.notStrictEqual(f.id, id);
    assert.strictEqual(holderOf(cl, id), 0, 'the real connection is still where it was');
    const b = await primus(cl.nodes[2]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: ROOM })).status, 'OK');
    await b.request({ event: 'say', room: ROOM, message: 'while away' });
    // the real client comes back, through another node: recovered, with what it missed
    a.socket.io.uri = `http://127.0.0.1:${cl.nodes[2].port}`;
    a.socket.io.engine = null;
    a.socket.io.reconnection(true);
    a.socket.connect();
    await a.connected(2);
    assert.strictEqual(a.connects[1].recovered, true, JSON.stringify(a.connects));
    assert.strictEqual(a.socket.id, id);
    assert.strictEqual(a.connects[1].pid, pid);
    await until(() => a.said('while away').length === 1, 'the line sent while away');
    const details = await a.socket.emitWithAck('detailsView');
    assert.deepStrictEqual(details.data.rooms, [ROOM]);
  });

test('socket.io: the node that handed a connection over stops gracefully; the connection stays a member where it lives now',
  async (t) => {
    const { cl, cut, a } = await behindCuts(t, 2);
    const id = a.socket.id;
    assert.strictEqual((await a.socket.emitWithAck('roomAdd', { room: ROOM })).status, 'OK');
    const first = holderOf(cl, id);
    // cut until a recovery lands on the other node (the proxy sends each new connection to the next one)
    for (let i = 0; i < 6 && holderOf(cl, id) === first; i++) {
      const n = a.connects.length;
      cut.cut();
      await until(() => a.connects.length > n, 'reconnected');
    }
    const now = holderOf(cl, id);
    assert.notStrictEqual(now, first, 'handed over to the other node');
    assert.strictEqual(a.connects[a.connects.length - 1].recovered, true);
    await cl.nodes[first].stop('SIGTERM');
    const b = await primus(cl.nodes[now]);
    t.after(() => b.close());
    assert.strictEqual((await b.request({ event: 'roomAdd', room: ROOM })).status, 'OK');
    const v = await b.request({ event: 'roomView', room: ROOM });
    assert.deepStrictEqual(Object.keys(v.data.members).sort(), [id, b.id].sort(), JSON.stringify(v));
    const details = await a.socket.emitWithAck('detailsView');
    assert.deepStrictEqual(details.data.rooms, [ROOM]);
  });

test('socket.io: a request answered while the client was away, then its node killed: the emit again gets that answer, not a second run',
  async (t) => {
    const { cl, cut, a } = await behindCuts(t, 3);
    const id = a.socket.id;
    const victim = holderOf(cl, id);
    a.socket.io.reconnectionDelay(1200);
    a.socket.io.reconnectionDelayMax(1200);
    // an action that answers after the cut, while the client is away: its answer is in the connection's record
    const slow = a.socket.emitWithAck('action', { action: 'sleepTest', sleepDuration: 300 });
    await sleep(50);
    cut.cut();
    await sleep(600);
    const killedAt = Date.now();
    cl.nodes[victim].kill('SIGKILL');
    const answer = await slow; // socket.io-client emits it again once recovered (retries)
    assert.strictEqual(answer.sleepDuration, 300);
    assert.ok(answer.sleepStarted < killedAt, `ran once, before the kill (${answer.sleepStarted} < ${killedAt})`);
    assert.strictEqual(a.connects[1].recovered, true, JSON.stringify(a.connects));
    assert.strictEqual(a.socket.id, id);
    assert.notStrictEqual(holderOf(cl, id), victim);
    // the answer came once, as the ack of the emit again (a "response" event would be a second copy)
    assert.deepStrictEqual(a.events.filter((e) => e.name === 'response'), []);
    const echo = await a.socket.emitWithAck('action', { action: 'echo', payload: 'after' });
    assert.strictEqual(echo.payload, 'after');
  });
